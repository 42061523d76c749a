//! The API resources kfctl reads, and lenient access to objects as JSON.
//!
//! Objects are read as JSON values rather than typed structs so one odd
//! object (a field of an unexpected type) never stops `doctor` from
//! reporting on all the others.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfmodel::gateway::{HttpRoute, ReferenceGrant};
use kfmodel::{Notebook, PVCViewer, Profile, Tensorboard};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::{Error, Result};

pub fn of<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

pub fn httproute() -> ApiResource {
    of::<HttpRoute>()
}
pub fn referencegrant() -> ApiResource {
    of::<ReferenceGrant>()
}
pub fn notebook() -> ApiResource {
    of::<Notebook>()
}
pub fn tensorboard() -> ApiResource {
    of::<Tensorboard>()
}
pub fn pvcviewer() -> ApiResource {
    of::<PVCViewer>()
}
pub fn profile() -> ApiResource {
    of::<Profile>()
}
pub fn namespace() -> ApiResource {
    of::<Namespace>()
}
pub fn service() -> ApiResource {
    of::<Service>()
}
pub fn pod() -> ApiResource {
    of::<Pod>()
}
pub fn pvc() -> ApiResource {
    of::<PersistentVolumeClaim>()
}
pub fn deployment() -> ApiResource {
    of::<Deployment>()
}
pub fn networkpolicy() -> ApiResource {
    of::<NetworkPolicy>()
}
pub fn crd() -> ApiResource {
    of::<CustomResourceDefinition>()
}
pub fn lease() -> ApiResource {
    of::<k8s_openapi::api::coordination::v1::Lease>()
}
pub fn configmap() -> ApiResource {
    of::<ConfigMap>()
}
pub fn secret() -> ApiResource {
    of::<Secret>()
}
pub fn istio(kind: &kfmodel::istio::IstioKind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group, kind.version, kind.kind),
        kind.plural,
    )
}

fn describe(ar: &ApiResource) -> String {
    format!(
        "{}.{}",
        ar.plural,
        if ar.group.is_empty() { "core" } else { &ar.group }
    )
}

fn is_not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Every object of `ar` in the cluster; `None` when the kind is not served
/// (its CRD is missing).
pub async fn list_all(client: &kube::Client, ar: &ApiResource) -> Result<Option<Vec<Value>>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(to_values(list.items, ar)?)),
        Err(e) if is_not_served(&e) => Ok(None),
        Err(e) => Err(Error::kube(format!("listing {}", describe(ar)), e)),
    }
}

/// Objects of `ar` in `namespace`; `None` when the kind is not served.
pub async fn list_in(client: &kube::Client, ar: &ApiResource, namespace: &str) -> Result<Option<Vec<Value>>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(to_values(list.items, ar)?)),
        Err(e) if is_not_served(&e) => Ok(None),
        Err(e) => Err(Error::kube(format!("listing {} in {namespace}", describe(ar)), e)),
    }
}

/// One object, `None` when it (or its kind) does not exist.
pub async fn get(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    match api.get(name).await {
        Ok(obj) => Ok(Some(to_value(obj, ar)?)),
        Err(e) if is_not_served(&e) => Ok(None),
        Err(e) => Err(Error::kube(
            format!(
                "reading {} {}{name}",
                describe(ar),
                namespace.map(|n| format!("{n}/")).unwrap_or_default()
            ),
            e,
        )),
    }
}

fn to_value(mut obj: DynamicObject, ar: &ApiResource) -> Result<Value> {
    // Lists omit apiVersion/kind on items; put them back so linters see whole objects.
    obj.types.get_or_insert_with(|| kube::core::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    serde_json::to_value(obj).map_err(|e| Error::Encode(e.to_string()))
}

fn to_values(items: Vec<DynamicObject>, ar: &ApiResource) -> Result<Vec<Value>> {
    items.into_iter().map(|o| to_value(o, ar)).collect()
}

/// `metadata.name`.
pub fn name(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// `metadata.namespace`.
pub fn namespace_of(v: &Value) -> &str {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.labels[key]`.
pub fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// `ns/name`, or `name` for cluster-scoped objects.
pub fn qualified(v: &Value) -> String {
    match namespace_of(v) {
        "" => name(v).to_string(),
        ns => format!("{ns}/{}", name(v)),
    }
}

pub fn is_deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Items of a JSON array at `pointer` (empty when absent).
pub fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer).and_then(Value::as_array).into_iter().flatten()
}
