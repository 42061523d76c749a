//! The route-controller binary: configuration from flags/env, JSON logs.

use anyhow::Context as _;
use clap::Parser;
use route_controller::{RunOptions, http, leader::LeaderConfig, metrics::Metrics};

#[derive(Parser)]
#[command(
    name = "route-controller",
    version,
    about = "Gateway API routes for Kubeflow notebooks, tensorboards and PVC viewers"
)]
struct Cli {
    #[command(flatten)]
    config: route_controller::Config,
    /// Run without leader election (a single replica).
    #[arg(long, env = "NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Namespace of the leader Lease (defaults to the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kubeflow")]
    lease_namespace: String,
    #[arg(long, env = "LEASE_NAME", default_value = "kflite-route-controller")]
    lease_name: String,
    /// This replica's identity in the Lease (defaults to the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    cli.config.validate()?;
    let identity = cli.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "route-controller".into());
        format!("{host}-{}", std::process::id())
    });
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
    let metrics = Metrics::new();
    let health = http::Health::default();
    let (addr, _server) = http::serve(cli.config.metrics_addr, health.clone(), metrics.clone())
        .await
        .with_context(|| format!("binding {}", cli.config.metrics_addr))?;
    tracing::info!(%addr, "serving /healthz, /readyz, /metrics");
    let leader = (!cli.no_leader_election)
        .then(|| LeaderConfig::new(&cli.lease_namespace, &cli.lease_name, &identity));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    route_controller::run(
        client,
        cli.config,
        RunOptions { identity, leader },
        metrics,
        health,
        shutdown,
    )
    .await?;
    Ok(())
}
