//! The objects the upstream hook (`sync.py`) produces for a namespace, as a pure function.
//!
//! Values are JSON in the hook's key order, so the hook endpoint answers with
//! the same bytes' worth of structure and the controller applies the same objects.

use base64::Engine as _;
use kfmodel::pipelines;
use serde_json::{Value, json};

use crate::pyjson;
use crate::secret::Credentials;
use crate::settings::{SECRET_NAME, Settings};

/// IAM policy name the hook gives each namespace's user.
pub fn policy_name(namespace: &str) -> String {
    format!("KubeflowProject{namespace}")
}

/// The hook's policy document, as the JSON string it sends to `PutUserPolicy`.
pub fn policy_document(bucket: &str, namespace: &str) -> String {
    pyjson::dumps(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:Put*", "s3:Get*", "s3:List*"],
            "Resource": [
                format!("arn:aws:s3:::{bucket}/artifacts/*"),
                format!("arn:aws:s3:::{bucket}/private-artifacts/{namespace}/*"),
                format!("arn:aws:s3:::{bucket}/private/{namespace}/*"),
                format!("arn:aws:s3:::{bucket}/shared/*"),
            ]
        }]
    }))
}

/// ID and prefix of the lifecycle rule the hook writes.
pub const LIFECYCLE_RULE_ID: &str = "private-artifacts";
pub const LIFECYCLE_PREFIX: &str = "private-artifacts";

/// The three ConfigMaps and, with the artifact proxy, its Deployment and Service
/// (the hook's `desired_resources` before the Secret is added).
pub fn config_objects(namespace: &str, s: &Settings) -> Vec<Value> {
    let bucket = &s.bucket;
    let repo = json!({
        "archiveLogs": true,
        "s3": {
            "endpoint": s.argo_s3_endpoint,
            "bucket": bucket,
            "keyFormat": format!(
                "private-artifacts/{namespace}/{{{{workflow.name}}}}/{{{{workflow.creationTimestamp.Y}}}}/{{{{workflow.creationTimestamp.m}}}}/{{{{workflow.creationTimestamp.d}}}}/{{{{pod.name}}}}"
            ),
            "insecure": true,
            "accessKeySecret": {"name": SECRET_NAME, "key": "accesskey"},
            "secretKeySecret": {"name": SECRET_NAME, "key": "secretkey"},
        }
    });
    let mut out = vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": pipelines::LAUNCHER_CONFIGMAP, "namespace": namespace},
            "data": {"defaultPipelineRoot": format!("minio://{bucket}/private-artifacts/{namespace}/v2/artifacts")},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": pipelines::METADATA_GRPC_CONFIGMAP, "namespace": namespace},
            "data": {
                "METADATA_GRPC_SERVICE_HOST": s.metadata_grpc_host,
                "METADATA_GRPC_SERVICE_PORT": s.metadata_grpc_port,
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": pipelines::ARTIFACT_REPOSITORIES_CONFIGMAP,
                "namespace": namespace,
                "annotations": {"workflows.argoproj.io/default-artifact-repository": "default-namespaced"},
            },
            "data": {"default-namespaced": pyjson::dumps(&repo)},
        }),
    ];
    if s.artifacts_proxy_enabled {
        out.extend(proxy_objects(namespace, s));
    }
    out
}

/// Names of the artifact proxy's Deployment and Service.
pub const PROXY_NAME: &str = "ml-pipeline-ui-artifact";

fn proxy_objects(namespace: &str, s: &Settings) -> [Value; 2] {
    let annotations = if s.disable_istio_sidecar {
        json!({"sidecar.istio.io/inject": "false"})
    } else {
        json!({})
    };
    let secret_env = |name: &str, key: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"key": key, "name": SECRET_NAME}}});
    [
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"labels": {"app": PROXY_NAME}, "name": PROXY_NAME, "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app": PROXY_NAME}},
                "template": {
                    "metadata": {"labels": {"app": PROXY_NAME}, "annotations": annotations},
                    "spec": {
                        "containers": [{
                            "name": PROXY_NAME,
                            "image": format!("{}:{}", s.frontend_image, s.frontend_tag),
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 3000}],
                            "env": [
                                secret_env("MINIO_ACCESS_KEY", "accesskey"),
                                secret_env("MINIO_SECRET_KEY", "secretkey"),
                                {"name": "ML_PIPELINE_SERVICE_HOST", "value": "ml-pipeline.kubeflow.svc.cluster.local"},
                                {"name": "ML_PIPELINE_SERVICE_PORT", "value": "8888"},
                                {"name": "FRONTEND_SERVER_NAMESPACE", "value": namespace},
                            ],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "70Mi"},
                                "limits": {"cpu": "100m", "memory": "500Mi"},
                            },
                        }],
                        "serviceAccountName": "default-editor",
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": PROXY_NAME, "namespace": namespace, "labels": {"app": PROXY_NAME}},
            "spec": {
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 3000}],
                "selector": {"app": PROXY_NAME},
            },
        }),
    ]
}

/// The credentials Secret as the hook writes it.
pub fn secret_object(namespace: &str, creds: &Credentials) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": namespace},
        "data": {
            "accesskey": b64(&creds.access_key_id),
            "secretkey": b64(creds.secret_access_key.expose()),
        },
    })
}

/// Credentials stored in a Secret object (`data` base64, or `stringData`), if complete.
pub fn secret_credentials(secret: &Value) -> Option<Credentials> {
    let field = |key: &str| -> Option<String> {
        if let Some(v) = secret.pointer(&format!("/data/{key}")).and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
            return String::from_utf8(bytes).ok();
        }
        secret
            .pointer(&format!("/stringData/{key}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let id = field("accesskey").filter(|s| !s.is_empty())?;
    let key = field("secretkey").filter(|s| !s.is_empty())?;
    Some(Credentials::new(id, key))
}

/// The hook's `kubeflow-pipelines-ready` status from observed attachment counts.
pub fn ready_status(
    s: &Settings,
    secrets: usize,
    configmaps: usize,
    deployments: usize,
    services: usize,
) -> bool {
    let proxies = usize::from(s.artifacts_proxy_enabled);
    secrets == 1 && configmaps == 3 && deployments == proxies && services == proxies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trips_and_rejects_incomplete() {
        let c = Credentials::new("AK", "SK");
        assert_eq!(secret_credentials(&secret_object("ns", &c)), Some(c));
        assert_eq!(secret_credentials(&json!({"data": {"accesskey": "QUs="}})), None);
        assert_eq!(
            secret_credentials(&json!({"data": {"accesskey": "!!", "secretkey": "QUs="}})),
            None
        );
    }
}
