//! kfmodel's CRDs agree with upstream's on group, names, versions and scope.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

const UPSTREAM: &[(&str, &str)] = &[
    (
        "notebooks.kubeflow.org",
        "applications/jupyter/notebook-controller/upstream/crd/bases/kubeflow.org_notebooks.yaml",
    ),
    (
        "tensorboards.tensorboard.kubeflow.org",
        "applications/tensorboard/tensorboard-controller/upstream/crd/bases/tensorboard.kubeflow.org_tensorboards.yaml",
    ),
    (
        "pvcviewers.kubeflow.org",
        "applications/pvcviewer-controller/upstream/crd/bases/kubeflow.org_pvcviewers.yaml",
    ),
    (
        "profiles.kubeflow.org",
        "applications/profiles/upstream/crd/bases/kubeflow.org_profiles.yaml",
    ),
    (
        "poddefaults.kubeflow.org",
        "applications/admission-webhook/upstream/base/crd.yaml",
    ),
];

/// What must agree: group, scope, names, and per version (served, storage, status subresource).
fn summary(crd: &CustomResourceDefinition) -> serde_json::Value {
    let s = &crd.spec;
    let versions: Vec<_> = s
        .versions
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.name, "served": v.served, "storage": v.storage,
                "status": v.subresources.as_ref().and_then(|r| r.status.as_ref()).is_some(),
            })
        })
        .collect();
    let mut names = serde_json::to_value(&s.names).unwrap();
    // Upstream spells out the defaults the API server would fill in.
    if names.get("singular").is_none() {
        names["singular"] = s.names.kind.to_lowercase().into();
    }
    if names.get("listKind").is_none() {
        names["listKind"] = format!("{}List", s.names.kind).into();
    }
    serde_json::json!({
        "name": crd.metadata.name, "group": s.group, "scope": s.scope,
        "names": names, "versions": versions,
    })
}

#[test]
fn generated_crds_agree_with_upstream() {
    let Some(shared) = testkit::require_shared("kfmodel::generated_crds_agree_with_upstream") else {
        return;
    };
    let root = shared.join("upstream/git/github.com/kubeflow/manifests/v1.11.0");
    let ours = kfmodel::crd::all();
    assert_eq!(ours.len(), UPSTREAM.len());
    for (name, file) in UPSTREAM {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let upstream: CustomResourceDefinition =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mine = ours
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("kfmodel has no CRD {name}"));
        assert_eq!(
            summary(mine),
            summary(&upstream),
            "{name} differs from {}",
            path.display()
        );
    }
}

#[test]
fn profile_is_readable_at_v1beta1() {
    let ar = kfmodel::crd::api_resource_at::<kfmodel::Profile>("v1beta1");
    assert_eq!(ar.api_version, "kubeflow.org/v1beta1");
    assert_eq!(ar.plural, "profiles");
    let served: Vec<_> = kfmodel::crd::profile()
        .spec
        .versions
        .into_iter()
        .filter(|v| v.served)
        .map(|v| v.name)
        .collect();
    assert!(served.contains(&"v1beta1".to_string()));
}
