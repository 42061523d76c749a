//! CustomResourceDefinitions for the Kubeflow kinds kflite models.
//!
//! Upstream serves some kinds at several versions with one schema (a trivial
//! conversion). `kube`'s derive makes one version per type, so the others are
//! added here as served, non-storage copies.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::{ApiResource, GroupVersionKind};
use kube::{CustomResourceExt, Resource};

use crate::{Notebook, PVCViewer, PodDefault, Profile, Tensorboard};

/// `crd` with `versions` added as served, non-storage copies of its storage version.
pub fn with_served_versions(
    mut crd: CustomResourceDefinition,
    versions: &[&str],
) -> CustomResourceDefinition {
    let Some(storage) = crd.spec.versions.iter().find(|v| v.storage).cloned() else {
        return crd;
    };
    for name in versions {
        if crd.spec.versions.iter().any(|v| v.name == *name) {
            continue;
        }
        let mut copy = storage.clone();
        copy.name = (*name).to_string();
        copy.storage = false;
        copy.served = true;
        crd.spec.versions.push(copy);
    }
    crd
}

/// Notebook CRD: v1 stored, v1alpha1 and v1beta1 served (as upstream).
pub fn notebook() -> CustomResourceDefinition {
    with_served_versions(Notebook::crd(), &["v1alpha1", "v1beta1"])
}

/// Profile CRD: v1 stored, v1beta1 served (as upstream).
pub fn profile() -> CustomResourceDefinition {
    with_served_versions(Profile::crd(), &["v1beta1"])
}

pub fn tensorboard() -> CustomResourceDefinition {
    Tensorboard::crd()
}

pub fn pvcviewer() -> CustomResourceDefinition {
    PVCViewer::crd()
}

pub fn poddefault() -> CustomResourceDefinition {
    PodDefault::crd()
}

/// Every Kubeflow CRD kflite models.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![notebook(), tensorboard(), pvcviewer(), profile(), poddefault()]
}

/// The API resource of `K` at another served version, e.g. Profiles at
/// `v1beta1`; use it with `kube::Api::<DynamicObject>` and convert with serde.
pub fn api_resource_at<K>(version: &str) -> ApiResource
where
    K: Resource<DynamicType = ()>,
{
    let gvk = GroupVersionKind::gvk(&K::group(&()), version, &K::kind(&()));
    ApiResource::from_gvk_with_plural(&gvk, &K::plural(&()))
}
