//! The route-controller binary: wiring only (see `route_controller::cli`).

use anyhow::Context as _;
use clap::Parser as _;
use kflite_runtime::{Health, http, logging, shutdown};
use route_controller::cli::Cli;
use route_controller::metrics::Metrics;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format, "info,kube=warn");
    cli.config.validate()?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
    let (metrics, health) = (Metrics::new(), Health::default());
    let addr = cli.config.metrics_addr;
    let (_, server) = http::serve(addr, http::router(health.clone(), metrics.registry())).await?;
    let options = cli.run_options();
    route_controller::run(client, cli.config, options, metrics, health, shutdown::signals()).await?;
    server.abort();
    Ok(())
}
