//! route-controller: Gateway API HTTPRoutes and ReferenceGrants for Kubeflow
//! Notebooks, Tensorboards and PVCViewers, with no orphans.
//!
//! - [`desired`]: the pure function from observed objects to routes and grants.
//! - [`controller`]: watches, caches and server-side apply.
//! - [`leader`]: Lease-based leader election (one active replica).
//! - [`http`], [`metrics`]: /healthz, /readyz, /metrics.

pub mod config;
pub mod controller;
pub mod desired;
pub mod http;
pub mod leader;
pub mod metrics;

use std::sync::atomic::Ordering;

pub use config::{Config, ConfigError, UserIdSource};

/// How one replica runs: with leader election (in a cluster), or alone (tests, local runs).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub identity: String,
    pub leader: Option<leader::LeaderConfig>,
}

/// Run one replica until `shutdown` resolves or it loses leadership.
/// With leader election, a standby waits for the lease before it touches anything.
pub async fn run(
    client: kube::Client,
    config: Config,
    options: RunOptions,
    metrics: metrics::Metrics,
    health: http::Health,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), controller::Error> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let Some(leader_config) = options.leader else {
        return controller::run(client, config, metrics, health, options.identity, shutdown).await;
    };
    let mut elector = leader::LeaderElector::new(client.clone(), leader_config);
    health.standby.store(true, Ordering::Relaxed);
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        () = shutdown.clone() => return Ok(()),
    }
    tracing::info!(identity = %options.identity, "became leader");
    health.standby.store(false, Ordering::Relaxed);
    metrics.is_leader.set(1);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = lost_rx => {}
            }
        }
    };
    let work = controller::run(client, config, metrics.clone(), health, options.identity, stop);
    let hold = async {
        elector.hold().await;
        let _ = lost_tx.send(());
    };
    let (result, ()) = tokio::join!(work, async {
        tokio::select! {
            () = hold => {}
            () = shutdown.clone() => {}
        }
    });
    metrics.is_leader.set(0);
    elector.release().await;
    result
}
