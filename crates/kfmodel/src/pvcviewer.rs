//! `PVCViewer` (kubeflow.org/v1alpha1): a file browser on a PVC, run by
//! pvcviewer-controller behind a Service `pvcviewer-<name>:80`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preserve::{Extra, RawObject};

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1alpha1",
    kind = "PVCViewer",
    plural = "pvcviewers",
    namespaced,
    status = "PVCViewerStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct PVCViewerSpec {
    /// Name of the PersistentVolumeClaim to view.
    pub pvc: String,
    /// Schedule the viewer next to a pod that already mounts an RWO claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rwo_scheduling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<PVCViewerNetworking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<RawObject>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PVCViewerNetworking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>")]
    pub target_port: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PVCViewerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub conditions: Option<Vec<Value>>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
