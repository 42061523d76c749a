//! What the upstream hook reads from its environment, plus what kflite makes configurable.

use std::time::Duration;

/// Label that opts a namespace in (the DecoratorController's selector upstream),
/// and the Secret's name; shared with `kfctl doctor` through kfmodel.
pub use kfmodel::pipelines::{ARTIFACT_SECRET as SECRET_NAME, ENABLED_LABEL};
/// Changing this namespace annotation's value rotates the namespace's credentials.
pub const ROTATE_ANNOTATION: &str = "pipelines.kflite.dev/rotate-credentials";
/// Where the Secret remembers which rotation request it answers.
pub const ROTATED_FOR_ANNOTATION: &str = "pipelines.kflite.dev/rotated-for";
/// Namespace annotation carrying the readiness status (as the hook's status field).
pub const STATUS_ANNOTATION: &str = "pipelines.kflite.dev/kubeflow-pipelines-ready";
/// Finalizer that keeps a namespace until its IAM user, keys and policy are gone.
pub const FINALIZER: &str = "pipelines.kflite.dev/artifacts";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "pipeline-artifacts";
/// Secret annotation: JSON map of access key ids replaced by a rotation to the
/// time (RFC 3339) they are deleted. Recorded in the same write as the new key.
pub const RETIRING_ANNOTATION: &str = "pipelines.kflite.dev/retiring-keys";
/// Namespace annotation: why the last reconcile failed and how often in a row
/// (`<count>: <message>`), removed once one succeeds. `kfctl doctor` reads it.
pub const ERROR_ANNOTATION: &str = "pipelines.kflite.dev/last-error";
/// How long a rotated-out key keeps working by default (`ROTATION_GRACE_SECONDS`).
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Settings the desired objects depend on. Defaults are the upstream hook's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Label whose value `"true"` opts a namespace in ([`ENABLED_LABEL`] upstream).
    pub enabled_label: String,
    /// S3 bucket (`S3_BUCKET_NAME`, hard-coded `mlpipeline` upstream).
    pub bucket: String,
    /// `FRONTEND_IMAGE`.
    pub frontend_image: String,
    /// `FRONTEND_TAG`, falling back to `KFP_VERSION` upstream.
    pub frontend_tag: String,
    /// `DISABLE_ISTIO_SIDECAR == "true"`.
    pub disable_istio_sidecar: bool,
    /// `ARTIFACTS_PROXY_ENABLED` (case-insensitive `"true"`).
    pub artifacts_proxy_enabled: bool,
    /// `ARTIFACT_RETENTION_DAYS`; `<= 0` removes the lifecycle rule.
    pub artifact_retention_days: i64,
    /// Endpoint Argo writes logs to (`minio-service.kubeflow:9000` upstream).
    pub argo_s3_endpoint: String,
    /// `METADATA_GRPC_SERVICE_HOST` for the namespace's ConfigMap.
    pub metadata_grpc_host: String,
    /// `METADATA_GRPC_SERVICE_PORT`.
    pub metadata_grpc_port: String,
    /// `ROTATION_GRACE_SECONDS`: how long the old key keeps working after a rotation.
    pub rotation_grace: Duration,
    /// Namespaces never provisioned or cleaned up: `PROTECTED_NAMESPACES`
    /// (comma-separated, default `kubeflow`) plus, added at start, the
    /// controller's own namespace and the admin Secret's ([`Settings::protect`]).
    pub protected_namespaces: Vec<String>,
    /// `ADMIN_USER`: SeaweedFS IAM user of the admin identity; a namespace of
    /// that name is refused (its IAM user would be the admin).
    pub admin_user: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled_label: ENABLED_LABEL.into(),
            bucket: "mlpipeline".into(),
            frontend_image: "ghcr.io/kubeflow/kfp-frontend".into(),
            frontend_tag: "2.5.0".into(),
            disable_istio_sidecar: false,
            artifacts_proxy_enabled: false,
            artifact_retention_days: -1,
            argo_s3_endpoint: "minio-service.kubeflow:9000".into(),
            metadata_grpc_host: "metadata-grpc-service.kubeflow".into(),
            metadata_grpc_port: "8080".into(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            protected_namespaces: vec!["kubeflow".into()],
            admin_user: "kubeflow-admin".into(),
        }
    }
}

impl Settings {
    /// Adds `namespace` to the protected ones (the controller's own, the admin Secret's).
    pub fn protect(&mut self, namespace: &str) {
        if !namespace.is_empty() && !self.is_protected(namespace) {
            self.protected_namespaces.push(namespace.to_owned());
        }
    }

    pub fn is_protected(&self, namespace: &str) -> bool {
        self.protected_namespaces.iter().any(|p| p == namespace)
    }

    /// Why `namespace` must never be provisioned or cleaned up, if it must not.
    pub fn refusal(&self, namespace: &str) -> Option<String> {
        if self.is_protected(namespace) {
            Some(format!(
                "namespace {namespace} is protected (the controller's, the admin Secret's, or in \
                 PROTECTED_NAMESPACES): it is never provisioned or cleaned up"
            ))
        } else if namespace == self.admin_user {
            Some(format!(
                "namespace {namespace} has the name of the SeaweedFS admin IAM user (ADMIN_USER); \
                 it is never provisioned or cleaned up"
            ))
        } else {
            None
        }
    }
}

/// Parses `PROTECTED_NAMESPACES`: comma-separated names, blanks ignored.
pub fn parse_namespace_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `ROTATION_GRACE_SECONDS` (a whole number of seconds) with a clear error.
pub fn parse_grace_seconds(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("ROTATION_GRACE_SECONDS value {raw:?} is not a whole number of seconds"))
}

/// Parses `ARTIFACT_RETENTION_DAYS` as the hook does (a Python `int()`), with a clear error.
pub fn parse_retention_days(raw: &str) -> Result<i64, String> {
    raw.trim()
        .replace('_', "")
        .parse::<i64>()
        .map_err(|_| format!("ARTIFACT_RETENTION_DAYS value {raw:?} is not a valid integer"))
}

/// Parses `ARTIFACTS_PROXY_ENABLED` as the hook does: only `true` (any case) enables it.
pub fn parse_flag(raw: &str) -> bool {
    raw.to_lowercase() == "true"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_days_parse_like_python_int() {
        assert_eq!(parse_retention_days("7"), Ok(7));
        assert_eq!(parse_retention_days(" -1 "), Ok(-1));
        assert_eq!(parse_retention_days("+30"), Ok(30));
        assert_eq!(parse_retention_days("1_000"), Ok(1000));
        let err = parse_retention_days("seven").unwrap_err();
        assert!(
            err.contains("ARTIFACT_RETENTION_DAYS") && err.contains("seven"),
            "{err}"
        );
    }

    #[test]
    fn protected_and_admin_named_namespaces_are_refused() {
        let mut s = Settings {
            protected_namespaces: parse_namespace_list(" kubeflow, ,platform "),
            ..Settings::default()
        };
        s.protect("kflite-system");
        s.protect("kflite-system");
        assert_eq!(s.protected_namespaces, ["kubeflow", "platform", "kflite-system"]);
        for ns in ["kubeflow", "platform", "kflite-system", "kubeflow-admin"] {
            assert!(s.refusal(ns).is_some_and(|m| m.contains(ns)), "{ns}");
        }
        assert_eq!(s.refusal("team-a"), None);
        assert_eq!(parse_grace_seconds("60"), Ok(Duration::from_secs(60)));
        assert!(parse_grace_seconds("1h").unwrap_err().contains("1h"));
    }

    #[test]
    fn proxy_flag_is_true_in_any_case_only() {
        assert!(parse_flag("true") && parse_flag("True") && parse_flag("TRUE"));
        assert!(!parse_flag("1") && !parse_flag("yes") && !parse_flag(""));
    }
}
