//! pipeline-artifacts' RBAC is least privilege: every verb its ClusterRole in
//! `manifests/pipeline-artifacts/` grants was used by the e2e suite, as the
//! real API servers' audit logs of the whole run record it; and it cannot
//! read Secrets it does not own.

#[test]
#[ignore = "reads the whole suite's audit log: `cargo xtask test` runs it after the suite"]
fn after_suite_rbac_is_minimal() {
    kube_sim::assert_rbac_minimal("after_suite_rbac_is_minimal", "pipeline-artifacts");
}

/// `kubectl auth can-i` as the controller's ServiceAccount, under the RBAC in manifests/.
#[test]
fn the_controller_cannot_read_other_secrets_on_apiserver() {
    kube_sim::run_on(
        "the_controller_cannot_read_other_secrets_on_apiserver",
        kube_sim::Backend::ApiServer,
        false,
        cannot_read_other_secrets,
    );
}

async fn cannot_read_other_secrets(tc: kube_sim::TestCluster) {
    const TEST: &str = "the_controller_cannot_read_other_secrets_on_apiserver";
    let Some(kubectl) = testkit::require_tool(TEST, "kubectl") else {
        return;
    };
    let home = tc.namespace("kflite").await.expect("namespace");
    let identity = tc
        .controller_identity("pipeline-artifacts", &home)
        .await
        .expect("controller identity");
    let can_i = |args: &[&str]| {
        let mut c = tc.kubectl(&kubectl);
        c.args(["auth", "can-i"])
            .args(args)
            .arg(format!("--as={}", identity.user));
        let out = c.output().expect("kubectl auth can-i");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for (args, want) in [
        (&["get", "secrets", "-n", "kube-system"][..], "no"),
        (
            &["get", "secret/bootstrap-token-abcdef", "-n", "kube-system"][..],
            "no",
        ),
        (&["list", "secrets", "--all-namespaces"][..], "no"),
        (&["get", "configmaps", "-n", "kube-system"][..], "no"),
        (
            &["get", "secret/mlpipeline-minio-artifact", "-n", "team-a"][..],
            "yes",
        ),
        (&["patch", "configmap/kfp-launcher", "-n", "team-a"][..], "yes"),
        (&["delete", "deployment/coredns", "-n", "kube-system"][..], "no"),
    ] {
        assert_eq!(can_i(args), want, "kubectl auth can-i {}", args.join(" "));
    }
}
