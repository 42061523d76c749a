//! doctor's checks against real manifests: the owner's rendered overlay
//! (`../shared/reference/homelab.yaml`), the upstream bases that carry the
//! traps, and kflite's own manifests. These are the oracles for what the
//! checks call healthy or broken, beside the hand-built fixtures.

mod common;

use std::path::Path;

use kfctl::doctor::checks;
use kfctl::doctor::snapshot::Snapshot;
use kfctl::doctor::{Check, DoctorConfig, Status};
use serde::Deserialize as _;
use serde_json::Value;

fn objects(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn corpus(shared: &Path, dir: &str) -> Vec<Value> {
    objects(&read(
        &shared
            .join("reference/corpus")
            .join(format!("{}.yaml", dir.replace('/', "__"))),
    ))
}

fn judge(objects: &[Value]) -> Vec<Check> {
    let config = DoctorConfig::default();
    checks::run(&Snapshot::from_objects(objects, &config), &config)
}

fn check<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[test]
fn owners_overlay_has_none_of_the_istio_era_traps() {
    let Some(shared) = testkit::require_shared("owners_overlay_has_none_of_the_istio_era_traps") else {
        return;
    };
    let all = objects(&read(&shared.join("reference/homelab.yaml")));
    assert!(all.len() > 300, "homelab.yaml has {} objects", all.len());
    let checks = judge(&all);
    for id in ["network-policies", "istio", "names"] {
        let c = check(&checks, id);
        assert_eq!(c.status, Status::Pass, "{id}: {} {:?}", c.summary, c.problems);
    }
    assert_eq!(check(&checks, "istio").summary, "3 stub CRDs, no Istio objects");
}

#[test]
fn upstream_pipelines_base_trips_network_policies_and_istio() {
    let Some(shared) = testkit::require_shared("upstream_pipelines_base_trips_network_policies_and_istio")
    else {
        return;
    };
    let all = corpus(
        &shared,
        "github.com/kubeflow/manifests/v1.11.0/applications/pipeline/upstream/env/cert-manager/platform-agnostic-multi-user",
    );
    let checks = judge(&all);
    let np = check(&checks, "network-policies");
    assert_eq!(np.status, Status::Fail);
    assert_eq!(np.problems, vec!["NetworkPolicy kubeflow/seaweedfs"]);
    let istio = check(&checks, "istio");
    assert_eq!(istio.status, Status::Fail);
    // Every Istio object the base carries is named (no stub CRDs in it either).
    let istio_objects = all
        .iter()
        .filter(|v| {
            let api = v["apiVersion"].as_str().unwrap_or("");
            api.starts_with("networking.istio.io/") || api.starts_with("security.istio.io/")
        })
        .count();
    assert!(istio_objects > 0);
    let named = istio
        .problems
        .iter()
        .filter(|p| p.ends_with("nothing serves it without Istio"))
        .count();
    assert_eq!(named, istio_objects, "{:?}", istio.problems);
}

#[test]
fn upstream_networkpolicies_base_trips_centraldashboard() {
    let Some(shared) = testkit::require_shared("upstream_networkpolicies_base_trips_centraldashboard") else {
        return;
    };
    let checks = judge(&corpus(
        &shared,
        "github.com/kubeflow/manifests/v1.11.0/common/networkpolicies/base",
    ));
    let np = check(&checks, "network-policies");
    assert_eq!(np.status, Status::Fail);
    assert_eq!(np.problems, vec!["NetworkPolicy kubeflow/centraldashboard"]);
}

#[test]
fn upstream_user_namespace_base_trips_names() {
    let Some(shared) = testkit::require_shared("upstream_user_namespace_base_trips_names") else {
        return;
    };
    let checks = judge(&corpus(
        &shared,
        "github.com/kubeflow/manifests/v1.11.0/common/user-namespace/base",
    ));
    let names = check(&checks, "names");
    assert_eq!(names.status, Status::Fail);
    assert!(
        names
            .problems
            .iter()
            .any(|p| p.contains("Profile \"$(profile-name)\"")),
        "{:?}",
        names.problems
    );
    assert!(
        names.problems.iter().any(|p| p.contains("owner \"$(user)\"")),
        "{:?}",
        names.problems
    );
}

/// The dashboard route's backends against the Services the platform really has.
fn dashboard_checks_with_platform_services(shared: &Path, route: Value) -> Vec<Check> {
    let mut all: Vec<Value> = objects(&read(&shared.join("reference/homelab.yaml")))
        .into_iter()
        .filter(|v| v["kind"] == "Service")
        .collect();
    assert!(all.len() > 10);
    all.push(route);
    judge(&all)
}

#[test]
fn fixture_dashboard_route_backends_are_the_platforms_services() {
    let Some(shared) = testkit::require_shared("fixture_dashboard_route_backends_are_the_platforms_services")
    else {
        return;
    };
    let checks = dashboard_checks_with_platform_services(&shared, common::dashboard_route());
    for id in ["dashboard-route", "dashboard-backends"] {
        let c = check(&checks, id);
        assert_eq!(c.status, Status::Pass, "{id}: {} {:?}", c.summary, c.problems);
    }
}

#[test]
fn kflite_dashboard_manifest_passes_the_dashboard_checks() {
    let test = "kflite_dashboard_manifest_passes_the_dashboard_checks";
    let path = testkit::workspace_root().join("manifests/dashboard-route/httproute.yaml");
    if !path.is_file() {
        testkit::skip(
            test,
            "manifests/dashboard-route/httproute.yaml is not generated yet (cargo xtask generate)",
        );
        return;
    }
    let Some(shared) = testkit::require_shared(test) else {
        return;
    };
    let route = objects(&read(&path))
        .into_iter()
        .find(|v| v["kind"] == "HTTPRoute")
        .expect("an HTTPRoute");
    let checks = dashboard_checks_with_platform_services(&shared, route);
    for id in ["dashboard-route", "dashboard-backends"] {
        let c = check(&checks, id);
        assert_eq!(c.status, Status::Pass, "{id}: {} {:?}", c.summary, c.problems);
    }
}

#[test]
fn route_controller_manifest_is_where_doctor_looks() {
    let dir = testkit::workspace_root().join("manifests/route-controller");
    let rendered =
        manifest_render::render(&dir, &Default::default()).expect("manifests/route-controller renders");
    let deployments: Vec<String> = objects(&rendered.yaml)
        .iter()
        .filter(|v| v["kind"] == "Deployment")
        .map(|v| {
            format!(
                "{}/{}",
                v["metadata"]["namespace"].as_str().unwrap_or(""),
                v["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(deployments, vec![DoctorConfig::default().route_controller]);
}

#[test]
fn kflite_overlay_passes_the_static_checks() {
    // What `kubectl apply` of overlays/homelab would create, before any
    // controller runs: every check that needs no status must already pass.
    let Some(shared) = testkit::require_shared("kflite_overlay_passes_the_static_checks") else {
        return;
    };
    let dir = testkit::workspace_root().join("overlays/homelab");
    let options = manifest_render::Options {
        mirror: Some(shared.join("upstream")),
        ..Default::default()
    };
    let rendered = manifest_render::render(&dir, &options).expect("overlays/homelab renders");
    let all = objects(&rendered.yaml);
    let checks = judge(&all);
    for id in [
        "dashboard-route",
        "dashboard-backends",
        "network-policies",
        "istio",
        "names",
    ] {
        let c = check(&checks, id);
        assert_eq!(c.status, Status::Pass, "{id}: {} {:?}", c.summary, c.problems);
    }
    // route-controller's Deployment is where doctor looks for it.
    let config = DoctorConfig::default();
    let snapshot = Snapshot::from_objects(&all, &config);
    assert!(
        snapshot.route_controller.is_some(),
        "no Deployment {} in the overlay",
        config.route_controller
    );
}
