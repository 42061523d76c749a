//! The kustomization file: its names, its fields, and strict reading.

use crate::yaml::{Map, Value};

/// File names kustomize accepts, in its order of preference.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields kustomize refuses to run in this renderer, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "helmCharts",
        "Helm chart inflation needs the helm binary; render the chart and list its output as a resource",
    ),
    ("helmGlobals", "Helm chart inflation needs the helm binary"),
    (
        "helmChartInflationGenerator",
        "Helm chart inflation needs the helm binary",
    ),
];

const KNOWN: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

#[derive(Debug, Clone, Default)]
pub struct LabelArgs {
    pub pairs: Vec<(String, String)>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub field_specs: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct GeneratorArgs {
    pub name: String,
    pub namespace: String,
    pub behavior: String,
    pub files: Vec<String>,
    pub literals: Vec<String>,
    pub envs: Vec<String>,
    pub kind_type: String,
    pub options: GeneratorOptions,
}

#[derive(Debug, Clone, Default)]
pub struct GeneratorOptions {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    pub kind: String,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub configurations: Vec<String>,
    pub namespace: String,
    pub name_prefix: String,
    pub name_suffix: String,
    pub common_labels: Vec<(String, String)>,
    pub common_annotations: Vec<(String, String)>,
    pub labels: Vec<LabelArgs>,
    pub patches: Vec<Value>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<Value>,
    pub images: Vec<Value>,
    pub replicas: Vec<Value>,
    pub vars: Vec<Value>,
    pub replacements: Vec<Value>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    pub sort_options: Option<Value>,
    pub build_metadata: Vec<String>,
    /// Built-in plugin configurations: inline YAML or paths (see `builtins`).
    pub generators: Vec<String>,
    pub transformers: Vec<String>,
    pub validators: Vec<String>,
    /// OpenAPI definition files adding field specs (see `builtins::crds`).
    pub crds: Vec<String>,
}

fn str_field(m: &Map, key: &str) -> Result<String, String> {
    match m.get(key) {
        None | Some(Value::Null | Value::NullText) => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(v) => Err(format!("field '{key}' must be a string, got {}", kind_name(v))),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::NullText => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::Uint(_) | Value::Float(_) => "a number",
        Value::Str(_) => "a string",
        Value::Seq(_) => "a list",
        Value::Map(_) => "a mapping",
    }
}

fn str_list(m: &Map, key: &str) -> Result<Vec<String>, String> {
    match m.get(key) {
        None | Some(Value::Null | Value::NullText) => Ok(Vec::new()),
        Some(Value::Seq(items)) => items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                other => Err(format!(
                    "entries of '{key}' must be strings, got {}",
                    kind_name(other)
                )),
            })
            .collect(),
        Some(v) => Err(format!("field '{key}' must be a list, got {}", kind_name(v))),
    }
}

fn value_list(m: &Map, key: &str) -> Result<Vec<Value>, String> {
    match m.get(key) {
        None | Some(Value::Null | Value::NullText) => Ok(Vec::new()),
        Some(Value::Seq(items)) => Ok(items.clone()),
        Some(v) => Err(format!("field '{key}' must be a list, got {}", kind_name(v))),
    }
}

/// A `map[string]string` field; kustomize reads it through JSON, so the
/// values must already be strings.
pub fn string_map(m: &Map, key: &str) -> Result<Vec<(String, String)>, String> {
    match m.get(key) {
        None | Some(Value::Null | Value::NullText) => Ok(Vec::new()),
        Some(Value::Map(mm)) => mm
            .iter()
            .map(|(k, v)| match v {
                Value::Str(s) => Ok((k.clone(), s.clone())),
                Value::Null | Value::NullText => Ok((k.clone(), String::new())),
                other => Err(format!(
                    "value of '{key}.{k}' must be a string, got {}",
                    kind_name(other)
                )),
            })
            .collect(),
        Some(v) => Err(format!("field '{key}' must be a mapping, got {}", kind_name(v))),
    }
}

fn bool_opt(m: &Map, key: &str) -> Result<Option<bool>, String> {
    match m.get(key) {
        None | Some(Value::Null | Value::NullText) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("field '{key}' must be a boolean, got {}", kind_name(v))),
    }
}

fn options(v: Option<&Value>) -> Result<GeneratorOptions, String> {
    let Some(Value::Map(m)) = v else {
        return Ok(GeneratorOptions::default());
    };
    Ok(GeneratorOptions {
        labels: string_map(m, "labels")?,
        annotations: string_map(m, "annotations")?,
        disable_name_suffix_hash: bool_opt(m, "disableNameSuffixHash")?,
        immutable: bool_opt(m, "immutable")?,
    })
}

fn generators(m: &Map, key: &str) -> Result<Vec<GeneratorArgs>, String> {
    let mut out = Vec::new();
    for g in value_list(m, key)? {
        let gm = g
            .as_map()
            .ok_or_else(|| format!("entries of '{key}' must be mappings"))?;
        let mut envs = str_list(gm, "envs")?;
        let env = str_field(gm, "env")?;
        if !env.is_empty() {
            envs.push(env);
        }
        out.push(GeneratorArgs {
            name: str_field(gm, "name")?,
            namespace: str_field(gm, "namespace")?,
            behavior: str_field(gm, "behavior")?,
            files: str_list(gm, "files")?,
            literals: str_list(gm, "literals")?,
            envs,
            kind_type: str_field(gm, "type")?,
            options: options(gm.get("options"))?,
        });
    }
    Ok(out)
}

impl Kustomization {
    /// Reads a kustomization; errors name the offending field.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let m = match v {
            Value::Map(m) => m.clone(),
            Value::Null | Value::NullText => Map::new(),
            other => {
                return Err(format!(
                    "a kustomization must be a mapping, got {}",
                    kind_name(other)
                ));
            }
        };
        for key in m.keys() {
            // Go's JSON decoding matches field names case-insensitively.
            if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return Err(format!("invalid Kustomization: unknown field \"{key}\""));
            }
        }
        // Normalise case so lookups below see the canonical spelling.
        let m: Map = m
            .into_iter()
            .map(|(k, v)| {
                let canon = KNOWN
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&k))
                    .map_or(k, |c| (*c).to_string());
                (canon, v)
            })
            .collect();
        for (field, why) in UNSUPPORTED {
            if m.get(field).is_some_and(|v| !is_empty(v)) {
                return Err(format!("field '{field}' is not supported: {why}"));
            }
        }
        check_openapi(&string_map(&m, "openapi")?)?;
        let kind = str_field(&m, "kind")?;
        let api_version = str_field(&m, "apiVersion")?;
        let component = kind == "Component";
        if !kind.is_empty() && kind != "Kustomization" && !component {
            return Err("kind should be Kustomization or Component".into());
        }
        let required = if component {
            "kustomize.config.k8s.io/v1alpha1"
        } else {
            "kustomize.config.k8s.io/v1beta1"
        };
        if !api_version.is_empty() && api_version != required {
            return Err(format!("apiVersion for {kind} should be {required}"));
        }
        let mut labels = Vec::new();
        for l in value_list(&m, "labels")? {
            let lm = l.as_map().ok_or("entries of 'labels' must be mappings")?;
            labels.push(LabelArgs {
                pairs: string_map(lm, "pairs")?,
                include_selectors: bool_opt(lm, "includeSelectors")?.unwrap_or(false),
                include_templates: bool_opt(lm, "includeTemplates")?.unwrap_or(false),
                field_specs: value_list(lm, "fields")?,
            });
        }
        let mut resources = str_list(&m, "resources")?;
        resources.extend(str_list(&m, "bases")?);
        let mut images = value_list(&m, "images")?;
        images.extend(value_list(&m, "imageTags")?);
        let k = Kustomization {
            kind: if kind.is_empty() {
                "Kustomization".into()
            } else {
                kind
            },
            resources,
            components: str_list(&m, "components")?,
            configurations: str_list(&m, "configurations")?,
            namespace: str_field(&m, "namespace")?,
            name_prefix: str_field(&m, "namePrefix")?,
            name_suffix: str_field(&m, "nameSuffix")?,
            common_labels: string_map(&m, "commonLabels")?,
            common_annotations: string_map(&m, "commonAnnotations")?,
            labels,
            patches: value_list(&m, "patches")?,
            patches_strategic_merge: value_list(&m, "patchesStrategicMerge")?
                .into_iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s),
                    other => Err(format!(
                        "entries of 'patchesStrategicMerge' must be strings, got {}",
                        kind_name(&other)
                    )),
                })
                .collect::<Result<_, _>>()?,
            patches_json6902: value_list(&m, "patchesJson6902")?,
            images,
            replicas: value_list(&m, "replicas")?,
            vars: value_list(&m, "vars")?,
            replacements: value_list(&m, "replacements")?,
            config_map_generator: generators(&m, "configMapGenerator")?,
            secret_generator: generators(&m, "secretGenerator")?,
            generator_options: match m.get("generatorOptions") {
                None | Some(Value::Null | Value::NullText) => None,
                v => Some(options(v)?),
            },
            sort_options: m.get("sortOptions").filter(|v| !v.is_null()).cloned(),
            build_metadata: str_list(&m, "buildMetadata")?,
            generators: str_list(&m, "generators")?,
            transformers: str_list(&m, "transformers")?,
            validators: str_list(&m, "validators")?,
            crds: str_list(&m, "crds")?,
        };
        let only_meta = m
            .keys()
            .all(|k| matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
        if only_meta {
            return Err("kustomization.yaml is empty".into());
        }
        Ok(k)
    }
}

/// `openapi:`: kustomize v5.8.1 carries one schema, Kubernetes v1.21.2 (the
/// default, so naming it changes nothing); custom schema files are refused.
fn check_openapi(fields: &[(String, String)]) -> Result<(), String> {
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    match (get("path"), get("version")) {
        (Some(_), Some(_)) => {
            Err("openapi: builtin version and custom schema provided, cannot use both".into())
        }
        (Some(path), None) => Err(format!(
            "openapi: custom schema '{path}' is not supported: manifest-render merges with the built-in Kubernetes v1.21.2 schema only"
        )),
        (None, Some(v)) if !v.is_empty() && v != "v1.21.2" => Err(format!(
            "openapi: version '{v}': the specified OpenAPI version is not built in (only v1.21.2 is)"
        )),
        _ => Ok(()),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::NullText => true,
        Value::Seq(s) => s.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Str(s) => s.is_empty(),
        _ => false,
    }
}
