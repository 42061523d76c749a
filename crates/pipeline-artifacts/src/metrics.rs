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
    /// gc (`gc --every`): counters, and gauges of the last cycle.
    pub gc_cycles_ok: Counter,
    pub gc_cycles_failed: Counter,
    pub gc_objects_deleted: Counter,
    pub gc_bytes_reclaimed: Counter,
    pub gc_errors: Counter,
    pub gc_objects_kept: Gauge,
    pub gc_bytes_kept: Gauge,
    pub gc_last_success: Gauge,
    ready: AtomicBool,
}

/// A value that is set, not added to.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metrics {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records a finished gc cycle (deletions were counted as they happened).
    pub fn record_gc(&self, report: &crate::gc::Report, now: i64) {
        self.gc_objects_kept.set(report.totals.kept_objects);
        self.gc_bytes_kept.set(report.totals.kept_bytes);
        self.gc_errors.add(report.errors.len() as u64);
        if report.errors.is_empty() {
            self.gc_cycles_ok.inc();
            self.gc_last_success.set(now.max(0) as u64);
        } else {
            self.gc_cycles_failed.inc();
        }
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
            &[
                ("{result=\"ok\"}", self.reconciles_ok.get()),
                ("{result=\"error\"}", self.reconciles_failed.get()),
            ],
        );
        counter(
            "pipeline_artifacts_keys_created_total",
            "SeaweedFS access keys created.",
            &[("", self.keys_created.get())],
        );
        counter(
            "pipeline_artifacts_keys_deleted_total",
            "SeaweedFS access keys deleted (unstored, rotated or cleaned up).",
            &[("", self.keys_deleted.get())],
        );
        counter(
            "pipeline_artifacts_rotations_total",
            "Credential rotations.",
            &[("", self.rotations.get())],
        );
        counter(
            "pipeline_artifacts_cleanups_total",
            "Namespaces whose IAM user was removed.",
            &[("", self.cleanups.get())],
        );
        counter(
            "pipeline_artifacts_reconcile_seconds_total",
            "Time spent reconciling.",
            &[("", self.reconcile_micros.get() / 1_000_000)],
        );
        counter(
            "pipeline_artifacts_gc_cycles_total",
            "Garbage collection cycles, by result (error: the cycle or a deletion failed).",
            &[
                ("{result=\"ok\"}", self.gc_cycles_ok.get()),
                ("{result=\"error\"}", self.gc_cycles_failed.get()),
            ],
        );
        counter(
            "pipeline_artifacts_gc_objects_deleted_total",
            "Objects deleted by gc.",
            &[("", self.gc_objects_deleted.get())],
        );
        counter(
            "pipeline_artifacts_gc_bytes_reclaimed_total",
            "Bytes of objects deleted by gc.",
            &[("", self.gc_bytes_reclaimed.get())],
        );
        counter(
            "pipeline_artifacts_gc_errors_total",
            "gc errors (failed cycles and failed run deletions).",
            &[("", self.gc_errors.get())],
        );
        let mut gauge = |name: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        };
        gauge(
            "pipeline_artifacts_gc_objects_kept",
            "Objects under private-artifacts/ kept by the last gc cycle.",
            self.gc_objects_kept.get(),
        );
        gauge(
            "pipeline_artifacts_gc_bytes_kept",
            "Bytes under private-artifacts/ kept by the last gc cycle.",
            self.gc_bytes_kept.get(),
        );
        gauge(
            "pipeline_artifacts_gc_last_success_timestamp_seconds",
            "When the last gc cycle without errors finished (0: never).",
            self.gc_last_success.get(),
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
    if m.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// /healthz (process alive), /readyz (ready to work), /metrics.
pub fn routes(m: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(m)
}
