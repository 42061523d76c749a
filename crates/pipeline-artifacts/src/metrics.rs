//! Prometheus counters and the /healthz, /readyz and /metrics endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles_ok: Counter,
    pub reconciles_failed: Counter,
    pub keys_created: Counter,
    pub keys_deleted: Counter,
    pub rotations: Counter,
    pub cleanups: Counter,
    pub reconcile_micros: Counter,
    ready: AtomicBool,
}

impl Metrics {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (labels, v) in samples {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        counter(
            "pipeline_artifacts_reconciles_total",
            "Namespace reconciles (controller) or sync calls (hook), by result.",
            &[("{result=\"ok\"}", self.reconciles_ok.get()), ("{result=\"error\"}", self.reconciles_failed.get())],
        );
        counter("pipeline_artifacts_keys_created_total", "SeaweedFS access keys created.", &[("", self.keys_created.get())]);
        counter("pipeline_artifacts_keys_deleted_total", "SeaweedFS access keys deleted (unstored, rotated or cleaned up).", &[("", self.keys_deleted.get())]);
        counter("pipeline_artifacts_rotations_total", "Credential rotations.", &[("", self.rotations.get())]);
        counter("pipeline_artifacts_cleanups_total", "Namespaces whose IAM user was removed.", &[("", self.cleanups.get())]);
        counter(
            "pipeline_artifacts_reconcile_seconds_total",
            "Time spent reconciling.",
            &[("", self.reconcile_micros.get() / 1_000_000)],
        );
        out.push_str(&format!(
            "# HELP pipeline_artifacts_ready Whether the process is ready.\n# TYPE pipeline_artifacts_ready gauge\npipeline_artifacts_ready {}\n",
            u8::from(self.is_ready())
        ));
        out
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render())
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.is_ready() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready") }
}

/// /healthz (process alive), /readyz (ready to work), /metrics.
pub fn routes(m: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(m)
}
