//! `Notebook` (kubeflow.org/v1): a Jupyter/VS Code/RStudio server run by
//! Kubeflow's notebook-controller as a StatefulSet behind a Service `<name>:80`.

use k8s_openapi::api::core::v1::PodSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preserve::{Extra, RawObject};

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1",
    kind = "Notebook",
    plural = "notebooks",
    namespaced,
    status = "NotebookStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct NotebookSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<NotebookTemplateSpec>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotebookTemplateSpec {
    /// The pod spec, kept verbatim; see [`NotebookSpec::pod_spec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<RawObject>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

impl NotebookSpec {
    /// Typed view of the pod spec (`None` when the Notebook has none).
    pub fn pod_spec(&self) -> Result<Option<PodSpec>, serde_json::Error> {
        self.template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(RawObject::to_typed)
            .transpose()
    }

    /// A spec whose pod template is `pod_spec`.
    pub fn from_pod_spec(pod_spec: &PodSpec) -> Result<Self, serde_json::Error> {
        Ok(Self {
            template: Some(NotebookTemplateSpec {
                spec: Some(RawObject::from_typed(pod_spec)?),
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotebookStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub conditions: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::preserve::RawObject>")]
    pub container_state: Option<Value>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
