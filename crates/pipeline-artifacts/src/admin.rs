//! The admin identity the controller acts as: from a Secret (`namespace/name`,
//! keys `accesskey`/`secretkey`, as upstream's `mlpipeline-minio-artifact` in
//! `kubeflow`) or from the environment.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::desired::secret_credentials;
use crate::secret::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("--admin-secret must be NAMESPACE/NAME, got {0:?}")]
    BadRef(String),
    #[error("reading admin Secret {secret}: {source}")]
    Read {
        secret: String,
        source: Box<kube::Error>,
    },
    #[error("admin Secret {0} has no non-empty `accesskey` and `secretkey`")]
    Incomplete(String),
    #[error("no admin credentials: give --admin-secret, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    Missing,
}

/// Reads `accesskey`/`secretkey` from Secret `reference` (`namespace/name`).
pub async fn from_secret(client: kube::Client, reference: &str) -> Result<Credentials, AdminError> {
    let (ns, name) = reference
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| AdminError::BadRef(reference.to_owned()))?;
    let secret = Api::<Secret>::namespaced(client, ns)
        .get(name)
        .await
        .map_err(|source| AdminError::Read {
            secret: reference.to_owned(),
            source: Box::new(source),
        })?;
    let value = serde_json::to_value(&secret).map_err(|_| AdminError::Incomplete(reference.to_owned()))?;
    secret_credentials(&value).ok_or_else(|| AdminError::Incomplete(reference.to_owned()))
}

/// Credentials from the values of `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
pub fn from_env_values(access: Option<String>, secret: Option<String>) -> Result<Credentials, AdminError> {
    match (access.filter(|s| !s.is_empty()), secret.filter(|s| !s.is_empty())) {
        (Some(a), Some(s)) => Ok(Credentials::new(a, s)),
        _ => Err(AdminError::Missing),
    }
}
