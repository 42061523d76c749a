//! Resources and their ids, as kustomize's `resource.Resource` and `resid`.

use crate::schema;
use crate::yaml::{Map, Value};

/// Group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn is_cluster_scoped(&self) -> bool {
        schema::is_cluster_scoped(&self.group, &self.version, &self.kind)
    }
    /// kustomize's `Gvk.IsSelected`: empty selector parts match anything.
    pub fn is_selected_by(&self, sel: &Gvk) -> bool {
        (sel.group.is_empty() || sel.group == self.group)
            && (sel.version.is_empty() || sel.version == self.version)
            && (sel.kind.is_empty() || sel.kind == self.kind)
    }
}

impl std::fmt::Display for Gvk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]")
        )
    }
}

/// A resource id: gvk, name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

pub(crate) const NOT_A_NAMESPACE: &str = "_non_namespaceable_";

impl ResId {
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            NOT_A_NAMESPACE
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }
    pub fn gvkn_equals(&self, o: &ResId) -> bool {
        self.gvk == o.gvk && self.name == o.name
    }
    pub fn equals(&self, o: &ResId) -> bool {
        self.effective_namespace() == o.effective_namespace() && self.gvkn_equals(o)
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = if self.namespace.is_empty() {
            "~X"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() { "~N" } else { &self.name };
        write!(f, "{}|{}|{}", self.gvk, ns, name)
    }
}

/// Generator behaviour for a generated ConfigMap/Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Create,
    Merge,
    Replace,
}

/// Where an object came from, for `buildMetadata: [originAnnotations]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Provenance {
    /// Read from the file `Resource::origin` names.
    #[default]
    File,
    /// Read from a file of a remote repository.
    Remote {
        repo: String,
        git_ref: String,
        path: String,
    },
    /// Made by a built-in generator configured in `file` (`name`: the
    /// plugin config's, empty for kustomization fields).
    Generated {
        kind: String,
        name: String,
        file: String,
    },
}

/// A transformer that ran on an object (`transformerAnnotations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformation {
    /// The file that configured it (kustomization or plugin config).
    pub file: String,
    pub kind: String,
    /// The plugin config's name; empty for kustomization fields.
    pub name: String,
}

/// An object plus the bookkeeping kustomize keeps in build annotations.
#[derive(Debug, Clone)]
pub struct Resource {
    pub obj: Value,
    /// Earlier (namespace, name, kind) of this object, oldest first.
    pub prev: Vec<(String, String, String)>,
    pub behavior: Behavior,
    pub needs_hash: bool,
    /// Names of vars this object supplies.
    pub ref_var_names: Vec<String>,
    /// Ids of objects whose reference to this one was renamed (nameref).
    pub ref_by: Vec<ResId>,
    /// Name prefixes and suffixes applied, for name references.
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
    /// Where the object came from, for error messages.
    pub origin: String,
    pub provenance: Provenance,
    pub transformations: Vec<std::sync::Arc<Transformation>>,
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Resource {
    pub fn new(obj: Value, origin: impl Into<String>) -> Self {
        Resource {
            obj,
            prev: Vec::new(),
            behavior: Behavior::Create,
            needs_hash: false,
            ref_var_names: Vec::new(),
            ref_by: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            allow_name_change: false,
            allow_kind_change: false,
            origin: origin.into(),
            provenance: Provenance::File,
            transformations: Vec::new(),
        }
    }
    pub fn map(&self) -> &Map {
        static EMPTY: std::sync::OnceLock<Map> = std::sync::OnceLock::new();
        self.obj.as_map().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }
    pub fn api_version(&self) -> &str {
        self.obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }
    pub fn kind(&self) -> &str {
        self.obj.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    pub fn name(&self) -> &str {
        meta_str(&self.obj, "name")
    }
    pub fn namespace(&self) -> &str {
        meta_str(&self.obj, "namespace")
    }
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_string(),
            namespace: self.namespace().to_string(),
        }
    }
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.prev
            .iter()
            .map(|(ns, name, kind)| ResId {
                gvk: Gvk {
                    kind: kind.clone(),
                    ..gvk.clone()
                },
                name: name.clone(),
                namespace: ns.clone(),
            })
            .collect()
    }
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }
    /// Whether any of the object's ids (previous or current) satisfies `f`.
    pub fn any_id(&self, f: impl Fn(&ResId) -> bool) -> bool {
        self.prev_ids().iter().any(&f) || f(&self.cur_id())
    }
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let ns = id.effective_namespace().to_string();
        self.prev.push((ns, id.name, id.gvk.kind));
    }
    fn metadata_mut(&mut self) -> &mut Map {
        if !matches!(self.obj, Value::Map(_)) {
            self.obj = Value::Map(Map::new());
        }
        let Value::Map(m) = &mut self.obj else {
            unreachable!("just made a map")
        };
        let meta = m.entry_or_insert_with("metadata", || Value::Map(Map::new()));
        if !matches!(meta, Value::Map(_)) {
            *meta = Value::Map(Map::new());
        }
        meta.as_map_mut().expect("metadata is a map")
    }
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut().insert("name", Value::Str(name.to_string()));
    }
    pub fn set_namespace(&mut self, ns: &str) {
        self.metadata_mut()
            .insert("namespace", Value::Str(ns.to_string()));
    }
    pub fn set_kind(&mut self, kind: &str) {
        if let Some(m) = self.obj.as_map_mut() {
            m.insert("kind", Value::Str(kind.to_string()));
        }
    }
    pub fn set_api_version(&mut self, av: &str) {
        if let Some(m) = self.obj.as_map_mut() {
            m.insert("apiVersion", Value::Str(av.to_string()));
        }
    }
    /// `metadata.<field>` as a string map (scalars as text), like kyaml's getters.
    pub fn string_map(&self, field: &str) -> Vec<(String, String)> {
        match self
            .obj
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_map)
        {
            Some(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
                .collect(),
            None => Vec::new(),
        }
    }
    pub fn labels(&self) -> Vec<(String, String)> {
        self.string_map("labels")
    }
    pub fn annotations(&self) -> Vec<(String, String)> {
        self.string_map("annotations")
    }
    /// kyaml's `setMapInMetadata`: replaces the map with string values, or
    /// removes the field when `m` is empty.
    pub fn set_string_map(&mut self, field: &str, m: Vec<(String, String)>) {
        let meta = self.metadata_mut();
        meta.remove(field);
        if m.is_empty() {
            return;
        }
        let mut sorted = m;
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        meta.insert(
            field,
            Value::Map(sorted.into_iter().map(|(k, v)| (k, Value::Str(v))).collect()),
        );
    }
    pub fn is_empty(&self) -> bool {
        match &self.obj {
            Value::Map(m) => m.is_empty(),
            Value::Null | Value::NullText => true,
            _ => false,
        }
    }
}
