//! `crds:`: OpenAPI definition files whose `x-kubernetes-*` extensions add
//! field specs (kustomize's `accumulator.LoadConfigFromCRDs`).
//!
//! The file maps type names to `{Schema: {properties: …}}`; a type with
//! `kind`, `apiVersion` and `metadata` properties is a kind (the last
//! `.`-separated part of its name). Its properties, followed through
//! `$ref`s to other definitions of the file, add:
//! `x-kubernetes-annotation` → commonAnnotations, `x-kubernetes-label-selector`
//! → commonLabels, `x-kubernetes-identity` → namePrefix, and
//! `x-kubernetes-object-ref-kind`/`-api-version` (with `-name-key`, default
//! `name`) → a name reference to that kind.

use crate::fieldspec::{self, FieldSpec, NameBackRef, TransformerConfig};
use crate::resource::Gvk;
use crate::target::Target;
use crate::yaml::{Map, Value, parse_documents};
use crate::{Error, Result};

/// `$ref` chains deeper than this are taken for a cycle (kustomize recurses
/// without a bound and overflows its stack).
const MAX_DEPTH: usize = 64;

/// Properties visited per file at most: `$ref`s that fan out can make the
/// walk exponential in the depth.
const MAX_VISITS: usize = 100_000;

/// The field specs `t`'s `crds:` files add, or None without `crds:`.
pub(crate) fn config(t: &Target) -> Result<Option<TransformerConfig>> {
    if t.kust.crds.is_empty() {
        return Ok(None);
    }
    let mut cfg = TransformerConfig {
        custom: true,
        ..TransformerConfig::default()
    };
    for path in &t.kust.crds {
        let (file, text) = t
            .root
            .load(path)
            .map_err(|e| e.context(&t.file, format!("crds '{path}'")))?;
        let docs = parse_documents(&text).map_err(|e| Error::yaml(&file, e))?;
        let Some(Value::Map(defs)) = docs.into_iter().next() else {
            return Err(Error::invalid(
                &file,
                format!(
                    "unable to parse open API definition from '{path}': expected a mapping of type names"
                ),
            ));
        };
        for (name, _) in defs.iter() {
            let Some(props) = properties(&defs, name) else {
                continue;
            };
            if !["kind", "apiVersion", "metadata"]
                .iter()
                .all(|k| props.contains_key(k))
            {
                continue;
            }
            let kind = name.rsplit('.').next().unwrap_or(name);
            let gvk = Gvk {
                kind: kind.to_string(),
                ..Gvk::default()
            };
            let mut budget = MAX_VISITS;
            walk(&mut cfg, &gvk, &defs, name, &mut Vec::new(), &mut budget)
                .map_err(|m| Error::invalid(&file, format!("crds '{path}': {m}")))?;
        }
    }
    Ok(Some(cfg))
}

/// `properties` of a definition (`Schema`, matched as Go's JSON decoder does).
fn properties<'a>(defs: &'a Map, name: &str) -> Option<&'a Map> {
    defs.get(name)?
        .as_map()?
        .get_ci("Schema")?
        .get("properties")?
        .as_map()
}

fn spec(gvk: &Gvk, path: &[String]) -> FieldSpec {
    FieldSpec {
        gvk: gvk.clone(),
        path: path.join("/"),
        create: false,
    }
}

fn walk(
    cfg: &mut TransformerConfig,
    gvk: &Gvk,
    defs: &Map,
    name: &str,
    path: &mut Vec<String>,
    budget: &mut usize,
) -> std::result::Result<(), String> {
    let Some(props) = properties(defs, name) else {
        return Ok(());
    };
    if path.len() > MAX_DEPTH {
        return Err(format!(
            "$ref chain through '{name}' is deeper than {MAX_DEPTH} (a cycle?)"
        ));
    }
    for (prop, p) in props.iter() {
        *budget = budget.checked_sub(1).ok_or_else(|| {
            format!("more than {MAX_VISITS} properties reached through $refs from '{name}'")
        })?;
        let ext = |k: &str| p.get(k).and_then(Value::as_str);
        path.push(prop.clone());
        if ext("x-kubernetes-annotation").is_some() {
            fieldspec::merge_one(&mut cfg.common_annotations, spec(gvk, path))?;
        }
        if ext("x-kubernetes-label-selector").is_some() {
            fieldspec::merge_one(&mut cfg.common_labels, spec(gvk, path))?;
        }
        if ext("x-kubernetes-identity").is_some() {
            fieldspec::merge_one(&mut cfg.name_prefix, spec(gvk, path))?;
        }
        if let (Some(version), Some(kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let key = ext("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let mut at = path.clone();
            at.push(key.to_string());
            let target = Gvk {
                kind: kind.to_string(),
                version: version.to_string(),
                ..Gvk::default()
            };
            let referrer = spec(gvk, &at);
            match cfg.name_reference.iter_mut().find(|n| n.gvk == target) {
                Some(n) => fieldspec::merge_one(&mut n.referrers, referrer)?,
                None => cfg.name_reference.push(NameBackRef {
                    gvk: target,
                    referrers: vec![referrer],
                }),
            }
        }
        if let Some(r) = p.get("$ref").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            walk(cfg, gvk, defs, r, path, budget)?;
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of definitions, each with two properties referring to the
    /// next: 2^40 paths. The walk must stop with an error, not run forever.
    #[test]
    fn fanning_refs_are_bounded() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!(
                "T{i}:\n  Schema:\n    properties:\n      a:\n        $ref: T{n}\n      b:\n        $ref: T{n}\n",
                n = i + 1
            ));
        }
        let docs = parse_documents(&text).expect("yaml");
        let defs = docs[0].as_map().expect("map");
        let mut cfg = TransformerConfig::default();
        let mut budget = MAX_VISITS;
        let gvk = Gvk::default();
        let e = walk(&mut cfg, &gvk, defs, "T0", &mut Vec::new(), &mut budget).expect_err("bounded");
        assert!(e.contains("properties reached"), "{e}");
    }
}
