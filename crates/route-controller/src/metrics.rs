//! Prometheus metrics (served on /metrics).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Counter,
    pub errors: Counter,
    pub duration: Histogram,
    pub managed_routes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub routes_applied: Counter,
    pub routes_deleted: Counter,
    pub is_leader: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("route_controller");
        let reconciles = Counter::default();
        let errors = Counter::default();
        // 1 ms … ~16 s
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let managed_routes = Gauge::default();
        let routes_applied = Counter::default();
        let routes_deleted = Counter::default();
        let is_leader = Gauge::default();
        registry.register("reconciles", "Namespace reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Namespace reconciles that failed",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one namespace",
            duration.clone(),
        );
        registry.register(
            "managed_routes",
            "HTTPRoutes owned by this controller",
            managed_routes.clone(),
        );
        registry.register(
            "routes_applied",
            "HTTPRoutes created or updated",
            routes_applied.clone(),
        );
        registry.register("routes_deleted", "HTTPRoutes pruned", routes_deleted.clone());
        registry.register(
            "is_leader",
            "1 while this replica holds the leader lease",
            is_leader.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconciles,
            errors,
            duration,
            managed_routes,
            routes_applied,
            routes_deleted,
            is_leader,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
