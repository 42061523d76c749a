//! `Profile` (kubeflow.org/v1, cluster-scoped): a user's namespace, owner and
//! quota. Also served at v1beta1 with the same shape; read it with
//! [`crate::crd::api_resource_at`]`::<Profile>("v1beta1")`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preserve::{Extra, RawObject};

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1",
    kind = "Profile",
    plural = "profiles",
    status = "ProfileStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ProfileOwner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub plugins: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_quota_spec: Option<RawObject>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

/// An rbac/v1 Subject: normally `{kind: User, name: <e-mail>}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileOwner {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}

impl ProfileOwner {
    /// The usual owner: a `User` subject of the RBAC API group.
    pub fn user(email: &str) -> Self {
        Self {
            kind: "User".into(),
            name: email.into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::preserve::RawObject>>")]
    pub conditions: Option<Vec<Value>>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extra: Extra,
}
