//! Prometheus metrics (served on /metrics by `kflite_runtime::http`).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `kind="Notebook"` etc.
pub type KindLabel = [(&'static str, &'static str); 1];

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Counter,
    pub errors: Counter,
    pub duration: Histogram,
    pub managed_routes: Gauge<i64, AtomicI64>,
    pub routes_applied: Counter,
    pub routes_deleted: Counter,
    pub is_leader: Gauge<i64, AtomicI64>,
    /// 1 while a watched kind's objects are listed, 0 while its CRD is absent or not yet listed.
    pub crd_available: Family<KindLabel, Gauge<i64, AtomicI64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("route_controller");
        let m = Self {
            registry: Arc::default(),
            reconciles: Counter::default(),
            errors: Counter::default(),
            // 1 ms … ~16 s
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            managed_routes: Gauge::default(),
            routes_applied: Counter::default(),
            routes_deleted: Counter::default(),
            is_leader: Gauge::default(),
            crd_available: Family::default(),
        };
        let r = &mut registry;
        r.register("reconciles", "Namespace reconciles run", m.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Namespace reconciles that failed",
            m.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time to reconcile one namespace",
            m.duration.clone(),
        );
        r.register(
            "managed_routes",
            "HTTPRoutes owned by this controller",
            m.managed_routes.clone(),
        );
        r.register(
            "routes_applied",
            "HTTPRoutes created or updated",
            m.routes_applied.clone(),
        );
        r.register("routes_deleted", "HTTPRoutes pruned", m.routes_deleted.clone());
        r.register(
            "is_leader",
            "1 while this replica holds the leader lease",
            m.is_leader.clone(),
        );
        r.register(
            "crd_available",
            "1 while the kind is listed and watched; 0 while its CRD is absent (its objects are not routed)",
            m.crd_available.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        kflite_runtime::http::render(&self.registry)
    }
}
