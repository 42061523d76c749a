//! /healthz, /readyz and /metrics.
//!
//! Readiness is a set of named checks. /readyz answers 503 while any check is
//! failing; a degraded check (e.g. an optional CRD that is absent) keeps it
//! 200 but is listed, so `curl /readyz` always says what is wrong.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// One check's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Working, with less than everything (ready, but reported).
    Degraded,
    /// Not ready.
    Failing,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failing => "failing",
        }
    }
}

/// Named readiness checks, shared by the tasks that set them and the server.
#[derive(Clone, Debug, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, (Status, String)>>>,
}

impl Health {
    /// Set check `name`; `detail` says why when it is not ok.
    pub fn set(&self, name: &str, status: Status, detail: impl Into<String>) {
        self.lock().insert(name.into(), (status, detail.into()));
    }

    /// Ready when no check is failing.
    pub fn is_ready(&self) -> bool {
        self.lock().values().all(|(s, _)| *s != Status::Failing)
    }

    /// The status of check `name`, if it was ever set.
    pub fn status(&self, name: &str) -> Option<Status> {
        self.lock().get(name).map(|(s, _)| *s)
    }

    /// One line per check: `name: ok` or `name: failing: why`.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (name, (status, detail)) in self.lock().iter() {
            let _ = match (status, detail.is_empty()) {
                (Status::Ok, _) | (_, true) => writeln!(out, "{name}: {}", status.as_str()),
                _ => writeln!(out, "{name}: {}: {detail}", status.as_str()),
            };
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Status, String)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.checks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    registry: Arc<Registry>,
}

/// The OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// /healthz (the process answers), /readyz (the checks), /metrics (the registry).
pub fn router(health: Health, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move {
                let code = if s.health.is_ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, s.health.report())
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(&s.registry),
                )
            }),
        )
        .with_state(AppState { health, registry })
}

/// Bind `addr` and serve `app` until the returned task is aborted. Binding
/// here, not in the task, makes a taken port an error at start.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "probe/metrics server stopped");
        }
    });
    tracing::info!(addr = %local, "serving /healthz, /readyz, /metrics");
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_is_ready_and_reported_failing_is_not_ready() {
        let h = Health::default();
        h.set("caches", Status::Ok, "");
        h.set("kind/PVCViewer", Status::Degraded, "CRD absent");
        assert!(h.is_ready());
        assert_eq!(h.report(), "caches: ok\nkind/PVCViewer: degraded: CRD absent\n");
        h.set("caches", Status::Failing, "not synced");
        assert!(!h.is_ready());
        assert!(h.report().contains("caches: failing: not synced"));
    }
}
