//! The controller under failure and misuse (issue #17): failing Secret writes,
//! rotation with a grace period, protected and admin-named namespaces,
//! namespaces that must never hang in Terminating, Events without key ids.
//! kube-sim (or a real cluster) for the API, a real SeaweedFS.

mod common;

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use common::cluster::{Env, wait_for};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, PostParams};
use pipeline_artifacts::reconcile::reconcile;
use pipeline_artifacts::secret::Credentials;
use pipeline_artifacts::settings::{
    ENABLED_LABEL, ERROR_ANNOTATION, FINALIZER, RETIRING_ANNOTATION, ROTATE_ANNOTATION, Settings,
};
use pipeline_artifacts::store::s3_client;
use serde_json::json;

// A control plane of its own each: these tests name namespaces and watch them all.
kube_sim::on_each_backend!(private:
    rotation_keeps_the_old_key_working_for_the_grace_period,
    protected_namespaces_are_never_provisioned_or_cleaned_up,
    cleanup_deletes_only_objects_this_controller_wrote,
    admin_named_namespace_is_refused_and_its_deletion_never_hangs,
    deletion_while_seaweedfs_is_down_retries_visibly_then_completes,
    events_go_to_the_namespace_and_carry_no_key_ids,
);

/// Fault injection exists on kube-sim only.
#[test]
fn secret_writes_failing_50_times_never_leave_more_than_one_key_on_kube_sim() {
    kube_sim::run_on(
        "secret_writes_failing_50_times_never_leave_more_than_one_key",
        kube_sim::Backend::KubeSim,
        false,
        secret_writes_failing_50_times_never_leave_more_than_one_key,
    );
}

async fn put(env: &Env, creds: &Credentials, key: &str) -> Result<(), String> {
    s3_client(&env.sw.endpoints, creds)
        .put_object()
        .bucket("mlpipeline")
        .key(key)
        .body(ByteStream::from(key.as_bytes().to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("?").to_owned())
}

/// A namespace as an earlier controller version leaves it: labelled or not, with our finalizer.
async fn namespace_with_finalizer(env: &Env, name: &str, labelled: bool) {
    let labels = if labelled {
        json!({ENABLED_LABEL: "true"})
    } else {
        json!({})
    };
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels, "finalizers": [FINALIZER]}}),
    )
    .unwrap();
    Api::<Namespace>::all(env.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// A ConfigMap the platform (not this controller) wrote.
async fn platform_configmap(env: &Env, ns: &str, name: &str) {
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": ns}, "data": {"owner": "platform"}}),
    )
    .unwrap();
    let pp = PostParams {
        field_manager: Some("platform-installer".into()),
        ..PostParams::default()
    };
    Api::<ConfigMap>::namespaced(env.client.clone(), ns)
        .create(&pp, &cm)
        .await
        .expect("create platform ConfigMap");
}

async fn configmap_owner(env: &Env, ns: &str, name: &str) -> Option<String> {
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()?;
    cm.data?.get("owner").cloned()
}

async fn secret_writes_failing_50_times_never_leave_more_than_one_key(tc: kube_sim::TestCluster) {
    const T: &str = "secret_writes_failing_50_times_never_leave_more_than_one_key";
    let Some(env) = Env::start(T, tc).await else {
        return;
    };
    let Some(sim) = env.sim(T) else { return };
    let ctx = env.context(Settings::default(), None);
    env.create_namespace("q1", true).await;
    sim.fail_next(Some("patch"), Some("secrets"), 500, 50);
    let (mut failures, mut most) = (0, 0);
    for _ in 0..60 {
        let ns = env.namespace("q1").await.expect("q1 exists");
        let result = reconcile(&ns, &ctx).await;
        most = most.max(env.keys("q1").await.len());
        if result.is_ok() {
            break;
        }
        failures += 1;
    }
    assert_eq!(failures, 50, "every injected Secret write failure was hit");
    assert!(
        most <= 1,
        "SeaweedFS held {most} keys for q1 while Secret writes failed"
    );
    let creds = env.converged("q1").await;
    assert_eq!(env.keys("q1").await, [creds.access_key_id]);
}

async fn rotation_keeps_the_old_key_working_for_the_grace_period(tc: kube_sim::TestCluster) {
    const T: &str = "rotation_keeps_the_old_key_working_for_the_grace_period";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    let settings = Settings {
        rotation_grace: Duration::from_secs(5),
        ..Settings::default()
    };
    env.run(env.context(settings, None));
    env.create_namespace("g1", true).await;
    let old = env.converged("g1").await;
    put(&env, &old, "private-artifacts/g1/before").await.ok();
    env.patch_namespace(
        "g1",
        json!({"metadata": {"annotations": {ROTATE_ANNOTATION: "2026-12-05"}}}),
    )
    .await;
    let new = wait_for("a rotated key", 30, || async {
        let c = env.secret_creds("g1").await?;
        (c.access_key_id != old.access_key_id).then_some(c)
    })
    .await;
    // During the grace period a reader holding the old key keeps working.
    let keys = env.keys("g1").await;
    assert!(
        keys.contains(&old.access_key_id) && keys.contains(&new.access_key_id) && keys.len() == 2,
        "{keys:?}"
    );
    let secret = env.secret("g1").await.unwrap();
    let retiring = secret.metadata.annotations.unwrap_or_default()[RETIRING_ANNOTATION].clone();
    assert!(retiring.contains(&old.access_key_id), "{retiring}");
    assert_eq!(put(&env, &old, "private-artifacts/g1/during-grace").await, Ok(()));
    // After it the old key is gone, from IAM and from S3.
    assert_eq!(env.converged("g1").await, new);
    wait_for("the old key refused by S3", 30, || async {
        (put(&env, &old, "private-artifacts/g1/after-grace").await == Err("InvalidAccessKeyId".into()))
            .then_some(())
    })
    .await;
    let secret = env.secret("g1").await.unwrap();
    assert!(
        !secret
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(RETIRING_ANNOTATION)
    );
    wait_for("the new key accepted by S3", 30, || async {
        put(&env, &new, "private-artifacts/g1/after").await.ok()
    })
    .await;
    env.stop().await;
}

async fn protected_namespaces_are_never_provisioned_or_cleaned_up(tc: kube_sim::TestCluster) {
    const T: &str = "protected_namespaces_are_never_provisioned_or_cleaned_up";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    let settings = Settings {
        protected_namespaces: vec!["kubeflow".into(), "platform".into()],
        ..Settings::default()
    };
    // `kubeflow` labelled; `platform` unlabelled but holding an earlier version's finalizer.
    env.create_namespace("kubeflow", false).await;
    platform_configmap(&env, "kubeflow", "kfp-launcher").await;
    namespace_with_finalizer(&env, "platform", false).await;
    platform_configmap(&env, "platform", "kfp-launcher").await;
    env.run(env.context(settings, None));
    env.patch_namespace(
        "kubeflow",
        json!({"metadata": {"labels": {ENABLED_LABEL: "true"}}}),
    )
    .await;
    let why = env.event("kubeflow", "NamespaceRefused").await;
    assert!(why.contains("protected"), "{why}");
    wait_for("platform's finalizer released", 30, || async {
        env.finalizers("platform").await.is_empty().then_some(())
    })
    .await;
    env.event("platform", "NamespaceRefused").await;
    for ns in ["kubeflow", "platform"] {
        assert!(env.finalizers(ns).await.is_empty(), "{ns}");
        assert!(env.secret(ns).await.is_none(), "{ns}");
        assert!(env.keys(ns).await.is_empty(), "{ns}");
        assert_eq!(
            configmap_owner(&env, ns, "kfp-launcher").await.as_deref(),
            Some("platform")
        );
        assert_eq!(env.cm_count(ns).await, 1, "{ns}");
    }
    env.stop().await;
}

async fn cleanup_deletes_only_objects_this_controller_wrote(tc: kube_sim::TestCluster) {
    const T: &str = "cleanup_deletes_only_objects_this_controller_wrote";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    env.run(env.context(Settings::default(), None));
    env.create_namespace("c1", true).await;
    env.converged("c1").await;
    // The user's own Service with the name of the (disabled) artifact proxy's.
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "ml-pipeline-ui-artifact", "namespace": "c1"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    let pp = PostParams {
        field_manager: Some("someone-else".into()),
        ..PostParams::default()
    };
    let services: Api<Service> = Api::namespaced(env.client.clone(), "c1");
    services.create(&pp, &svc).await.unwrap();
    env.patch_namespace("c1", json!({"metadata": {"labels": {ENABLED_LABEL: null}}}))
        .await;
    wait_for("c1 cleaned up", 30, || async {
        env.finalizers("c1").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(env.cm_count("c1").await, 0, "our ConfigMaps are deleted");
    assert!(env.secret("c1").await.is_none(), "our Secret is deleted");
    assert!(
        services
            .get_opt("ml-pipeline-ui-artifact")
            .await
            .unwrap()
            .is_some(),
        "a Service this controller never wrote is kept"
    );
    env.stop().await;
}

async fn admin_named_namespace_is_refused_and_its_deletion_never_hangs(tc: kube_sim::TestCluster) {
    const T: &str = "admin_named_namespace_is_refused_and_its_deletion_never_hangs";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    // ADMIN_USER set to something else: the collision is found through IAM.
    let settings = Settings {
        admin_user: "not-the-admin".into(),
        ..Settings::default()
    };
    env.run(env.context(settings, None));
    env.create_namespace("kubeflow-admin", true).await;
    let why = env.event("kubeflow-admin", "NamespaceRefused").await;
    assert!(why.contains("admin"), "{why}");
    assert!(env.finalizers("kubeflow-admin").await.is_empty());
    assert!(env.secret("kubeflow-admin").await.is_none());
    // An earlier version's finalizer on it: deletion goes through with a Warning.
    env.patch_namespace("kubeflow-admin", json!({"metadata": {"finalizers": [FINALIZER]}}))
        .await;
    Api::<Namespace>::all(env.client.clone())
        .delete("kubeflow-admin", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("kubeflow-admin deleted", 60, || async {
        env.namespace("kubeflow-admin").await.is_none().then_some(())
    })
    .await;
    let abandoned = wait_for("a CleanupAbandoned Event", 30, || async {
        let mut all = env.events("default").await;
        all.extend(env.events("kubeflow-admin").await);
        all.into_iter()
            .find(|e| e.reason.as_deref() == Some("CleanupAbandoned"))
    })
    .await;
    assert_eq!(abandoned.type_.as_deref(), Some("Warning"));
    // The admin identity is untouched.
    env.sw.store().ensure_bucket().await.expect("admin still works");
    env.stop().await;
}

async fn deletion_while_seaweedfs_is_down_retries_visibly_then_completes(tc: kube_sim::TestCluster) {
    const T: &str = "deletion_while_seaweedfs_is_down_retries_visibly_then_completes";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    env.run(env.context(Settings::default(), None));
    env.create_namespace("t1", true).await;
    env.converged("t1").await;
    env.stop().await;
    env.run(env.context_without_iam(Settings::default()));
    Api::<Namespace>::all(env.client.clone())
        .delete("t1", &DeleteParams::default())
        .await
        .unwrap();
    let error = wait_for("the cleanup error on the namespace", 60, || async {
        env.namespace("t1")
            .await?
            .metadata
            .annotations?
            .get(ERROR_ANNOTATION)
            .cloned()
    })
    .await;
    assert!(error.starts_with("1: ") && error.contains("t1"), "{error}");
    assert_eq!(env.finalizers("t1").await, [FINALIZER]);
    env.stop().await;
    env.run(env.context(Settings::default(), None));
    wait_for("t1 deleted once SeaweedFS answers", 60, || async {
        env.namespace("t1").await.is_none().then_some(())
    })
    .await;
    assert!(env.keys("t1").await.is_empty());
    env.stop().await;
}

async fn events_go_to_the_namespace_and_carry_no_key_ids(tc: kube_sim::TestCluster) {
    const T: &str = "events_go_to_the_namespace_and_carry_no_key_ids";
    let Some(mut env) = Env::start(T, tc).await else {
        return;
    };
    let settings = Settings {
        rotation_grace: Duration::from_secs(1),
        ..Settings::default()
    };
    env.run(env.context(settings, None));
    env.create_namespace("e1", true).await;
    let first = env.converged("e1").await;
    env.patch_namespace(
        "e1",
        json!({"metadata": {"annotations": {ROTATE_ANNOTATION: "now"}}}),
    )
    .await;
    env.event("e1", "CredentialsRotated").await;
    let second = env.converged("e1").await;
    env.event("e1", "CredentialsIssued").await;
    let mut all = env.events("e1").await;
    all.extend(env.events("default").await);
    for e in &all {
        let text = serde_json::to_string(e).unwrap();
        for id in [&first.access_key_id, &second.access_key_id] {
            assert!(!text.contains(id.as_str()), "an Event carries a key id: {text}");
        }
    }
    assert!(
        env.events("default")
            .await
            .iter()
            .all(|e| e.related.as_ref().and_then(|r| r.name.as_deref()) != Some("e1")),
        "Events about e1 belong in e1"
    );
    env.stop().await;
}
