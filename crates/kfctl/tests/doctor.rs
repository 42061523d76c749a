//! `kfctl doctor` on fixture clusters, on kube-sim and on a real control
//! plane: the healthy homelab passes every check; each broken state fails
//! exactly its check, with its fix.

mod common;

use common::*;
use kfctl::doctor::{self, DoctorConfig, Report, Status};
use kube_sim::TestCluster;
use serde_json::json;

// Doctor's checks are cluster-wide: each test gets a cluster of its own.
kube_sim::on_each_backend!(
    private:
    healthy_homelab_passes_every_check,
    kflite_dashboard_manifest_applied_with_kubectl_passes,
    jupyter_without_rewrite_fails_dashboard_route,
    katib_rewritten_fails_dashboard_route,
    missing_prefix_fails_dashboard_route,
    missing_dashboard_route_fails_dashboard_route,
    missing_backend_service_fails_dashboard_backends,
    unavailable_route_controller_fails_its_check,
    stale_route_controller_lease_fails_route_controller,
    lease_written_by_route_controller_passes,
    missing_tensorboard_route_fails_app_routes,
    missing_reference_grant_fails_app_routes,
    route_the_gateway_refused_fails_gateway_status,
    route_without_gateway_status_fails_gateway_status,
    gpu_notebook_without_runtime_class_fails_gpu_notebooks,
    gpu_notebook_without_node_selector_fails_gpu_notebooks,
    old_pytorch_image_warns_but_passes,
    missing_kfp_configmap_fails_pipelines_namespaces,
    missing_artifact_secret_fails_pipelines_namespaces,
    unavailable_artifact_controller_fails_its_check,
    seaweedfs_network_policy_fails_network_policies,
    istio_object_fails_istio,
    missing_stub_crd_fails_istio,
    unsubstituted_profile_owner_fails_names,
    viewer_stuck_on_rwo_volume_fails_pvcviewer_rwo,
    viewer_on_rwx_volume_is_not_stuck_by_a_notebook,
    unreachable_database_fails_kfp_database,
    empty_cluster_fails_without_panicking,
);

/// Fault injection exists on kube-sim only.
#[test]
fn api_errors_name_the_resource_and_are_not_verdicts() {
    kube_sim::run_on(
        "api_errors_name_the_resource_and_are_not_verdicts",
        kube_sim::Backend::KubeSim,
        true,
        api_errors_name_the_resource_and_are_not_verdicts_body,
    );
}

#[test]
fn forbidden_reads_fail_only_the_checks_that_need_them() {
    kube_sim::run_on(
        "forbidden_reads_fail_only_the_checks_that_need_them",
        kube_sim::Backend::KubeSim,
        true,
        forbidden_reads_fail_only_the_checks_that_need_them_body,
    );
}

async fn doctor(c: &Cluster) -> Report {
    doctor::run(&c.client, &DoctorConfig::default())
        .await
        .expect("doctor runs")
}

/// The ids of the checks that fail, in doctor's order.
fn failed_ids(report: &Report) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id.as_str())
        .collect()
}

/// Every check passes; the database check, without `--db-url`, is skipped.
fn all_pass(report: &Report) {
    for check in &report.checks {
        let expected = if check.id == "kfp-database" {
            Status::Skip
        } else {
            Status::Pass
        };
        assert_eq!(check.status, expected, "{}:\n{}", check.id, report.to_table());
    }
}

/// Every check passes or is skipped, except `id`, which fails with a fix
/// naming `fix_has` and a problem naming `problem_has`.
fn only_fails(report: &Report, id: &str, problem_has: &str, fix_has: &str) {
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !matches!(c.status, Status::Pass | Status::Skip))
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        failing,
        vec![id],
        "exactly {id} should fail:\n{}",
        report.to_table()
    );
    let check = report.check(id).unwrap();
    assert_eq!(check.status, Status::Fail);
    let text = format!("{} {}", check.summary, check.problems.join(" "));
    assert!(
        text.contains(problem_has),
        "{id} should mention {problem_has:?}:\n{}",
        report.to_table()
    );
    let fix = check.fix.as_deref().unwrap_or("");
    assert!(
        fix.contains(fix_has),
        "{id}'s fix should say {fix_has:?}, got {fix:?}"
    );
    assert_eq!(report.exit_code(), 1);
}

async fn healthy_homelab_passes_every_check(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let report = doctor(&c).await;
    all_pass(&report);
    assert_eq!(report.exit_code(), 0);
    // Every check of the issue is there, each exactly once.
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "dashboard-route",
            "dashboard-backends",
            "route-controller",
            "app-routes",
            "gateway-status",
            "gpu-notebooks",
            "pipelines-namespaces",
            "artifact-controller",
            "network-policies",
            "istio",
            "names",
            "pvcviewer-rwo",
            "kfp-database",
        ]
    );
    // The checks saw the fixture's objects (not an empty cluster).
    let summary = |id: &str| report.check(id).unwrap().summary.clone();
    assert!(
        summary("app-routes").starts_with("4 object(s) in 1 namespace(s)"),
        "{}",
        summary("app-routes")
    );
    assert!(
        summary("gpu-notebooks").starts_with("1 GPU notebook(s)"),
        "{}",
        summary("gpu-notebooks")
    );
    assert!(
        summary("pipelines-namespaces").starts_with("1 namespace(s)"),
        "{}",
        summary("pipelines-namespaces")
    );
}

async fn kflite_dashboard_manifest_applied_with_kubectl_passes(tc: TestCluster) {
    // kflite's generated route, applied as the owner applies it, read back as
    // the API server stores it (upstream CRD validation and defaults included).
    let test = "kflite_dashboard_manifest_applied_with_kubectl_passes";
    let Some(kubectl) = testkit::require_tool(test, "kubectl") else {
        return;
    };
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("HTTPRoute", KF, "kubeflow-dashboard").await;
    let manifest = testkit::workspace_root().join("manifests/dashboard-route/httproute.yaml");
    c.tc.kubectl_apply_server_side(&kubectl, &manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    c.merge_status(json!({"kind": "HTTPRoute", "metadata": {"name": "kubeflow-dashboard", "namespace": KF}, "status": accepted()}))
        .await;
    let report = doctor(&c).await;
    all_pass(&report);
}

fn without_rewrite(prefix: &str) -> serde_json::Value {
    let mut route = dashboard_route();
    for rule in route["spec"]["rules"].as_array_mut().unwrap() {
        if rule["matches"][0]["path"]["value"] == prefix {
            rule["filters"]
                .as_array_mut()
                .unwrap()
                .retain(|f| f["type"] != "URLRewrite");
        }
    }
    route
}

async fn jupyter_without_rewrite_fails_dashboard_route(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.apply(without_rewrite("/jupyter/")).await;
    only_fails(
        &doctor(&c).await,
        "dashboard-route",
        "/jupyter/: no URLRewrite",
        "ReplacePrefixMatch",
    );
}

async fn katib_rewritten_fails_dashboard_route(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut route = dashboard_route();
    let rewrite = route["spec"]["rules"][0]["filters"][1].clone();
    route["spec"]["rules"][3]["filters"]
        .as_array_mut()
        .unwrap()
        .push(rewrite);
    c.apply(route).await;
    only_fails(
        &doctor(&c).await,
        "dashboard-route",
        "/katib/: rewritten to /",
        "/katib/ without a rewrite",
    );
}

async fn missing_prefix_fails_dashboard_route(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut route = dashboard_route();
    route["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["matches"][0]["path"]["value"] != "/pipeline/");
    c.apply(route).await;
    only_fails(
        &doctor(&c).await,
        "dashboard-route",
        "no PathPrefix rule for /pipeline/",
        "kubeflow-dashboard",
    );
}

async fn missing_dashboard_route_fails_dashboard_route(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("HTTPRoute", KF, "kubeflow-dashboard").await;
    let report = doctor(&c).await;
    only_fails(
        &report,
        "dashboard-route",
        "does not exist",
        "kubectl apply -k overlays/homelab",
    );
    assert_eq!(report.check("dashboard-backends").unwrap().status, Status::Skip);
}

async fn missing_backend_service_fails_dashboard_backends(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Service", KF, "katib-ui").await;
    only_fails(
        &doctor(&c).await,
        "dashboard-backends",
        "Service kubeflow/katib-ui does not exist",
        "kubectl -n kubeflow get svc",
    );
}

async fn unavailable_route_controller_fails_its_check(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.merge_status(json!({"kind": "Deployment", "metadata": {"name": "route-controller", "namespace": KF}, "status": deployment_status(false)})).await;
    only_fails(
        &doctor(&c).await,
        "route-controller",
        "0/2 replicas available",
        "kubectl -n kubeflow logs deploy/route-controller",
    );
}

async fn stale_route_controller_lease_fails_route_controller(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.apply(lease(kfctl::doctor::snapshot::unix_now() - 600)).await;
    only_fails(
        &doctor(&c).await,
        "route-controller",
        "no replica leads",
        "rollout restart deploy/route-controller",
    );
}

async fn lease_written_by_route_controller_passes(tc: TestCluster) {
    // The Lease as route-controller's own leader election writes it, not the fixture's.
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Lease", KF, "kflite-route-controller").await;
    let identity = "route-controller-test-0";
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = c.client.clone();
    let controller = tokio::spawn(async move {
        let options = route_controller::RunOptions {
            identity: identity.into(),
            leader: Some(kflite_runtime::leader::LeaderConfig::new(
                KF,
                "kflite-route-controller",
                identity,
            )),
        };
        let shutdown = kflite_runtime::shutdown::on(async {
            let _ = stopped.await;
        });
        route_controller::run(
            client,
            route_controller::Config::example(),
            options,
            route_controller::metrics::Metrics::new(),
            kflite_runtime::Health::default(),
            shutdown,
        )
        .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        let report = doctor(&c).await;
        if report.check("route-controller").unwrap().status == Status::Pass {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "route-controller took no lead within 30 s:\n{}",
            report.to_table()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    all_pass(&report);
    let summary = &report.check("route-controller").unwrap().summary;
    assert!(summary.contains(&format!("held by {identity}")), "{summary}");
    let _ = stop.send(());
    // It finishes its reconciles and releases the Lease: milliseconds, yet
    // once over 10 s on a loaded machine, so the bound only catches a hang.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(120), controller).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "route-controller stopped badly: {stopped:?}"
    );
}

async fn missing_tensorboard_route_fails_app_routes(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("HTTPRoute", KF, &format!("tensorboard.{USER_NS}.tb"))
        .await;
    only_fails(
        &doctor(&c).await,
        "app-routes",
        "Tensorboard kubeflow-user-example-com/tb: no HTTPRoute",
        "reconcile failed",
    );
}

async fn missing_reference_grant_fails_app_routes(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("ReferenceGrant", USER_NS, "allow-kubeflow-gateway")
        .await;
    only_fails(
        &doctor(&c).await,
        "app-routes",
        "no ReferenceGrant allow-kubeflow-gateway",
        "route-controller",
    );
}

async fn route_the_gateway_refused_fails_gateway_status(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.merge_status(json!({
        "kind": "HTTPRoute", "metadata": {"name": format!("notebook.{USER_NS}.gpu-nb"), "namespace": KF},
        "status": route_status("True", "Accepted", "False", "RefNotPermitted", "Backend ref to Service kubeflow-user-example-com/gpu-nb not permitted by any ReferenceGrant"),
    }))
    .await;
    only_fails(
        &doctor(&c).await,
        "gateway-status",
        "ResolvedRefs=False (RefNotPermitted)",
        "lacks the ReferenceGrant",
    );
}

async fn route_without_gateway_status_fails_gateway_status(tc: TestCluster) {
    // What a route whose parentRef names a Gateway nobody runs looks like.
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut route = dashboard_route();
    route["spec"]["parentRefs"][0]["name"] = json!("no-such-gateway");
    c.apply(route).await;
    c.merge_status(json!({"kind": "HTTPRoute", "metadata": {"name": "kubeflow-dashboard", "namespace": KF}, "status": {"parents": []}})).await;
    only_fails(
        &doctor(&c).await,
        "gateway-status",
        "HTTPRoute kubeflow/kubeflow-dashboard: no Gateway has reported on it",
        "parentRefs name the Gateway",
    );
}

async fn gpu_notebook_without_runtime_class_fails_gpu_notebooks(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut nb = gpu_notebook(USER_NS, "no-runtime");
    nb["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("runtimeClassName");
    c.add_notebook(nb).await;
    only_fails(
        &doctor(&c).await,
        "gpu-notebooks",
        "runtimeClassName is unset",
        "runtimeClassName: nvidia",
    );
}

async fn gpu_notebook_without_node_selector_fails_gpu_notebooks(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut nb = gpu_notebook(USER_NS, "no-selector");
    nb["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("nodeSelector");
    c.add_notebook(nb).await;
    only_fails(
        &doctor(&c).await,
        "gpu-notebooks",
        "nvidia.com/gpu.present is unset",
        "nodeSelector",
    );
}

async fn old_pytorch_image_warns_but_passes(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let mut nb = gpu_notebook(USER_NS, "old-torch");
    nb["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda-full:v1.10.0");
    c.add_notebook(nb).await;
    let report = doctor(&c).await;
    let check = report.check("gpu-notebooks").unwrap();
    assert_eq!(check.status, Status::Warn, "{}", report.to_table());
    assert!(check.fix.as_deref().unwrap().contains("cu128"));
    assert_eq!(report.exit_code(), 0, "a warning is not a failure");
}

async fn missing_kfp_configmap_fails_pipelines_namespaces(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("ConfigMap", USER_NS, "kfp-launcher").await;
    only_fails(
        &doctor(&c).await,
        "pipelines-namespaces",
        "missing ConfigMap kfp-launcher",
        "logs deploy/pipeline-artifacts",
    );
}

async fn missing_artifact_secret_fails_pipelines_namespaces(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Secret", USER_NS, "mlpipeline-minio-artifact").await;
    let report = doctor(&c).await;
    only_fails(
        &report,
        "pipelines-namespaces",
        "missing Secret mlpipeline-minio-artifact",
        "artifact controller",
    );
    // The Secret's data never appears in the report.
    let all = serde_json::to_string(&report).unwrap();
    assert!(!all.contains("fixture-secret"));
}

async fn unavailable_artifact_controller_fails_its_check(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.merge_status(json!({"kind": "Deployment", "metadata": {"name": "pipeline-artifacts", "namespace": KF}, "status": deployment_status(false)})).await;
    only_fails(
        &doctor(&c).await,
        "artifact-controller",
        "hang at Init",
        "describe deploy/pipeline-artifacts",
    );
}

async fn seaweedfs_network_policy_fails_network_policies(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "seaweedfs", "namespace": KF},
        "spec": {"podSelector": {"matchLabels": {"app": "seaweedfs"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}]}]},
    }))
    .await;
    only_fails(
        &doctor(&c).await,
        "network-policies",
        "NetworkPolicy kubeflow/seaweedfs",
        "kubectl -n kubeflow delete networkpolicy seaweedfs",
    );
}

async fn istio_object_fails_istio(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.apply(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "jupyter-web-app-jupyter-web-app", "namespace": KF},
        "spec": {"hosts": ["*"], "gateways": ["kubeflow/kubeflow-gateway"]},
    }))
    .await;
    only_fails(
        &doctor(&c).await,
        "istio",
        "VirtualService kubeflow/jupyter-web-app-jupyter-web-app exists",
        "kubectl delete virtualservices.networking.istio.io",
    );
}

async fn missing_stub_crd_fails_istio(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete(
        "CustomResourceDefinition",
        "",
        "authorizationpolicies.security.istio.io",
    )
    .await;
    only_fails(
        &doctor(&c).await,
        "istio",
        "CRD authorizationpolicies.security.istio.io is missing",
        "stub Istio CRDs",
    );
}

async fn unsubstituted_profile_owner_fails_names(tc: TestCluster) {
    // The API server (and kube-sim) refuses `$(profile-name)` as a name, so
    // on a cluster the trap shows as the owner; names are unit-tested below.
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.apply(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Profile",
        "metadata": {"name": "profile-name"},
        "spec": {"owner": {"kind": "User", "name": "$(user)"}},
    }))
    .await;
    only_fails(
        &doctor(&c).await,
        "names",
        "owner \"$(user)\" never substituted",
        "kfctl profile add",
    );
}

#[test]
fn unsubstituted_names_fail_names() {
    use kfctl::doctor::snapshot::Snapshot;
    let snapshot = Snapshot {
        profiles: Some(vec![
            json!({"metadata": {"name": "$(profile-name)"}, "spec": {"owner": {"name": "$(user)"}}}),
        ]),
        namespaces: vec![json!({"metadata": {"name": "$(profile-name)"}})],
        ..Default::default()
    };
    let checks = kfctl::doctor::checks::run(&snapshot, &DoctorConfig::default());
    let names = checks.iter().find(|c| c.id == "names").unwrap();
    assert_eq!(names.status, Status::Fail);
    assert_eq!(names.problems.len(), 3, "{:?}", names.problems);
    assert!(names.problems[0].contains("Profile \"$(profile-name)\""));
    assert!(names.problems[2].contains("Namespace \"$(profile-name)\""));
}

async fn viewer_stuck_on_rwo_volume_fails_pvcviewer_rwo(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Pod", USER_NS, "pvcviewer-viewer-5d9f7c-abcde").await;
    c.apply(viewer_pod("node-b", true)).await;
    let report = doctor(&c).await;
    only_fails(
        &report,
        "pvcviewer-rwo",
        "Pending (ContainerCreating) on node node-b; PVC gpu-nb-workspace is ReadWriteOnce and attached to running notebook gpu-nb on node-a",
        "stop the notebook",
    );
    let fix = report.check("pvcviewer-rwo").unwrap().fix.clone().unwrap();
    assert!(fix.contains("RWX"), "{fix}");
    assert!(
        fix.contains(
            "kubectl -n kubeflow-user-example-com annotate notebook gpu-nb kubeflow-resource-stopped=true"
        ),
        "{fix}"
    );
}

async fn viewer_on_rwx_volume_is_not_stuck_by_a_notebook(tc: TestCluster) {
    // The same pods with a ReadWriteMany claim: a Pending viewer is not this check's business.
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Pod", USER_NS, "pvcviewer-viewer-5d9f7c-abcde").await;
    c.apply(viewer_pod("node-b", true)).await;
    c.delete("PersistentVolumeClaim", USER_NS, "gpu-nb-workspace")
        .await;
    c.apply(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "gpu-nb-workspace", "namespace": USER_NS},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}},
    }))
    .await;
    assert_eq!(
        doctor(&c).await.check("pvcviewer-rwo").unwrap().status,
        Status::Pass
    );
}

async fn unreachable_database_fails_kfp_database(tc: TestCluster) {
    // No MariaDB here (tests/database.rs has one): the failure path against a
    // closed port, or, built without `db`, the note that the check needs it.
    let Some(c) = healthy(tc).await else {
        return;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = DoctorConfig {
        db_url: Some(format!("mysql://root:topsecret@127.0.0.1:{port}/mlpipeline")),
        db_timeout: std::time::Duration::from_secs(3),
        ..Default::default()
    };
    let report = doctor::run(&c.client, &config).await.unwrap();
    if cfg!(feature = "db") {
        only_fails(
            &report,
            "kfp-database",
            "mysql://root:***@127.0.0.1",
            "kubectl -n kubeflow get pods -l app=mysql",
        );
    } else {
        only_fails(
            &report,
            "kfp-database",
            "built without the `db` feature",
            "--features db",
        );
    }
    let all = serde_json::to_string(&report).unwrap() + &report.to_table();
    assert!(!all.contains("topsecret"), "the password leaked:\n{all}");
}

async fn empty_cluster_fails_without_panicking(tc: TestCluster) {
    let Some(c) = empty(tc).await else {
        return;
    };
    let report = doctor(&c).await;
    assert_eq!(report.status, Status::Fail);
    let failed = failed_ids(&report);
    assert!(
        failed.contains(&"dashboard-route") && failed.contains(&"istio"),
        "{failed:?}"
    );
    assert!(
        report
            .check("dashboard-route")
            .unwrap()
            .summary
            .contains("Gateway API CRDs are missing")
    );
}

async fn api_errors_name_the_resource_and_are_not_verdicts_body(tc: TestCluster) {
    // A 500 on one list is kfctl failing to look, not a check failing:
    // doctor returns an error naming what it could not read.
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.sim().fail_next(Some("list"), Some("networkpolicies"), 500, 1);
    let err = doctor::run(&c.client, &DoctorConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("listing networkpolicies.networking.k8s.io"), "{err}");
    // The next run (no fault left) is healthy again.
    assert_eq!(doctor(&c).await.exit_code(), 0);
}

async fn forbidden_reads_fail_only_the_checks_that_need_them_body(tc: TestCluster) {
    // With too little RBAC, the checks that need the forbidden kind say so;
    // the others still judge the cluster.
    let Some(c) = healthy(tc).await else {
        return;
    };
    for denied in ["networkpolicies", "pods"] {
        c.sim().fail_next(Some("list"), Some(denied), 403, 1);
        fails_without(&doctor(&c).await, denied);
    }
}

/// What a doctor that may not read `denied` reports: the checks that need
/// it fail, saying so; the others still judge the cluster.
fn fails_without(report: &Report, denied: &str) {
    match denied {
        "networkpolicies" => only_fails(
            report,
            "network-policies",
            "cannot read networkpolicies",
            "kubectl auth can-i list networkpolicies -A",
        ),
        "pods" => assert_eq!(
            failed_ids(report),
            ["gpu-notebooks", "pvcviewer-rwo"],
            "{}",
            report.to_table()
        ),
        other => panic!("no expectation for a doctor without {other}"),
    }
}

/// Real RBAC on the real API server: the 403s the kube-sim test above injects.
#[test]
fn forbidden_reads_under_real_rbac_fail_only_their_checks() {
    kube_sim::run_on(
        "forbidden_reads_under_real_rbac_fail_only_their_checks",
        kube_sim::Backend::ApiServer,
        true,
        forbidden_reads_under_real_rbac,
    );
}

async fn forbidden_reads_under_real_rbac(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    for denied in ["networkpolicies", "pods"] {
        let reader = reader_without(&c, denied).await;
        let report = doctor::run(&reader, &DoctorConfig::default())
            .await
            .expect("doctor runs");
        fails_without(&report, denied);
    }
}

/// A client for a ServiceAccount that may get and list everything doctor
/// reads except `denied` (a resource's plural).
async fn reader_without(c: &Cluster, denied: &str) -> kube::Client {
    let reads: [(&str, &[&str]); 10] = [
        (
            "",
            &[
                "services",
                "pods",
                "persistentvolumeclaims",
                "namespaces",
                "configmaps",
                "secrets",
            ],
        ),
        ("apps", &["deployments"]),
        ("coordination.k8s.io", &["leases"]),
        ("apiextensions.k8s.io", &["customresourcedefinitions"]),
        ("gateway.networking.k8s.io", &["httproutes", "referencegrants"]),
        ("kubeflow.org", &["notebooks", "profiles", "pvcviewers"]),
        ("tensorboard.kubeflow.org", &["tensorboards"]),
        ("networking.k8s.io", &["networkpolicies"]),
        ("networking.istio.io", &["*"]),
        ("security.istio.io", &["*"]),
    ];
    let rules: Vec<_> = reads
        .iter()
        .map(|(group, resources)| {
            let allowed: Vec<&str> = resources.iter().copied().filter(|r| *r != denied).collect();
            json!({"apiGroups": [group], "resources": allowed, "verbs": ["get", "list"]})
        })
        .filter(|rule| rule["resources"].as_array().is_some_and(|r| !r.is_empty()))
        .collect();
    let name = format!("doctor-without-{denied}");
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": KF}]);
    let admin = &c.client;
    let apply = |ar: kube::api::ApiResource, ns: Option<&str>, obj: serde_json::Value| {
        let api: kube::Api<kube::api::DynamicObject> = match ns {
            Some(ns) => kube::Api::namespaced_with(admin.clone(), ns, &ar),
            None => kube::Api::all_with(admin.clone(), &ar),
        };
        let name = name.clone();
        async move {
            let params = kube::api::PatchParams::apply("kfctl-test").force();
            api.patch(&name, &params, &kube::api::Patch::Apply(&obj))
                .await
                .unwrap_or_else(|e| panic!("applying {} {name}: {e}", ar.kind));
        }
    };
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let erase = kfctl::resources::of::<ServiceAccount>;
    apply(
        erase(),
        Some(KF),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": KF}}),
    )
    .await;
    apply(
        kfctl::resources::of::<ClusterRole>(),
        None,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}),
    )
    .await;
    apply(
        kfctl::resources::of::<ClusterRoleBinding>(),
        None,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject,
        }),
    )
    .await;
    let sa: kube::Api<ServiceAccount> = kube::Api::namespaced(admin.clone(), KF);
    let token = sa
        .create_token_request(&name, &Default::default(), &Default::default())
        .await
        .unwrap_or_else(|e| panic!("a token for {name}: {e}"))
        .status
        .and_then(|s| s.token)
        .unwrap_or_else(|| panic!("the API server issued no token for {name}"));
    let mut config = c.tc.kube_config().await.expect("kube config");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let client = kube::Client::try_from(config).expect("client");
    // The authorizer learns of new bindings from a watch: wait until it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let services: kube::Api<kube::api::DynamicObject> =
        kube::Api::all_with(client.clone(), &kfctl::resources::service());
    while let Err(e) = services.list(&Default::default()).await {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} cannot list services within 20 s: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
}

#[tokio::test]
async fn doctor_runs_on_the_e2e_cluster() {
    // On a real cluster (KFLITE_E2E_KUBECONFIG) nothing can be assumed about
    // its health; doctor must read it all and give every failure a fix.
    let test = "doctor_runs_on_the_e2e_cluster";
    if std::env::var_os("KFLITE_E2E_KUBECONFIG").is_none_or(|v| v.is_empty()) {
        testkit::skip(
            test,
            "KFLITE_E2E_KUBECONFIG is not set (the fixtures cover kube-sim and a real API server)",
        );
        return;
    }
    let cluster = kube_sim::TestCluster::start().expect("cluster");
    let client = cluster.client().await.expect("client");
    let report = doctor::run(&client, &DoctorConfig::default())
        .await
        .expect("doctor reads the cluster");
    eprintln!("{}", report.to_table());
    assert_eq!(report.checks.len(), 13);
    for c in report.checks.iter().filter(|c| c.status == Status::Fail) {
        assert!(
            c.fix.as_deref().is_some_and(|f| !f.is_empty()),
            "{} has no fix",
            c.id
        );
    }
}
