//! The route-controller binary under the signals Kubernetes and a terminal
//! send (issue 17): SIGTERM ends the leader gracefully (exit 0) and releases
//! its Lease, so the standby reconciles within 2 s; SIGINT does the same.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube_sim::TestCluster;

use common::{create_notebook, route_names, wait_for};

const LEASE: &str = "route-controller-signals";

struct Replica {
    child: Child,
    log: std::path::PathBuf,
}

impl Replica {
    fn start(kubeconfig: &Path, route_ns: &str, identity: &str) -> Self {
        let log =
            std::env::temp_dir().join(format!("route-controller-{identity}-{}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_route-controller"))
            .args([
                "--gateway-name",
                "homelab-gateway",
                "--gateway-namespace",
                "kube-system",
            ])
            .args(["--hostname", "kubeflow.example", "--metrics-addr", "127.0.0.1:0"])
            .args(["--route-namespace", route_ns, "--lease-namespace", route_ns])
            .args(["--lease-name", LEASE, "--identity", identity])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start route-controller");
        Self { child, log }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Wait for the process to exit; its exit code.
    async fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + common::WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("still running; log: {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

    let mut a = Replica::start(&kubeconfig, &route_ns, "a");
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
    let mut b = Replica::start(&kubeconfig, &route_ns, "b");
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
