//! A missing or late optional CRD degrades route-controller, never stops it
//! (issue 17): with the Profile and PVCViewer CRDs absent, 3,000 Notebooks and
//! Tensorboards are all routed, the absence is reported in /readyz's detail
//! and `route_controller_crd_available`, and installing the PVCViewer CRD
//! later routes PVCViewers without a restart.
//!
//! kube-sim only: CRDs are cluster-wide, so a shared real cluster cannot have
//! them removed for one test.

mod common;

use std::time::{Duration, Instant};

use kflite_runtime::{Health, Status};
use kfmodel::gateway::HttpRoute;
use kfmodel::{PVCViewer, PVCViewerSpec};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_sim::TestCluster;
use route_controller::metrics::Metrics;
use route_controller::{Config, RunOptions, UserIdSource};

use common::scale::{self, Scale};
use common::{route_names, wait_for};

const NAMESPACES: usize = 300;
const SCALE: Scale = Scale {
    notebooks: 2500,
    tensorboards: 500,
    pvcviewers: 0,
};

#[test]
fn absent_profile_and_pvcviewer_crds_on_kube_sim() {
    let test = "absent_profile_and_pvcviewer_crds_on_kube_sim";
    if std::env::var_os(kube_sim::REAL_CLUSTER_ENV).is_some_and(|v| !v.is_empty()) {
        return testkit::skip(test, "leaves CRDs out: needs a cluster of its own");
    }
    let cluster = TestCluster::start_with(kube_sim::Config {
        history_limit: 200_000,
        ..Default::default()
    })
    .expect("test cluster");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(
            absent_profile_and_pvcviewer_crds_leave_3000_routes_working_and_a_late_crd_is_picked_up(cluster),
        );
}

/// A control plane of its own: the Profile and PVCViewer CRDs are left out.
#[test]
fn absent_profile_and_pvcviewer_crds_on_apiserver() {
    kube_sim::run_on(
        "absent_profile_and_pvcviewer_crds_on_apiserver",
        kube_sim::Backend::ApiServer,
        true,
        absent_profile_and_pvcviewer_crds_leave_3000_routes_working_and_a_late_crd_is_picked_up,
    );
}

async fn absent_profile_and_pvcviewer_crds_leave_3000_routes_working_and_a_late_crd_is_picked_up(
    cluster: TestCluster,
) {
    common::init_tracing();
    let client = cluster.client().await.expect("client");
    scale::install_crds(&client, &["Profile", "PVCViewer"])
        .await
        .expect("CRDs");
    common::wait_until_served::<HttpRoute>(&client).await;
    let route_ns = cluster.namespace("routes").await.unwrap();
    let mut namespaces = Vec::new();
    for _ in 0..NAMESPACES {
        namespaces.push(cluster.namespace("team").await.unwrap());
    }
    scale::populate(&client, &namespaces, SCALE)
        .await
        .expect("populate");

    let mut config = Config::example();
    config.route_namespace = route_ns.clone();
    config.user_id_source = UserIdSource::ProfileOwner;
    let (metrics, health) = (Metrics::new(), Health::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = RunOptions {
        identity: "degraded".into(),
        leader: None,
    };
    let controller = cluster
        .controller_identity("route-controller", &route_ns)
        .await
        .expect("controller identity")
        .client()
        .await
        .expect("controller client");
    let task = tokio::spawn(route_controller::run(
        controller,
        config,
        options,
        metrics.clone(),
        health.clone(),
        kflite_runtime::shutdown::on(async {
            let _ = stopped.await;
        }),
    ));

    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &route_ns);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut routed = 0;
    while routed < SCALE.total() {
        assert!(
            Instant::now() < deadline,
            "{routed} of {} routes after {:?}",
            SCALE.total(),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        routed = routes
            .list_metadata(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
    }
    eprintln!(
        "absent Profile and PVCViewer CRDs: {routed} routes in {:.1?}",
        started.elapsed()
    );

    // No Profiles: the default user id is sent.
    let any = routes
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .items
        .remove(0);
    let header = serde_json::to_value(&any.spec.rules.as_ref().unwrap()[0]).unwrap()["filters"][0]
        ["requestHeaderModifier"]["set"][0]["value"]
        .clone();
    assert_eq!(header, "user@example.com");

    // Ready (degraded), and the absent kinds are named.
    assert!(health.is_ready(), "{}", health.report());
    assert_eq!(health.status("kind/PVCViewer"), Some(Status::Degraded));
    assert_eq!(health.status("kind/Profile"), Some(Status::Degraded));
    assert!(
        health.report().contains("kind/PVCViewer: degraded: CRD absent"),
        "{}",
        health.report()
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"route_controller_crd_available{kind="PVCViewer"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route_controller_crd_available{kind="Notebook"} 1"#),
        "{text}"
    );

    // The PVCViewer CRD arrives: its objects are routed, no restart.
    Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(
        client.clone(),
    )
    .patch(
        "pvcviewers.kubeflow.org",
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(kfmodel::crd::pvcviewer()),
    )
    .await
    .expect("PVCViewer CRD");
    common::wait_until_served::<PVCViewer>(&client).await;
    let ns = &namespaces[0];
    let viewer = PVCViewer::new(
        "late",
        PVCViewerSpec {
            pvc: "data".into(),
            ..Default::default()
        },
    );
    Api::<PVCViewer>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &viewer)
        .await
        .expect("create PVCViewer");
    let want = kfmodel::naming::route_name("PVCViewer", ns, "late");
    wait_for("the late PVCViewer's route", || {
        let (c, r, n, want) = (client.clone(), route_ns.clone(), ns.clone(), want.clone());
        async move { route_names(&c, &r, &n).await.contains(&want) }
    })
    .await;
    assert_eq!(health.status("kind/PVCViewer"), Some(Status::Ok));
    assert!(
        metrics
            .render()
            .contains(r#"route_controller_crd_available{kind="PVCViewer"} 1"#)
    );
    assert!(!task.is_finished(), "the controller kept running");

    let _ = stop.send(());
    task.await.expect("joins").expect("controller ends cleanly");
}
