//! The controller end to end: kube-sim for the cluster, a real SeaweedFS.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use common::cluster::{Env, wait_for};
use pipeline_artifacts::desired::config_objects;
use pipeline_artifacts::settings::{FINALIZER, STATUS_ANNOTATION, Settings};
use pipeline_artifacts::store::s3_client;
use serde_json::json;
use testsvc::seaweedfs::FailAfterSend;

// A control plane of its own each: these tests name namespaces and watch them all.
kube_sim::on_each_backend!(private:
    labelling_yields_secret_and_configmaps_with_scoped_working_keys,
    iam_500_after_create_access_key_converges_to_one_key,
    rotation_annotation_replaces_the_key,
    deleted_or_edited_secret_is_repaired,
    unlabel_and_delete_remove_user_keys_and_policy_but_keep_artifacts,
    lifecycle_rule_follows_retention_days,
    iam_outage_still_writes_configmaps_and_reports_not_ready,
    artifact_proxy_follows_the_label,
);

/// Fault injection exists on kube-sim only.
#[test]
fn api_500_on_secret_write_converges_to_one_key_on_kube_sim() {
    kube_sim::run_on(
        "api_500_on_secret_write_converges_to_one_key",
        kube_sim::Backend::KubeSim,
        false,
        api_500_on_secret_write_converges_to_one_key,
    );
}

/// Fault injection exists on kube-sim only.
#[test]
fn controller_killed_between_key_and_secret_converges_to_one_key_on_kube_sim() {
    kube_sim::run_on(
        "controller_killed_between_key_and_secret_converges_to_one_key",
        kube_sim::Backend::KubeSim,
        false,
        controller_killed_between_key_and_secret_converges_to_one_key,
    );
}

async fn put(env: &Env, creds: &pipeline_artifacts::secret::Credentials, key: &str) -> Result<(), String> {
    let client = s3_client(&env.sw.endpoints, creds);
    let body = ByteStream::from(key.as_bytes().to_vec());
    client
        .put_object()
        .bucket("mlpipeline")
        .key(key)
        .body(body)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("?").to_owned())
}

/// Retries a put while SeaweedFS's S3 server has not yet loaded a fresh identity.
async fn put_eventually(env: &Env, creds: &pipeline_artifacts::secret::Credentials, key: &str) {
    let mut last = String::new();
    for _ in 0..50 {
        match put(env, creds, key).await {
            Ok(()) => return,
            Err(code) => last = code,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("put {key} kept failing: {last}");
}

async fn labelling_yields_secret_and_configmaps_with_scoped_working_keys(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start(
        "labelling_yields_secret_and_configmaps_with_scoped_working_keys",
        tc,
    )
    .await
    else {
        return;
    };
    let settings = Settings::default();
    env.run(env.context(settings.clone(), None));
    env.create_namespace("team-a", true).await;
    env.create_namespace("team-b", true).await;
    env.create_namespace("unrelated", false).await;
    let a = env.converged("team-a").await;
    let b = env.converged("team-b").await;
    assert_ne!(a.access_key_id, b.access_key_id);

    // The ConfigMaps are the hook's objects (data and annotations as desired).
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.client.clone(), "team-a");
    for want in config_objects("team-a", &settings) {
        let got = cms.get(want["metadata"]["name"].as_str().unwrap()).await.unwrap();
        let got = serde_json::to_value(&got).unwrap();
        assert_eq!(got["data"], want["data"]);
        if let Some(ann) = want["metadata"]["annotations"].as_object() {
            for (k, v) in ann {
                assert_eq!(&got["metadata"]["annotations"][k], v);
            }
        }
    }
    let ns = env.namespace("team-a").await.unwrap();
    assert!(
        ns.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_string())
    );
    assert_eq!(
        ns.metadata
            .annotations
            .unwrap_or_default()
            .get(STATUS_ANNOTATION)
            .map(String::as_str),
        Some("True")
    );
    let plain = env.namespace("unrelated").await.unwrap();
    assert!(plain.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(env.secret("unrelated").await.is_none());

    // Real S3 puts and gets with the namespace's own key.
    put_eventually(&env, &a, "private-artifacts/team-a/v2/artifacts/run1/out").await;
    let got = s3_client(&env.sw.endpoints, &a)
        .get_object()
        .bucket("mlpipeline")
        .key("private-artifacts/team-a/v2/artifacts/run1/out")
        .send()
        .await
        .expect("get own artifact");
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"private-artifacts/team-a/v2/artifacts/run1/out"
    );
    assert_eq!(
        put(&env, &a, "private-artifacts/team-b/stolen").await,
        Err("AccessDenied".into())
    );
    let other = s3_client(&env.sw.endpoints, &a)
        .get_object()
        .bucket("mlpipeline")
        .key("private-artifacts/team-b/x")
        .send()
        .await
        .expect_err("reading another namespace's prefix is denied");
    assert_eq!(other.code(), Some("AccessDenied"));
    put_eventually(&env, &b, "private-artifacts/team-b/mine").await;
    // No churn: one key per namespace, none replaced.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.metrics.keys_created.get(), 2);
    assert_eq!(env.metrics.keys_deleted.get(), 0);
    assert_eq!(env.secret_creds("team-a").await, Some(a));
    env.stop().await;
}

async fn iam_500_after_create_access_key_converges_to_one_key(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("iam_500_after_create_access_key_converges_to_one_key", tc).await else {
        return;
    };
    // Four lost CreateAccessKey responses: the SDK's own retries create keys too.
    let fault = FailAfterSend::new("CreateAccessKey", 4);
    let injected = fault.injected.clone();
    env.run(env.context(Settings::default(), Some(fault)));
    for ns in ["f1", "f2"] {
        env.create_namespace(ns, true).await;
    }
    for ns in ["f1", "f2"] {
        env.converged(ns).await;
    }
    assert_eq!(injected.load(Ordering::SeqCst), 4, "every injected fault was hit");
    assert!(
        env.metrics.keys_deleted.get() >= 4,
        "the keys behind lost responses were deleted"
    );
    env.stop().await;
}

async fn api_500_on_secret_write_converges_to_one_key(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("api_500_on_secret_write_converges_to_one_key", tc).await else {
        return;
    };
    let Some(sim) = env.sim("api_500_on_secret_write_converges_to_one_key") else {
        return;
    };
    sim.fail_next(Some("patch"), Some("secrets"), 500, 3);
    env.run(env.context(Settings::default(), None));
    env.create_namespace("s1", true).await;
    let creds = env.converged("s1").await;
    assert!(
        env.metrics.keys_created.get() >= 4,
        "three keys were created but not stored"
    );
    assert!(env.metrics.keys_deleted.get() >= 3);
    put_eventually(&env, &creds, "private-artifacts/s1/ok").await;
    env.stop().await;
}

async fn controller_killed_between_key_and_secret_converges_to_one_key(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start(
        "controller_killed_between_key_and_secret_converges_to_one_key",
        tc,
    )
    .await
    else {
        return;
    };
    // The Secret write hangs, so the first controller dies holding an unstored key.
    let Some(sim) = env.sim("controller_killed_between_key_and_secret_converges_to_one_key") else {
        return;
    };
    sim.add_latency(Some("patch"), Some("secrets"), Duration::from_secs(30));
    env.create_namespace("k1", true).await;
    env.run(env.context(Settings::default(), None));
    let orphan = wait_for("a key created before the Secret", 30, || async {
        env.keys("k1").await.first().cloned()
    })
    .await;
    assert!(env.secret("k1").await.is_none());
    env.kill().await;
    if let Some(sim) = env.tc.sim() {
        sim.clear_faults();
    }
    env.run(env.context(Settings::default(), None));
    let creds = env.converged("k1").await;
    assert_ne!(
        creds.access_key_id, orphan,
        "the orphaned key was deleted, not reused"
    );
    env.stop().await;
}

async fn rotation_annotation_replaces_the_key(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("rotation_annotation_replaces_the_key", tc).await else {
        return;
    };
    // No grace period: the old key goes at the next reconcile (the grace is tested in controller_safety).
    let settings = Settings {
        rotation_grace: Duration::ZERO,
        ..Settings::default()
    };
    env.run(env.context(settings, None));
    env.create_namespace("r1", true).await;
    let before = env.converged("r1").await;
    env.patch_namespace(
        "r1",
        json!({"metadata": {"annotations": {"pipelines.kflite.dev/rotate-credentials": "2026-11-27"}}}),
    )
    .await;
    let after = wait_for("a rotated key", 30, || async {
        let c = env.secret_creds("r1").await?;
        (c.access_key_id != before.access_key_id).then_some(c)
    })
    .await;
    assert_eq!(env.converged("r1").await, after);
    put_eventually(&env, &after, "private-artifacts/r1/after-rotation").await;
    assert_eq!(
        put(&env, &before, "private-artifacts/r1/old-key").await,
        Err("InvalidAccessKeyId".into())
    );
    assert_eq!(env.metrics.rotations.get(), 1);
    // Same annotation value again: no further rotation.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.secret_creds("r1").await, Some(after));
    env.stop().await;
}

async fn deleted_or_edited_secret_is_repaired(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("deleted_or_edited_secret_is_repaired", tc).await else {
        return;
    };
    env.run(env.context(Settings::default(), None));
    env.create_namespace("p1", true).await;
    let first = env.converged("p1").await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(env.client.clone(), "p1");
    secrets
        .delete("mlpipeline-minio-artifact", &Default::default())
        .await
        .unwrap();
    let second = wait_for("a recreated Secret", 30, || async {
        env.secret_creds("p1")
            .await
            .filter(|c| c.access_key_id != first.access_key_id)
    })
    .await;
    assert_eq!(env.converged("p1").await, second);
    // Edit the secret key (access key id unchanged): the key no longer signs, so it is replaced.
    let edited = json!({"data": {"secretkey": "d3Jvbmc="}});
    secrets
        .patch(
            "mlpipeline-minio-artifact",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&edited),
        )
        .await
        .unwrap();
    let third = wait_for("a repaired Secret", 30, || async {
        env.secret_creds("p1")
            .await
            .filter(|c| c.access_key_id != second.access_key_id)
    })
    .await;
    assert_eq!(env.converged("p1").await, third);
    put_eventually(&env, &third, "private-artifacts/p1/repaired").await;
    env.stop().await;
}

async fn unlabel_and_delete_remove_user_keys_and_policy_but_keep_artifacts(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start(
        "unlabel_and_delete_remove_user_keys_and_policy_but_keep_artifacts",
        tc,
    )
    .await
    else {
        return;
    };
    env.run(env.context(Settings::default(), None));
    env.create_namespace("u1", true).await;
    env.create_namespace("d1", true).await;
    let u1 = env.converged("u1").await;
    env.converged("d1").await;
    put_eventually(&env, &u1, "private-artifacts/u1/keep-me").await;
    let store = env.sw.store();

    env.patch_namespace(
        "u1",
        json!({"metadata": {"labels": {"pipelines.kubeflow.org/enabled": null}}}),
    )
    .await;
    wait_for("u1 cleaned up", 30, || async {
        let ns = env.namespace("u1").await?;
        let done = !ns
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .contains(&FINALIZER.to_string());
        done.then_some(())
    })
    .await;
    assert!(!store.user_exists("u1").await.unwrap());
    assert!(store.list_keys("u1").await.unwrap().is_empty());
    assert_eq!(store.get_policy("u1").await.unwrap(), None);
    assert!(env.secret("u1").await.is_none());
    assert_eq!(env.cm_count("u1").await, 0);
    let kept = store
        .s3
        .head_object()
        .bucket("mlpipeline")
        .key("private-artifacts/u1/keep-me")
        .send()
        .await;
    assert!(kept.is_ok(), "artifacts are kept unless configured");

    // Deletion: the namespace stays Terminating on our finalizer until the
    // controller has removed its IAM user, keys and policy, then goes.
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(env.client.clone());
    namespaces
        .delete("d1", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    wait_for("d1 deleted", 30, || async {
        env.namespace("d1").await.is_none().then_some(())
    })
    .await;
    assert!(!store.user_exists("d1").await.unwrap());
    assert!(store.list_keys("d1").await.unwrap().is_empty());
    assert_eq!(store.get_policy("d1").await.unwrap(), None);
    env.stop().await;
    // A reconcile from a stale cache may clean up twice; it is idempotent.
    assert!(env.metrics.cleanups.get() >= 2);
}

async fn lifecycle_rule_follows_retention_days(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("lifecycle_rule_follows_retention_days", tc).await else {
        return;
    };
    let store = env.sw.store();
    env.run(env.context(
        Settings {
            artifact_retention_days: 7,
            ..Settings::default()
        },
        None,
    ));
    let rules = wait_for("lifecycle rule", 30, || async {
        let r = store.lifecycle_rules().await.ok()?;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(rules[0].id(), Some("private-artifacts"));
    assert_eq!(rules[0].expiration().and_then(|e| e.days()), Some(7));
    assert!(env.metrics.is_ready());
    env.stop().await;
    env.run(env.context(
        Settings {
            artifact_retention_days: 0,
            ..Settings::default()
        },
        None,
    ));
    wait_for("lifecycle rule removed", 30, || async {
        store.lifecycle_rules().await.ok()?.is_empty().then_some(())
    })
    .await;
    env.stop().await;
}

async fn iam_outage_still_writes_configmaps_and_reports_not_ready(tc: kube_sim::TestCluster) {
    let Some(mut env) = Env::start("iam_outage_still_writes_configmaps_and_reports_not_ready", tc).await
    else {
        return;
    };
    // IAM on a port nothing listens on; S3 (bucket, lifecycle) works.
    env.run(env.context_without_iam(Settings::default()));
    env.create_namespace("o1", true).await;
    wait_for("ConfigMaps without IAM", 30, || async {
        (env.cm_count("o1").await == 3).then_some(())
    })
    .await;
    wait_for("status False", 30, || async {
        let ns = env.namespace("o1").await?;
        (ns.metadata.annotations?.get(STATUS_ANNOTATION)? == "False").then_some(())
    })
    .await;
    assert!(env.secret("o1").await.is_none());
    let why = env.event("o1", "ReconcileFailed").await;
    assert!(why.contains("o1"), "{why}");
    env.stop().await;
    // IAM back: converges and reports ready.
    env.run(env.context(Settings::default(), None));
    env.converged("o1").await;
    wait_for("status True", 30, || async {
        let ns = env.namespace("o1").await?;
        (ns.metadata.annotations?.get(STATUS_ANNOTATION)? == "True").then_some(())
    })
    .await;
    env.stop().await;
}

/// ARTIFACTS_PROXY_ENABLED: the namespace gets the artifact proxy's Deployment
/// and Service, and loses them with the label (the RBAC's named grants for them).
async fn artifact_proxy_follows_the_label(tc: kube_sim::TestCluster) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use kube::Api;
    let Some(mut env) = Env::start("artifact_proxy_follows_the_label", tc).await else {
        return;
    };
    let settings = Settings {
        artifacts_proxy_enabled: true,
        ..Settings::default()
    };
    env.run(env.context(settings, None));
    env.create_namespace("p1", true).await;
    env.converged("p1").await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "p1");
    let services: Api<Service> = Api::namespaced(env.client.clone(), "p1");
    let name = pipeline_artifacts::desired::PROXY_NAME;
    wait_for("the proxy's Deployment and Service", 30, || async {
        let d = deployments.get_opt(name).await.ok().flatten();
        let s = services.get_opt(name).await.ok().flatten();
        (d.is_some() && s.is_some()).then_some(())
    })
    .await;
    env.patch_namespace(
        "p1",
        json!({"metadata": {"labels": {"pipelines.kubeflow.org/enabled": null}}}),
    )
    .await;
    wait_for("the proxy removed with the label", 30, || async {
        let d = deployments.get_opt(name).await.ok().flatten();
        let s = services.get_opt(name).await.ok().flatten();
        (d.is_none() && s.is_none()).then_some(())
    })
    .await;
    env.stop().await;
}
