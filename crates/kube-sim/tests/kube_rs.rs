//! Acceptance 2: kube-rs watcher and reflector against kube-sim: list,
//! watch, reconnect after a cut stream, relist after 410 Gone; both the
//! list-then-watch and the streaming-list (sendInitialEvents) strategies.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_sim::TestCluster;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"kflite-test": "watch"}}, "data": {"k": name}})).expect("configmap")
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn names(store: &reflector::Store<ConfigMap>) -> Vec<String> {
    let mut v: Vec<String> = store
        .state()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    v.sort();
    v
}

async fn reflector_survives_cuts_and_expiry(tc: &TestCluster, config: watcher::Config) {
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("watch").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let pp = PostParams::default();
    api.create(&pp, &cm("a")).await.expect("create a");
    api.create(&pp, &cm("b")).await.expect("create b");

    let (reader, writer) = reflector::store::<ConfigMap>();
    let inits = Arc::new(AtomicUsize::new(0));
    let seen_inits = inits.clone();
    // Only this test's objects (namespaces also hold kube-root-ca.crt).
    let stream = watcher(api.clone(), config.labels("kflite-test=watch"))
        .default_backoff()
        .inspect(move |e| {
            if matches!(e, Ok(watcher::Event::InitDone)) {
                seen_inits.fetch_add(1, Ordering::SeqCst);
            }
        })
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while let Some(item) = s.next().await {
            if let Err(e) = item {
                eprintln!("watcher error (retried): {e}");
            }
        }
    });

    // List: the initial state arrives.
    until("the initial list", || names(&reader) == ["a", "b"]).await;
    // Watch: changes arrive.
    api.create(&pp, &cm("c")).await.expect("create c");
    api.delete("a", &DeleteParams::default()).await.expect("delete a");
    until("watch events", || names(&reader) == ["b", "c"]).await;
    assert_eq!(inits.load(Ordering::SeqCst), 1);

    if let Some(sim) = tc.sim() {
        // A cut stream: the watcher re-watches from its last resourceVersion, no relist.
        sim.cut_watches();
        tokio::time::sleep(Duration::from_millis(100)).await;
        api.create(&pp, &cm("d")).await.expect("create d");
        until("events after the reconnect", || names(&reader) == ["b", "c", "d"]).await;
        assert_eq!(
            inits.load(Ordering::SeqCst),
            1,
            "a cut watch resumes without a relist"
        );

        // Expired resourceVersions: the re-watch gets 410 Gone and the watcher relists.
        sim.expire_resource_versions();
        api.delete("b", &DeleteParams::default()).await.expect("delete b");
        until("the relist after 410", || inits.load(Ordering::SeqCst) == 2).await;
        until("state after the relist", || names(&reader) == ["c", "d"]).await;
        api.create(&pp, &cm("e")).await.expect("create e");
        until("events after the relist", || names(&reader) == ["c", "d", "e"]).await;
    } else {
        testkit::skip(
            "reflector_survives_cuts_and_expiry",
            "fault injection needs kube-sim; ran list and watch only",
        );
    }
    task.abort();
}

#[tokio::test]
async fn reflector_list_then_watch() {
    let tc = TestCluster::start().expect("start");
    reflector_survives_cuts_and_expiry(&tc, watcher::Config::default()).await;
}

#[tokio::test]
async fn reflector_streaming_list() {
    let tc = TestCluster::start().expect("start");
    reflector_survives_cuts_and_expiry(&tc, watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn bookmarks_arrive_and_timeout_ends_the_watch() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("bm").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let list = api.list(&Default::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("list resourceVersion");
    let wp = kube::api::WatchParams::default().timeout(3);
    let started = std::time::Instant::now();
    let mut stream = std::pin::pin!(api.watch(&wp, &rv).await.expect("watch"));
    let mut bookmarks = 0;
    while let Some(ev) = stream.next().await {
        if let kube::api::WatchEvent::Bookmark(_) = ev.expect("event") {
            bookmarks += 1;
        }
    }
    let took = started.elapsed();
    if tc.sim().is_some() {
        assert!(bookmarks >= 1, "bookmarks every second on kube-sim");
    }
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "timeoutSeconds=3 ended the watch after {took:?}"
    );
}

#[tokio::test]
async fn metadata_watcher_gets_partial_objects() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("meta").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &cm("m1"))
        .await
        .expect("create");
    let meta: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::namespaced(client, &ns);
    let stream = watcher(meta, watcher::Config::default().labels("kflite-test=watch")).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("in time")
        .expect("an item")
        .expect("ok");
    assert_eq!(first.metadata.name.as_deref(), Some("m1"));
    assert_eq!(
        first.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    api.create(&PostParams::default(), &cm("m2"))
        .await
        .expect("create");
    let second = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("in time")
        .expect("an item")
        .expect("ok");
    assert_eq!(second.metadata.name.as_deref(), Some("m2"));
    assert_eq!(
        second.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_reflector_agree() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("load").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = watcher(
        api.clone(),
        watcher::Config::default().labels("kflite-test=watch"),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while s.next().await.is_some() {}
    });
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    api.create(&PostParams::default(), &cm(&format!("w{w}-{i}")))
                        .await
                        .expect("create");
                    if i % 4 == 0 {
                        api.delete(&format!("w{w}-{i}"), &DeleteParams::default())
                            .await
                            .expect("delete");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    // 8 writers x 40 creates, a quarter deleted again.
    until("the reflector to converge", || reader.state().len() == 8 * 30).await;
    let listed = api
        .list(&kube::api::ListParams::default().labels("kflite-test=watch"))
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(listed, 8 * 30);
    task.abort();
}
