//! Leader election against an API server (kube-sim, or the real cluster
//! `KFLITE_E2E_KUBECONFIG` names): one leader at a time, the Lease released
//! on shutdown, and a waiting replica taking over at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kflite_runtime::leader::{LeaderConfig, lead};
use kflite_runtime::shutdown;
use kube::Api;
use kube_sim::TestCluster;

fn config(ns: &str, identity: &str) -> LeaderConfig {
    LeaderConfig::new(ns, "runtime-test", identity)
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt("runtime-test").await.ok()??.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_lease_and_the_waiting_replica_leads_at_once() {
    let cluster = TestCluster::start().expect("test cluster");
    let client = cluster.client().await.expect("client");
    let ns = cluster.namespace("lease").await.expect("namespace");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);

    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let a_leads = Arc::new(AtomicBool::new(false));
    let a = {
        let (client, ns, flag) = (client.clone(), ns.clone(), a_leads.clone());
        tokio::spawn(async move {
            let stop = shutdown::on(async {
                let _ = stopped_a.await;
            });
            let on_change = move |leading: bool| flag.store(leading, Ordering::SeqCst);
            lead(client, config(&ns, "a"), stop, on_change, |until| until).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while holder(&leases).await.as_deref() != Some("a") {
        assert!(Instant::now() < deadline, "a never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a_leads.load(Ordering::SeqCst));

    // b waits while a holds the Lease (15 s duration: no expiry during this test).
    let (b_led_tx, b_led) = tokio::sync::oneshot::channel::<Instant>();
    let b = {
        let (client, ns) = (client.clone(), ns.clone());
        tokio::spawn(async move {
            let work = |_until| async move {
                let _ = b_led_tx.send(Instant::now());
            };
            lead(
                client,
                config(&ns, "b"),
                shutdown::on(std::future::pending()),
                |_| {},
                work,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(holder(&leases).await.as_deref(), Some("a"), "b must wait");

    let stopped = Instant::now();
    let _ = stop_a.send(());
    assert_eq!(a.await.expect("joins").expect("lead"), Some(()));
    assert!(!a_leads.load(Ordering::SeqCst), "on_change(false) after the work");
    let led_at = tokio::time::timeout(Duration::from_secs(10), b_led)
        .await
        .expect("b leads after the release")
        .expect("b's work ran");
    let took = led_at - stopped;
    assert!(
        took < Duration::from_secs(2),
        "b took over {took:?} after a stopped (renew period is 5 s: b must not wait for a timer)"
    );
    // b's work returned at once: b released the Lease too.
    assert_eq!(b.await.expect("joins").expect("lead"), Some(()));
    assert_eq!(holder(&leases).await, None);
}
