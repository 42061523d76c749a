//! Checks the compact tables of `builtin_data` against the files kustomize
//! v5.8.1 carries in its binary (extracted into `../shared`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::builtin_data::{self, Fs};
use crate::yaml::{Value, parse_documents};

fn specs_of(v: &Value) -> Vec<(String, String, String, String, bool)> {
    v.as_seq()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::scalar_text).unwrap_or_default();
                    (
                        s("group"),
                        s("version"),
                        s("kind"),
                        s("path"),
                        e.get("create") == Some(&Value::Bool(true)),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn table(t: &[Fs]) -> Vec<(String, String, String, String, bool)> {
    t.iter()
        .map(|f| (f.0.into(), f.1.into(), f.2.into(), f.3.into(), f.4))
        .collect()
}

#[test]
fn field_specs_equal_kustomize_builtins() {
    let Some(shared) = testkit::require_shared("field_specs_equal_kustomize_builtins") else {
        return;
    };
    let dir = shared.join("kustomize-builtin-fieldspecs");
    let load = |f: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(f)).expect("field spec file");
        parse_documents(&text)
            .expect("parse")
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    };
    let cases: [(&str, Option<&str>, &[Fs]); 9] = [
        ("nameprefix.yaml", Some("namePrefix"), builtin_data::NAME_PREFIX),
        ("namesuffix.yaml", Some("nameSuffix"), builtin_data::NAME_SUFFIX),
        (
            "commonlabels.yaml",
            Some("commonLabels"),
            builtin_data::COMMON_LABELS,
        ),
        ("metadatalabels.yaml", None, builtin_data::METADATA_LABELS),
        (
            "commonannotations.yaml",
            Some("commonAnnotations"),
            builtin_data::COMMON_ANNOTATIONS,
        ),
        ("namespace.yaml", Some("namespace"), builtin_data::NAMESPACE),
        (
            "varreference.yaml",
            Some("varReference"),
            builtin_data::VAR_REFERENCE,
        ),
        ("images.yaml", Some("images"), builtin_data::IMAGES),
        ("replicas.yaml", Some("replicas"), builtin_data::REPLICAS),
    ];
    for (file, key, ours) in cases {
        let doc = load(file);
        let list = match key {
            Some(k) => doc.get(k).cloned().unwrap_or(Value::Null),
            None => doc,
        };
        assert_eq!(specs_of(&list), table(ours), "{file}");
    }
    let nr = load("namereference.yaml");
    let theirs: Vec<_> = nr
        .get("nameReference")
        .and_then(Value::as_seq)
        .expect("nameReference list")
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::scalar_text).unwrap_or_default();
            (
                s("group"),
                s("version"),
                s("kind"),
                specs_of(e.get("fieldSpecs").unwrap_or(&Value::Null)),
            )
        })
        .collect();
    let ours: Vec<_> = builtin_data::NAME_REFERENCE
        .iter()
        .map(|(g, v, k, refs)| (g.to_string(), v.to_string(), k.to_string(), table(refs)))
        .collect();
    assert_eq!(theirs, ours, "namereference.yaml");
    // templateLabels is metadataLabels in kustomize's source.
    assert_eq!(
        load("templatelabels.yaml").get("templateLabels"),
        Some(&Value::Null)
    );
}

fn short(n: &str) -> String {
    for p in ["io.k8s.api.", "io.k8s.apimachinery.pkg.apis.meta.", "io.k8s."] {
        if let Some(s) = n.strip_prefix(p) {
            return s.to_string();
        }
    }
    n.to_string()
}

fn ref_name(fs: &serde_json::Value) -> Option<String> {
    let r = fs.get("$ref").or_else(|| {
        fs.get("items")
            .filter(|_| fs.get("type") == Some(&"array".into()))
            .and_then(|i| i.get("$ref"))
    })?;
    r.as_str().and_then(|s| s.rsplit('/').next()).map(String::from)
}

/// Whether a definition leads (through fields) to a patch strategy.
fn relevant(
    defs: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    memo: &mut BTreeMap<String, bool>,
    stack: &mut Vec<String>,
) -> bool {
    if let Some(r) = memo.get(name) {
        return *r;
    }
    if stack.iter().any(|s| s == name) {
        return false;
    }
    stack.push(name.to_string());
    let mut r = false;
    let sch = defs.get(name).cloned().unwrap_or_default();
    if let Some(props) = sch.get("properties").and_then(|p| p.as_object()) {
        for fs in props.values() {
            if fs.get("x-kubernetes-patch-strategy").is_some() {
                r = true;
            }
            if let Some(rn) = ref_name(fs)
                && relevant(defs, &rn, memo, stack)
            {
                r = true;
            }
        }
    }
    if let Some(ap) = sch
        .get("additionalProperties")
        .and_then(|a| a.get("$ref"))
        .and_then(|r| r.as_str())
        && relevant(defs, ap.rsplit('/').next().unwrap_or_default(), memo, stack)
    {
        r = true;
    }
    stack.pop();
    memo.insert(name.to_string(), r);
    r
}

#[test]
fn schema_tables_equal_kustomize_openapi() {
    let Some(shared) = testkit::require_shared("schema_tables_equal_kustomize_openapi") else {
        return;
    };
    let gz =
        std::fs::read(shared.join("kustomize-openapi/kubernetes-v1.21.2-swagger.json.gz")).expect("swagger");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .expect("gunzip");
    let sw: serde_json::Value = serde_json::from_str(&json).expect("swagger json");
    let defs = sw["definitions"].as_object().expect("definitions");
    let mut memo = BTreeMap::new();
    let rel: BTreeSet<String> = defs
        .keys()
        .filter(|n| relevant(defs, n, &mut memo, &mut Vec::new()))
        .cloned()
        .collect();
    // Expected SCHEMA_DEFS rows.
    let mut want_defs = Vec::new();
    for n in &rel {
        let sch = &defs[n.as_str()];
        let mut rows = Vec::new();
        if let Some(props) = sch.get("properties").and_then(|p| p.as_object()) {
            let mut keys: Vec<&String> = props.keys().collect();
            keys.sort();
            for f in keys {
                let fs = &props[f.as_str()];
                let child = ref_name(fs)
                    .filter(|r| rel.contains(r))
                    .map(|r| short(&r))
                    .unwrap_or_default();
                let st = fs
                    .get("x-kubernetes-patch-strategy")
                    .and_then(|s| s.as_str())
                    .unwrap_or("")
                    .to_string();
                let keys: Vec<String> = match fs.get("x-kubernetes-list-map-keys").and_then(|k| k.as_array())
                {
                    Some(k) if !k.is_empty() => {
                        k.iter().filter_map(|x| x.as_str().map(String::from)).collect()
                    }
                    _ => fs
                        .get("x-kubernetes-patch-merge-key")
                        .and_then(|k| k.as_str())
                        .map(|k| vec![k.to_string()])
                        .unwrap_or_default(),
                };
                if !st.is_empty() || !child.is_empty() {
                    rows.push((f.clone(), child, st, keys.join(",")));
                }
            }
        }
        if let Some(ap) = sch
            .get("additionalProperties")
            .and_then(|a| a.get("$ref"))
            .and_then(|r| r.as_str())
        {
            let an = ap.rsplit('/').next().unwrap_or_default().to_string();
            if rel.contains(&an) {
                rows.push(("*".to_string(), short(&an), String::new(), String::new()));
            }
        }
        want_defs.push((short(n), rows));
    }
    type Row = (String, String, String, String);
    let ours_defs: Vec<(String, Vec<Row>)> = builtin_data::SCHEMA_DEFS
        .iter()
        .map(|(n, rows)| {
            (
                n.to_string(),
                rows.iter()
                    .map(|r| (r.0.into(), r.1.into(), r.2.into(), r.3.into()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(ours_defs, want_defs, "SCHEMA_DEFS");
    // Expected SCHEMA_KINDS rows: scope from the GET paths, as kyaml does.
    let mut kinds: BTreeMap<(String, String, String), (String, u8)> = BTreeMap::new();
    for (n, sch) in defs {
        for g in sch
            .get("x-kubernetes-group-version-kind")
            .and_then(|g| g.as_array())
            .into_iter()
            .flatten()
        {
            let k = (
                g["group"].as_str().unwrap_or("").into(),
                g["version"].as_str().unwrap_or("").into(),
                g["kind"].as_str().unwrap_or("").into(),
            );
            let def = if rel.contains(n) { short(n) } else { String::new() };
            kinds.insert(k, (def, 0));
        }
    }
    for (path, info) in sw["paths"].as_object().expect("paths") {
        let Some(g) = info
            .get("get")
            .and_then(|g| g.get("x-kubernetes-group-version-kind"))
        else {
            continue;
        };
        let k = (
            g["group"].as_str().unwrap_or("").into(),
            g["version"].as_str().unwrap_or("").into(),
            g["kind"].as_str().unwrap_or("").into(),
        );
        let e = kinds.entry(k).or_insert((String::new(), 0));
        if path.contains("namespaces/{namespace}") {
            e.1 = 1;
        } else if e.1 == 0 {
            e.1 = 2;
        }
    }
    let want_kinds: Vec<_> = kinds
        .into_iter()
        .map(|((g, v, k), (d, s))| (g, v, k, d, s))
        .collect();
    let ours_kinds: Vec<_> = builtin_data::SCHEMA_KINDS
        .iter()
        .map(|(g, v, k, d, s)| (g.to_string(), v.to_string(), k.to_string(), d.to_string(), *s))
        .collect();
    assert_eq!(ours_kinds, want_kinds, "SCHEMA_KINDS");
}
