//! The `kfctl` binary against fixture clusters: table output compared with
//! snapshots generated from the fixtures (`KFCTL_BLESS=1` rewrites them),
//! JSON output against the field tables in docs/kfctl.md, exit codes and
//! completions.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use kube_sim::TestCluster;
use serde_json::Value;

// Each test changes cluster-wide objects: a cluster of its own.
kube_sim::on_each_backend!(
    private:
    doctor_table_on_the_healthy_fixture,
    doctor_table_on_a_broken_fixture,
    list_tables,
    json_fields_are_the_documented_ones,
    json_is_stable_across_runs,
    profile_add_and_notebook_create_through_the_binary,
);

fn kfctl(c: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kfctl"))
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args(args)
        .env_remove("KFCTL_DB_URL")
        .output()
        .expect("kfctl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var("KFCTL_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with KFCTL_BLESS=1 cargo nextest run -p kfctl --test cli",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{name} differs from {} (KFCTL_BLESS=1 to accept)",
        path.display()
    );
}

async fn doctor_table_on_the_healthy_fixture(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let started = std::time::Instant::now();
    let out = kfctl(&c, &["doctor"]);
    eprintln!("kfctl doctor on the healthy fixture: {:?}", started.elapsed());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    snapshot("doctor-healthy", &stdout(&out));
}

async fn doctor_table_on_a_broken_fixture(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    c.delete("Pod", USER_NS, "pvcviewer-viewer-5d9f7c-abcde").await;
    c.apply(viewer_pod("node-b", true)).await;
    c.delete("ConfigMap", USER_NS, "kfp-launcher").await;
    let out = kfctl(&c, &["doctor"]);
    assert_eq!(out.status.code(), Some(1), "a failing check exits 1");
    snapshot("doctor-broken", &stdout(&out));
}

async fn list_tables(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    for (name, args) in [
        ("urls", vec!["urls"]),
        ("notebook-list", vec!["notebook", "list", "-A"]),
        ("profile-list", vec!["profile", "list"]),
    ] {
        let out = kfctl(&c, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        snapshot(name, &stdout(&out));
    }
}

/// Field names documented under `<!-- json:SECTION -->` in docs/kfctl.md.
fn documented(section: &str) -> BTreeSet<String> {
    let doc = testkit::workspace_root().join("docs/kfctl.md");
    let text = std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let marker = format!("<!-- json:{section} -->");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/kfctl.md has no {marker}"));
    let fields: BTreeSet<String> = text[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .filter(|c| c.starts_with('`'))
        .map(|c| c.trim_matches('`').to_string())
        .collect();
    assert!(!fields.is_empty(), "no fields under {marker}");
    fields
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("a JSON object").keys().cloned().collect()
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = kfctl(c, &all);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} -o json is not JSON ({e}): {}", stdout(&out)))
}

async fn json_fields_are_the_documented_ones(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    // A failing check too, so `fix` and `problems` carry values.
    c.delete("Service", KF, "katib-ui").await;
    let report = json(&c, &["doctor"]);
    assert_eq!(keys(&report), documented("doctor"));
    assert_eq!(report["schema"], "kfctl.doctor/v1");
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(keys(check), documented("doctor-check"), "{check}");
    }
    for (section, args) in [
        ("profile-list", vec!["profile", "list"]),
        ("notebook-list", vec!["notebook", "list", "-A"]),
        ("urls", vec!["urls"]),
    ] {
        let rows = json(&c, &args);
        let rows = rows
            .as_array()
            .unwrap_or_else(|| panic!("{section}: not an array"));
        assert!(!rows.is_empty(), "{section}: the fixture has rows");
        for row in rows {
            assert_eq!(keys(row), documented(section), "{section}: {row}");
        }
    }
    // YAML is the same structure.
    let out = kfctl(&c, &["doctor", "-o", "yaml"]);
    let yaml: Value = serde_yaml_ng::from_slice(&out.stdout).expect("YAML");
    assert_eq!(yaml, report);
}

async fn json_is_stable_across_runs(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let one = stdout(&kfctl(&c, &["doctor", "-o", "json"]));
    let two = stdout(&kfctl(&c, &["doctor", "-o", "json"]));
    assert_eq!(one, two);
}

async fn profile_add_and_notebook_create_through_the_binary(tc: TestCluster) {
    let Some(c) = healthy(tc).await else {
        return;
    };
    let out = kfctl(&c, &["profile", "add", "bob@example.com", "-n", "team-bob"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("profile team-bob created for bob@example.com"));
    let again = kfctl(&c, &["profile", "add", "bob@example.com", "-n", "team-bob"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("Profile team-bob already exists (owner bob@example.com)")
    );

    let out = kfctl(&c, &["notebook", "create", "big", "--gpu", "-n", USER_NS]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "warning: image ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda-full:v1.10.0"
        ),
        "{err}"
    );
    assert!(err.contains("fix: use an image with PyTorch >= 2.7"), "{err}");

    let bad = kfctl(&c, &["notebook", "create", "Bad_Name", "-n", USER_NS]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Bad_Name"));
}

#[test]
fn dry_run_prints_the_objects_without_a_cluster() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kfctl"))
            .args(args)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output()
            .unwrap()
    };
    let out = run(&["profile", "add", "user@example.com", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metadata"]["name"], "kubeflow-user-example-com");
    assert_eq!(v["spec"]["owner"]["name"], "user@example.com");

    let out = run(&[
        "notebook",
        "create",
        "nb",
        "--gpu",
        "--image",
        "img:1",
        "-n",
        "ns",
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spec"]["template"]["spec"]["runtimeClassName"], "nvidia");

    // Without -n and without a kubeconfig: the `default` namespace.
    let out = run(&["notebook", "create", "nb", "--dry-run", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metadata"]["namespace"], "default");

    // With a workspace: the PVC first, then the Notebook, as one stream.
    let out = run(&[
        "notebook",
        "create",
        "nb",
        "-n",
        "ns",
        "--workspace",
        "5Gi",
        "--dry-run",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let kinds: Vec<String> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            use serde::Deserialize as _;
            Value::deserialize(d).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Notebook"]);
    let out = run(&[
        "notebook",
        "create",
        "nb",
        "-n",
        "ns",
        "--workspace",
        "5Gi",
        "--dry-run",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["metadata"]["name"], "nb-workspace");
    assert_eq!(v[1]["kind"], "Notebook");
}

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(env!("CARGO_BIN_EXE_kfctl"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in [
            "doctor",
            "profile",
            "notebook",
            "urls",
            "render",
            "gpu",
            "completions",
        ] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

#[test]
fn render_matches_the_reference_output() {
    let Some(shared) = testkit::require_shared("render_matches_the_reference_output") else {
        return;
    };
    // A small corpus case keeps this quick; manifest-render's own tests cover the rest.
    let list = std::fs::read_to_string(shared.join("reference/corpus.list")).expect("corpus.list");
    let dir = list
        .lines()
        .map(str::trim)
        .find(|d| d.ends_with("common/kubeflow-namespace/base"))
        .expect("kubeflow-namespace/base in the corpus");
    let upstream = shared.join("upstream");
    let input: PathBuf = upstream.join("git").join(dir);
    let expected_name = format!("{}.yaml", dir.replace('/', "__"));
    let expected = std::fs::read_to_string(shared.join("reference/corpus").join(&expected_name))
        .unwrap_or_else(|e| panic!("reference/corpus/{expected_name}: {e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_kfctl"))
        .arg("render")
        .arg(&input)
        .arg("--mirror")
        .arg(&upstream)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn every_check_is_in_the_runbook_table() {
    let doc = std::fs::read_to_string(testkit::workspace_root().join("docs/kfctl.md")).unwrap();
    let section = &doc[doc.find("## doctor: the runbook").expect("runbook section")..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let documented: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(id, _)| id.to_string())
        .collect();
    let config = kfctl::doctor::DoctorConfig::default();
    let mut ids: Vec<String> = kfctl::doctor::checks::run(&Default::default(), &config)
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.push("kfp-database".into());
    assert_eq!(
        documented, ids,
        "docs/kfctl.md's runbook table, in doctor's order"
    );
}

#[test]
fn gpu_lint_of_a_dry_run_notebook() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kfctl"))
            .args(args)
            .output()
            .unwrap()
    };
    let nb = run(&[
        "notebook",
        "create",
        "nb",
        "--gpu",
        "--image",
        "img:1",
        "-n",
        "ns",
        "--dry-run",
    ]);
    let file = dir.path().join("nb.yaml");
    std::fs::write(&file, &nb.stdout).unwrap();
    let out = run(&["gpu", "lint", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], "gpu-probe/v1");
    assert_eq!(report["status"], "ok", "{report}");
    // Without --gpu settings the lint fails, and kfctl exits 1.
    let broken = String::from_utf8(nb.stdout)
        .unwrap()
        .replace("runtimeClassName: nvidia", "runtimeClassName: runc");
    std::fs::write(&file, broken).unwrap();
    let out = run(&["gpu", "lint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("set runtimeClassName: nvidia"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unreachable_cluster_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kube_sim::kubeconfig_yaml(&format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kfctl"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("kfctl: listing httproutes.gateway.networking.k8s.io in kubeflow"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kfctl"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "urls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kubeconfig"));
}
