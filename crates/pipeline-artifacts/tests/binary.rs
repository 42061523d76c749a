//! The `pipeline-artifacts run` binary end to end: configuration from the
//! environment, admin credentials from a Secret, endpoints, JSON logs — and no
//! secret in its output, even at debug level.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::cluster::{Env, wait_for};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use pipeline_artifacts::desired::secret_object;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::http_get as get;

kube_sim::on_each_backend!(private: run_binary_provisions_serves_endpoints_and_never_logs_secrets, hook_binary_serves_sync_with_the_upstream_environment);

/// Send `signal` (TERM, INT) and wait for the exit code (None: killed by a signal).
async fn stop_with(child: &mut std::process::Child, signal: &str) -> Option<i32> {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal}");
    let status = wait_for(&format!("exit after SIG{signal}"), 30, || {
        let exited = child.try_wait().expect("try_wait");
        async move { exited }
    })
    .await;
    status.code()
}

async fn run_binary_provisions_serves_endpoints_and_never_logs_secrets(tc: kube_sim::TestCluster) {
    let Some(env) = Env::start(
        "run_binary_provisions_serves_endpoints_and_never_logs_secrets",
        tc,
    )
    .await
    else {
        return;
    };
    // The admin Secret, as upstream's kubeflow/mlpipeline-minio-artifact.
    env.create_namespace("kubeflow", false).await;
    let admin: Secret = serde_json::from_value(secret_object("kubeflow", &env.sw.admin)).unwrap();
    Api::<Secret>::namespaced(env.client.clone(), "kubeflow")
        .create(&PostParams::default(), &admin)
        .await
        .unwrap();

    let port = testsvc::seaweedfs::free_tcp_port().unwrap();
    let log_path = env.sw.data_dir().join("controller.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline-artifacts"))
        .arg("run")
        .env_clear()
        .env("KUBECONFIG", &env.identity.kubeconfig)
        .env("AWS_ENDPOINT_URL", &env.sw.endpoints.iam)
        .env("S3_ENDPOINT_URL", &env.sw.endpoints.s3)
        .env("ADMIN_SECRET", "kubeflow/mlpipeline-minio-artifact")
        .env("KFP_VERSION", "2.5.0")
        .env("ARTIFACT_RETENTION_DAYS", "3")
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start pipeline-artifacts");

    assert_eq!(
        wait_for("/healthz", 30, || async { get(port, "/healthz").await })
            .await
            .0,
        200
    );
    wait_for("/readyz ok", 30, || async {
        get(port, "/readyz").await.filter(|(c, _)| *c == 200)
    })
    .await;
    env.create_namespace("bin-a", true).await;
    let creds = env.converged("bin-a").await;
    // Labelling the namespace of the admin Secret must not replace the admin identity.
    env.patch_namespace(
        "kubeflow",
        serde_json::json!({"metadata": {"labels": {"pipelines.kubeflow.org/enabled": "true"}}}),
    )
    .await;
    // `kubeflow` is protected by default: refused with an Event, never provisioned.
    env.event("kubeflow", "NamespaceRefused").await;
    assert!(env.finalizers("kubeflow").await.is_empty());
    assert_eq!(
        env.secret_creds("kubeflow").await.as_ref(),
        Some(&env.sw.admin),
        "admin Secret untouched"
    );
    assert!(env.keys("kubeflow").await.is_empty());
    let (code, metrics) = get(port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("pipeline_artifacts_keys_created_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pipeline_artifacts_ready 1"), "{metrics}");
    let rules = env.sw.store().lifecycle_rules().await.unwrap();
    assert_eq!(
        rules.first().and_then(|r| r.expiration()).and_then(|e| e.days()),
        Some(3)
    );
    // An Event in the namespace records the issue.
    env.event("bin-a", "CredentialsIssued").await;

    // Kubernetes stops pods with SIGTERM: the controller ends gracefully.
    assert_eq!(
        stop_with(&mut child, "TERM").await,
        Some(0),
        "exit code after SIGTERM"
    );
    let mut text = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.lines().count() > 3, "the controller logged");
    for line in text.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(
        text.contains(&creds.access_key_id),
        "key ids are logged for audit"
    );
    // Never the secrets, in any encoding the Secret object uses.
    use base64::Engine as _;
    for secret in [
        env.sw.admin.secret_access_key.expose(),
        creds.secret_access_key.expose(),
    ] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert!(
            !text.contains(secret) && !text.contains(&b64),
            "a secret key appeared in the controller's log"
        );
    }
}

/// `pipeline-artifacts hook` with the upstream hook's environment, as the
/// migration component runs it: admin from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
async fn hook_binary_serves_sync_with_the_upstream_environment(tc: kube_sim::TestCluster) {
    let test = "hook_binary_serves_sync_with_the_upstream_environment";
    let Some(sw) = common::seaweed(test) else { return };
    let mut request: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/metacontroller-sync-first.json")).unwrap();
    let (tc, _client) = common::hook_cluster_on(tc, &mut request).await;
    let port = testsvc::seaweedfs::free_tcp_port().unwrap();
    let log_path = sw.data_dir().join("hook.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline-artifacts"))
        .arg("hook")
        .env_clear()
        .env("KUBECONFIG", tc.kubeconfig_path())
        .env("AWS_ENDPOINT_URL", &sw.endpoints.iam)
        .env("S3_ENDPOINT_URL", &sw.endpoints.s3)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", &sw.admin.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", sw.admin.secret_access_key.expose())
        .env("KFP_VERSION", "2.5.0")
        .env("ARTIFACT_RETENTION_DAYS", "-1")
        .env("DISABLE_ISTIO_SIDECAR", "false")
        .env("CONTROLLER_PORT", "8080")
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start pipeline-artifacts hook");
    wait_for("/readyz ok", 30, || async {
        get(port, "/readyz").await.filter(|(c, _)| *c == 200)
    })
    .await;
    let body = request.to_string();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (status_line, payload) = raw.split_once("\r\n\r\n").unwrap();
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
    let response: serde_json::Value = serde_json::from_str(payload).unwrap();
    let secret = &response["attachments"][0];
    assert_eq!(secret["kind"], "Secret");
    let creds = pipeline_artifacts::desired::secret_credentials(secret).unwrap();
    assert_eq!(
        sw.store().list_keys("kubeflow-user-example-com").await.unwrap(),
        vec![creds.access_key_id.clone()]
    );
    assert_eq!(response["attachments"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        stop_with(&mut child, "INT").await,
        Some(0),
        "exit code after SIGINT"
    );
    let text = std::fs::read_to_string(&log_path).unwrap();
    for secret in [
        sw.admin.secret_access_key.expose(),
        creds.secret_access_key.expose(),
    ] {
        assert!(!text.contains(secret), "a secret key appeared in the hook's log");
    }
}
