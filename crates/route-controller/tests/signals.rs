//! The route-controller binary under the signals Kubernetes and a terminal
//! send (issue 17): SIGTERM ends the leader gracefully (exit 0) and releases
//! its Lease, so the standby reconciles within 2 s; SIGINT does the same.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube_sim::TestCluster;

use common::replica::Replica;
use common::{create_notebook, route_names, wait_for};

const LEASE: &str = "route-controller-signals";

async fn holder(client: &Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(LEASE)
        .await
        .ok()??;
    lease.spec?.holder_identity
}

kube_sim::on_each_backend!(sigterm_releases_the_lease_and_the_standby_reconciles_within_2s);

async fn sigterm_releases_the_lease_and_the_standby_reconciles_within_2s(cluster: TestCluster) {
    common::init_tracing();
    let client = cluster.client().await.expect("client");
    cluster.install_platform_crds().await.expect("CRDs");
    let route_ns = cluster.namespace("routes").await.unwrap();
    let ns = cluster.namespace("team").await.unwrap();
    // The replicas run as the route-controller ServiceAccount, as in the cluster.
    let identity = cluster
        .controller_identity("route-controller", &route_ns)
        .await
        .expect("controller identity");
    let kubeconfig = identity.kubeconfig.clone();

    let mut a = Replica::start(&kubeconfig, &route_ns, LEASE, "a", 0);
    wait_for("replica a to lead", || {
        let (c, n) = (client.clone(), route_ns.clone());
        async move { holder(&c, &n).await.as_deref() == Some("a") }
    })
    .await;
    create_notebook(&client, &ns, "first").await;
    wait_for("the leader's first route", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 1 }
    })
    .await;
    let mut b = Replica::start(&kubeconfig, &route_ns, LEASE, "b", 0);
    // Let b come up and find the Lease taken.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(holder(&client, &route_ns).await.as_deref(), Some("a"));

    let signalled = Instant::now();
    a.signal("TERM");
    assert_eq!(
        a.exit_code().await,
        Some(0),
        "SIGTERM ends a gracefully; log: {}",
        a.log.display()
    );
    assert_ne!(
        holder(&client, &route_ns).await.as_deref(),
        Some("a"),
        "a released the Lease"
    );
    // Only b is left to route this one.
    create_notebook(&client, &ns, "after").await;
    let want = kfmodel::naming::route_name("Notebook", &ns, "after");
    loop {
        if route_names(&client, &route_ns, &ns).await.contains(&want) {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "the standby did not reconcile within 2 s of SIGTERM; log: {}",
            b.log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "standby routed a new notebook {:?} after SIGTERM to the leader",
        signalled.elapsed()
    );
    assert_eq!(holder(&client, &route_ns).await.as_deref(), Some("b"));

    b.signal("INT");
    assert_eq!(
        b.exit_code().await,
        Some(0),
        "SIGINT ends b gracefully; log: {}",
        b.log.display()
    );
    assert_eq!(holder(&client, &route_ns).await, None, "b released the Lease");
}
