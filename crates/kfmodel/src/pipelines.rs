//! Names Kubeflow Pipelines expects in every pipelines-enabled namespace.
//! pipeline-artifacts creates these objects and `kfctl doctor` checks them,
//! so both read the names from here.

/// Namespaces labelled `<ENABLED_LABEL>: "true"` get pipeline artifact storage.
pub const ENABLED_LABEL: &str = "pipelines.kubeflow.org/enabled";
/// The Secret with the namespace's S3 credentials (keys `accesskey`, `secretkey`).
pub const ARTIFACT_SECRET: &str = "mlpipeline-minio-artifact";
/// The KFP launcher's settings (default pipeline root).
pub const LAUNCHER_CONFIGMAP: &str = "kfp-launcher";
/// Where ML Metadata's gRPC service is.
pub const METADATA_GRPC_CONFIGMAP: &str = "metadata-grpc-configmap";
/// Argo Workflows' artifact repository for KFP v1-style runs.
pub const ARTIFACT_REPOSITORIES_CONFIGMAP: &str = "artifact-repositories";
/// The three ConfigMaps, in the order the upstream hook writes them.
pub const KFP_CONFIGMAPS: [&str; 3] = [
    LAUNCHER_CONFIGMAP,
    METADATA_GRPC_CONFIGMAP,
    ARTIFACT_REPOSITORIES_CONFIGMAP,
];
