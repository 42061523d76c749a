//! `Tensorboard` (tensorboard.kubeflow.org/v1alpha1): a TensorBoard server on
//! `logspath`, run by tensorboard-controller behind a Service `<name>:80`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preserve::Extra;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tensorboard.kubeflow.org",
    version = "v1alpha1",
    kind = "Tensorboard",
    plural = "tensorboards",
    namespaced,
    status = "TensorboardStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct TensorboardSpec {
    /// `pvc://<claim>/<path>` or an object-store URL.
    pub logspath: String,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TensorboardStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub conditions: Option<Vec<Value>>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
