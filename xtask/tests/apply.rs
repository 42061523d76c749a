//! `cargo xtask apply` is `kfctl apply`: the same flags, the same summary.

mod common;

use kube_sim::TestCluster;

#[test]
fn xtask_apply_runs_kfctl_apply() {
    const TEST: &str = "xtask_apply_runs_kfctl_apply";
    let Some(kubectl) = testkit::require_tool(TEST, "kubectl") else {
        return;
    };
    let tc = TestCluster::start().expect("test cluster");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ns = runtime.block_on(tc.namespace("xtask-apply")).expect("namespace");
    let dir = common::tempdir();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("namespace: {ns}\nresources:\n- cm.yaml\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-xtask\ndata:\n  k: v\n",
    )
    .unwrap();
    let kubeconfig = tc.kubeconfig_path().display().to_string();
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "apply".to_string(),
            common::path_str(dir.path()).to_string(),
            "--kubeconfig".into(),
            kubeconfig.clone(),
            "--applyset-namespace".into(),
            ns.clone(),
            "-o".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| -> serde_json::Value {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        serde_json::from_str(&common::xtask_ok(&a)).expect("-o json")
    };
    let first = run(args(&[]));
    assert_eq!(
        first["created"],
        serde_json::json!([format!("configmap/from-xtask -n {ns}")])
    );
    let mut get = tc.kubectl(&kubectl);
    get.args([
        "get",
        "configmap",
        "from-xtask",
        "-n",
        &ns,
        "-o",
        "jsonpath={.data.k}",
    ]);
    assert_eq!(common::run(&mut get), "v");
    let again = run(args(&["--dry-run"]));
    assert_eq!(again["unchanged"].as_array().map(Vec::len), Some(1), "{again}");
    assert_eq!(again["dry_run"], true);
}
