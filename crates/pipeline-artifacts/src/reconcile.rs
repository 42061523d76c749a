//! Converging one Namespace: credentials without leaked keys, the hook's
//! objects, status, and cleanup through a finalizer.
//!
//! Crash safety comes from the order of steps, not from local state: a key is
//! created, then stored in the Secret, then every other key of the user is
//! deleted. A controller killed (or an API call failing) between the first two
//! leaves a key no Secret holds; the next reconcile finds it in
//! `ListAccessKeys` and deletes it once a stored key exists.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::desired::{config_objects, secret_credentials, secret_object};
use crate::metrics::Metrics;
use crate::secret::Credentials;
use crate::settings::{
    FIELD_MANAGER, FINALIZER, ROTATE_ANNOTATION, ROTATED_FOR_ANNOTATION, SECRET_NAME, STATUS_ANNOTATION,
    Settings,
};
use crate::store::{SeaweedStore, StoreError};

/// Everything a reconcile needs.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub store: SeaweedStore,
    pub settings: Settings,
    /// Also delete `private-artifacts/<ns>/` and `private/<ns>/` on cleanup.
    pub delete_artifacts: bool,
    pub metrics: Arc<Metrics>,
    /// `reportingInstance` of Events (the pod name in a cluster).
    pub instance: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("bucket", &self.store.bucket)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("namespace {namespace}: {source}")]
    Store {
        namespace: String,
        source: Box<StoreError>,
    },
    #[error("namespace {namespace}: Kubernetes {action} failed: {source}")]
    Kube {
        namespace: String,
        action: String,
        source: Box<kube::Error>,
    },
    #[error(
        "namespace {namespace}: Secret {SECRET_NAME} holds the SeaweedFS admin identity; refusing to replace it \
         (unlabel this namespace: it is where the admin Secret lives)"
    )]
    AdminSecret { namespace: String },
    #[error("namespace {namespace}: object {object} cannot be applied: {message}")]
    Object {
        namespace: String,
        object: String,
        message: String,
    },
}

/// What a reconcile did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub key_created: bool,
    pub rotated: bool,
    pub repaired: bool,
    pub keys_deleted: usize,
    pub cleaned_up: bool,
}

fn kube_err(ns: &str, action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError + '_ {
    let action = action.into();
    move |source| ReconcileError::Kube {
        namespace: ns.to_owned(),
        action,
        source: Box::new(source),
    }
}

fn store_err(ns: &str) -> impl FnOnce(StoreError) -> ReconcileError + '_ {
    move |source| ReconcileError::Store {
        namespace: ns.to_owned(),
        source: Box::new(source),
    }
}

fn is_enabled(ns: &Namespace, label: &str) -> bool {
    ns.labels().get(label).map(String::as_str) == Some("true")
}

/// Reconciles one namespace.
pub async fn reconcile(ns: &Namespace, ctx: &Context) -> Result<Outcome, ReconcileError> {
    let name = ns.name_any();
    let deleting = ns.metadata.deletion_timestamp.is_some();
    let has_finalizer = ns.finalizers().iter().any(|f| f == FINALIZER);
    if is_enabled(ns, &ctx.settings.enabled_label) && !deleting {
        if !has_finalizer {
            let mut fins = ns.finalizers().to_vec();
            fins.push(FINALIZER.to_owned());
            // The resourceVersion makes a list computed from a stale cache fail (409) instead of
            // re-adding or dropping someone else's finalizer; the retry sees fresh data.
            let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": ns.resource_version()}});
            patch_namespace(ctx, &name, patch, "add finalizer").await?;
        }
        converge(ns, ctx).await
    } else if has_finalizer {
        let out = cleanup(ns, ctx, deleting).await?;
        let fins: Vec<&String> = ns.finalizers().iter().filter(|f| *f != FINALIZER).collect();
        let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": ns.resource_version()}});
        patch_namespace(ctx, &name, patch, "remove finalizer").await?;
        Ok(out)
    } else {
        Ok(Outcome::default())
    }
}

async fn patch_namespace(
    ctx: &Context,
    name: &str,
    patch: Value,
    action: &str,
) -> Result<(), ReconcileError> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(name, action))?;
    Ok(())
}

/// Whether `creds` (whose key IAM lists) still sign requests SeaweedFS accepts;
/// an edited secret key does not.
async fn credentials_work(ctx: &Context, ns: &str, creds: &Credentials) -> Result<bool, StoreError> {
    let endpoints = ctx.store.endpoints();
    let user = crate::store::s3_client(&endpoints, creds);
    let probe = format!("private-artifacts/{ns}/.kflite-credential-check");
    match user
        .get_object()
        .bucket(&ctx.store.bucket)
        .key(&probe)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
            match code.as_deref() {
                // Signed correctly. AccessDenied is a policy matter (fixed below);
                // InvalidAccessKeyId for a key IAM lists means S3 has not loaded it yet.
                Some("NoSuchKey" | "AccessDenied" | "InvalidAccessKeyId") => Ok(true),
                // The secret key does not match: the Secret was edited.
                Some("SignatureDoesNotMatch") => Ok(false),
                _ => Err(StoreError::Call {
                    api: "S3",
                    op: "GetObject (credential check)",
                    subject: ns.to_owned(),
                    message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                    code,
                }),
            }
        }
    }
}

async fn converge(ns: &Namespace, ctx: &Context) -> Result<Outcome, ReconcileError> {
    let name = ns.name_any();
    let name = name.as_str();
    // The ConfigMaps need no credentials: write them even while SeaweedFS is down.
    for obj in config_objects(name, &ctx.settings) {
        apply(ctx, name, &obj).await?;
    }
    let result = converge_credentials(ns, ctx).await;
    let ready = if result.is_ok() { "True" } else { "False" };
    if ns.annotations().get(STATUS_ANNOTATION).map(String::as_str) != Some(ready) {
        let patch = json!({"metadata": {"annotations": {STATUS_ANNOTATION: ready}}});
        let status = patch_namespace(ctx, name, patch, "set status").await;
        if result.is_ok() {
            status?;
        }
    }
    result
}

async fn converge_credentials(ns: &Namespace, ctx: &Context) -> Result<Outcome, ReconcileError> {
    let name = ns.name_any();
    let name = name.as_str();
    let store = &ctx.store;
    let mut out = Outcome::default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), name);
    let existing = secrets
        .get_opt(SECRET_NAME)
        .await
        .map_err(kube_err(name, "get Secret"))?;
    let wanted_rotation = ns
        .annotations()
        .get(ROTATE_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let stored = existing
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| secret_credentials(&v));
    let stored_for = existing
        .as_ref()
        .and_then(|s| s.annotations().get(ROTATED_FOR_ANNOTATION).cloned())
        .unwrap_or_default();
    if let (Some(c), Some(admin)) = (&stored, &store.admin_key_id)
        && &c.access_key_id == admin
    {
        return Err(ReconcileError::AdminSecret {
            namespace: name.to_owned(),
        });
    }
    let keys = store.list_keys(name).await.map_err(store_err(name))?;
    let rotation_due = stored.is_some() && stored_for != wanted_rotation;
    let mut keep = None;
    if let Some(creds) = stored.filter(|c| keys.contains(&c.access_key_id))
        && !rotation_due
        && credentials_work(ctx, name, &creds)
            .await
            .map_err(store_err(name))?
    {
        keep = Some(creds);
    }
    let current = match keep {
        Some(creds) => creds.access_key_id,
        None => {
            let creds = store.create_key(name).await.map_err(store_err(name))?;
            ctx.metrics.keys_created.inc();
            let mut secret = secret_object(name, &creds);
            secret["metadata"]["annotations"] = json!({ROTATED_FOR_ANNOTATION: wanted_rotation});
            apply(ctx, name, &secret).await?;
            out.key_created = true;
            let (reason, note) = if rotation_due {
                out.rotated = true;
                ctx.metrics.rotations.inc();
                (
                    "CredentialsRotated",
                    format!("rotated to access key {}", creds.access_key_id),
                )
            } else if existing.is_some() {
                out.repaired = true;
                (
                    "CredentialsRepaired",
                    format!(
                        "Secret {SECRET_NAME} did not hold a working key; issued {}",
                        creds.access_key_id
                    ),
                )
            } else {
                (
                    "CredentialsIssued",
                    format!("issued access key {}", creds.access_key_id),
                )
            };
            tracing::info!(namespace = name, access_key_id = %creds.access_key_id, reason, "stored new credentials");
            publish_event(ctx, name, "Normal", reason, &note).await;
            creds.access_key_id
        }
    };
    // Re-list: a create retried inside the SDK, or an earlier crash, may have left more.
    for id in store.list_keys(name).await.map_err(store_err(name))? {
        if id != current {
            store.delete_key(name, &id).await.map_err(store_err(name))?;
            out.keys_deleted += 1;
            ctx.metrics.keys_deleted.inc();
            tracing::info!(namespace = name, access_key_id = %id, "deleted a key no Secret holds");
        }
    }
    store.ensure_policy(name).await.map_err(store_err(name))?;
    Ok(out)
}

async fn cleanup(ns: &Namespace, ctx: &Context, deleting: bool) -> Result<Outcome, ReconcileError> {
    let name = ns.name_any();
    let name = name.as_str();
    let removed = ctx.store.delete_identity(name).await.map_err(store_err(name))?;
    ctx.metrics.keys_deleted.add(removed as u64);
    ctx.metrics.cleanups.inc();
    if ctx.delete_artifacts {
        for prefix in [format!("private-artifacts/{name}/"), format!("private/{name}/")] {
            let n = ctx.store.delete_prefix(&prefix).await.map_err(store_err(name))?;
            tracing::info!(namespace = name, prefix, objects = n, "deleted artifacts");
        }
    }
    if !deleting {
        // Unlabelled: the objects would only hold a dead key and stale config.
        let mut objects = config_objects(
            name,
            &Settings {
                artifacts_proxy_enabled: true,
                ..ctx.settings.clone()
            },
        );
        objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME, "namespace": name}}));
        for obj in objects {
            let (api, obj_name) = dynamic_api(ctx, name, &obj)?;
            match api.delete(&obj_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(kube_err(name, format!("delete {obj_name}"))(e)),
            }
        }
        patch_namespace(
            ctx,
            name,
            json!({"metadata": {"annotations": {STATUS_ANNOTATION: null}}}),
            "clear status",
        )
        .await?;
    }
    tracing::info!(
        namespace = name,
        keys = removed,
        "removed IAM user, keys and policy"
    );
    publish_event(
        ctx,
        name,
        "Normal",
        "CredentialsRemoved",
        &format!("removed IAM user {name} and {removed} key(s)"),
    )
    .await;
    Ok(Outcome {
        cleaned_up: true,
        keys_deleted: removed,
        ..Outcome::default()
    })
}

fn dynamic_api(ctx: &Context, ns: &str, obj: &Value) -> Result<(Api<DynamicObject>, String), ReconcileError> {
    let field = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (api_version, kind, name) = (field("/apiVersion"), field("/kind"), field("/metadata/name"));
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    if kind.is_empty() || name.is_empty() || version.is_empty() {
        return Err(ReconcileError::Object {
            namespace: ns.to_owned(),
            object: format!("{kind}/{name}"),
            message: "apiVersion, kind and metadata.name are required".into(),
        });
    }
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &kind));
    Ok((Api::namespaced_with(ctx.client.clone(), ns, &ar), name))
}

/// Server-side apply as field manager `pipeline-artifacts`, taking over fields others edited.
async fn apply(ctx: &Context, ns: &str, obj: &Value) -> Result<(), ReconcileError> {
    let (api, name) = dynamic_api(ctx, ns, obj)?;
    let kind = obj["kind"].as_str().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(kube_err(ns, format!("apply {kind}/{name}")))?;
    Ok(())
}

/// Records a core/v1 Event on the Namespace; failures are logged, never fatal.
pub async fn publish_event(ctx: &Context, namespace: &str, type_: &str, reason: &str, note: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{namespace}."), "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "reason": reason,
        "message": note,
        "type": type_,
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": ctx.instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Event"));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), "default", &ar);
    let Ok(obj) = serde_json::from_value::<DynamicObject>(event) else {
        return;
    };
    if let Err(e) = api.create(&PostParams::default(), &obj).await {
        tracing::debug!(namespace, reason, error = %e, "could not record event");
    }
}
