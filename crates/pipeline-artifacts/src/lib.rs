//! Per-namespace SeaweedFS credentials and Kubeflow Pipelines artifact configuration.
