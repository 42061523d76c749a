//! route-controller end to end: the real controller code against kube-sim
//! (or the real cluster `KFLITE_E2E_KUBECONFIG` names), over HTTP.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kflite_runtime::Health;
use kflite_runtime::leader::LeaderConfig;
use kfmodel::gateway::{HttpRoute, ReferenceGrant};
use kfmodel::{Notebook, PVCViewer, PVCViewerSpec, Profile, ProfileSpec, Tensorboard, TensorboardSpec};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use kube_sim::TestCluster;
use route_controller::metrics::Metrics;
use route_controller::{Config, RunOptions, UserIdSource};
use serde_json::{Value, json};
use tokio::sync::oneshot;

mod common;

use common::{create_notebook, route_names, wait_for};

kube_sim::on_each_backend!(
    each_kind_gets_its_route_and_grant_and_loses_them_on_delete,
    restart_prunes_orphans_and_hand_changes_are_undone,
    colliding_namespace_name_pairs_get_distinct_routes,
    exactly_one_of_two_replicas_reconciles_and_the_other_takes_over,
);

/// Fault injection exists on kube-sim only.
#[test]
fn converges_through_faults_on_kube_sim() {
    kube_sim::run_on(
        "converges_through_faults_on_kube_sim",
        kube_sim::Backend::KubeSim,
        false,
        converges_through_conflicts_errors_and_cut_watches,
    );
}

struct Env {
    cluster: TestCluster,
    /// The test's own (admin) client.
    client: Client,
    /// The controller's: its ServiceAccount under manifests/route-controller's RBAC.
    controller: Client,
    route_ns: String,
}

async fn env(cluster: TestCluster) -> Env {
    common::init_tracing();
    let client = cluster.client().await.expect("client");
    cluster.install_platform_crds().await.expect("CRDs");
    let route_ns = cluster.namespace("routes").await.expect("route namespace");
    let identity = cluster
        .controller_identity("route-controller", &route_ns)
        .await
        .expect("controller identity");
    let controller = identity.client().await.expect("controller client");
    Env {
        cluster,
        client,
        controller,
        route_ns,
    }
}

fn config(route_ns: &str) -> Config {
    let mut c = Config::example();
    c.route_namespace = route_ns.into();
    c
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    metrics: Metrics,
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
    /// Die without cleaning up (like a killed pod).
    fn kill(self) {
        self.task.abort();
    }
}

fn start(client: &Client, config: Config, identity: &str, leader: Option<LeaderConfig>) -> Running {
    let (tx, rx) = oneshot::channel();
    let metrics = Metrics::new();
    let m = metrics.clone();
    let client = client.clone();
    let options = RunOptions {
        identity: identity.into(),
        leader,
    };
    let task = tokio::spawn(async move {
        let shutdown = kflite_runtime::shutdown::on(async {
            let _ = rx.await;
        });
        if let Err(e) = route_controller::run(client, config, options, m, Health::default(), shutdown).await {
            panic!("controller failed: {e}");
        }
    });
    Running {
        stop: Some(tx),
        task,
        metrics,
    }
}

async fn grant_exists(client: &Client, ns: &str) -> bool {
    granted_services(client, ns).await.is_some()
}

/// The Services our grant in `ns` lets routes reach (None: no grant).
async fn granted_services(client: &Client, ns: &str) -> Option<BTreeSet<String>> {
    let api: Api<ReferenceGrant> = Api::namespaced(client.clone(), ns);
    let grant = api.get_opt("allow-kubeflow-gateway").await.ok()??;
    let to = &grant.spec.to;
    assert!(
        to.iter()
            .all(|t| t.group.is_empty() && t.kind == "Service" && t.name.is_some()),
        "every grant target is one named Service: {to:?}"
    );
    Some(to.iter().filter_map(|t| t.name.clone()).collect())
}

async fn delete<K>(client: &Client, ns: &str, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.delete(name, &DeleteParams::default()).await.expect("delete");
}

fn rn(kind: &str, ns: &str, name: &str) -> String {
    kfmodel::naming::route_name(kind, ns, name)
}

async fn each_kind_gets_its_route_and_grant_and_loses_them_on_delete(cluster: TestCluster) {
    let Env {
        cluster: _cluster,
        client,
        route_ns,
        controller,
        ..
    } = env(cluster).await;
    let ns = _cluster.namespace("team").await.unwrap();
    let mut cfg = config(&route_ns);
    cfg.user_id_source = UserIdSource::ProfileOwner;
    let running = start(&controller, cfg, "solo", None);

    create_notebook(&client, &ns, "nb").await;
    let tb = Tensorboard::new(
        "tb",
        TensorboardSpec {
            logspath: "pvc://logs/".into(),
            ..Default::default()
        },
    );
    Api::<Tensorboard>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &tb)
        .await
        .unwrap();
    let pv = PVCViewer::new(
        "pv",
        PVCViewerSpec {
            pvc: "data".into(),
            ..Default::default()
        },
    );
    Api::<PVCViewer>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();

    let expected: BTreeSet<String> = [
        rn("Notebook", &ns, "nb"),
        rn("Tensorboard", &ns, "tb"),
        rn("PVCViewer", &ns, "pv"),
    ]
    .into();
    wait_for("three routes", || {
        let (c, r, n, e) = (client.clone(), route_ns.clone(), ns.clone(), expected.clone());
        async move { route_names(&c, &r, &n).await == e }
    })
    .await;
    // The grant allows exactly the three Services, not every Service of the namespace.
    let services: BTreeSet<String> = ["nb", "tb", "pvcviewer-pv"].map(String::from).into();
    assert_eq!(granted_services(&client, &ns).await, Some(services));

    // Exactly the table of the issue, as stored by the API server.
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &route_ns);
    let table = [
        ("Notebook", "nb", format!("/notebook/{ns}/nb/"), None, "nb"),
        (
            "Tensorboard",
            "tb",
            format!("/tensorboard/{ns}/tb/"),
            Some("/"),
            "tb",
        ),
        (
            "PVCViewer",
            "pv",
            format!("/pvcviewers/{ns}/pv/"),
            Some("/"),
            "pvcviewer-pv",
        ),
    ];
    for (kind, name, prefix, rewrite, backend) in table {
        let route = serde_json::to_value(routes.get(&rn(kind, &ns, name)).await.unwrap()).unwrap();
        let spec = &route["spec"];
        assert_eq!(spec["hostnames"], json!(["kubeflow.madhan.app"]));
        assert_eq!(spec["parentRefs"][0]["name"], "homelab-gateway");
        assert_eq!(spec["parentRefs"][0]["namespace"], "kube-system");
        let rule = &spec["rules"][0];
        assert_eq!(rule["matches"][0]["path"]["value"], Value::from(prefix.as_str()));
        assert_eq!(rule["matches"][0]["path"]["type"], "PathPrefix");
        assert_eq!(
            rule["filters"][0]["requestHeaderModifier"]["set"][0],
            json!({"name": "kubeflow-userid", "value": "user@example.com"})
        );
        let rewrites: Vec<&Value> = rule["filters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == "URLRewrite")
            .collect();
        match rewrite {
            None => assert!(rewrites.is_empty(), "{kind}: no rewrite"),
            Some(to) => assert_eq!(rewrites[0]["urlRewrite"]["path"]["replacePrefixMatch"], to),
        }
        assert_eq!(rule["backendRefs"][0]["name"], backend);
        assert_eq!(rule["backendRefs"][0]["namespace"], Value::from(ns.as_str()));
        assert_eq!(rule["backendRefs"][0]["port"], 80);
    }

    // Update: a Profile for the namespace changes the user header of every route.
    let profile = Profile::new(
        &ns,
        ProfileSpec {
            owner: Some(kfmodel::profile::ProfileOwner::user("alice@corp.example")),
            ..Default::default()
        },
    );
    let profiles: Api<Profile> = Api::all(client.clone());
    profiles.create(&PostParams::default(), &profile).await.unwrap();
    wait_for("header from the profile owner", || {
        let (routes, name) = (routes.clone(), rn("Notebook", &ns, "nb"));
        async move {
            let r = serde_json::to_value(routes.get(&name).await.unwrap()).unwrap();
            r["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"]["set"][0]["value"]
                == "alice@corp.example"
        }
    })
    .await;

    // Delete one by one: routes go; the grant goes with the last.
    delete::<Notebook>(&client, &ns, "nb").await;
    delete::<Tensorboard>(&client, &ns, "tb").await;
    wait_for("two routes pruned", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 1 }
    })
    .await;
    wait_for("grant narrowed to the PVCViewer's Service", || {
        let (c, n) = (client.clone(), ns.clone());
        async move { granted_services(&c, &n).await == Some(["pvcviewer-pv".to_string()].into()) }
    })
    .await;
    delete::<PVCViewer>(&client, &ns, "pv").await;
    wait_for("grant removed", || {
        let (c, n) = (client.clone(), ns.clone());
        async move { !grant_exists(&c, &n).await }
    })
    .await;
    assert!(route_names(&client, &route_ns, &ns).await.is_empty());
    profiles.delete(&ns, &DeleteParams::default()).await.unwrap();
    running.stop().await;
}

async fn restart_prunes_orphans_and_hand_changes_are_undone(cluster: TestCluster) {
    let Env {
        cluster,
        client,
        route_ns,
        controller,
        ..
    } = env(cluster).await;
    let kept = cluster.namespace("kept").await.unwrap();
    let emptied = cluster.namespace("emptied").await.unwrap();
    let running = start(&controller, config(&route_ns), "first", None);
    create_notebook(&client, &kept, "stay").await;
    create_notebook(&client, &kept, "go").await;
    create_notebook(&client, &emptied, "gone").await;
    wait_for("routes", || {
        let (c, r, k, e) = (client.clone(), route_ns.clone(), kept.clone(), emptied.clone());
        async move { route_names(&c, &r, &k).await.len() == 2 && route_names(&c, &r, &e).await.len() == 1 }
    })
    .await;
    assert!(grant_exists(&client, &emptied).await);
    running.kill();

    // While it is down: delete sources.
    delete::<Notebook>(&client, &kept, "go").await;
    delete::<Notebook>(&client, &emptied, "gone").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        route_names(&client, &route_ns, &kept).await.len(),
        2,
        "nothing pruned while down"
    );

    let running = start(&controller, config(&route_ns), "second", None);
    wait_for("orphans pruned after restart", || {
        let (c, r, k, e) = (client.clone(), route_ns.clone(), kept.clone(), emptied.clone());
        async move {
            route_names(&c, &r, &k).await == BTreeSet::from([rn("Notebook", &k, "stay")])
                && route_names(&c, &r, &e).await.is_empty()
                && !grant_exists(&c, &e).await
        }
    })
    .await;
    assert!(grant_exists(&client, &kept).await);

    // A hand-deleted route comes back.
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &route_ns);
    let name = rn("Notebook", &kept, "stay");
    routes.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_for("deleted route restored", || {
        let (routes, name) = (routes.clone(), name.clone());
        async move { routes.get_opt(&name).await.ok().flatten().is_some() }
    })
    .await;

    // A hand edit is put back.
    let edit = json!({"spec": {"rules": [{"backendRefs": [{"name": "evil", "port": 1}]}]}});
    routes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    wait_for("edited route restored", || {
        let (routes, name) = (routes.clone(), name.clone());
        async move {
            let r = serde_json::to_value(routes.get(&name).await.unwrap()).unwrap();
            r["spec"]["rules"][0]["backendRefs"][0]["name"] == "stay"
                && r["spec"]["rules"][0]["backendRefs"][0]["port"] == 80
        }
    })
    .await;
    running.stop().await;
}

async fn colliding_namespace_name_pairs_get_distinct_routes(cluster: TestCluster) {
    let Env {
        cluster,
        client,
        route_ns,
        controller,
        ..
    } = env(cluster).await;
    // ns "<p>" + name "b-c" and ns "<p>-b" + name "c": both "notebook-<p>-b-c" to the Python controller.
    let a = cluster.namespace("coll").await.unwrap();
    let b = format!("{a}-b");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": b}})).unwrap(),
    )
    .await
    .unwrap();
    let running = start(&controller, config(&route_ns), "solo", None);
    create_notebook(&client, &a, "b-c").await;
    create_notebook(&client, &b, "c").await;
    wait_for("both routes", || {
        let (c, r, a, b) = (client.clone(), route_ns.clone(), a.clone(), b.clone());
        async move { route_names(&c, &r, &a).await.len() == 1 && route_names(&c, &r, &b).await.len() == 1 }
    })
    .await;
    let ra = route_names(&client, &route_ns, &a).await;
    let rb = route_names(&client, &route_ns, &b).await;
    assert_ne!(ra, rb);
    assert_eq!(
        format!("notebook-{a}-b-c"),
        format!("notebook-{b}-c"),
        "the pair collides naively"
    );
    running.stop().await;
    nss.delete(&b, &DeleteParams::default()).await.unwrap();
}

async fn converges_through_conflicts_errors_and_cut_watches(cluster: TestCluster) {
    let Env {
        cluster,
        client,
        route_ns,
        controller,
        ..
    } = env(cluster).await;
    let Some(sim) = cluster.sim() else {
        testkit::skip(
            "route-controller::converges_through_faults",
            "fault injection needs kube-sim",
        );
        return;
    };
    let ns = cluster.namespace("faulty").await.unwrap();
    let running = start(&controller, config(&route_ns), "solo", None);
    sim.fail_next(Some("patch"), Some("httproutes"), 409, 3);
    sim.fail_next(Some("patch"), Some("httproutes"), 500, 3);
    sim.fail_next(Some("patch"), Some("referencegrants"), 500, 2);
    for i in 0..10 {
        create_notebook(&client, &ns, &format!("nb{i}")).await;
        if i == 5 {
            sim.cut_watches();
        }
    }
    sim.fail_next(Some("delete"), Some("httproutes"), 500, 2);
    delete::<Notebook>(&client, &ns, "nb0").await;
    sim.cut_watches();
    let expected: BTreeSet<String> = (1..10).map(|i| rn("Notebook", &ns, &format!("nb{i}"))).collect();
    wait_for("convergence", || {
        let (c, r, n, e) = (client.clone(), route_ns.clone(), ns.clone(), expected.clone());
        async move { route_names(&c, &r, &n).await == e && grant_exists(&c, &n).await }
    })
    .await;
    // No duplicates: every managed route in the route namespace is one of the expected.
    let all: Api<HttpRoute> = Api::namespaced(client.clone(), &route_ns);
    let listed = all.list(&ListParams::default()).await.unwrap();
    let names: Vec<String> = listed
        .items
        .iter()
        .map(|r| r.name_any())
        .filter(|n| n.contains(&ns))
        .collect();
    assert_eq!(names.len(), expected.len(), "{names:?}");
    assert!(
        running.metrics.errors.get() > 0,
        "the injected failures were seen"
    );
    running.stop().await;
}

async fn exactly_one_of_two_replicas_reconciles_and_the_other_takes_over(cluster: TestCluster) {
    let Env {
        cluster,
        client,
        route_ns,
        controller,
        ..
    } = env(cluster).await;
    let ns = cluster.namespace("ha").await.unwrap();
    let lease = |id: &str| LeaderConfig {
        namespace: route_ns.clone(),
        lease_name: "route-controller-e2e".into(),
        identity: id.into(),
        lease_duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(300),
    };
    let one = start(&controller, config(&route_ns), "one", Some(lease("one")));
    wait_for("a leader", || {
        let m = one.metrics.clone();
        async move { m.is_leader.get() == 1 }
    })
    .await;
    let two = start(&controller, config(&route_ns), "two", Some(lease("two")));
    create_notebook(&client, &ns, "first").await;
    wait_for("route from the leader", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(two.metrics.is_leader.get(), 0, "standby must not lead");
    assert_eq!(two.metrics.reconciles.get(), 0, "standby must not reconcile");
    assert!(one.metrics.reconciles.get() > 0);

    // The leader dies without releasing: the standby takes over after the lease expires.
    one.kill();
    wait_for("takeover", || {
        let m = two.metrics.clone();
        async move { m.is_leader.get() == 1 }
    })
    .await;
    create_notebook(&client, &ns, "second").await;
    wait_for("route from the new leader", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 2 }
    })
    .await;
    assert!(two.metrics.reconciles.get() > 0);
    two.stop().await;
}
