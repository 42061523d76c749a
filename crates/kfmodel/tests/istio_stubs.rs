//! The stub Istio CRDs cover exactly the Istio kinds Kubeflow v1.11.0's
//! controllers watch or own, as their RBAC in the mirror says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde_json::Value;

/// The controllers the issue names, by their directory in kubeflow/manifests.
const CONTROLLER_DIRS: &[&str] = &[
    "applications/jupyter/notebook-controller",
    "applications/profiles",
    "applications/tensorboard/tensorboard-controller",
    "applications/pvcviewer-controller",
    "applications/katib",
    "applications/pipeline",
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn docs(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    // Some upstream files are templates or patches that are not plain YAML; they hold no RBAC.
    serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|d| Value::deserialize(d).ok())
        .collect()
}

/// (group, resource) pairs on istio.io groups granted to the controllers'
/// Roles/ClusterRoles, plus metacontroller child resources of the KFP hook.
fn istio_resources_in_rbac(manifests: &Path) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for dir in CONTROLLER_DIRS {
        let mut files = Vec::new();
        yaml_files(&manifests.join(dir), &mut files);
        for doc in files.iter().flat_map(|f| docs(f)) {
            match doc.get("kind").and_then(Value::as_str) {
                Some("Role" | "ClusterRole") => {
                    for rule in doc.get("rules").and_then(Value::as_array).into_iter().flatten() {
                        let list = |k: &str| -> Vec<String> {
                            rule.get(k)
                                .and_then(Value::as_array)
                                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                                .unwrap_or_default()
                        };
                        for group in list("apiGroups").iter().filter(|g| g.ends_with("istio.io")) {
                            for resource in list("resources") {
                                found.insert((group.clone(), resource));
                            }
                        }
                    }
                }
                Some("DecoratorController" | "CompositeController") => {
                    let children = doc
                        .pointer("/spec/attachments")
                        .or_else(|| doc.pointer("/spec/childResources"));
                    for child in children.and_then(Value::as_array).into_iter().flatten() {
                        let api = child
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let group = api.split('/').next().unwrap_or_default();
                        if group.ends_with("istio.io") {
                            let resource = child.get("resource").and_then(Value::as_str).unwrap_or_default();
                            found.insert((group.to_string(), resource.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

#[test]
fn stubs_cover_exactly_the_istio_kinds_controllers_need() {
    let Some(shared) =
        testkit::require_shared("kfmodel::stubs_cover_exactly_the_istio_kinds_controllers_need")
    else {
        return;
    };
    let manifests = shared.join("upstream/git/github.com/kubeflow/manifests/v1.11.0");
    let needed = istio_resources_in_rbac(&manifests);
    assert!(
        !needed.is_empty(),
        "found no Istio RBAC under {}",
        manifests.display()
    );
    let stubbed: BTreeSet<(String, String)> = kfmodel::istio::STUB_KINDS
        .iter()
        .map(|k| (k.group.to_string(), k.plural.to_string()))
        .collect();
    assert_eq!(
        stubbed, needed,
        "stub kinds (left) vs Istio resources in controller RBAC (right)"
    );
}

#[test]
fn stub_versions_are_the_ones_upstream_objects_use() {
    let Some(shared) = testkit::require_shared("kfmodel::stub_versions_are_the_ones_upstream_objects_use")
    else {
        return;
    };
    let manifests = shared.join("upstream/git/github.com/kubeflow/manifests/v1.11.0");
    let mut used = BTreeSet::new();
    for dir in CONTROLLER_DIRS {
        let mut files = Vec::new();
        yaml_files(&manifests.join(dir), &mut files);
        for doc in files.iter().flat_map(|f| docs(f)) {
            if let (Some(api), Some(kind)) = (
                doc.get("apiVersion").and_then(Value::as_str),
                doc.get("kind").and_then(Value::as_str),
            ) {
                used.insert(format!("{api}/{kind}"));
            }
            for child in doc
                .pointer("/spec/attachments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(api) = child.get("apiVersion").and_then(Value::as_str) {
                    used.insert(format!(
                        "{api}/{}",
                        child.get("resource").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
        }
    }
    for k in kfmodel::istio::STUB_KINDS {
        let by_kind = format!("{}/{}/{}", k.group, k.version, k.kind);
        let by_resource = format!("{}/{}/{}", k.group, k.version, k.plural);
        assert!(
            used.contains(&by_kind) || used.contains(&by_resource),
            "no upstream object or attachment uses {by_kind}"
        );
    }
}

#[test]
fn stubs_match_the_owners_hand_written_stubs() {
    let Some(shared) = testkit::require_shared("kfmodel::stubs_match_the_owners_hand_written_stubs") else {
        return;
    };
    let path = shared.join("reference/homelab/stub-istio-crds.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let owners: Vec<CustomResourceDefinition> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| CustomResourceDefinition::deserialize(d).unwrap())
        .collect();
    assert_eq!(owners.len(), 3);
    let ours = kfmodel::istio::stub_crds();
    for theirs in &owners {
        let name = theirs.metadata.name.as_deref().unwrap();
        let mine = ours
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no stub {name}"));
        assert_eq!(
            mine.spec, theirs.spec,
            "{name}: spec differs from the owner's stub"
        );
    }
}

#[test]
fn stub_schema_accepts_any_fields() {
    for crd in kfmodel::istio::stub_crds() {
        let versions = &crd.spec.versions;
        assert_eq!(versions.len(), 1);
        assert!(versions[0].served && versions[0].storage);
        let schema = versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap();
        assert_eq!(schema.x_kubernetes_preserve_unknown_fields, Some(true));
        assert_eq!(crd.spec.scope, "Namespaced");
    }
}
