//! `pipeline-artifacts hook`: metacontroller's DecoratorController webhook
//! (POST /sync) with the upstream hook's request and response shape, so it can
//! replace the Python container before metacontroller is removed.
//!
//! Unlike `sync.py`, a retry does not leak keys: once metacontroller shows the
//! namespace's Secret, every other key of that user is deleted. Keys are never
//! deleted while no Secret is observed, because metacontroller's cache may
//! simply not have seen the Secret yet (and with `OnDelete` it would never
//! rewrite it).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
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
}

/// What the webhook needs.
#[derive(Clone, Debug)]
pub struct HookState {
    pub settings: Settings,
    pub store: SeaweedStore,
    pub metrics: Arc<Metrics>,
}

/// Bucket and lifecycle rule, retried until SeaweedFS answers.
pub async fn prepare(state: &HookState) {
    state.store.prepare(state.settings.artifact_retention_days).await;
}

/// Handles one sync request: issues credentials when no Secret is observed,
/// cleans up unstored keys when one is.
pub async fn sync(state: &HookState, request: &Value) -> Result<Value, HookError> {
    let parent = request.get("object").ok_or(HookError::NoObject)?;
    let empty = json!({});
    let attachments = request.get("attachments").unwrap_or(&empty);
    if !is_enabled(parent, &state.settings.enabled_label) {
        return respond(parent, attachments, &state.settings, None);
    }
    let ns = namespace_of(parent).ok_or(HookError::NoName)?;
    let store = &state.store;
    let observed = observed_secret(ns, attachments).and_then(secret_credentials);
    let issued = match observed {
        Some(stored) => {
            // Best effort: sync.py never calls IAM here, so neither may an IAM outage fail the sync.
            if let Err(e) = delete_unstored_keys(state, ns, &stored.access_key_id).await {
                tracing::warn!(namespace = ns, error = %e, "could not clean up unstored keys; will retry next sync");
            }
            None
        }
        None if observed_secret(ns, attachments).is_some() => None,
        None => {
            // Listing first also refuses a namespace named like the admin user.
            store.list_keys(ns).await?;
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
async fn delete_unstored_keys(state: &HookState, ns: &str, stored_id: &str) -> Result<(), StoreError> {
    for id in state.store.list_keys(ns).await? {
        if id != stored_id {
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
