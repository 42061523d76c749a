//! What the upstream hook reads from its environment, plus what kflite makes configurable.

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
        }
    }
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
    fn proxy_flag_is_true_in_any_case_only() {
        assert!(parse_flag("true") && parse_flag("True") && parse_flag("TRUE"));
        assert!(!parse_flag("1") && !parse_flag("yes") && !parse_flag(""));
    }
}
