//! The build: kustomize's `KustTarget` accumulation, then the final steps
//! (hash suffixes, name back-references, vars, local-config drop, sort).

use std::path::{Path, PathBuf};

use crate::fieldspec::TransformerConfig;
use crate::kustomization::Kustomization;
use crate::loader::Root;
use crate::resource::{ResId, Resource};
use crate::yaml::{Value, parse_documents};
use crate::{Error, generators, nameref, patch, sort, transformers, vars};

/// Resources plus the configuration and vars gathered with them.
#[derive(Debug, Default)]
pub struct Accumulator {
    pub resources: Vec<Resource>,
    /// Shared until a kustomization brings its own configurations.
    pub config: std::sync::Arc<TransformerConfig>,
    pub vars: Vec<vars::Var>,
    pub warnings: Vec<String>,
}

impl Accumulator {
    pub(crate) fn new() -> Self {
        Accumulator {
            config: TransformerConfig::shared_builtin(),
            ..Default::default()
        }
    }

    /// `resWrangler.Append`: ids must be unique.
    pub fn append(&mut self, r: Resource) -> Result<(), String> {
        let id = r.cur_id();
        if self.resources.iter().any(|x| x.cur_id().equals(&id)) {
            return Err(format!(
                "may not add resource with an already registered id: {}",
                display_id(&id)
            ));
        }
        self.resources.push(r);
        Ok(())
    }

    /// Appends many objects; ids are indexed once so this stays linear.
    pub fn append_all(&mut self, rs: Vec<Resource>) -> Result<(), String> {
        let key = |id: &ResId| {
            (
                id.gvk.clone(),
                id.name.clone(),
                id.effective_namespace().to_string(),
            )
        };
        let mut seen: std::collections::HashSet<_> =
            self.resources.iter().map(|r| key(&r.cur_id())).collect();
        for r in rs {
            let id = r.cur_id();
            if !seen.insert(key(&id)) {
                return Err(format!(
                    "may not add resource with an already registered id: {}",
                    display_id(&id)
                ));
            }
            self.resources.push(r);
        }
        Ok(())
    }

    fn merge(&mut self, other: Accumulator) -> Result<(), String> {
        self.append_all(other.resources)?;
        if other.config.custom {
            std::sync::Arc::make_mut(&mut self.config).merge(&other.config)?;
        }
        vars::merge_set(&mut self.vars, other.vars)?;
        self.warnings.extend(other.warnings);
        Ok(())
    }
}

/// kustomize's textual form of an id: `Kind.version.group/name.namespace`.
pub fn display_id(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "[noNs]"
    } else {
        &id.namespace
    };
    let name = if id.name.is_empty() { "[noName]" } else { &id.name };
    format!("{}/{}.{}", id.gvk, name, ns)
}

/// Reads the objects of a YAML stream as kustomize's resource factory does:
/// empty documents are skipped, `*List` kinds are expanded, kind and name
/// are required.
pub fn resources_from_text(text: &str, file: &Path) -> Result<Vec<Resource>, Error> {
    let docs = parse_documents(text).map_err(|e| Error::yaml(file, e))?;
    let origin = file.display().to_string();
    let mut queue: std::collections::VecDeque<Value> = docs.into();
    let mut out = Vec::new();
    while let Some(doc) = queue.pop_front() {
        match &doc {
            Value::Null | Value::NullText => continue,
            Value::Map(m) if m.is_empty() => continue,
            Value::Map(_) => {}
            _ => {
                return Err(Error::invalid(
                    file,
                    "a document must be a mapping (a Kubernetes object)",
                ));
            }
        }
        let kind = doc.get("kind").and_then(Value::scalar_text).unwrap_or_default();
        if kind.is_empty() {
            return Err(Error::invalid(file, "missing kind in object"));
        }
        if kind.ends_with("List") {
            match doc.get("items") {
                None => {}
                Some(Value::Null | Value::NullText) => continue,
                Some(Value::Seq(items)) => {
                    queue.extend(items.iter().cloned());
                    continue;
                }
                Some(_) => return Err(Error::invalid(file, format!("expected array in {kind}/items"))),
            }
        } else {
            let name = doc
                .get_path(&["metadata", "name"])
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            if name.is_empty() {
                return Err(Error::invalid(
                    file,
                    format!("missing metadata.name in object of kind {kind}"),
                ));
            }
        }
        if has_nil_in_list(&doc) {
            return Err(Error::invalid(file, "empty item in a list of the object"));
        }
        out.push(Resource::new(doc, origin.clone()));
    }
    Ok(out)
}

fn has_nil_in_list(v: &Value) -> bool {
    match v {
        Value::Seq(items) => items.iter().any(|i| i.is_null() || has_nil_in_list(i)),
        Value::Map(m) => m.iter().any(|(_, v)| has_nil_in_list(v)),
        _ => false,
    }
}

/// What one `resources` entry produced.
enum Loaded {
    Objects(PathBuf, Vec<Resource>),
    Base(Box<Accumulator>),
}

/// One kustomization directory being built.
pub struct Target {
    pub root: Root,
    pub file: PathBuf,
    pub kust: Kustomization,
}

impl Target {
    pub fn load(root: Root) -> Result<Target, Error> {
        let (file, text) = root.kustomization_file()?;
        let docs = crate::yaml::parse_documents_last_key_wins(&text).map_err(|e| Error::yaml(&file, e))?;
        let doc = docs.into_iter().next().unwrap_or(Value::Null);
        let kust = Kustomization::from_value(&doc).map_err(|m| Error::invalid(&file, m))?;
        Ok(Target { root, file, kust })
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::invalid(&self.file, msg)
    }

    pub fn accumulate(&self, mut ra: Accumulator) -> Result<Accumulator, Error> {
        // Files and bases load independently; combine them in order.
        let loaded = crate::par::map(&self.kust.resources, |path| self.load_resource(path));
        for part in loaded {
            match part? {
                Loaded::Objects(file, rs) => ra.append_all(rs).map_err(|m| Error::invalid(&file, m))?,
                Loaded::Base(sub) => ra.merge(*sub).map_err(|m| self.err(m))?,
            }
        }
        for c in &self.kust.configurations {
            let (file, text) = self.root.load(c)?;
            let docs = parse_documents(&text).map_err(|e| Error::yaml(&file, e))?;
            for d in &docs {
                let cfg = TransformerConfig::from_value(d).map_err(|m| Error::invalid(&file, m))?;
                std::sync::Arc::make_mut(&mut ra.config)
                    .merge(&cfg)
                    .map_err(|m| Error::invalid(&file, m))?;
            }
        }
        if let Some(cfg) = crate::builtins::crd_config(self)? {
            std::sync::Arc::make_mut(&mut ra.config)
                .merge(&cfg)
                .map_err(|m| self.err(m))?;
        }
        generators::run(self, &mut ra)?;
        crate::builtins::run_generators(self, &mut ra)?;
        for c in &self.kust.components {
            let sub = Target::load(
                self.root
                    .sub(c)
                    .map_err(|e| e.context(&self.file, format!("component '{c}'")))?,
            )?;
            if sub.kust.kind != "Component" {
                return Err(self.err(format!(
                    "expected kind 'Component' for path '{}' but got '{}'",
                    sub.root.dir.display(),
                    sub.kust.kind
                )));
            }
            ra = sub.accumulate(ra)?;
        }
        self.run_transformers(&mut ra, true)?;
        crate::builtins::run_transformers(self, &mut ra)?;
        crate::builtins::run_validators(self, &mut ra)?;
        let new_vars = vars::parse_vars(&self.kust.vars).map_err(|m| self.err(m))?;
        vars::merge_vars(&mut ra, new_vars).map_err(|m| self.err(m))?;
        if !self.kust.vars.is_empty() {
            ra.warnings
                .push("# Warning: 'vars' is deprecated. Please use 'replacements' instead.".into());
        }
        Ok(ra)
    }

    /// Loads `paths` as `resources` entries into a fresh accumulator (after
    /// `ra`'s objects): how kustomize reads plugin configuration paths.
    pub(crate) fn accumulate_paths(
        &self,
        mut ra: Accumulator,
        paths: &[String],
    ) -> Result<Accumulator, Error> {
        for path in paths {
            match self.load_resource(path)? {
                Loaded::Objects(file, rs) => ra.append_all(rs).map_err(|m| Error::invalid(&file, m))?,
                Loaded::Base(sub) => ra.merge(*sub).map_err(|m| self.err(m))?,
            }
        }
        Ok(ra)
    }

    fn load_resource(&self, path: &str) -> Result<Loaded, Error> {
        let as_file = self.root.dir.join(path);
        let remote = crate::loader::Remote::parse(path);
        let is_file = match &remote {
            Some(crate::loader::Remote::Http { .. }) => true,
            Some(_) => false,
            None => as_file.is_file(),
        };
        if is_file {
            let (file, text) = self
                .root
                .load(path)
                .map_err(|e| e.context(&self.file, format!("resource '{path}'")))?;
            let mut rs = resources_from_text(&text, &file)?;
            crate::builtins::mark_remote(&self.root, &file, &mut rs);
            return Ok(Loaded::Objects(file, rs));
        }
        if remote.is_none() && !as_file.exists() {
            return Err(self.err(format!(
                "accumulating resources: '{path}' does not exist (neither a file nor a directory)"
            )));
        }
        let sub_root = self
            .root
            .sub(path)
            .map_err(|e| e.context(&self.file, format!("resource '{path}'")))?;
        let sub = Target::load(sub_root)?;
        if sub.kust.kind == "Component" {
            return Err(self.err(format!(
                "expected kind != 'Component' for path '{}'",
                sub.root.dir.display()
            )));
        }
        Ok(Loaded::Base(Box::new(sub.accumulate(Accumulator::new())?)))
    }

    /// The kustomization's own transformer fields, in kustomize's order;
    /// `record`: note each configured transformer on the objects (for
    /// `buildMetadata: [transformerAnnotations]`).
    pub(crate) fn run_transformers(&self, ra: &mut Accumulator, record: bool) -> Result<(), Error> {
        let k = &self.kust;
        let step = |ra: &mut Accumulator, kind: &'static str, n: usize| {
            if record {
                crate::builtins::record_transformation(ra, &self.file, kind, "", n);
            }
        };
        let labels = if k.labels.is_empty() && k.common_labels.is_empty() {
            0
        } else {
            k.labels.len() + 1
        };
        patch::patches_strategic_merge(self, ra)?;
        step(
            ra,
            "PatchStrategicMergeTransformer",
            usize::from(!k.patches_strategic_merge.is_empty()),
        );
        patch::patches(self, ra)?;
        step(ra, "PatchTransformer", k.patches.len());
        transformers::namespace(self, ra)?;
        step(ra, "NamespaceTransformer", usize::from(!k.namespace.is_empty()));
        transformers::prefix_suffix(self, ra)?;
        step(ra, "PrefixTransformer", usize::from(!k.name_prefix.is_empty()));
        step(ra, "SuffixTransformer", usize::from(!k.name_suffix.is_empty()));
        transformers::labels(self, ra)?;
        step(ra, "LabelTransformer", labels);
        transformers::annotations(self, ra)?;
        step(
            ra,
            "AnnotationsTransformer",
            usize::from(!k.common_annotations.is_empty()),
        );
        patch::patches_json6902(self, ra)?;
        step(ra, "PatchJson6902Transformer", k.patches_json6902.len());
        transformers::replicas(self, ra)?;
        step(ra, "ReplicaCountTransformer", k.replicas.len());
        transformers::images(self, ra)?;
        step(ra, "ImageTagTransformer", k.images.len());
        crate::replacements::run(self, ra)?;
        step(
            ra,
            "ReplacementTransformer",
            usize::from(!k.replacements.is_empty()),
        );
        Ok(())
    }
}

/// Builds the kustomization at `dir` into the list of final objects.
pub fn build(dir: &Path, options: &crate::Options) -> Result<(Vec<Resource>, Vec<String>), Error> {
    let root = Root::for_build(dir, options)?;
    let top = Target::load(root)?;
    let mut ra = top.accumulate(Accumulator::new())?;
    generators::add_hashes(&mut ra).map_err(|m| top.err(m))?;
    nameref::fix_back_references(&mut ra).map_err(|m| top.err(m))?;
    vars::resolve(&mut ra).map_err(|m| top.err(m))?;
    // Objects annotated as local configuration never leave kustomize.
    ra.resources.retain(|r| {
        !r.annotations()
            .iter()
            .any(|(k, v)| k == "config.kubernetes.io/local-config" && v != "false")
    });
    sort::apply(&top, &mut ra).map_err(|m| top.err(m))?;
    crate::builtins::apply_build_metadata(&top.kust.build_metadata, &mut ra.resources);
    for r in &mut ra.resources {
        finish(r);
    }
    crate::builtins::annotate_origins(
        &top.kust.build_metadata,
        &top.root.dir,
        top.root.mirror.as_deref(),
        &mut ra.resources,
    );
    Ok((ra.resources, ra.warnings))
}

/// Annotations kustomize uses for its own bookkeeping and strips on output.
const BUILD_ANNOTATIONS: &[&str] = &[
    "config.kubernetes.io/index",
    "config.kubernetes.io/path",
    "config.k8s.io/id",
    "config.kubernetes.io/origin",
    "alpha.config.kubernetes.io/transformations",
];

/// kustomize's last touch on every object: build annotations come off and
/// the annotation map is rewritten (values as strings, dropped when empty).
fn finish(r: &mut Resource) {
    let kept: Vec<(String, String)> = r
        .annotations()
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("internal.config.kubernetes.io/") && !BUILD_ANNOTATIONS.contains(&k.as_str())
        })
        .collect();
    r.set_string_map("annotations", kept);
}
