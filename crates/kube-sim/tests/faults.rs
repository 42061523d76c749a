//! Acceptance 4: every kind of fault injection, through the handle and
//! through the binary's admin endpoint.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube_sim::{Config, Server};
use std::time::{Duration, Instant};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        serde_json::json!({"metadata": {"name": name, "labels": {"kflite-test": "faults"}}}),
    )
    .expect("configmap")
}

/// Only this test's objects (namespaces also hold kube-root-ca.crt).
fn mine() -> ListParams {
    ListParams::default().labels("kflite-test=faults")
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn failing_the_next_requests_by_verb_and_resource() {
    let sim = Server::start(Config::default()).expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sim.client().expect("client"), "default");
    api.create(&PostParams::default(), &cm("x"))
        .await
        .expect("create");

    sim.fail_next(Some("list"), Some("configmaps"), 500, 2);
    for _ in 0..2 {
        let (code, reason, _) = api_error(api.list(&mine()).await.expect_err("injected"));
        assert_eq!((code, reason.as_str()), (500, "InternalError"));
    }
    // Other verbs were never affected, and the rule is used up.
    api.get("x").await.expect("get is not a list");
    assert_eq!(api.list(&mine()).await.expect("third list").items.len(), 1);

    // 503 comes with Retry-After, and kube-rs retries it by itself.
    sim.fail_next(Some("list"), Some("configmaps"), 503, 1);
    assert_eq!(
        api.list(&mine()).await.expect("retried past one 503").items.len(),
        1
    );

    sim.fail_next(Some("create"), None, 409, 1);
    let (code, reason, _) = api_error(
        api.create(&PostParams::default(), &cm("y"))
            .await
            .expect_err("injected"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    sim.fail_next(None, Some("configmaps"), 403, 1);
    let (code, reason, _) = api_error(api.get("x").await.expect_err("injected"));
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    api.create(&PostParams::default(), &cm("y"))
        .await
        .expect("create after the faults");
}

#[tokio::test]
async fn latency_delays_matching_requests_only() {
    let sim = Server::start(Config::default()).expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sim.client().expect("client"), "default");
    api.create(&PostParams::default(), &cm("x"))
        .await
        .expect("create");
    sim.add_latency(Some("get"), Some("configmaps"), Duration::from_millis(400));
    let t = Instant::now();
    api.get("x").await.expect("get");
    let slow = t.elapsed();
    let t = Instant::now();
    api.list(&mine()).await.expect("list");
    let fast = t.elapsed();
    assert!(slow >= Duration::from_millis(400), "get took {slow:?}");
    assert!(fast < Duration::from_millis(300), "list took {fast:?}");
    sim.clear_faults();
    let t = Instant::now();
    api.get("x").await.expect("get");
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn cutting_watches_ends_open_streams() {
    let sim = Server::start(Config::default()).expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sim.client().expect("client"), "default");
    let rv = api
        .list(&mine())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = std::pin::pin!(
        api.watch(&WatchParams::default().timeout(60), &rv)
            .await
            .expect("watch")
    );
    api.create(&PostParams::default(), &cm("x"))
        .await
        .expect("create");
    match stream.next().await {
        Some(Ok(WatchEvent::Added(c))) => assert_eq!(c.metadata.name.as_deref(), Some("x")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    assert_eq!(sim.open_watches(), 1);
    assert_eq!(sim.request_count(Some("watch"), Some("configmaps")), 1);
    assert_eq!(sim.request_count(Some("create"), None), 1);
    let t = Instant::now();
    sim.cut_watches();
    let mut ended = false;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        match next {
            None => {
                ended = true;
                break;
            }
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            Some(other) => panic!("unexpected event after the cut: {other:?}"),
        }
    }
    assert!(ended, "the stream ended after the cut");
    assert!(t.elapsed() < Duration::from_secs(2));
    for _ in 0..100 {
        if sim.open_watches() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.open_watches(), 0);
}

#[tokio::test]
async fn expired_resource_versions_answer_410() {
    let sim = Server::start(Config::default()).expect("start");
    let api: Api<ConfigMap> = Api::namespaced(sim.client().expect("client"), "default");
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n)).await.expect("create");
    }
    let first = api.list(&mine().limit(1)).await.expect("first page");
    let old_rv = first.metadata.resource_version.clone().expect("rv");
    let token = first.metadata.continue_.clone().expect("continue token");
    sim.expire_resource_versions();

    // A watch from before the expiry: 200 with one ERROR event carrying 410 Expired, as the API server's watch cache does.
    let mut stream = std::pin::pin!(api.watch(&WatchParams::default(), &old_rv).await.expect("watch"));
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with("too old resource version"), "{}", e.message);
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A continue token from before the expiry.
    let (code, reason, _) = api_error(
        api.list(&mine().limit(1).continue_token(&token))
            .await
            .expect_err("expired token"),
    );
    assert_eq!((code, reason.as_str()), (410, "Expired"));
    // A fresh list and a watch from its version work.
    let fresh = api.list(&mine()).await.expect("relist");
    assert_eq!(fresh.items.len(), 3);
    let rv = fresh.metadata.resource_version.expect("rv");
    let mut stream = std::pin::pin!(
        api.watch(&WatchParams::default().timeout(5), &rv)
            .await
            .expect("watch")
    );
    api.create(&PostParams::default(), &cm("d"))
        .await
        .expect("create");
    match stream.next().await {
        Some(Ok(WatchEvent::Added(c))) => assert_eq!(c.metadata.name.as_deref(), Some("d")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn the_binary_serves_the_admin_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["serve", "--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kube-sim serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    for _ in 0..200 {
        if kubeconfig.is_file() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig written");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let admin = |path: &str, body: &str| {
        http::Request::post(format!("/kube-sim/faults/{path}"))
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .expect("request")
    };
    let nss: Api<Namespace> = Api::all(client.clone());

    client
        .request_text(admin(
            "fail",
            r#"{"verb":"get","resource":"namespaces","code":500,"count":1}"#,
        ))
        .await
        .expect("fail rule");
    let (code, reason, _) = api_error(nss.get("default").await.expect_err("injected"));
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    nss.get("default").await.expect("only one failure");

    client
        .request_text(admin("latency", r#"{"verb":"get","millis":300}"#))
        .await
        .expect("latency rule");
    let t = Instant::now();
    nss.get("default").await.expect("get");
    assert!(t.elapsed() >= Duration::from_millis(300));
    client
        .request_text(
            http::Request::delete("/kube-sim/faults")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("clear");

    let rv = nss
        .list(&mine())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = std::pin::pin!(
        nss.watch(&WatchParams::default().timeout(30), &rv)
            .await
            .expect("watch")
    );
    client.request_text(admin("cut-watches", "")).await.expect("cut");
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = stream.next().await {
            if !matches!(ev, Ok(WatchEvent::Bookmark(_))) {
                return false;
            }
        }
        true
    })
    .await;
    assert_eq!(end.ok(), Some(true), "the watch ended cleanly after cut-watches");

    client.request_text(admin("expire", "")).await.expect("expire");
    let mut stream = std::pin::pin!(nss.watch(&WatchParams::default(), &rv).await.expect("watch"));
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 after expire, got {other:?}"),
    }
    let bad = client
        .request_text(admin("fail", "{not json"))
        .await
        .expect_err("bad rule");
    assert_eq!(api_error(bad).0, 400);
}
