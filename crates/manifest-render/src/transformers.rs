//! The field-spec driven transformers: namespace, name prefix/suffix,
//! labels, annotations, replicas and images.

use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::resource::{Gvk, Resource};
use crate::target::{Accumulator, Target, display_id};
use crate::yaml::Value;
use crate::{Error, Result};

/// Runs `set` on every field `specs` select in `r`.
pub(crate) fn apply_specs<F>(
    r: &mut Resource,
    specs: &[FieldSpec],
    create: CreateKind,
    set: &mut F,
) -> std::result::Result<(), String>
where
    F: FnMut(&mut Value) -> std::result::Result<(), String>,
{
    let gvk = r.gvk();
    for fs in specs {
        fieldspec::apply(&mut r.obj, &gvk, fs, create, set)?;
    }
    Ok(())
}

fn set_scalar(v: &mut Value, s: &str) -> std::result::Result<(), String> {
    match v {
        Value::Map(_) | Value::Seq(_) => Err(format!("wrong node kind: expected scalar, got {}", kind_of(v))),
        _ => {
            *v = Value::Str(s.to_string());
            Ok(())
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Map(_) => "mapping",
        Value::Seq(_) => "sequence",
        _ => "scalar",
    }
}

/// Sets `key: value` in a mapping node.
fn set_entry(v: &mut Value, key: &str, value: &str) -> std::result::Result<(), String> {
    match v {
        Value::Map(m) => {
            m.insert(key, Value::Str(value.to_string()));
            Ok(())
        }
        Value::Null | Value::NullText => {
            let mut m = crate::yaml::Map::new();
            m.insert(key, Value::Str(value.to_string()));
            *v = Value::Map(m);
            Ok(())
        }
        other => Err(format!(
            "wrong node kind: expected mapping, got {}",
            kind_of(other)
        )),
    }
}

/// Which RoleBinding subjects follow the namespace (`setRoleBindingSubjects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectMode {
    #[default]
    DefaultOnly,
    AllServiceAccounts,
    None,
}

/// NamespaceTransformer options beyond the namespace itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamespaceOptions {
    /// Only fill fields that are missing or empty.
    pub unset_only: bool,
    pub subjects: SubjectMode,
}

pub fn namespace(t: &Target, ra: &mut Accumulator) -> Result<()> {
    namespace_with(t, ra, NamespaceOptions::default())
}

/// The namespace transformer with explicit options (a NamespaceTransformer config).
pub fn namespace_with(t: &Target, ra: &mut Accumulator, opts: NamespaceOptions) -> Result<()> {
    let ns = t.kust.namespace.as_str();
    if ns.is_empty() {
        return Ok(());
    }
    let set = |v: &mut Value| {
        if opts.unset_only && !v.scalar_text().is_none_or(|s| s.is_empty()) {
            return Ok(());
        }
        set_scalar(v, ns)
    };
    let cfg = std::sync::Arc::clone(&ra.config);
    let specs = &cfg.namespace;
    // Live count of current ids, to report a conflict the moment it appears.
    let key = |id: &crate::resource::ResId| {
        (
            id.gvk.clone(),
            id.name.clone(),
            id.effective_namespace().to_string(),
        )
    };
    let mut counts: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for r in &ra.resources {
        *counts.entry(key(&r.cur_id())).or_default() += 1;
    }
    for i in 0..ra.resources.len() {
        let before = key(&ra.resources[i].cur_id());
        let r = &mut ra.resources[i];
        if r.is_empty() {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let wrap = |m: String| Error::invalid(&t.file, format!("namespace transformation failed: {m}"));
        if !gvk.is_cluster_scoped() {
            let meta_ns = FieldSpec {
                gvk: Gvk::default(),
                path: "metadata/namespace".into(),
                create: true,
            };
            fieldspec::apply(&mut r.obj, &gvk, &meta_ns, CreateKind::Scalar, &mut { set }).map_err(wrap)?;
        }
        let api_version = r.api_version().to_string();
        let is_binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        let filtered: Vec<FieldSpec> = specs
            .iter()
            .filter(|fs| fs.path != "metadata/namespace")
            .filter(|fs| api_version == "v1" || fs.path != "metadata/name")
            .filter(|fs| {
                !(is_binding
                    && (fs.gvk.kind == "RoleBinding" || fs.gvk.kind == "ClusterRoleBinding")
                    && fs.path == "subjects/namespace")
            })
            .cloned()
            .collect();
        if is_binding && opts.subjects != SubjectMode::None {
            // Subjects named "default" (or every ServiceAccount) follow the namespace.
            let (key, want) = match opts.subjects {
                SubjectMode::AllServiceAccounts => ("kind", "ServiceAccount"),
                _ => ("name", "default"),
            };
            if let Some(Value::Seq(subjects)) = r.obj.get_mut("subjects") {
                for s in subjects.iter_mut() {
                    if let Value::Map(sm) = s
                        && sm.get(key).and_then(Value::as_str) == Some(want)
                    {
                        let slot = sm.entry_or_insert_with("namespace", || Value::Null);
                        set(slot).map_err(wrap)?;
                    }
                }
            }
        }
        apply_specs(r, &filtered, CreateKind::Scalar, &mut { set }).map_err(wrap)?;
        let id = ra.resources[i].cur_id();
        if let Some(c) = counts.get_mut(&before) {
            *c -= 1;
        }
        let n = {
            let c = counts.entry(key(&id)).or_default();
            *c += 1;
            *c
        };
        if n != 1 {
            return Err(Error::invalid(
                &t.file,
                format!(
                    "namespace transformation produces ID conflict: {}",
                    display_id(&id)
                ),
            ));
        }
    }
    Ok(())
}

const PREFIX_SKIP: &[(&str, &str)] = &[
    ("", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("", "Namespace"),
];

pub fn prefix_suffix(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for (affix, is_prefix) in [(&t.kust.name_prefix, true), (&t.kust.name_suffix, false)] {
        if affix.is_empty() {
            continue;
        }
        let cfg = std::sync::Arc::clone(&ra.config);
        let specs = if is_prefix {
            &cfg.name_prefix
        } else {
            &cfg.name_suffix
        };
        for r in &mut ra.resources {
            let id = r.org_id();
            if PREFIX_SKIP
                .iter()
                .any(|(g, k)| (g.is_empty() || *g == id.gvk.group) && *k == id.gvk.kind)
            {
                continue;
            }
            for fs in specs {
                if !id.gvk.is_selected_by(&fs.gvk) {
                    continue;
                }
                if fs.path == "metadata/name" {
                    if is_prefix {
                        r.prefixes.push(affix.clone());
                    } else {
                        r.suffixes.push(affix.clone());
                    }
                    r.store_previous_id();
                }
                let gvk = r.gvk();
                fieldspec::apply(&mut r.obj, &gvk, fs, CreateKind::Scalar, &mut |v| {
                    let cur = v.scalar_text().unwrap_or_default();
                    let new = if is_prefix {
                        format!("{affix}{cur}")
                    } else {
                        format!("{cur}{affix}")
                    };
                    set_scalar(v, &new)
                })
                .map_err(|m| Error::invalid(&t.file, m))?;
            }
        }
    }
    Ok(())
}

fn apply_map_entries(
    ra: &mut Accumulator,
    pairs: &[(String, String)],
    specs: &[FieldSpec],
    file: &std::path::Path,
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut sorted = pairs.to_vec();
    sorted.sort();
    for r in &mut ra.resources {
        for (k, v) in &sorted {
            apply_specs(r, specs, CreateKind::Map, &mut |node| set_entry(node, k, v))
                .map_err(|m| Error::invalid(file, m))?;
        }
    }
    Ok(())
}

pub fn labels(t: &Target, ra: &mut Accumulator) -> Result<()> {
    let k = &t.kust;
    if k.labels.is_empty() && k.common_labels.is_empty() {
        return Ok(());
    }
    for l in &k.labels {
        let mut fss: Vec<FieldSpec> = l
            .field_specs
            .iter()
            .map(FieldSpec::from_value)
            .collect::<std::result::Result<_, _>>()
            .map_err(|m| t_err(t, m))?;
        let merge = |fss: &mut Vec<FieldSpec>, other: &[FieldSpec]| {
            fieldspec::merge_all(fss, other).map_err(|m| t_err(t, format!("failed to merge labels: {m}")))
        };
        merge(&mut fss, &ra.config.labels)?;
        if l.include_selectors {
            merge(&mut fss, &ra.config.common_labels)?;
        } else {
            if l.include_templates {
                merge(&mut fss, &ra.config.template_labels)?;
            }
            fieldspec::merge_one(
                &mut fss,
                FieldSpec {
                    gvk: Gvk::default(),
                    path: "metadata/labels".into(),
                    create: true,
                },
            )
            .map_err(|m| t_err(t, m))?;
        }
        apply_map_entries(ra, &l.pairs, &fss, &t.file)?;
    }
    let cfg = std::sync::Arc::clone(&ra.config);
    let specs = &cfg.common_labels;
    apply_map_entries(ra, &k.common_labels, specs, &t.file)
}

fn t_err(t: &Target, m: impl Into<String>) -> Error {
    Error::invalid(&t.file, m)
}

pub fn annotations(t: &Target, ra: &mut Accumulator) -> Result<()> {
    let cfg = std::sync::Arc::clone(&ra.config);
    let specs = &cfg.common_annotations;
    apply_map_entries(ra, &t.kust.common_annotations, specs, &t.file)
}

pub fn replicas(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for rep in &t.kust.replicas {
        let m = rep
            .as_map()
            .ok_or_else(|| t_err(t, "entries of 'replicas' must be mappings"))?;
        let name = m.get("name").and_then(Value::scalar_text).unwrap_or_default();
        let count = match m.get("count") {
            Some(Value::Int(i)) => *i,
            None | Some(Value::Null | Value::NullText) => 0,
            Some(other) => {
                return Err(t_err(
                    t,
                    format!("replicas '{name}': count must be an integer, got {other:?}"),
                ));
            }
        };
        let cfg = std::sync::Arc::clone(&ra.config);
        let specs = &cfg.replicas;
        let mut found = false;
        for fs in specs {
            for r in &mut ra.resources {
                if !r.any_id(|id| id.name == name && id.gvk.is_selected_by(&fs.gvk)) {
                    continue;
                }
                found = true;
                let gvk = r.gvk();
                fieldspec::apply(&mut r.obj, &gvk, fs, CreateKind::Scalar, &mut |v| {
                    *v = Value::Int(count);
                    Ok(())
                })
                .map_err(|m| t_err(t, m))?;
            }
        }
        if !found {
            let gvks: Vec<String> = specs.iter().map(|f| f.gvk.to_string()).collect();
            return Err(t_err(
                t,
                format!(
                    "resource with name {name} does not match a config with the following GVK [{}]",
                    gvks.join(" ")
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct ImageArgs {
    /// kustomize's pattern: the image name, used as a regular expression.
    pattern: Option<crate::pattern::ImagePattern>,
    new_name: String,
    new_tag: String,
    digest: String,
    tag_suffix: String,
}

/// kustomize compiles the image name into a regular expression as is.
fn image_pattern(name: &str) -> Option<crate::pattern::ImagePattern> {
    crate::pattern::ImagePattern::new(name)
}

#[cfg(test)]
fn image_matches(value: &str, name: &str) -> bool {
    image_pattern(name).is_some_and(|re| re.is_match(value))
}

/// kustomize's `image.Split`: name, tag, digest.
fn split_image(image: &str) -> (String, String, String) {
    let (search, offset) = match image.find('/') {
        Some(i) if i > 0 => (&image[i..], i),
        _ => (image, 0),
    };
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (None, Some(id)) => {
            let id = id + offset;
            (
                image[..id].to_string(),
                String::new(),
                image[id + 1..].to_string(),
            )
        }
        (Some(ic), Some(id)) if id < ic => {
            let id = id + offset;
            (
                image[..id].to_string(),
                String::new(),
                image[id + 1..].to_string(),
            )
        }
        (Some(ic), Some(id)) => {
            let (ic, id) = (ic + offset, id + offset);
            (
                image[..ic].to_string(),
                image[ic + 1..id].to_string(),
                image[id + 1..].to_string(),
            )
        }
        (Some(ic), None) => {
            let ic = ic + offset;
            (
                image[..ic].to_string(),
                image[ic + 1..].to_string(),
                String::new(),
            )
        }
    }
}

fn update_image(v: &mut Value, a: &ImageArgs) -> std::result::Result<(), String> {
    let Some(value) = v.scalar_text() else {
        return Err(format!("wrong node kind: expected scalar, got {}", kind_of(v)));
    };
    if !a.pattern.as_ref().is_some_and(|re| re.is_match(&value)) {
        return Ok(());
    }
    let (mut name, mut tag, mut digest) = split_image(&value);
    if !a.new_name.is_empty() {
        name = a.new_name.clone();
    }
    if !a.new_tag.is_empty() && !a.digest.is_empty() {
        tag = a.new_tag.clone();
        digest = a.digest.clone();
    } else if !a.new_tag.is_empty() {
        tag = a.new_tag.clone();
        digest.clear();
    } else if !a.digest.is_empty() {
        tag.clear();
        digest = a.digest.clone();
    } else if !a.tag_suffix.is_empty() {
        tag.push_str(&a.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    *v = Value::Str(name);
    Ok(())
}

/// The legacy image walk: every `containers`/`initContainers` list anywhere.
fn legacy_images(v: &mut Value, a: &ImageArgs) -> std::result::Result<(), String> {
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                legacy_images(child, a)?;
                if (k == "containers" || k == "initContainers")
                    && let Value::Seq(items) = child
                {
                    for it in items.iter_mut() {
                        if let Some(img) = it.get_mut("image") {
                            update_image(img, a)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Seq(items) => items.iter_mut().try_for_each(|i| legacy_images(i, a)),
        _ => Ok(()),
    }
}

pub fn images(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for img in &t.kust.images {
        let m = img
            .as_map()
            .ok_or_else(|| t_err(t, "entries of 'images' must be mappings"))?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
        let a = ImageArgs {
            pattern: image_pattern(&s("name")),
            new_name: s("newName"),
            new_tag: s("newTag"),
            digest: s("digest"),
            tag_suffix: s("tagSuffix"),
        };
        let cfg = std::sync::Arc::clone(&ra.config);
        let specs = &cfg.images;
        for r in &mut ra.resources {
            if r.kind() == "CustomResourceDefinition" {
                continue;
            }
            legacy_images(&mut r.obj, &a).map_err(|m| t_err(t, m))?;
            apply_specs(r, specs, CreateKind::None, &mut |v| update_image(v, &a)).map_err(|m| t_err(t, m))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split_matches_kustomize() {
        let s = |x: &str| split_image(x);
        assert_eq!(s("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(s("nginx:1.2"), ("nginx".into(), "1.2".into(), "".into()));
        assert_eq!(
            s("reg:5000/nginx:1.2"),
            ("reg:5000/nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            s("nginx@sha256:ab"),
            ("nginx".into(), "".into(), "sha256:ab".into())
        );
        assert_eq!(
            s("nginx:1@sha256:ab"),
            ("nginx".into(), "1".into(), "sha256:ab".into())
        );
        assert!(image_matches("docker.io/kubeflow/x:v1", "docker.io/kubeflow/x"));
        assert!(!image_matches("docker.io/kubeflow/xy:v1", "docker.io/kubeflow/x"));
    }
}
