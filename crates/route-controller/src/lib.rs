//! route-controller: Gateway API HTTPRoutes and ReferenceGrants for Kubeflow
//! Notebooks, Tensorboards and PVCViewers, with no orphans.
//!
//! - [`desired`]: the pure function from observed objects to routes and grants
//!   (the route shapes themselves are `kfmodel::routes`).
//! - [`controller`]: watches, caches and server-side apply.
//! - [`watches`]: each kind watched on its own; an absent CRD degrades, never stops.
//! - [`metrics`]: Prometheus metrics; the process wiring (logs, signals,
//!   probes, leader election) is `kflite_runtime`.

pub mod cli;
pub mod config;
pub mod controller;
pub mod desired;
pub mod metrics;
pub mod watches;

pub use config::{Config, ConfigError, UserIdSource};
use kflite_runtime::leader::{self, LeaderConfig};
use kflite_runtime::{Health, Shutdown, Status};

/// How one replica runs: with leader election (in a cluster), or alone (tests, local runs).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub identity: String,
    pub leader: Option<LeaderConfig>,
}

/// Run one replica until `shutdown` resolves or it loses leadership.
/// With leader election, a standby waits for the Lease before it touches
/// anything, and the leader releases the Lease once it has stopped.
pub async fn run(
    client: kube::Client,
    config: Config,
    options: RunOptions,
    metrics: metrics::Metrics,
    health: Health,
    shutdown: Shutdown,
) -> Result<(), controller::Error> {
    let identity = options.identity;
    let work = {
        let (client, metrics, health) = (client.clone(), metrics.clone(), health.clone());
        move |stop: Shutdown| {
            let watches = watches::Watches::new(health, metrics.clone());
            controller::run(client, config, metrics, watches, identity, stop)
        }
    };
    let Some(leader_config) = options.leader else {
        return work(shutdown).await;
    };
    // A standby is ready: it can take over.
    health.set(watches::CACHES_CHECK, Status::Ok, "standby");
    let on_change = |leading: bool| {
        metrics.is_leader.set(i64::from(leading));
    };
    leader::lead(client, leader_config, shutdown, on_change, work)
        .await?
        .unwrap_or(Ok(()))
}
