//! `PodDefault` (kubeflow.org/v1alpha1): fields the admission webhook merges
//! into pods whose labels match `selector` (e.g. GPU node selection).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preserve::{Extra, RawObject};

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1alpha1",
    kind = "PodDefault",
    plural = "poddefaults",
    namespaced,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct PodDefaultSpec {
    /// A label selector (`matchLabels`/`matchExpressions`).
    pub selector: RawObject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub env: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub volumes: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub volume_mounts: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub tolerations: Option<Vec<Value>>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
