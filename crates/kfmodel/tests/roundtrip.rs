//! Every Kubeflow object kflite models, found in the upstream mirror and in
//! the owner's rendered platform, parses into its type and serialises back
//! without losing (or adding) a field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kfmodel::{Notebook, PVCViewer, PodDefault, Profile, Tensorboard};
use serde_json::Value;

const KINDS: &[&str] = &["Notebook", "Tensorboard", "PVCViewer", "Profile", "PodDefault"];

/// Files the issue names: `samples/` directories and `tests/` of
/// kubeflow/manifests, and the Profile of `common/user-namespace`. Helm chart
/// templates (`experimental/helm/**/templates`) are Go templates, not objects.
fn candidate_files(manifests: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![manifests.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(manifests)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let yaml = rel.ends_with(".yaml") || rel.ends_with(".yml");
            let wanted = rel.split('/').any(|c| c == "samples")
                || rel.starts_with("tests/")
                || rel.starts_with("common/user-namespace/");
            if yaml && wanted && !rel.contains("/templates/") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// YAML documents of `path` as JSON values (empty documents dropped).
fn documents(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// Kubernetes treats a null field as absent; so does kflite.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn roundtrip<K>(original: &Value) -> Result<Value, String>
where
    K: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: K = serde_json::from_value(original.clone()).map_err(|e| format!("does not parse: {e}"))?;
    let mut back = serde_json::to_value(&typed).map_err(|e| format!("does not serialise: {e}"))?;
    // The typed value always writes its storage version; a v1beta1 object
    // read through it keeps its shape, so compare under its own apiVersion.
    back["apiVersion"] = original["apiVersion"].clone();
    Ok(back)
}

fn served_versions(kind: &str) -> Vec<String> {
    let crd = match kind {
        "Notebook" => kfmodel::crd::notebook(),
        "Tensorboard" => kfmodel::crd::tensorboard(),
        "PVCViewer" => kfmodel::crd::pvcviewer(),
        "Profile" => kfmodel::crd::profile(),
        _ => kfmodel::crd::poddefault(),
    };
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| format!("{}/{}", crd.spec.group, v.name))
        .collect()
}

fn check(source: &str, doc: &Value, counts: &mut BTreeMap<&'static str, usize>, failures: &mut Vec<String>) {
    let Some(kind) = doc.get("kind").and_then(Value::as_str) else {
        return;
    };
    let Some(kind) = KINDS.iter().copied().find(|k| *k == kind) else {
        return;
    };
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if !served_versions(kind).iter().any(|v| v == api_version) {
        return; // same kind name in another group
    }
    *counts.entry(kind).or_default() += 1;
    let original = without_nulls(doc);
    let result = match kind {
        "Notebook" => roundtrip::<Notebook>(&original),
        "Tensorboard" => roundtrip::<Tensorboard>(&original),
        "PVCViewer" => roundtrip::<PVCViewer>(&original),
        "Profile" => roundtrip::<Profile>(&original),
        _ => roundtrip::<PodDefault>(&original),
    };
    let name = original
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match result {
        Ok(back) if back == original => {}
        Ok(back) => failures.push(format!(
            "{source}: {kind} {name} changed in a round trip:\n  before: {original}\n  after:  {back}"
        )),
        Err(e) => failures.push(format!("{source}: {kind} {name} {e}")),
    }
}

#[test]
fn upstream_and_homelab_objects_survive_a_round_trip() {
    let Some(shared) = testkit::require_shared("kfmodel::upstream_and_homelab_objects_survive_a_round_trip")
    else {
        return;
    };
    let manifests = shared.join("upstream/git/github.com/kubeflow/manifests/v1.11.0");
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();

    let files = candidate_files(&manifests);
    assert!(!files.is_empty(), "no sample files under {}", manifests.display());
    for file in &files {
        for doc in documents(file) {
            check(&file.display().to_string(), &doc, &mut counts, &mut failures);
        }
    }
    let homelab = shared.join("reference/homelab.yaml");
    let homelab_docs = documents(&homelab);
    assert!(
        homelab_docs.len() >= 300,
        "homelab.yaml has {} objects",
        homelab_docs.len()
    );
    for doc in &homelab_docs {
        check("reference/homelab.yaml", doc, &mut counts, &mut failures);
    }

    eprintln!("round-tripped: {counts:?}");
    for kind in KINDS {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "found no {kind} to round-trip"
        );
    }
    assert!(
        failures.is_empty(),
        "{} object(s) lost data:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unknown_fields_survive_at_every_level() {
    let original = serde_json::json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "Notebook",
        "metadata": {"name": "nb", "namespace": "ns"},
        "spec": {
            "futureTopLevel": {"a": 1},
            "template": {
                "metadata": {"labels": {"x": "y"}},
                "spec": {"containers": [{"name": "c", "image": "i", "futureContainerField": true}],
                         "futurePodField": [1, 2]}
            }
        },
        "status": {"readyReplicas": 1, "futureStatus": "s"}
    });
    let back = roundtrip::<Notebook>(&original).unwrap();
    assert_eq!(back, original);
}

#[test]
fn typed_pod_spec_view_reads_the_preserved_spec() {
    let nb: Notebook = serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Notebook",
        "metadata": {"name": "nb", "namespace": "ns"},
        "spec": {"template": {"spec": {
            "runtimeClassName": "nvidia",
            "containers": [{"name": "c", "image": "img",
                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}
    }))
    .unwrap();
    let pod = nb.spec.pod_spec().unwrap().unwrap();
    assert_eq!(pod.runtime_class_name.as_deref(), Some("nvidia"));
    assert_eq!(pod.containers[0].image.as_deref(), Some("img"));
    let rebuilt = kfmodel::NotebookSpec::from_pod_spec(&pod).unwrap();
    assert_eq!(rebuilt.pod_spec().unwrap().unwrap(), pod);
}
