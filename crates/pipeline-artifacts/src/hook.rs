//! `pipeline-artifacts hook`: metacontroller's DecoratorController webhook
//! (POST /sync) with the upstream hook's request and response shape, so it can
//! replace the Python container before metacontroller is removed.
//!
//! The request body is not trusted: the namespace and its Secret are read from
//! the API server, and a request whose parent or observed Secret disagrees
//! with the cluster (a forged request, or metacontroller's cache lagging) is
//! refused, so it is retried with fresh data. Only then are keys issued
//! (after deleting any key an earlier, unstored answer issued: one key per
//! user) or, once the Secret exists, every other key of the user deleted.
//! Protected and admin-named namespaces are refused.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use serde_json::{Map, Value, json};

use crate::desired::{config_objects, ready_status, secret_credentials, secret_object};
use crate::metrics::Metrics;
use crate::secret::Credentials;
use crate::settings::{SECRET_NAME, Settings};
use crate::store::{SeaweedStore, StoreError};

/// Whether the parent namespace opts in (label value exactly `"true"`, as the hook checks).
pub fn is_enabled(parent: &Value, label: &str) -> bool {
    parent
        .pointer("/metadata/labels")
        .and_then(|l| l.get(label))
        .and_then(Value::as_str)
        == Some("true")
}

fn namespace_of(parent: &Value) -> Option<&str> {
    parent.pointer("/metadata/name").and_then(Value::as_str)
}

fn attachment_group<'a>(attachments: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    attachments.get(key).and_then(Value::as_object)
}

fn count(attachments: &Value, key: &str) -> usize {
    attachment_group(attachments, key).map_or(0, Map::len)
}

/// The Secret metacontroller observed for the namespace, if any.
pub fn observed_secret<'a>(namespace: &str, attachments: &'a Value) -> Option<&'a Value> {
    attachment_group(attachments, "Secret.v1")?.get(&format!("{namespace}/{SECRET_NAME}"))
}

/// The hook's answer. `issued` are the new credentials; they are used only
/// when no Secret is observed (then they are required).
pub fn respond(
    parent: &Value,
    attachments: &Value,
    s: &Settings,
    issued: Option<&Credentials>,
) -> Result<Value, HookError> {
    if !is_enabled(parent, &s.enabled_label) {
        return Ok(json!({"status": {}, "attachments": []}));
    }
    let ns = namespace_of(parent).ok_or(HookError::NoName)?;
    let ready = ready_status(
        s,
        count(attachments, "Secret.v1"),
        count(attachments, "ConfigMap.v1"),
        count(attachments, "Deployment.apps/v1"),
        count(attachments, "Service.v1"),
    );
    let mut desired = config_objects(ns, s);
    match observed_secret(ns, attachments) {
        // The hook appends an observed Secret unchanged, at the end.
        Some(secret) => desired.push(secret.clone()),
        None => {
            let creds = issued.ok_or(HookError::NoCredentials)?;
            desired.insert(0, secret_object(ns, creds));
        }
    }
    Ok(json!({
        "status": {"kubeflow-pipelines-ready": if ready { "True" } else { "False" }},
        "attachments": desired,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("sync request has no `object` (the parent Namespace)")]
    NoObject,
    #[error("the parent object has no metadata.name")]
    NoName,
    #[error("no Secret observed and no credentials issued")]
    NoCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("namespace {0} does not exist")]
    UnknownNamespace(String),
    #[error("{0}")]
    Refused(String),
    #[error("namespace {namespace}: the request disagrees with the cluster ({what}); retry with fresh data")]
    Stale { namespace: String, what: &'static str },
    #[error("namespace {namespace}: reading {what} from the API server failed: {source}")]
    Kube {
        namespace: String,
        what: &'static str,
        source: Box<kube::Error>,
    },
}

/// What the webhook needs.
#[derive(Clone)]
pub struct HookState {
    pub settings: Settings,
    pub store: SeaweedStore,
    pub metrics: Arc<Metrics>,
    /// The API server every request is checked against.
    pub client: kube::Client,
}

impl std::fmt::Debug for HookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookState")
            .field("settings", &self.settings)
            .field("bucket", &self.store.bucket)
            .finish()
    }
}

/// The namespace and its Secret's credentials as the cluster has them,
/// checked against what the request claims.
async fn verify(
    state: &HookState,
    ns: &str,
    parent: &Value,
    attachments: &Value,
) -> Result<Option<Credentials>, HookError> {
    let kube_err = |what| {
        move |e| HookError::Kube {
            namespace: ns.to_owned(),
            what,
            source: Box::new(e),
        }
    };
    let stale = |what| HookError::Stale {
        namespace: ns.to_owned(),
        what,
    };
    let live = Api::<Namespace>::all(state.client.clone())
        .get_opt(ns)
        .await
        .map_err(kube_err("the Namespace"))?
        .ok_or_else(|| HookError::UnknownNamespace(ns.to_owned()))?;
    let live = serde_json::to_value(&live).unwrap_or_default();
    if !is_enabled(&live, &state.settings.enabled_label)
        || live.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Err(stale("the namespace is not enabled"));
    }
    if live.pointer("/metadata/uid") != parent.pointer("/metadata/uid")
        && parent.pointer("/metadata/uid").is_some()
    {
        return Err(stale("the namespace's uid"));
    }
    let secret = Api::<Secret>::namespaced(state.client.clone(), ns)
        .get_opt(SECRET_NAME)
        .await
        .map_err(kube_err("the Secret"))?;
    let stored = secret
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| secret_credentials(&v));
    let claimed = observed_secret(ns, attachments).and_then(secret_credentials);
    let same = match (&stored, &claimed) {
        (None, None) => observed_secret(ns, attachments).is_none(),
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    if !same {
        return Err(stale("the Secret"));
    }
    Ok(stored)
}

/// Bucket and lifecycle rule, retried until SeaweedFS answers.
pub async fn prepare(state: &HookState) {
    state.store.prepare(state.settings.artifact_retention_days).await;
}

/// Handles one sync request: checks it against the cluster, issues
/// credentials when the namespace has no Secret, cleans up unstored keys when it has.
pub async fn sync(state: &HookState, request: &Value) -> Result<Value, HookError> {
    let parent = request.get("object").ok_or(HookError::NoObject)?;
    let empty = json!({});
    let attachments = request.get("attachments").unwrap_or(&empty);
    if !is_enabled(parent, &state.settings.enabled_label) {
        return respond(parent, attachments, &state.settings, None);
    }
    let ns = namespace_of(parent).ok_or(HookError::NoName)?;
    if let Some(why) = state.settings.refusal(ns) {
        return Err(HookError::Refused(why));
    }
    let store = &state.store;
    let issued = match verify(state, ns, parent, attachments).await? {
        Some(stored) => {
            // Best effort: sync.py never calls IAM here, so neither may an IAM outage fail the sync.
            if let Err(e) = delete_unstored_keys(state, ns, Some(&stored.access_key_id)).await {
                tracing::warn!(namespace = ns, error = %e, "could not clean up unstored keys; will retry next sync");
            }
            None
        }
        None => {
            // No Secret in the cluster: a key an earlier answer issued was never
            // stored. Delete it before issuing another (this also refuses a
            // namespace whose IAM user holds the admin key).
            delete_unstored_keys(state, ns, None).await?;
            let creds = store.create_key(ns).await?;
            state.metrics.keys_created.inc();
            tracing::info!(namespace = ns, access_key_id = %creds.access_key_id, "issued a new access key");
            store.put_policy(ns).await?;
            store
                .ensure_lifecycle(state.settings.artifact_retention_days)
                .await?;
            Some(creds)
        }
    };
    respond(parent, attachments, &state.settings, issued.as_ref())
}

/// Deletes keys of `ns` other than `stored_id` (made by attempts whose Secret never got stored).
async fn delete_unstored_keys(
    state: &HookState,
    ns: &str,
    stored_id: Option<&str>,
) -> Result<(), StoreError> {
    for id in state.store.list_keys(ns).await? {
        if Some(id.as_str()) != stored_id {
            tracing::info!(namespace = ns, access_key_id = %id, "deleting a key no Secret holds");
            state.store.delete_key(ns, &id).await?;
            state.metrics.keys_deleted.inc();
        }
    }
    Ok(())
}

async fn sync_handler(
    State(state): State<Arc<HookState>>,
    Json(request): Json<Value>,
) -> (StatusCode, Json<Value>) {
    match sync(&state, &request).await {
        Ok(body) => {
            state.metrics.reconciles_ok.inc();
            (StatusCode::OK, Json(body))
        }
        Err(e) => {
            state.metrics.reconciles_failed.inc();
            let ns = request
                .pointer("/object/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            tracing::warn!(namespace = ns, error = %e, "sync failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
        }
    }
}

/// The webhook's routes: POST /sync plus health, readiness and metrics.
pub fn router(state: HookState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/sync", post(sync_handler))
        .with_state(Arc::new(state))
        .merge(crate::metrics::routes(metrics))
}
