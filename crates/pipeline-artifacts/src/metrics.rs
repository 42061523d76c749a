//! Prometheus metrics (on `prometheus-client`) and the /healthz, /readyz and
//! /metrics endpoints (`kflite_runtime::http`). Metric names are the ones
//! dashboards already use; reconcile time is exact, not whole seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use axum::Router;
use kflite_runtime::{Health, Status};
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::registry::Registry;

/// A count that only goes up.
#[derive(Clone, Debug, Default)]
pub struct Counter(PromCounter<u64, AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.0.inc();
    }
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Time spent, exposed in seconds; `add` takes microseconds.
#[derive(Clone, Debug, Default)]
pub struct Micros(PromCounter<f64, AtomicU64>);

impl Micros {
    pub fn add(&self, micros: u64) {
        self.0.inc_by(micros as f64 / 1e6);
    }
    pub fn seconds(&self) -> f64 {
        self.0.get()
    }
}

/// A value that is set, not added to.
#[derive(Clone, Debug, Default)]
pub struct Gauge(PromGauge<i64, AtomicI64>);

impl Gauge {
    pub fn set(&self, n: u64) {
        self.0.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    pub fn get(&self) -> u64 {
        u64::try_from(self.0.get()).unwrap_or(0)
    }
}

/// Name of the readiness check (/readyz).
const READY_CHECK: &str = "ready";

#[derive(Debug)]
pub struct Metrics {
    pub reconciles_ok: Counter,
    pub reconciles_failed: Counter,
    pub keys_created: Counter,
    pub keys_deleted: Counter,
    pub rotations: Counter,
    pub cleanups: Counter,
    pub reconcile_micros: Micros,
    /// gc (`gc --every`): counters, and gauges of the last cycle.
    pub gc_cycles_ok: Counter,
    pub gc_cycles_failed: Counter,
    pub gc_objects_deleted: Counter,
    pub gc_bytes_reclaimed: Counter,
    pub gc_errors: Counter,
    pub gc_objects_kept: Gauge,
    pub gc_bytes_kept: Gauge,
    pub gc_last_success: Gauge,
    ready: Gauge,
    health: Health,
    registry: Arc<Registry>,
}

type ResultLabel = [(&'static str, &'static str); 1];

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("pipeline_artifacts");
        // One family per labelled counter; the fields share its children's values.
        let by_result = |r: &mut Registry, name: &str, help: &str| {
            let family = Family::<ResultLabel, PromCounter<u64, AtomicU64>>::default();
            let ok = Counter(family.get_or_create(&[("result", "ok")]).clone());
            let failed = Counter(family.get_or_create(&[("result", "error")]).clone());
            r.register(name, help, family);
            (ok, failed)
        };
        let (reconciles_ok, reconciles_failed) = by_result(
            &mut r,
            "reconciles",
            "Namespace reconciles (controller) or sync calls (hook), by result.",
        );
        let (gc_cycles_ok, gc_cycles_failed) = by_result(
            &mut r,
            "gc_cycles",
            "Garbage collection cycles, by result (error: the cycle or a deletion failed).",
        );
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.0.clone());
            c
        };
        let keys_created = counter(&mut r, "keys_created", "SeaweedFS access keys created.");
        let keys_deleted = counter(
            &mut r,
            "keys_deleted",
            "SeaweedFS access keys deleted (unstored, rotated or cleaned up).",
        );
        let rotations = counter(&mut r, "rotations", "Credential rotations.");
        let cleanups = counter(&mut r, "cleanups", "Namespaces whose IAM user was removed.");
        let reconcile_micros = Micros::default();
        r.register(
            "reconcile_seconds",
            "Time spent reconciling.",
            reconcile_micros.0.clone(),
        );
        let gc_objects_deleted = counter(&mut r, "gc_objects_deleted", "Objects deleted by gc.");
        let gc_bytes_reclaimed = counter(&mut r, "gc_bytes_reclaimed", "Bytes of objects deleted by gc.");
        let gc_errors = counter(
            &mut r,
            "gc_errors",
            "gc errors (failed cycles and failed run deletions).",
        );
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.0.clone());
            g
        };
        let gc_objects_kept = gauge(
            &mut r,
            "gc_objects_kept",
            "Objects under private-artifacts/ kept by the last gc cycle.",
        );
        let gc_bytes_kept = gauge(
            &mut r,
            "gc_bytes_kept",
            "Bytes under private-artifacts/ kept by the last gc cycle.",
        );
        let gc_last_success = gauge(
            &mut r,
            "gc_last_success_timestamp_seconds",
            "When the last gc cycle without errors finished (0: never).",
        );
        let ready = gauge(&mut r, "ready", "Whether the process is ready.");
        let health = Health::default();
        health.set(
            READY_CHECK,
            Status::Failing,
            "starting (SeaweedFS bucket or database not ready yet)",
        );
        Self {
            reconciles_ok,
            reconciles_failed,
            keys_created,
            keys_deleted,
            rotations,
            cleanups,
            reconcile_micros,
            gc_cycles_ok,
            gc_cycles_failed,
            gc_objects_deleted,
            gc_bytes_reclaimed,
            gc_errors,
            gc_objects_kept,
            gc_bytes_kept,
            gc_last_success,
            ready,
            health,
            registry: Arc::new(r),
        }
    }
}

impl Metrics {
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(u64::from(ready));
        match ready {
            true => self.health.set(READY_CHECK, Status::Ok, ""),
            false => self.health.set(READY_CHECK, Status::Failing, "not ready"),
        }
    }
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
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

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        kflite_runtime::http::render(&self.registry)
    }
}

/// /healthz (process alive), /readyz (ready to work), /metrics.
pub fn routes(m: Arc<Metrics>) -> Router {
    kflite_runtime::http::router(m.health.clone(), m.registry.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_and_durations_are_not_truncated() {
        let m = Metrics::default();
        m.reconciles_ok.inc();
        m.keys_created.add(2);
        m.reconcile_micros.add(1_500);
        m.gc_bytes_kept.set(7);
        m.set_ready(true);
        let text = m.render();
        for line in [
            "pipeline_artifacts_reconciles_total{result=\"ok\"} 1\n",
            "pipeline_artifacts_reconciles_total{result=\"error\"} 0\n",
            "pipeline_artifacts_keys_created_total 2\n",
            "pipeline_artifacts_reconcile_seconds_total 0.0015\n",
            "pipeline_artifacts_gc_bytes_kept 7\n",
            "pipeline_artifacts_ready 1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
