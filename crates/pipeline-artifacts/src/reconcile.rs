//! Converging one Namespace: credentials without leaked keys, the hook's
//! objects, status, and cleanup through a finalizer.
//!
//! Crash safety comes from the order of steps, not from local state: before a
//! key is created, every key of the user that no Secret holds (one created by
//! an attempt whose Secret write failed or that was killed) is looked up in
//! `ListAccessKeys` and deleted; then the key is created and stored in the
//! Secret. So a user has at most one key, plus during a rotation's grace
//! period the old one, which the Secret records (with its deadline) in the
//! same write as the new key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::desired::{config_objects, secret_credentials, secret_object};
use crate::metrics::Metrics;
use crate::secret::Credentials;
use crate::settings::{
    ERROR_ANNOTATION, FIELD_MANAGER, FINALIZER, RETIRING_ANNOTATION, ROTATE_ANNOTATION,
    ROTATED_FOR_ANNOTATION, SECRET_NAME, STATUS_ANNOTATION, Settings,
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

impl ReconcileError {
    /// Whether retrying cannot help (a refusal, a malformed answer, a request
    /// the API server rejects as such); unreachable services, 5xx, conflicts
    /// and throttling are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            ReconcileError::Store { source, .. } => {
                matches!(**source, StoreError::AdminUser(_) | StoreError::Malformed { .. })
            }
            ReconcileError::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(e) => {
                    (400..500).contains(&e.code) && ![404, 408, 409, 429].contains(&e.code)
                }
                _ => false,
            },
            ReconcileError::AdminSecret { .. } | ReconcileError::Object { .. } => true,
        }
    }

    /// A 409 from the API server: written against a stale resourceVersion.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReconcileError::Kube { source, .. } if matches!(source.as_ref(), kube::Error::Api(e) if e.code == 409))
    }
}

/// What a reconcile did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub key_created: bool,
    pub rotated: bool,
    pub repaired: bool,
    pub keys_deleted: usize,
    pub cleaned_up: bool,
    /// Refused: a protected or admin-named namespace, or a cleanup that cannot succeed.
    pub refused: bool,
    /// Reconcile again by then (a rotated-out key's deadline).
    pub requeue_after: Option<Duration>,
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
    let enabled = is_enabled(ns, &ctx.settings.enabled_label);
    if let Some(why) = ctx.settings.refusal(&name) {
        return refuse(ns, ctx, has_finalizer, enabled && !deleting, &why).await;
    }
    if enabled && !deleting {
        if !has_finalizer {
            // Listing first refuses a namespace whose IAM user holds the admin key
            // before it gets a finalizer. With IAM down the ConfigMaps still go
            // out; the collision is then caught below once IAM answers.
            match ctx.store.list_keys(&name).await {
                Err(StoreError::AdminUser(_)) => {
                    return refuse(ns, ctx, false, true, &admin_collision(&name)).await;
                }
                Err(e) => {
                    tracing::debug!(namespace = %name, error = %e, "cannot check for an admin collision yet")
                }
                Ok(_) => {}
            }
            let mut fins = ns.finalizers().to_vec();
            fins.push(FINALIZER.to_owned());
            // The resourceVersion makes a list computed from a stale cache fail (409) instead of
            // re-adding or dropping someone else's finalizer; the retry sees fresh data.
            let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": ns.resource_version()}});
            patch_namespace(ctx, &name, patch, "add finalizer").await?;
        }
        match converge(ns, ctx).await {
            Err(ReconcileError::Store { source, .. }) if matches!(*source, StoreError::AdminUser(_)) => {
                refuse(ns, ctx, true, true, &admin_collision(&name)).await
            }
            other => other,
        }
    } else if has_finalizer {
        let out = match cleanup(ns, ctx, deleting).await {
            Ok(out) => out,
            // A namespace must never hang in Terminating behind us: give up loudly.
            Err(e) if e.is_permanent() => {
                tracing::warn!(namespace = %name, error = %e, "cleanup cannot succeed; releasing the finalizer");
                let note = format!("cleanup abandoned, SeaweedFS identity may remain: {e}");
                publish_event(ctx, &name, "Warning", "CleanupAbandoned", &note).await;
                Outcome {
                    refused: true,
                    ..Outcome::default()
                }
            }
            Err(e) => return Err(e),
        };
        remove_finalizer(ns, ctx).await?;
        Ok(out)
    } else {
        Ok(Outcome::default())
    }
}

fn admin_collision(name: &str) -> String {
    format!("namespace {name}: its IAM user holds the SeaweedFS admin key; refused")
}

async fn remove_finalizer(ns: &Namespace, ctx: &Context) -> Result<(), ReconcileError> {
    let fins: Vec<&String> = ns.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": ns.resource_version()}});
    patch_namespace(ctx, &ns.name_any(), patch, "remove finalizer").await
}

/// Leaves a namespace alone (no objects, no IAM calls, no cleanup), says why,
/// and lets go of a finalizer an earlier version may have added.
async fn refuse(
    ns: &Namespace,
    ctx: &Context,
    has_finalizer: bool,
    wanted: bool,
    why: &str,
) -> Result<Outcome, ReconcileError> {
    let name = ns.name_any();
    if has_finalizer {
        remove_finalizer(ns, ctx).await?;
    }
    if wanted || has_finalizer {
        tracing::warn!(namespace = %name, reason = why, "namespace refused");
        publish_event(ctx, &name, "Warning", "NamespaceRefused", why).await;
    }
    Ok(Outcome {
        refused: true,
        ..Outcome::default()
    })
}

/// Records why the last reconcile failed (`<count>: <message>`) on the
/// namespace, or clears it. Each write wakes the namespace up, so a failing one
/// is written only at failures 1, 2, 4, 8, ...: backoff still applies.
pub async fn record_error(ctx: &Context, ns: &Namespace, failure: Option<(u32, &str)>) {
    let have = ns.annotations().contains_key(ERROR_ANNOTATION);
    let write = match failure {
        None => have,
        Some((n, _)) => !have || n.is_power_of_two(),
    };
    if !write {
        return;
    }
    let want = failure.map(|(n, msg)| format!("{n}: {msg}"));
    let patch = json!({"metadata": {"annotations": {ERROR_ANNOTATION: want}}});
    if let Err(e) = patch_namespace(ctx, &ns.name_any(), patch, "record error").await {
        tracing::debug!(namespace = %ns.name_any(), error = %e, "could not record the error");
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

/// Rotated-out keys the Secret records, with the time each is deleted.
fn retiring_keys(secret: Option<&Secret>) -> BTreeMap<String, Timestamp> {
    secret
        .and_then(|s| s.annotations().get(RETIRING_ANNOTATION))
        .and_then(|raw| serde_json::from_str::<BTreeMap<String, String>>(raw).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, at)| Some((id, at.parse::<Timestamp>().ok()?)))
        .collect()
}

fn after(now: Timestamp, d: Duration) -> Timestamp {
    let secs = now
        .as_second()
        .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_second(secs).unwrap_or(Timestamp::MAX)
}

/// Server-side applies the Secret with `creds`, the rotation it answers and the keys being retired.
async fn store_secret(
    ctx: &Context,
    ns: &str,
    creds: &Credentials,
    rotated_for: &str,
    retiring: &BTreeMap<String, Timestamp>,
) -> Result<(), ReconcileError> {
    let mut secret = secret_object(ns, creds);
    let mut ann = serde_json::Map::new();
    ann.insert(ROTATED_FOR_ANNOTATION.into(), json!(rotated_for));
    if !retiring.is_empty() {
        let map: BTreeMap<&String, String> = retiring.iter().map(|(k, t)| (k, t.to_string())).collect();
        ann.insert(
            RETIRING_ANNOTATION.into(),
            json!(serde_json::to_string(&map).unwrap_or_default()),
        );
    }
    secret["metadata"]["annotations"] = Value::Object(ann);
    apply(ctx, ns, &secret).await
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
    let now = Timestamp::now();
    let recorded = retiring_keys(existing.as_ref());
    // Rotated-out keys stay until their deadline; gone or expired ones are dropped.
    let mut retiring: BTreeMap<String, Timestamp> = recorded
        .iter()
        .filter(|(id, at)| **at > now && keys.contains(id))
        .map(|(id, at)| (id.clone(), *at))
        .collect();
    let rotation_due = stored.is_some() && stored_for != wanted_rotation;
    let mut keep = None;
    if let Some(creds) = stored.clone().filter(|c| keys.contains(&c.access_key_id))
        && !rotation_due
        && credentials_work(ctx, name, &creds)
            .await
            .map_err(store_err(name))?
    {
        keep = Some(creds);
    }
    let current = match keep {
        Some(creds) => {
            if retiring != recorded {
                store_secret(ctx, name, &creds, &stored_for, &retiring).await?;
            }
            creds.access_key_id
        }
        None => {
            if rotation_due && let Some(old) = stored.as_ref().filter(|c| keys.contains(&c.access_key_id)) {
                retiring.insert(old.access_key_id.clone(), after(now, ctx.settings.rotation_grace));
            }
            // A key an earlier attempt created but never stored: delete it before
            // making another, so failing Secret writes cannot pile keys up.
            for id in keys.iter().filter(|id| !retiring.contains_key(*id)) {
                store.delete_key(name, id).await.map_err(store_err(name))?;
                out.keys_deleted += 1;
                ctx.metrics.keys_deleted.inc();
                tracing::info!(namespace = name, access_key_id = %id, "deleted a key no Secret holds");
            }
            let creds = store.create_key(name).await.map_err(store_err(name))?;
            ctx.metrics.keys_created.inc();
            store_secret(ctx, name, &creds, &wanted_rotation, &retiring).await?;
            out.key_created = true;
            // Events carry no key ids: they are readable by more people than the Secret.
            let (reason, note) = if rotation_due {
                out.rotated = true;
                ctx.metrics.rotations.inc();
                (
                    "CredentialsRotated",
                    format!(
                        "rotated the access key; the previous one keeps working for {}s",
                        ctx.settings.rotation_grace.as_secs()
                    ),
                )
            } else if existing.is_some() {
                out.repaired = true;
                (
                    "CredentialsRepaired",
                    format!("Secret {SECRET_NAME} did not hold a working key; issued a new one"),
                )
            } else {
                ("CredentialsIssued", "issued an access key".to_owned())
            };
            tracing::info!(namespace = name, access_key_id = %creds.access_key_id, reason, "stored new credentials");
            publish_event(ctx, name, "Normal", reason, &note).await;
            creds.access_key_id
        }
    };
    // Re-list: a create retried inside the SDK may have left more.
    for id in store.list_keys(name).await.map_err(store_err(name))? {
        if id != current && !retiring.contains_key(&id) {
            store.delete_key(name, &id).await.map_err(store_err(name))?;
            out.keys_deleted += 1;
            ctx.metrics.keys_deleted.inc();
            tracing::info!(namespace = name, access_key_id = %id, "deleted a key no Secret holds");
        }
    }
    store.ensure_policy(name).await.map_err(store_err(name))?;
    out.requeue_after = retiring
        .values()
        .min()
        .map(|at| Duration::from_secs(u64::try_from(at.as_second() - now.as_second()).unwrap_or(0) + 1));
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
            let found = api
                .get_opt(&obj_name)
                .await
                .map_err(kube_err(name, format!("get {obj_name}")))?;
            // Only what we wrote: another manager's object of the same name is not ours to delete.
            let ours = found.is_some_and(|o| {
                o.managed_fields()
                    .iter()
                    .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
            });
            if !ours {
                continue;
            }
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
    if !deleting {
        // A terminating namespace takes no new Events.
        publish_event(
            ctx,
            name,
            "Normal",
            "CredentialsRemoved",
            &format!("removed IAM user {name} and {removed} key(s)"),
        )
        .await;
    }
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

/// Records an `events.k8s.io/v1` Event in the namespace concerned (where its
/// users see it), or in `default` when it takes none (Terminating); failures
/// are logged, never fatal. Notes must carry no key ids.
///
/// The API server keeps an Event about a cluster-scoped object (the Namespace)
/// in `default` only, so the Event regards the namespace's artifact Secret —
/// what this controller makes there — and names the Namespace as related.
pub async fn publish_event(ctx: &Context, namespace: &str, type_: &str, reason: &str, note: &str) {
    if let Err(e) = create_event(ctx, namespace, namespace, type_, reason, note).await {
        tracing::debug!(namespace, reason, error = %e, "could not record event in the namespace; trying default");
        if let Err(e) = create_event(ctx, "default", namespace, type_, reason, note).await {
            tracing::debug!(namespace, reason, error = %e, "could not record event");
        }
    }
}

async fn create_event(
    ctx: &Context,
    into: &str,
    namespace: &str,
    type_: &str,
    reason: &str,
    note: &str,
) -> Result<(), kube::Error> {
    // MicroTime: RFC 3339 with microseconds, in UTC.
    let now = format!("{:.6}", Timestamp::now());
    let event = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{SECRET_NAME}-"), "namespace": into},
        "regarding": {"apiVersion": "v1", "kind": "Secret", "namespace": namespace, "name": SECRET_NAME},
        "related": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "reason": reason,
        "note": note,
        "type": type_,
        "action": reason,
        "eventTime": now,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": ctx.instance,
    });
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("events.k8s.io", "v1", "Event"));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), into, &ar);
    let obj = serde_json::from_value::<DynamicObject>(event).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &obj).await.map(|_| ())
}

/// `reportingController` of our Events: the API server wants a qualified name.
const REPORTING_CONTROLLER: &str = "kflite.dev/pipeline-artifacts";

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(code: u16) -> ReconcileError {
        let status = serde_json::from_value(json!({"code": code})).expect("a Status");
        ReconcileError::Kube {
            namespace: "n".into(),
            action: "patch".into(),
            source: Box::new(kube::Error::Api(Box::new(status))),
        }
    }

    fn store(source: StoreError) -> ReconcileError {
        ReconcileError::Store {
            namespace: "n".into(),
            source: Box::new(source),
        }
    }

    #[test]
    fn only_failures_a_retry_cannot_fix_are_permanent() {
        for code in [400, 403, 422] {
            assert!(kube(code).is_permanent(), "{code}");
        }
        for code in [404, 408, 409, 429, 500, 503] {
            assert!(!kube(code).is_permanent(), "{code}");
        }
        assert!(kube(409).is_conflict() && !kube(500).is_conflict());
        assert!(store(StoreError::AdminUser("kubeflow-admin".into())).is_permanent());
        let down = StoreError::Call {
            api: "IAM",
            op: "ListAccessKeys",
            subject: "n".into(),
            message: "connection refused".into(),
            code: None,
        };
        assert!(!store(down).is_permanent());
    }

    #[test]
    fn retiring_keys_read_back_and_skip_garbage() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let raw = json!({"OLD": at.to_string(), "BAD": "not a time"}).to_string();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"annotations": {RETIRING_ANNOTATION: raw}}})).unwrap();
        let keys = retiring_keys(Some(&secret));
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), [("OLD".to_owned(), at)]);
        let broken: Secret =
            serde_json::from_value(json!({"metadata": {"annotations": {RETIRING_ANNOTATION: "{"}}})).unwrap();
        assert!(retiring_keys(Some(&broken)).is_empty());
        assert_eq!(after(at, Duration::from_secs(60)).as_second(), 1_800_000_060);
        assert_eq!(after(at, Duration::MAX), Timestamp::MAX);
    }
}
