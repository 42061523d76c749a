//! One built-in plugin config, read into the kustomization field that
//! configures the same plugin in kustomize (`api/internal/builtins`).

use std::path::Path;
use std::sync::Arc;

use super::Role;
use crate::fieldspec::{FieldSpec, TransformerConfig};
use crate::kustomization::Kustomization;
use crate::resource::Resource;
use crate::target::{Accumulator, Target};
use crate::transformers::{NamespaceOptions, SubjectMode};
use crate::yaml::{Map, Value};
use crate::{Error, Result};

/// Which built-in field-spec list a config's `fieldSpecs` replace.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Annotations,
    Labels,
    Namespace,
    Prefix,
    Suffix,
    Images,
    Replicas,
}

impl Slot {
    fn list(self, c: &mut TransformerConfig) -> &mut Vec<FieldSpec> {
        match self {
            Slot::Annotations => &mut c.common_annotations,
            Slot::Labels => &mut c.common_labels,
            Slot::Namespace => &mut c.namespace,
            Slot::Prefix => &mut c.name_prefix,
            Slot::Suffix => &mut c.name_suffix,
            Slot::Images => &mut c.images,
            Slot::Replicas => &mut c.replicas,
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    /// Run a kustomization fragment's transformers, with these field specs.
    Fields {
        kust: Map,
        specs: Vec<(Slot, Vec<FieldSpec>)>,
        namespace: Option<NamespaceOptions>,
    },
    /// Run a kustomization fragment's generators (no `generatorOptions`).
    Generate { kust: Map },
    /// Append content hashes to generated names now.
    Hash,
    /// Objects a generator makes from a text (IAMPolicyGenerator).
    Objects { text: String },
    /// ValueAddTransformer (its targets are read when it runs: they may
    /// name a file relative to the kustomization).
    ValueAdd { cfg: Map },
    /// Nothing to do (kustomize returns early, e.g. no labels given).
    Nothing,
}

/// A configured built-in plugin.
#[derive(Debug, Clone)]
pub(crate) struct Plugin {
    kind: String,
    /// The config's `metadata.name`.
    name: String,
    action: Action,
}

const GENERATORS: &[&str] = &[
    "ConfigMapGenerator",
    "SecretGenerator",
    "HelmChartInflationGenerator",
    "IAMPolicyGenerator",
];

fn present<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn field_specs(m: &Map) -> std::result::Result<Vec<FieldSpec>, String> {
    match present(m, "fieldSpecs") {
        None => Ok(Vec::new()),
        Some(Value::Seq(items)) => items
            .iter()
            .map(FieldSpec::from_value)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("fieldSpecs: {e}")),
        Some(_) => Err("fieldSpecs must be a list".into()),
    }
}

/// A string field; other scalars become their text, as sigs.k8s.io/yaml does.
fn text(m: &Map, key: &str) -> std::result::Result<String, String> {
    match present(m, key) {
        None => Ok(String::new()),
        Some(Value::Map(_) | Value::Seq(_)) => Err(format!("'{key}' must be a string")),
        Some(v) => Ok(v.scalar_text().unwrap_or_default()),
    }
}

fn one(key: &str, v: Value) -> Map {
    let mut k = Map::new();
    k.insert(key, v);
    k
}

/// A copy of `m` with only `keys` (those present).
fn pick(m: &Map, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = present(m, k) {
            out.insert(*k, v.clone());
        }
    }
    Value::Map(out)
}

fn fields(kust: Map, specs: Vec<(Slot, Vec<FieldSpec>)>) -> Action {
    Action::Fields {
        kust,
        specs,
        namespace: None,
    }
}

/// A `map[string]string` option (`labels`, `annotations`); None when empty.
/// kustomize decodes configs with sigs.k8s.io/yaml, which turns scalars
/// into the string a string-typed field expects (`3` → `"3"`).
fn pairs(m: &Map, key: &str) -> std::result::Result<Option<Value>, String> {
    match present(m, key) {
        None => Ok(None),
        Some(Value::Map(pm)) if pm.is_empty() => Ok(None),
        Some(Value::Map(pm)) => {
            let mut out = Map::new();
            for (k, v) in pm.iter() {
                let text = match v {
                    Value::Map(_) | Value::Seq(_) => {
                        return Err(format!("'{key}.{k}' must be a string"));
                    }
                    Value::Null | Value::NullText => String::new(),
                    other => other.scalar_text().unwrap_or_default(),
                };
                out.insert(k.clone(), Value::Str(text));
            }
            Ok(Some(Value::Map(out)))
        }
        Some(_) => Err(format!("'{key}' must be a mapping of strings")),
    }
}

/// Prefix/Suffix transformers refuse a config without `fieldSpecs`.
fn affix(m: &Map, key: &str, field: &str, slots: &[Slot]) -> std::result::Result<Action, String> {
    if present(m, "fieldSpecs").is_none() {
        return Err("fieldSpecs is not expected to be nil".into());
    }
    let specs = field_specs(m)?;
    let k = one(field, Value::Str(text(m, key)?));
    Ok(fields(k, slots.iter().map(|s| (*s, specs.clone())).collect()))
}

fn generator(kind: &str, cfg: &Map) -> std::result::Result<Action, String> {
    let field = if kind == "SecretGenerator" {
        "secretGenerator"
    } else {
        "configMapGenerator"
    };
    let mut args = cfg.clone();
    // The args' own name and namespace win over metadata's.
    for key in ["name", "namespace"] {
        if text(cfg, key)?.is_empty() {
            let meta = present(cfg, "metadata")
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or(Value::Null);
            args.insert(key, meta);
        }
    }
    for key in ["apiVersion", "kind", "metadata"] {
        args.remove(key);
    }
    Ok(Action::Generate {
        kust: one(field, Value::Seq(vec![Value::Map(args)])),
    })
}

/// IAMPolicyGenerator: a GKE workload-identity ServiceAccount. kustomize
/// builds it as YAML text from the args, so the text is parsed here too.
fn iam_policy(cfg: &Map) -> std::result::Result<Action, String> {
    let cloud = text(cfg, "cloud")?;
    if cloud != "gke" {
        return Err(format!("cloud provider {cloud} not supported yet"));
    }
    let sub = |outer: &str, key: &str| -> std::result::Result<String, String> {
        match present(cfg, outer) {
            None => Ok(String::new()),
            Some(Value::Map(m)) => text(m, key),
            Some(_) => Err(format!("'{outer}' must be a mapping")),
        }
    };
    let mut out = format!(
        "\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    iam.gke.io/gcp-service-account: {}@{}.iam.gserviceaccount.com\n  name: {}\n",
        sub("serviceAccount", "name")?,
        sub("serviceAccount", "projectId")?,
        sub("kubernetesService", "name")?
    );
    let ns = sub("kubernetesService", "namespace")?;
    if !ns.is_empty() {
        out.push_str(&format!("\n  namespace: {ns}"));
    }
    Ok(Action::Objects { text: out })
}

fn namespace(cfg: &Map) -> std::result::Result<Action, String> {
    let ns = present(cfg, "metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let unset_only = match present(cfg, "unsetOnly") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("'unsetOnly' must be a boolean".into()),
    };
    let subjects = match text(cfg, "setRoleBindingSubjects")?.as_str() {
        "" | "defaultOnly" => SubjectMode::DefaultOnly,
        "allServiceAccounts" => SubjectMode::AllServiceAccounts,
        "none" => SubjectMode::None,
        other => {
            return Err(format!(
                "invalid value \"{other}\" for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
            ));
        }
    };
    if ns.is_empty() {
        return Ok(Action::Nothing);
    }
    Ok(Action::Fields {
        kust: one("namespace", Value::Str(ns)),
        specs: vec![(Slot::Namespace, field_specs(cfg)?)],
        namespace: Some(NamespaceOptions { unset_only, subjects }),
    })
}

fn patch_sm(cfg: &Map) -> std::result::Result<Action, String> {
    let mut list = match present(cfg, "paths") {
        None => Vec::new(),
        Some(Value::Seq(items)) => items.clone(),
        Some(_) => return Err("'paths' must be a list".into()),
    };
    let patches = text(cfg, "patches")?;
    if list.is_empty() && patches.is_empty() {
        return Err("empty file path and empty patch content".into());
    }
    if !patches.is_empty() {
        list.push(Value::Str(patches));
    }
    Ok(fields(one("patchesStrategicMerge", Value::Seq(list)), Vec::new()))
}

fn transformer(kind: &str, cfg: &Map) -> std::result::Result<Action, String> {
    let list = |v: Value| Value::Seq(vec![v]);
    Ok(match kind {
        "AnnotationsTransformer" => match pairs(cfg, "annotations")? {
            None => Action::Nothing,
            Some(a) => fields(
                one("commonAnnotations", a),
                vec![(Slot::Annotations, field_specs(cfg)?)],
            ),
        },
        "LabelTransformer" => match pairs(cfg, "labels")? {
            None => Action::Nothing,
            Some(l) => fields(one("commonLabels", l), vec![(Slot::Labels, field_specs(cfg)?)]),
        },
        "NamespaceTransformer" => namespace(cfg)?,
        "PrefixTransformer" => affix(cfg, "prefix", "namePrefix", &[Slot::Prefix])?,
        "SuffixTransformer" => affix(cfg, "suffix", "nameSuffix", &[Slot::Suffix])?,
        "PrefixSuffixTransformer" => {
            // kustomize configures a prefix and then a suffix transformer
            // from the same config.
            let p = affix(cfg, "prefix", "namePrefix", &[Slot::Prefix])?;
            let s = affix(cfg, "suffix", "nameSuffix", &[Slot::Suffix])?;
            match (p, s) {
                (
                    Action::Fields {
                        kust: mut k,
                        specs: mut sp,
                        ..
                    },
                    Action::Fields {
                        kust: k2, specs: sp2, ..
                    },
                ) => {
                    for (key, v) in k2.iter() {
                        k.insert(key.clone(), v.clone());
                    }
                    sp.extend(sp2);
                    fields(k, sp)
                }
                _ => Action::Nothing,
            }
        }
        "ImageTagTransformer" => match present(cfg, "imageTag") {
            None => Action::Nothing,
            Some(img) => fields(
                one("images", list(img.clone())),
                vec![(Slot::Images, field_specs(cfg)?)],
            ),
        },
        "ReplicaCountTransformer" => {
            let rep = present(cfg, "replica").cloned().unwrap_or(Value::Map(Map::new()));
            fields(
                one("replicas", list(rep)),
                vec![(Slot::Replicas, field_specs(cfg)?)],
            )
        }
        "PatchTransformer" => fields(
            one(
                "patches",
                list(pick(cfg, &["path", "patch", "target", "options"])),
            ),
            Vec::new(),
        ),
        "PatchStrategicMergeTransformer" => patch_sm(cfg)?,
        "PatchJson6902Transformer" => {
            let mut p = pick(cfg, &["target", "path"]);
            if let (Some(op), Value::Map(m)) = (present(cfg, "jsonOp"), &mut p) {
                m.insert("patch", op.clone());
            }
            fields(one("patchesJson6902", list(p)), Vec::new())
        }
        "ReplacementTransformer" => match present(cfg, "replacements") {
            None => Action::Nothing,
            Some(r) => fields(one("replacements", r.clone()), Vec::new()),
        },
        "HashTransformer" => Action::Hash,
        "ValueAddTransformer" => Action::ValueAdd { cfg: cfg.clone() },
        _ => {
            return Err(format!(
                "unable to load builtin {kind}: kustomize has no built-in plugin of that kind"
            ));
        }
    })
}

impl Plugin {
    pub(crate) fn kind(&self) -> &str {
        &self.kind
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Objects appended from `from` on were made by this config.
    fn name_generated(&self, ra: &mut Accumulator, from: usize) {
        let name = self.name.clone();
        for r in ra.resources.iter_mut().skip(from) {
            r.provenance = crate::resource::Provenance::Generated {
                kind: self.kind.clone(),
                name: name.clone(),
                file: r.origin.clone(),
            };
        }
    }

    /// Reads a config object, as kustomize's plugin loader does.
    pub(crate) fn from_config(res: &Resource, role: Role) -> std::result::Result<Plugin, String> {
        let kind = res.kind().to_string();
        let api_version = res.api_version();
        if api_version != "builtin" {
            return Err(format!(
                "{kind} (apiVersion '{api_version}') is not a built-in plugin (apiVersion: builtin): exec, Go and KRM-function plugins are not run (kustomize: external plugins disabled; unable to load external plugin '{kind}')"
            ));
        }
        let cfg = res.map();
        let is_generator = GENERATORS.contains(&kind.as_str());
        let action = match (role, is_generator) {
            (Role::Generator, true) => match kind.as_str() {
                "ConfigMapGenerator" | "SecretGenerator" => generator(&kind, cfg)?,
                "HelmChartInflationGenerator" => {
                    return Err(
                        "HelmChartInflationGenerator needs the helm binary; render the chart and list its output as a resource"
                            .into(),
                    );
                }
                _ => iam_policy(cfg)?,
            },
            (Role::Generator, false) => {
                transformer(&kind, cfg)?;
                return Err(format!("plugin {kind} is not a generator"));
            }
            (_, true) => return Err(format!("plugin {kind} is not a transformer")),
            (_, false) => transformer(&kind, cfg)?,
        };
        Ok(Plugin {
            name: res.name().to_string(),
            kind,
            action,
        })
    }

    /// Runs the plugin on the objects accumulated so far; `t` is the
    /// kustomization listing it (paths in the config are relative to it).
    pub(crate) fn run(&self, t: &Target, file: &Path, ra: &mut Accumulator) -> Result<()> {
        let sub = |kust: &Map| -> Result<Target> {
            let kust = Kustomization::from_value(&Value::Map(kust.clone()))
                .map_err(|m| Error::invalid(file, format!("{}: {m}", self.kind)))?;
            Ok(Target {
                root: t.root.clone(),
                file: file.to_path_buf(),
                kust,
            })
        };
        match &self.action {
            Action::Nothing => Ok(()),
            Action::ValueAdd { cfg } => {
                let wrap = |m: String| Error::invalid(file, format!("{}: {m}", self.kind));
                let targets = super::valueadd::targets(cfg, |path| {
                    let (f, text) = t.root.load(path).map_err(|e| e.to_string())?;
                    let docs =
                        crate::yaml::parse_documents(&text).map_err(|e| format!("{}: {e}", f.display()))?;
                    Ok(docs.into_iter().next().unwrap_or(Value::Null))
                })
                .map_err(wrap)?;
                let value = text(cfg, "value").map_err(wrap)?;
                super::valueadd::apply(value.trim(), &t.root.dir, &targets, &mut ra.resources).map_err(wrap)
            }
            Action::Hash => crate::generators::add_hashes(ra).map_err(|m| Error::invalid(file, m)),
            Action::Objects { text } => {
                let rs = crate::target::resources_from_text(text, file)
                    .map_err(|e| e.context(file, format!("{} output", self.kind)))?;
                let before = ra.resources.len();
                ra.append_all(rs).map_err(|m| Error::invalid(file, m))?;
                self.name_generated(ra, before);
                Ok(())
            }
            Action::Generate { kust } => {
                let before = ra.resources.len();
                crate::generators::run(&sub(kust)?, ra)?;
                self.name_generated(ra, before);
                Ok(())
            }
            Action::Fields {
                kust,
                specs,
                namespace,
            } => {
                let sub = sub(kust)?;
                let saved = (!specs.is_empty()).then(|| {
                    let mut c = (*ra.config).clone();
                    for (slot, list) in specs {
                        *slot.list(&mut c) = list.clone();
                    }
                    std::mem::replace(&mut ra.config, Arc::new(c))
                });
                let out = match namespace {
                    Some(o) => crate::transformers::namespace_with(&sub, ra, *o),
                    None => sub.run_transformers(ra, false),
                };
                if let Some(c) = saved {
                    ra.config = c;
                }
                out
            }
        }
    }
}
