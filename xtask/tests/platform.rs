//! The platform as users install it: `cargo xtask render` of overlays/homelab,
//! then `kubectl apply --server-side` after the CRDs the cluster provides
//! itself (cert-manager, Gateway API), as on the owner's cluster — on kube-sim
//! and on the real control plane (with Gateway API v1.2.1's own experimental
//! CRDs, schemas and CEL rules included).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_sim::TestCluster;

kube_sim::on_each_backend!(private: rendered_platform_applies_server_side);

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

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize as _;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde_json::Value::deserialize(d).expect("rendered YAML parses"))
        .collect()
}

/// Whether a webhook in `hooks` that fails closed intercepts updates of `obj`.
fn guarded_by(hooks: &[serde_json::Value], obj: &serde_json::Value) -> bool {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let plural = format!(
        "{}s",
        obj["kind"].as_str().unwrap_or_default().to_ascii_lowercase()
    );
    let has = |list: &serde_json::Value, want: &str| {
        list.as_array()
            .is_some_and(|a| a.iter().any(|v| v == "*" || v == want))
    };
    hooks
        .iter()
        .flat_map(|h| h["webhooks"].as_array().into_iter().flatten())
        .filter(|w| w["failurePolicy"] != "Ignore")
        .flat_map(|w| w["rules"].as_array().into_iter().flatten())
        .any(|r| {
            has(&r["apiGroups"], group) && has(&r["resources"], &plural) && has(&r["operations"], "UPDATE")
        })
}

/// `(kind, namespace, name) -> resourceVersion` of every object of `file`, as the cluster has them.
fn resource_versions(tc: &TestCluster, kubectl: &Path, file: &Path) -> Vec<(String, String)> {
    let mut c = tc.kubectl(kubectl);
    c.args(["get", "-o", "json", "-f"]).arg(file);
    let o = run(c);
    assert!(o.status.success(), "kubectl get -f: {}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("kubectl prints JSON");
    let mut out: Vec<(String, String)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let m = &i["metadata"];
            (
                format!("{}/{}/{}", i["kind"], m["namespace"], m["name"]),
                m["resourceVersion"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn rendered_platform_applies_server_side(tc: TestCluster) {
    const TEST: &str = "rendered_platform_applies_server_side";
    let Some(shared) = testkit::require_shared(TEST) else {
        return;
    };
    let Some(kubectl) = testkit::require_tool(TEST, "kubectl") else {
        return;
    };
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

    // cert-manager's CRDs (its own webhook configuration would need its pods).
    let cert_manager = dir.path().join("cert-manager-crds.json");
    let corpus = shared
        .join("reference/corpus/github.com__kubeflow__manifests__v1.11.0__common__cert-manager__base.yaml");
    let crds: Vec<serde_json::Value> = {
        use serde::Deserialize as _;
        let text = std::fs::read_to_string(&corpus).unwrap();
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde_json::Value::deserialize(d).expect("cert-manager YAML parses"))
            .filter(|v| v["kind"] == "CustomResourceDefinition")
            .collect()
    };
    assert!(!crds.is_empty(), "cert-manager's CRDs in {}", corpus.display());
    kube_sim::write_list(&cert_manager, &crds).unwrap();
    apply(&tc, &kubectl, &cert_manager);
    // The real API server gets the Gateway API release the owner's cluster runs.
    let gateway = match tc.backend() {
        kube_sim::Backend::ApiServer => kube_sim::gateway_api_release(&shared),
        kube_sim::Backend::KubeSim => gateway_crds(dir.path()),
    };
    apply(&tc, &kubectl, &gateway);
    // Webhook configurations last, as `kfctl apply` does: a webhook whose pod
    // is not running yet refuses what it guards.
    let docs = documents(&yaml);
    let is_webhook = |d: &serde_json::Value| {
        matches!(
            d["kind"].as_str(),
            Some("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration")
        )
    };
    let objects = dir.path().join("objects.json");
    let webhooks = dir.path().join("webhooks.json");
    let (hooks, rest): (Vec<_>, Vec<_>) = docs.iter().cloned().partition(is_webhook);
    kube_sim::write_list(&objects, &rest).unwrap();
    kube_sim::write_list(&webhooks, &hooks).unwrap();
    let out = apply(&tc, &kubectl, &objects) + &apply(&tc, &kubectl, &webhooks);
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
    let before = resource_versions(&tc, &kubectl, &platform);
    assert_eq!(before.len(), ids.len());
    // On the real API server a webhook with no pod behind it (there is no
    // kubelet) refuses every write of what it guards, even a no-op: the second
    // pass leaves those objects out (their resourceVersions are still compared).
    let again: Vec<serde_json::Value> = match tc.backend() {
        kube_sim::Backend::ApiServer => docs.iter().filter(|d| !guarded_by(&hooks, d)).cloned().collect(),
        kube_sim::Backend::KubeSim => docs.clone(),
    };
    let second = dir.path().join("again.json");
    kube_sim::write_list(&second, &again).unwrap();
    apply(&tc, &kubectl, &second);
    assert_eq!(
        resource_versions(&tc, &kubectl, &platform),
        before,
        "a second apply must be a no-op"
    );
}
