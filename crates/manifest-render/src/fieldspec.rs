//! Field specs (`group/version/kind` + a path) and kustomize's walk along
//! them (`api/filters/fieldspec`).

use crate::builtin_data::{self, Fs};
use crate::resource::Gvk;
use crate::yaml::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

impl FieldSpec {
    pub fn from_fs(fs: &Fs) -> Self {
        FieldSpec {
            gvk: Gvk {
                group: fs.0.into(),
                version: fs.1.into(),
                kind: fs.2.into(),
            },
            path: fs.3.into(),
            create: fs.4,
        }
    }
    /// Reads a field spec from kustomization/configuration YAML.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let m = v.as_map().ok_or("a field spec must be a mapping")?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
        let create = match m.get("create") {
            Some(Value::Bool(b)) => *b,
            None | Some(Value::Null | Value::NullText) => false,
            Some(other) => return Err(format!("field spec 'create' must be a boolean, got {other:?}")),
        };
        Ok(FieldSpec {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            path: s("path"),
            create,
        })
    }
    pub fn matches(&self, gvk: &Gvk) -> bool {
        gvk.is_selected_by(&self.gvk)
    }
    /// `effectivelyEquals` in kustomize: same gvk and path.
    fn same_key(&self, o: &FieldSpec) -> bool {
        self.gvk == o.gvk && self.path == o.path
    }
}

/// `FsSlice.MergeOne`.
pub fn merge_one(list: &mut Vec<FieldSpec>, fs: FieldSpec) -> Result<(), String> {
    if let Some(x) = list.iter().find(|x| x.same_key(&fs)) {
        if x.create != fs.create {
            return Err(format!("conflicting fieldspecs for path {}", fs.path));
        }
        return Ok(());
    }
    list.push(fs);
    Ok(())
}

pub fn merge_all(list: &mut Vec<FieldSpec>, other: &[FieldSpec]) -> Result<(), String> {
    // Index by (gvk, path), borrowing: configurations merge hundreds of specs, often.
    let mut added = Vec::new();
    let mut index: std::collections::HashMap<(&Gvk, &str), bool> = list
        .iter()
        .map(|f| ((&f.gvk, f.path.as_str()), f.create))
        .collect();
    for fs in other {
        match index.get(&(&fs.gvk, fs.path.as_str())) {
            Some(&create) if create != fs.create => {
                return Err(format!("conflicting fieldspecs for path {}", fs.path));
            }
            Some(_) => {}
            None => {
                index.insert((&fs.gvk, fs.path.as_str()), fs.create);
                added.push(fs.clone());
            }
        }
    }
    drop(index);
    list.extend(added);
    Ok(())
}

pub fn from_table(t: &[Fs]) -> Vec<FieldSpec> {
    t.iter().map(FieldSpec::from_fs).collect()
}

/// A nameReference entry: a referenced kind and where others refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameBackRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

/// kustomize's `TransformerConfig`.
#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    /// Whether anything beyond the built-in specs was merged in (merging
    /// the built-ins into a config that has them is a no-op, and common).
    pub custom: bool,
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

impl TransformerConfig {
    /// The built-in configuration, built once: every kustomization starts from it.
    pub fn shared_builtin() -> std::sync::Arc<Self> {
        static BUILTIN: std::sync::OnceLock<std::sync::Arc<TransformerConfig>> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| std::sync::Arc::new(TransformerConfig::builtin()))
            .clone()
    }

    pub fn builtin() -> Self {
        let mut common_labels = from_table(builtin_data::COMMON_LABELS);
        let metadata = from_table(builtin_data::METADATA_LABELS);
        common_labels.extend(metadata.iter().cloned());
        TransformerConfig {
            custom: false,
            name_prefix: from_table(builtin_data::NAME_PREFIX),
            name_suffix: from_table(builtin_data::NAME_SUFFIX),
            namespace: from_table(builtin_data::NAMESPACE),
            common_labels,
            labels: Vec::new(),
            template_labels: metadata,
            common_annotations: from_table(builtin_data::COMMON_ANNOTATIONS),
            name_reference: builtin_data::NAME_REFERENCE
                .iter()
                .map(|(g, v, k, refs)| NameBackRef {
                    gvk: Gvk {
                        group: (*g).into(),
                        version: (*v).into(),
                        kind: (*k).into(),
                    },
                    referrers: from_table(refs),
                })
                .collect(),
            var_reference: from_table(builtin_data::VAR_REFERENCE),
            images: from_table(builtin_data::IMAGES),
            replicas: from_table(builtin_data::REPLICAS),
        }
    }

    pub fn merge(&mut self, o: &TransformerConfig) -> Result<(), String> {
        if !o.custom {
            return Ok(());
        }
        self.custom = true;
        merge_all(&mut self.name_prefix, &o.name_prefix)?;
        merge_all(&mut self.name_suffix, &o.name_suffix)?;
        merge_all(&mut self.namespace, &o.namespace)?;
        merge_all(&mut self.common_annotations, &o.common_annotations)?;
        merge_all(&mut self.common_labels, &o.common_labels)?;
        merge_all(&mut self.labels, &o.labels)?;
        merge_all(&mut self.template_labels, &o.template_labels)?;
        merge_all(&mut self.var_reference, &o.var_reference)?;
        merge_all(&mut self.images, &o.images)?;
        merge_all(&mut self.replicas, &o.replicas)?;
        for nb in &o.name_reference {
            match self.name_reference.iter_mut().find(|x| x.gvk == nb.gvk) {
                Some(x) => merge_all(&mut x.referrers, &nb.referrers)?,
                None => self.name_reference.push(nb.clone()),
            }
        }
        Ok(())
    }

    /// Reads a `configurations:` file.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let mut t = TransformerConfig {
            custom: true,
            ..TransformerConfig::default()
        };
        let Some(m) = v.as_map() else { return Ok(t) };
        let list = |key: &str| -> Result<Vec<FieldSpec>, String> {
            match m.get(key) {
                None | Some(Value::Null | Value::NullText) => Ok(Vec::new()),
                Some(Value::Seq(items)) => items.iter().map(FieldSpec::from_value).collect(),
                Some(_) => Err(format!("'{key}' must be a list of field specs")),
            }
        };
        for key in m.keys() {
            match key.as_str() {
                "namePrefix" | "nameSuffix" | "namespace" | "commonLabels" | "labels" | "templateLabels"
                | "commonAnnotations" | "varReference" | "images" | "replicas" | "nameReference" => {}
                other => return Err(format!("unknown field \"{other}\" in transformer configuration")),
            }
        }
        t.name_prefix = list("namePrefix")?;
        t.name_suffix = list("nameSuffix")?;
        t.namespace = list("namespace")?;
        t.common_labels = list("commonLabels")?;
        t.labels = list("labels")?;
        t.template_labels = list("templateLabels")?;
        t.common_annotations = list("commonAnnotations")?;
        t.var_reference = list("varReference")?;
        t.images = list("images")?;
        t.replicas = list("replicas")?;
        if let Some(Value::Seq(items)) = m.get("nameReference") {
            for it in items {
                let im = it.as_map().ok_or("nameReference entries must be mappings")?;
                let s = |k: &str| im.get(k).and_then(Value::scalar_text).unwrap_or_default();
                let referrers = match im.get("fieldSpecs") {
                    Some(Value::Seq(f)) => f.iter().map(FieldSpec::from_value).collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                t.name_reference.push(NameBackRef {
                    gvk: Gvk {
                        group: s("group"),
                        version: s("version"),
                        kind: s("kind"),
                    },
                    referrers,
                });
            }
        }
        Ok(t)
    }
}

/// What to create at the end of a path when `create` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    None,
    Map,
    Scalar,
}

/// Splits a field path on `/` (kyaml's `PathSplitter`): a leading `/` is
/// dropped and `\/` keeps a slash inside a key.
pub fn split_path(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(p);
            }
            _ => out.push(p.to_string()),
        }
    }
    out
}

/// Applies `set` to every field `fs` names in `obj` (whose gvk is `gvk`),
/// creating missing fields when the spec says so.
pub fn apply<F>(
    obj: &mut Value,
    gvk: &Gvk,
    fs: &FieldSpec,
    create: CreateKind,
    set: &mut F,
) -> Result<(), String>
where
    F: FnMut(&mut Value) -> Result<(), String>,
{
    if !fs.matches(gvk) {
        return Ok(());
    }
    let path = split_path(&fs.path);
    walk(obj, &path, fs.create, create, set)
        .map_err(|e| format!("considering field '{}' of object {}: {e}", fs.path, gvk))
}

fn walk<F>(
    node: &mut Value,
    path: &[String],
    create_ok: bool,
    create: CreateKind,
    set: &mut F,
) -> Result<(), String>
where
    F: FnMut(&mut Value) -> Result<(), String>,
{
    if path.is_empty() {
        return set(node);
    }
    match node {
        Value::Null | Value::NullText => Ok(()),
        Value::Seq(items) => {
            for it in items {
                walk(it, path, create_ok, create, set)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            let (name, is_seq) = match path[0].strip_suffix("[]") {
                Some(n) => (n, true),
                None => (path[0].as_str(), false),
            };
            if name.is_empty() {
                return Err("cannot set or create an empty field name".into());
            }
            let creating = create_ok && create != CreateKind::None && !is_seq;
            let last = path.len() == 1;
            let field = lookup(m, name, creating, last, create);
            let Some(field) = field else { return Ok(()) };
            walk(field, &path[1..], create_ok, create, set)
        }
        _ => Err("expected sequence or mapping node".into()),
    }
}

fn lookup<'a>(
    m: &'a mut Map,
    name: &str,
    creating: bool,
    last: bool,
    create: CreateKind,
) -> Option<&'a mut Value> {
    if !creating {
        return m.get_mut(name);
    }
    let kind = if last { create } else { CreateKind::Map };
    let fresh = || match kind {
        CreateKind::Map => Value::Map(Map::new()),
        _ => Value::Str(String::new()),
    };
    let v = m.entry_or_insert_with(name, fresh);
    // A null field becomes the created kind (kyaml retags the node).
    if v.is_null() && kind == CreateKind::Map {
        *v = Value::Map(Map::new());
    }
    Some(v)
}
