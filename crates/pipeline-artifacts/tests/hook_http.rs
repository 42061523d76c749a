//! `pipeline-artifacts hook` answers a recorded metacontroller request as sync.py does.

mod common;

use std::sync::Arc;

use common::{observed, run_oracle};
use pipeline_artifacts::desired::secret_credentials;
use pipeline_artifacts::hook::{HookState, router};
use pipeline_artifacts::metrics::Metrics;
use pipeline_artifacts::settings::Settings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// POSTs `body` to `http://addr/path` and returns (status, body) — a minimal HTTP/1.1 client.
async fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to hook");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, payload) = text.split_once("\r\n\r\n").expect("http response");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

fn redacted(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(list) = v["attachments"].as_array_mut() {
        for o in list.iter_mut().filter(|o| o["kind"] == "Secret") {
            o["data"] = json!("<redacted>");
        }
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_answers_recorded_metacontroller_requests_like_sync_py() {
    let test = "hook_answers_recorded_metacontroller_requests_like_sync_py";
    let Some(sw) = common::seaweed(test) else { return };
    if common::sync_dir(test).is_none() || common::python(test).is_none() {
        return;
    }
    let settings = Settings {
        artifacts_proxy_enabled: true,
        frontend_image: "frontend-image".into(),
        frontend_tag: "somehash".into(),
        ..Settings::default()
    };
    let py_settings = json!({"frontend_image": "frontend-image", "frontend_tag": "somehash",
        "disable_istio_sidecar": false, "artifacts_proxy_enabled": "true", "artifact_retention_days": "-1"});
    let metrics = Arc::new(Metrics::default());
    let state = HookState {
        settings,
        store: sw.store(),
        metrics: metrics.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let first: Value = serde_json::from_str(include_str!("fixtures/metacontroller-sync-first.json")).unwrap();
    let ns = first["object"]["metadata"]["name"].as_str().unwrap().to_owned();
    let (status, ours) = post(addr, "/sync", &first).await;
    assert_eq!(status, 200, "{}", redacted(&ours));
    let secret = ours["attachments"][0].clone();
    assert_eq!(secret["kind"], "Secret");
    let creds = secret_credentials(&secret).expect("issued credentials");
    assert_eq!(
        sw.store().list_keys(&ns).await.unwrap(),
        vec![creds.access_key_id.clone()]
    );

    // sync.py, served over HTTP, given the same request and (through its fake IAM) the same key.
    let key =
        json!({"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key.expose()});
    let case =
        |request: &Value| json!({"settings": py_settings, "request": request, "key": key, "http": true});
    let Some(oracle) = run_oracle(test, vec![case(&first)]) else {
        return;
    };
    assert!(
        ours == oracle[0]["response"],
        "first sync differs:\nours {}\nsync.py {}",
        redacted(&ours),
        redacted(&oracle[0]["response"])
    );

    // Steady state: metacontroller created what we returned; a retry had leaked a key.
    let leaked = sw.store().create_key(&ns).await.unwrap();
    let mut steady = first.clone();
    steady["attachments"] = observed(ours["attachments"].as_array().unwrap());
    let (status, ours2) = post(addr, "/sync", &steady).await;
    assert_eq!(status, 200, "{}", redacted(&ours2));
    let Some(oracle2) = run_oracle(test, vec![case(&steady)]) else {
        return;
    };
    assert!(
        ours2 == oracle2[0]["response"],
        "steady sync differs:\nours {}\nsync.py {}",
        redacted(&ours2),
        redacted(&oracle2[0]["response"])
    );
    assert_eq!(ours2["status"]["kubeflow-pipelines-ready"], "True");
    let keys = sw.store().list_keys(&ns).await.unwrap();
    assert_eq!(
        keys,
        vec![creds.access_key_id.clone()],
        "the leaked key {} was deleted",
        leaked.access_key_id
    );

    // IAM down in steady state: sync.py would not call IAM here, so the hook still answers.
    let mut broken = sw.endpoints.clone();
    broken.iam = format!(
        "http://127.0.0.1:{}",
        pipeline_artifacts::testsupport::free_tcp_port().unwrap()
    );
    let outage = HookState {
        settings: Settings {
            artifacts_proxy_enabled: true,
            frontend_image: "frontend-image".into(),
            frontend_tag: "somehash".into(),
            ..Settings::default()
        },
        store: pipeline_artifacts::store::SeaweedStore::new(&broken, &sw.admin, &sw.bucket),
        metrics: Arc::new(Metrics::default()),
    };
    let during = pipeline_artifacts::hook::sync(&outage, &steady)
        .await
        .expect("steady sync without IAM");
    assert!(
        during == oracle2[0]["response"],
        "steady sync during an IAM outage differs from sync.py"
    );

    // Not labelled: nothing, like sync.py.
    let mut plain = first.clone();
    plain["object"]["metadata"]["labels"] = json!({});
    let (status, ours3) = post(addr, "/sync", &plain).await;
    assert_eq!(status, 200);
    assert_eq!(ours3, json!({"status": {}, "attachments": []}));
    assert_eq!(metrics.keys_created.get(), 1);
    assert_eq!(metrics.keys_deleted.get(), 1);
    server.abort();
}
