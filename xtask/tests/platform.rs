//! The platform as users install it: `cargo xtask render` of overlays/homelab,
//! then `kubectl apply --server-side` on kube-sim after the CRDs the cluster
//! provides itself (cert-manager, Gateway API), as on the owner's cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_sim::TestCluster;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("running {c:?}: {e}"))
}

fn apply(tc: &TestCluster, kubectl: &Path, file: &Path) -> String {
    tc.kubectl_apply_server_side(kubectl, file)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn gateway_crds(dir: &Path) -> PathBuf {
    let path = dir.join("gateway-crds.json");
    kube_sim::write_list(&path, &kfmodel::gateway::cluster_provided_crds()).unwrap();
    path
}

/// `(kind, namespace, name)` of every document in a YAML stream.
fn object_ids(yaml: &str) -> Vec<(String, String, String)> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| {
            let v = serde_json::Value::deserialize(d).expect("rendered YAML parses");
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
        })
        .collect()
}

#[test]
fn rendered_platform_applies_server_side_on_kube_sim() {
    const TEST: &str = "rendered_platform_applies_server_side_on_kube_sim";
    let Some(shared) = testkit::require_shared(TEST) else {
        return;
    };
    let Some(kubectl) = testkit::require_tool(TEST, "kubectl") else {
        return;
    };
    let tc = TestCluster::start().expect("start kube-sim");
    if tc.is_real() {
        // Installing the whole platform is not something a test does to a real cluster.
        return testkit::skip(TEST, "installs the whole platform; runs on kube-sim only");
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = dir.path().join("platform.yaml");
    let mirror = shared.join("upstream");
    // --strict: a lint finding (e.g. `$(var)` text, a kind no CRD serves) fails the render.
    common::xtask_ok(&[
        "render",
        "--strict",
        "--mirror",
        mirror.to_str().unwrap(),
        "-o",
        platform.to_str().unwrap(),
    ]);
    let yaml = std::fs::read_to_string(&platform).unwrap();
    let ids = object_ids(&yaml);
    assert!(
        ids.iter()
            .any(|(k, _, n)| k == "Deployment" && n == "pipeline-artifacts")
            && ids
                .iter()
                .any(|(k, _, n)| k == "Deployment" && n == "route-controller"),
        "the platform runs kflite's controllers"
    );

    apply(
        &tc,
        &kubectl,
        &shared.join(
            "reference/corpus/github.com__kubeflow__manifests__v1.11.0__common__cert-manager__base.yaml",
        ),
    );
    apply(&tc, &kubectl, &gateway_crds(dir.path()));
    let out = apply(&tc, &kubectl, &platform);
    let applied = out.lines().filter(|l| l.ends_with(" serverside-applied")).count();
    assert_eq!(applied, ids.len(), "every rendered object is applied:\n{out}");

    // kubectl reads every object back.
    let mut c = tc.kubectl(&kubectl);
    c.args(["get", "-o", "name", "-f"]).arg(&platform);
    let got = run(c);
    assert!(got.status.success(), "kubectl get -f: {}", text(&got));
    assert_eq!(String::from_utf8_lossy(&got.stdout).lines().count(), ids.len());

    // kflite's controllers landed with their RBAC and the dashboard route.
    for (kind, ns, name) in [
        ("deployment", "kubeflow", "route-controller"),
        ("deployment", "kubeflow", "pipeline-artifacts"),
        ("httproute", "kubeflow", "kubeflow-dashboard"),
    ] {
        let (_, want_ns, _) = ids
            .iter()
            .find(|(k, _, n)| k.eq_ignore_ascii_case(kind) && n == name)
            .unwrap_or_else(|| panic!("{kind} {name} is rendered"));
        let ns = if want_ns.is_empty() { ns } else { want_ns.as_str() };
        let mut c = tc.kubectl(&kubectl);
        c.args(["get", kind, name, "-n", ns, "-o", "name"]);
        let o = run(c);
        assert!(o.status.success(), "{kind} {ns}/{name}: {}", text(&o));
    }

    // Re-applying the same render changes nothing (what ArgoCD's sync loop relies on).
    let rv = tc.sim().map(|s| s.resource_version());
    apply(&tc, &kubectl, &platform);
    assert_eq!(
        tc.sim().map(|s| s.resource_version()),
        rv,
        "a second apply must be a no-op"
    );
}
