//! `kfctl apply` / `kfctl diff` against `kube_sim::TestCluster` (kube-sim, or
//! the real cluster KFLITE_E2E_KUBECONFIG names), with real kubectl as the
//! oracle where interop matters: the ApplySet it sees, the diff it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use kfctl::apply::applyset::{self, Parent};
use kube_sim::TestCluster;
use serde::Deserialize as _;
use serde_json::Value;

/// `kfctl --kubeconfig K ARGS...` in-process: (exit code, stdout, stderr).
async fn kfctl(tc: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["kfctl".to_string(), "--kubeconfig".into()];
    argv.push(tc.kubeconfig_path().display().to_string());
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli =
        <kfctl::cli::Cli as clap::Parser>::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match kfctl::cli::run(&cli, &mut out, &mut err).await {
        Ok(c) => c,
        Err(e) => {
            err.extend_from_slice(format!("kfctl: {e}\n").as_bytes());
            2
        }
    };
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn summary(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("-o json: {e}:\n{stdout}"))
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

fn kubectl_ok(tc: &TestCluster, kubectl: &Path, args: &[&str]) -> String {
    let mut c = tc.kubectl(kubectl);
    c.args(args);
    let o = c
        .output()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
    assert!(
        o.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn apply_file(tc: &TestCluster, kubectl: &Path, file: &Path) {
    tc.kubectl_apply_server_side(kubectl, file)
        .unwrap_or_else(|e| panic!("{e}"));
}

fn write(path: &Path, text: &str) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn gateway_api_crds(shared: &Path) -> PathBuf {
    shared.join("upstream/http/github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/experimental-install.yaml")
}

fn cert_manager(shared: &Path) -> PathBuf {
    shared.join("reference/corpus/github.com__kubeflow__manifests__v1.11.0__common__cert-manager__base.yaml")
}

/// The Gateway route-controller's ConfigMap names (kube-system/homelab-gateway).
fn gateway(dir: &Path) -> PathBuf {
    let path = dir.join("gateway.yaml");
    write(
        &path,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: homelab-gateway\n  namespace: kube-system\nspec:\n  gatewayClassName: cilium\n  listeners:\n  - name: http\n    protocol: HTTP\n    port: 80\n",
    );
    path
}

/// `(kind, name)` of every document of a YAML stream (the render's objects, as kubectl reads them).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `kind/name resourceVersion` of every object in `file`, as kubectl reads them.
fn resource_versions(tc: &TestCluster, kubectl: &Path, file: &Path) -> String {
    kubectl_ok(
        tc,
        kubectl,
        &[
            "get",
            "-f",
            file.to_str().unwrap(),
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name} {.metadata.resourceVersion}{\"\\n\"}{end}",
        ],
    )
}

/// DIR rendered as kfctl apply renders it (offline: mirror only).
fn render(dir: &Path, mirror: Option<PathBuf>) -> String {
    let request = kfctl::overlay::RenderRequest {
        dir: dir.to_path_buf(),
        mirror,
        offline: true,
        ..Default::default()
    };
    request
        .render()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .built
        .into_rendered()
        .yaml
}

fn render_homelab(shared: &Path) -> String {
    render(
        &testkit::workspace_root().join("overlays/homelab"),
        Some(shared.join("upstream")),
    )
}

fn homelab_args(shared: &Path) -> Vec<String> {
    vec![
        "apply".into(),
        testkit::workspace_root()
            .join("overlays/homelab")
            .display()
            .to_string(),
        "--mirror".into(),
        shared.join("upstream").display().to_string(),
        "--offline".into(),
        "-o".into(),
        "json".into(),
    ]
}

/// kube-sim with Gateway API v1.2.1's CRDs, the Gateway and (when asked)
/// cert-manager, as the owner's cluster has them before the platform.
/// Installing the whole platform is not something a test does to a real cluster.
fn platform_cluster(
    test: &str,
    with_cert_manager: bool,
) -> Option<(PathBuf, PathBuf, TestCluster, tempfile::TempDir)> {
    let shared = testkit::require_shared(test)?;
    let kubectl = testkit::require_tool(test, "kubectl")?;
    let tc = TestCluster::start().expect("test cluster");
    if tc.is_real() {
        testkit::skip(test, "installs the whole platform; runs on kube-sim only");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    if with_cert_manager {
        apply_file(&tc, &kubectl, &cert_manager(&shared));
    }
    apply_file(&tc, &kubectl, &gateway_api_crds(&shared));
    apply_file(&tc, &kubectl, &gateway(dir.path()));
    Some((shared, kubectl, tc, dir))
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_applies_in_one_run_and_a_second_run_changes_nothing() {
    const TEST: &str = "apply::platform_applies_in_one_run_and_a_second_run_changes_nothing";
    let Some((shared, kubectl, tc, dir)) = platform_cluster(TEST, true) else {
        return;
    };

    let args = homelab_args(&shared);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = kfctl(&tc, &args).await;
    assert_eq!(code, 0, "first run:\n{out}\n{err}");
    let first = summary(&out);
    assert_eq!(first["failed"], serde_json::json!([]), "{err}");

    // Every rendered object exists, as kubectl reads them back.
    let platform = dir.path().join("platform.yaml");
    let yaml = render_homelab(&shared);
    std::fs::write(&platform, &yaml).unwrap();
    let n = documents(&yaml).len();
    assert_eq!(ids(&first, "created").len(), n, "every object created in one run");
    let got = kubectl_ok(
        &tc,
        &kubectl,
        &["get", "-o", "name", "-f", platform.to_str().unwrap()],
    );
    assert_eq!(got.lines().count(), n, "kubectl get -f the render");

    let rv = tc.sim().map(|s| s.resource_version());
    let versions = resource_versions(&tc, &kubectl, &platform);
    let (code, out, err) = kfctl(&tc, &args).await;
    assert_eq!(code, 0, "second run:\n{out}\n{err}");
    assert_eq!(
        resource_versions(&tc, &kubectl, &platform),
        versions,
        "no object changed"
    );
    let second = summary(&out);
    assert_eq!(ids(&second, "unchanged").len(), n, "all unchanged: {second}");
    assert!(ids(&second, "created").is_empty() && ids(&second, "configured").is_empty());
    assert_eq!(
        tc.sim().map(|s| s.resource_version()),
        rv,
        "a second run writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cert_manager_nothing_changes_and_the_missing_crds_are_named() {
    const TEST: &str = "apply::without_cert_manager_nothing_changes_and_the_missing_crds_are_named";
    let Some((shared, kubectl, tc, dir)) = platform_cluster(TEST, false) else {
        return;
    };

    let rv = tc.sim().map(|s| s.resource_version());
    let args = homelab_args(&shared);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = kfctl(&tc, &args).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(tc.sim().map(|s| s.resource_version()), rv, "nothing changed");
    let platform = dir.path().join("platform.yaml");
    std::fs::write(&platform, render_homelab(&shared)).unwrap();
    // kubectl finds none of the rendered objects (it cannot even map the kinds whose CRDs are missing).
    let mut get = tc.kubectl(&kubectl);
    get.args(["get", "--ignore-not-found", "-o", "name", "-f"])
        .arg(&platform);
    let got = get.output().expect("kubectl get");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "",
        "no rendered object was created"
    );
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(
        stderr
            .lines()
            .all(|l| l.starts_with("resource mapping not found") || l == "ensure CRDs are installed first"),
        "{stderr}"
    );
    let s = summary(&out);
    assert!(ids(&s, "created").is_empty(), "{s}");
    let text = s["preflight"].to_string();
    // Oracle: the cert-manager kinds the render uses.
    let mut kinds: Vec<String> = documents(&render_homelab(&shared))
        .iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .starts_with("cert-manager.io/")
        })
        .map(|d| format!("{}.cert-manager.io", d["kind"].as_str().unwrap_or_default()))
        .collect();
    kinds.dedup();
    assert!(!kinds.is_empty(), "the platform uses cert-manager");
    for k in &kinds {
        assert!(text.contains(k.as_str()), "{k} named in {text}");
    }
    assert!(
        text.contains("cert-manager.yaml"),
        "the install command is given: {text}"
    );
    // Nothing else is reported missing: Gateway API is installed, the Gateway exists.
    assert_eq!(
        s["preflight"].as_array().unwrap().len(),
        {
            let mut u = kinds.clone();
            u.sort();
            u.dedup();
            u.len()
        },
        "{text}"
    );

    // The table form says the same to a person.
    let (code, table, _) = kfctl(&tc, &args[..args.len() - 2]).await;
    assert_eq!(code, 1);
    assert!(
        table.contains("nothing was changed") && table.contains(&kinds[0]),
        "{table}"
    );
}

/// A small overlay: components `a` and `b`, in namespace `ns`; `b` has a cluster-scoped member.
fn write_overlay(dir: &Path, ns: &str, components: &[&str], a_value: &str) {
    write(&dir.join("a/kustomization.yaml"), "resources:\n- objects.yaml\n");
    write(
        &dir.join("a/objects.yaml"),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a-config\ndata:\n  greeting: {a_value}\n  other: kept\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n  selector:\n    app: a\n"
        ),
    );
    write(&dir.join("b/kustomization.yaml"), "resources:\n- objects.yaml\n");
    write(
        &dir.join("b/objects.yaml"),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b-config\ndata:\n  k: v\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b-secret\nstringData:\n  password: hunter2\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {ns}-b-reader\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n"
        ),
    );
    let resources: String = components.iter().map(|c| format!("- {c}\n")).collect();
    write(
        &dir.join("overlay/kustomization.yaml"),
        &format!(
            "namespace: {ns}\nresources:\n{}",
            resources.replace("- ", "- ../")
        ),
    );
}

async fn small_cluster(test: &str) -> Option<(TestCluster, PathBuf, String)> {
    let kubectl = testkit::require_tool(test, "kubectl")?;
    let tc = TestCluster::start().expect("test cluster");
    let ns = tc.namespace("kfctl-apply").await.expect("namespace");
    Some((tc, kubectl, ns))
}

fn overlay_args<'a>(dir: &'a str, ns: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "apply",
        dir,
        "--applyset",
        "kfctl-test",
        "--applyset-namespace",
        ns,
        "-o",
        "json",
    ];
    v.extend_from_slice(extra);
    v
}

/// Writes the small overlay with `components` and applies it; returns the overlay and kfctl's JSON.
async fn first_apply(tc: &TestCluster, dir: &Path, ns: &str, components: &[&str]) -> (PathBuf, String) {
    write_overlay(dir, ns, components, "hello");
    let overlay = dir.join("overlay");
    let overlay_s = overlay.display().to_string();
    let (code, out, err) = kfctl(tc, &overlay_args(&overlay_s, ns, &[])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    (overlay, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_exactly_the_removed_component() {
    const TEST: &str = "apply::prune_deletes_exactly_the_removed_component";
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (overlay, out) = first_apply(&tc, dir.path(), &ns, &["a", "b"]).await;
    let overlay_s = overlay.display().to_string();
    assert_eq!(ids(&summary(&out), "created").len(), 5, "{out}");
    // An object outside the set, in the same namespace.
    let unrelated = dir.path().join("unrelated.yaml");
    write(
        &unrelated,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\n  namespace: {ns}\ndata:\n  x: y\n"
        ),
    );
    kubectl_ok(&tc, &kubectl, &["create", "-f", unrelated.to_str().unwrap()]);

    // kubectl sees the same set through the member label.
    let id = Parent {
        name: "kfctl-test".into(),
        namespace: ns.clone(),
    }
    .id();
    let members = kubectl_ok(
        &tc,
        &kubectl,
        &[
            "get",
            "configmaps,services,secrets,clusterroles",
            "-A",
            "-l",
            &format!("{}={id}", applyset::PART_OF_LABEL),
            "-o",
            "name",
        ],
    );
    let mut members: Vec<&str> = members.lines().collect();
    members.sort();
    assert_eq!(
        members,
        [
            format!("clusterrole.rbac.authorization.k8s.io/{ns}-b-reader"),
            "configmap/a-config".into(),
            "configmap/b-config".into(),
            "secret/b-secret".into(),
            "service/a".into(),
        ]
    );

    // b leaves the overlay: a dry run lists exactly b's objects and deletes nothing.
    write_overlay(dir.path(), &ns, &["a"], "hello");
    let b_objects = [
        format!("clusterrole.rbac.authorization.k8s.io/{ns}-b-reader"),
        format!("configmap/b-config -n {ns}"),
        format!("secret/b-secret -n {ns}"),
    ];
    let (code, out, err) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &["--prune", "--dry-run"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let s = summary(&out);
    assert_eq!(ids(&s, "pruned"), b_objects, "{out}");
    assert_eq!(s["dry_run"], true);
    kubectl_ok(&tc, &kubectl, &["get", "configmap", "b-config", "-n", &ns]);

    let (code, out, err) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &["--prune"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(ids(&summary(&out), "pruned"), b_objects, "{out}");
    assert_eq!(ids(&summary(&out), "unchanged").len(), 2, "{out}");
    let left = kubectl_ok(
        &tc,
        &kubectl,
        &["get", "configmaps,services,secrets", "-n", &ns, "-o", "name"],
    );
    assert!(
        left.contains("configmap/unrelated"),
        "the unrelated object survives: {left}"
    );
    assert!(
        left.contains("configmap/a-config") && left.contains("service/a"),
        "{left}"
    );
    assert!(!left.contains("b-config") && !left.contains("b-secret"), "{left}");
    let roles = kubectl_ok(&tc, &kubectl, &["get", "clusterroles", "-o", "name"]);
    assert!(
        !roles.contains(&format!("{ns}-b-reader")),
        "cluster-scoped member pruned"
    );
    // The parent now records only what is left.
    let parent = kubectl_ok(
        &tc,
        &kubectl,
        &["get", "secret", "kfctl-test", "-n", &ns, "-o", "json"],
    );
    let parent: Value = serde_json::from_str(&parent).unwrap();
    assert_eq!(
        parent["metadata"]["annotations"][applyset::GROUP_KINDS_ANNOTATION],
        "ConfigMap,Service"
    );
    // The secret's value never reaches the output.
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
}

/// kubectl's own ApplySet (KUBECTL_APPLYSET=true) over the same objects is
/// the oracle for the id and the parent's records.
#[tokio::test(flavor = "multi_thread")]
async fn applyset_records_match_kubectls() {
    const TEST: &str = "apply::applyset_records_match_kubectls";
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_overlay(dir.path(), &ns, &["a", "b"], "hello");
    let yaml = render(&dir.path().join("overlay"), None);
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let mut c = tc.kubectl(&kubectl);
    c.env("KUBECTL_APPLYSET", "true")
        .args([
            "apply",
            "--server-side",
            "--prune",
            "--applyset=kubectl-set",
            "-n",
            &ns,
            "-f",
        ])
        .arg(&file);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "kubectl apply --applyset: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let theirs = kubectl_ok(
        &tc,
        &kubectl,
        &["get", "secret", "kubectl-set", "-n", &ns, "-o", "json"],
    );
    let theirs: Value = serde_json::from_str(&theirs).unwrap();
    let parent = Parent {
        name: "kubectl-set".into(),
        namespace: ns.clone(),
    };
    assert_eq!(theirs["metadata"]["labels"][applyset::ID_LABEL], parent.id());
    let docs = documents(&yaml);
    let record = applyset::Record {
        group_kinds: docs
            .iter()
            .map(|d| {
                let api = d["apiVersion"].as_str().unwrap();
                let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                kfctl::apply::objects::group_kind(group, d["kind"].as_str().unwrap())
            })
            .collect(),
        namespaces: [ns.clone()].into(),
    };
    let ours = parent.object(&record);
    for key in [applyset::GROUP_KINDS_ANNOTATION, applyset::NAMESPACES_ANNOTATION] {
        assert_eq!(
            ours["metadata"]["annotations"][key].as_str().unwrap_or_default(),
            theirs["metadata"]["annotations"][key]
                .as_str()
                .unwrap_or_default(),
            "{key}"
        );
    }
    // kubectl labelled its members as kfctl labels them.
    let members = kubectl_ok(
        &tc,
        &kubectl,
        &[
            "get",
            "configmaps",
            "-n",
            &ns,
            "-l",
            &format!("{}={}", applyset::PART_OF_LABEL, parent.id()),
            "-o",
            "name",
        ],
    );
    assert_eq!(members.lines().count(), 2, "{members}");

    // kubectl's set is kubectl's: kfctl will not apply into (or prune) it.
    let overlay = dir.path().join("overlay").display().to_string();
    let (code, out, err) = kfctl(
        &tc,
        &[
            "apply",
            &overlay,
            "--applyset",
            "kubectl-set",
            "--applyset-namespace",
            &ns,
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("is managed by") && err.contains("kubectl/"), "{err}");
}

/// `a-config`'s greeting as kubectl reads it.
fn greeting(tc: &TestCluster, kubectl: &Path, ns: &str) -> String {
    kubectl_ok(
        tc,
        kubectl,
        &[
            "get",
            "configmap",
            "a-config",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.greeting}",
        ],
    )
}

/// The diff's changed lines: everything but the `diff`/`---`/`+++` headers, which name temp files.
fn body(diff: &str) -> Vec<String> {
    diff.lines()
        .filter(|l| !(l.starts_with("diff ") || l.starts_with("--- ") || l.starts_with("+++ ")))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_after_one_edit_shows_exactly_that_change() {
    const TEST: &str = "apply::diff_after_one_edit_shows_exactly_that_change";
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    if Command::new("diff").arg("--version").output().is_err() {
        return testkit::skip(TEST, "no diff on PATH (kubectl diff needs it too)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (overlay, _) = first_apply(&tc, dir.path(), &ns, &["a", "b"]).await;
    let overlay_s = overlay.display().to_string();

    write_overlay(dir.path(), &ns, &["a", "b"], "goodbye");
    let rv = tc.sim().map(|s| s.resource_version());
    let (code, out, err) = kfctl(
        &tc,
        &[
            "diff",
            &overlay_s,
            "--applyset",
            "kfctl-test",
            "--applyset-namespace",
            &ns,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(tc.sim().map(|s| s.resource_version()), rv, "diff changes nothing");
    let live = greeting(&tc, &kubectl, &ns);
    assert_eq!(live, "hello", "diff changes nothing");
    let lines = body(&out);
    let changed: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .collect();
    assert_eq!(changed, ["-  greeting: hello", "+  greeting: goodbye"], "{out}");
    assert!(
        out.contains(&format!("v1.ConfigMap.{ns}.a-config")),
        "kubectl's file name: {out}"
    );

    // Oracle: kubectl diff --server-side of the same render, as kfctl applies it (member label, field manager).
    let yaml = render(&overlay, None);
    let id = Parent {
        name: "kfctl-test".into(),
        namespace: ns.clone(),
    }
    .id();
    let labelled: Vec<Value> = documents(&yaml)
        .into_iter()
        .map(|mut d| {
            applyset::label_member(&mut d, &id);
            d
        })
        .collect();
    let file = dir.path().join("labelled.json");
    kube_sim::write_list(&file, &labelled).unwrap();
    let mut c = tc.kubectl(&kubectl);
    c.args(["diff", "--server-side", "--field-manager", "kfctl", "-f"])
        .arg(&file);
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "kubectl diff finds a difference: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        body(&out),
        body(&String::from_utf8_lossy(&o.stdout)),
        "same hunks as kubectl diff"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_names_the_other_manager_and_force_takes_over() {
    const TEST: &str = "apply::a_conflict_names_the_other_manager_and_force_takes_over";
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (overlay, _) = first_apply(&tc, dir.path(), &ns, &["a"]).await;
    let overlay_s = overlay.display().to_string();
    let other = dir.path().join("other.yaml");
    write(
        &other,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a-config\n  namespace: {ns}\ndata:\n  greeting: mine\n"
        ),
    );
    kubectl_ok(
        &tc,
        &kubectl,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "someone-else",
            "-f",
            other.to_str().unwrap(),
        ],
    );
    let (code, out, _) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &[])).await;
    assert_eq!(code, 1, "{out}");
    let s = summary(&out);
    let failed = s["failed"].to_string();
    assert!(
        failed.contains(&format!("configmap/a-config -n {ns}")) && failed.contains("someone-else"),
        "{failed}"
    );
    let (code, out, err) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &["--force-conflicts"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let got = greeting(&tc, &kubectl, &ns);
    assert_eq!(got, "hello");
}

/// The Gateway route-controller's ConfigMap names must exist, and before it
/// Gateway API's kinds; each missing piece is named and nothing is applied.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_gateway_is_named_before_anything_changes() {
    const TEST: &str = "apply::a_missing_gateway_is_named_before_anything_changes";
    let Some(shared) = testkit::require_shared(TEST) else {
        return;
    };
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    if tc.is_real() {
        return testkit::skip(
            TEST,
            "installs Gateway API's CRDs cluster-wide; runs on kube-sim only",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("overlay");
    write(
        &overlay.join("kustomization.yaml"),
        &format!("namespace: {ns}\nresources:\n- config.yaml\n"),
    );
    write(
        &overlay.join("config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: route-controller-config\ndata:\n  GATEWAY_NAME: homelab-gateway\n  GATEWAY_NAMESPACE: kube-system\n",
    );
    let overlay_s = overlay.display().to_string();
    let applied = |out: &str| ids(&summary(out), "created").len() + ids(&summary(out), "unchanged").len();

    let (code, out, _) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &[])).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(applied(&out), 0);
    let problems = summary(&out)["preflight"].to_string();
    for kind in kfmodel::gateway::cluster_provided_crds()
        .iter()
        .map(|c| &c.spec.names.kind)
    {
        assert!(
            problems.contains(&format!("{kind}.gateway.networking.k8s.io")),
            "{kind} in {problems}"
        );
    }

    apply_file(&tc, &kubectl, &gateway_api_crds(&shared));
    let (code, out, _) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &[])).await;
    assert_eq!(code, 1, "{out}");
    let problems = summary(&out)["preflight"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]["problem"]
            .as_str()
            .unwrap()
            .contains("Gateway kube-system/homelab-gateway does not exist"),
        "{problems:?}"
    );

    apply_file(&tc, &kubectl, &gateway(dir.path()));
    let (code, out, err) = kfctl(&tc, &overlay_args(&overlay_s, &ns, &[])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(applied(&out), 1);
}

/// The YAML of `--diff` is kubectl's: the live object as kfctl writes it
/// equals `kubectl get -o yaml` of it (keys, quoting, folding).
#[tokio::test(flavor = "multi_thread")]
async fn diff_yaml_is_kubectls() {
    const TEST: &str = "apply::diff_yaml_is_kubectls";
    let Some((tc, kubectl, ns)) = small_cluster(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let long = "word ".repeat(40);
    write(
        &dir.path().join("cm.yaml"),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shapes\n  namespace: {ns}\n  annotations:\n    when: \"2024-01-02T03:04:05Z\"\ndata:\n  long: {long:?}\n  multi: |\n    one\n    two\n  star: \"*x\"\n  yes: \"yes\"\n  number: \"0123\"\n  empty: \"\"\n"
        ),
    );
    kubectl_ok(
        &tc,
        &kubectl,
        &[
            "apply",
            "--server-side",
            "-f",
            dir.path().join("cm.yaml").to_str().unwrap(),
        ],
    );
    let client = tc.client().await.unwrap();
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        &ns,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    let mut live = serde_json::to_value(api.get("shapes").await.unwrap()).unwrap();
    live["metadata"].as_object_mut().unwrap().remove("managedFields");
    let ours = kfctl::apply::diff::to_yaml(live).unwrap();
    let theirs = kubectl_ok(
        &tc,
        &kubectl,
        &["get", "configmap", "shapes", "-n", &ns, "-o", "yaml"],
    );
    assert_eq!(ours, theirs);
}
