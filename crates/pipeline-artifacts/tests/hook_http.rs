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
    let mut first: Value =
        serde_json::from_str(include_str!("fixtures/metacontroller-sync-first.json")).unwrap();
    let (_tc, client) = common::hook_cluster(&mut first).await;
    let metrics = Arc::new(Metrics::default());
    let state = HookState {
        settings,
        store: sw.store(),
        metrics: metrics.clone(),
        client: client.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

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
    common::store_secret(&client, &secret).await;
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
        testsvc::seaweedfs::free_tcp_port().unwrap()
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
        client: client.clone(),
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

/// The request body is not trusted: a pod that reaches the hook gets no key for a
/// namespace the cluster does not enable, and cannot get another namespace's key deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_checks_every_request_against_the_cluster() {
    let test = "hook_checks_every_request_against_the_cluster";
    let Some(sw) = common::seaweed(test) else { return };
    let mut real: Value =
        serde_json::from_str(include_str!("fixtures/metacontroller-sync-first.json")).unwrap();
    let (_tc, client) = common::hook_cluster(&mut real).await;
    let state = HookState {
        settings: Settings::default(),
        store: sw.store(),
        metrics: Arc::new(Metrics::default()),
        client: client.clone(),
    };
    let ns = real["object"]["metadata"]["name"].as_str().unwrap().to_owned();
    let sync = |req: Value| {
        let state = state.clone();
        async move { pipeline_artifacts::hook::sync(&state, &req).await }
    };
    let forged = |name: &str| {
        let mut r = real.clone();
        r["object"]["metadata"]["name"] = json!(name);
        r["object"]["metadata"].as_object_mut().unwrap().remove("uid");
        r
    };
    let store = sw.store();

    // A namespace that does not exist, and one the cluster does not enable.
    let err = sync(forged("no-such-namespace"))
        .await
        .expect_err("unknown namespace");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(store.list_keys("no-such-namespace").await.unwrap().is_empty());
    let plain: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "not-enabled"}})).unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&Default::default(), &plain)
        .await
        .unwrap();
    let err = sync(forged("not-enabled"))
        .await
        .expect_err("not enabled in the cluster");
    assert!(err.to_string().contains("not enabled"), "{err}");
    assert!(store.list_keys("not-enabled").await.unwrap().is_empty());
    // A protected namespace.
    let err = sync(forged("kubeflow")).await.expect_err("protected");
    assert!(err.to_string().contains("protected"), "{err}");
    assert!(store.list_keys("kubeflow").await.unwrap().is_empty());

    // The real namespace gets its key. A retry before metacontroller stored it
    // (its Secret write failed) replaces it: one key per user.
    let unstored = sync(real.clone()).await.expect("first sync");
    let unstored = secret_credentials(&unstored["attachments"][0]).unwrap();
    let answer = sync(real.clone()).await.expect("retried sync");
    let secret = answer["attachments"][0].clone();
    let creds = secret_credentials(&secret).unwrap();
    assert_ne!(creds.access_key_id, unstored.access_key_id);
    assert_eq!(
        store.list_keys(&ns).await.unwrap(),
        std::slice::from_ref(&creds.access_key_id)
    );
    common::store_secret(&client, &secret).await;

    // A forged request without the Secret: no second key.
    let err = sync(real.clone()).await.expect_err("the cluster has a Secret");
    assert!(err.to_string().contains("disagrees"), "{err}");
    // A made-up Secret attachment: the real key is not deleted as "unstored".
    let mut fake = secret.clone();
    fake["data"]["accesskey"] = json!("Rk9SR0VE");
    let mut attack = real.clone();
    attack["attachments"] = observed(&[fake]);
    let err = sync(attack).await.expect_err("a made-up Secret");
    assert!(err.to_string().contains("disagrees"), "{err}");
    assert_eq!(
        store.list_keys(&ns).await.unwrap(),
        std::slice::from_ref(&creds.access_key_id)
    );

    // The genuine steady request still works.
    let mut steady = real.clone();
    steady["attachments"] = observed(answer["attachments"].as_array().unwrap());
    sync(steady).await.expect("steady sync");
    assert_eq!(store.list_keys(&ns).await.unwrap(), [creds.access_key_id]);
}
