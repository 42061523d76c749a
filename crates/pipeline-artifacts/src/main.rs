//! `pipeline-artifacts`: run the controller, serve metacontroller's hook, or
//! collect garbage. Wiring only: flags are `pipeline_artifacts::cli`, the
//! process (logs, SIGTERM/SIGINT, probes) is `kflite_runtime`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use kflite_runtime::{http, logging, shutdown};
use pipeline_artifacts::cli::{Cli, Command, DEFAULT_LOG_FILTER, GcArgs, RunArgs};
use pipeline_artifacts::metrics::{self, Metrics};
use pipeline_artifacts::{controller, gc, hook, reconcile::Context};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format, DEFAULT_LOG_FILTER);
    let stop = shutdown::signals();
    match cli.command {
        Command::Run(args) => run(args, stop).await,
        Command::Hook(common) => {
            let (settings, store) = (common.settings()?, common.conn.store(None).await?);
            let (metrics, client) = (Arc::new(Metrics::default()), kube::Client::try_default().await?);
            let state = hook::HookState {
                settings,
                store,
                metrics,
                client,
            };
            // The bucket and rule first, as the controller does; the hook then only reports.
            let prep = state.clone();
            tokio::spawn(async move {
                hook::prepare(&prep).await;
                prep.metrics.set_ready(true);
            });
            let (_, server) = http::serve(common.listen, hook::router(state)).await?;
            stop.await;
            server.abort();
            Ok(())
        }
        Command::Gc(args) => gc_main(args, stop).await,
    }
}

async fn run(args: RunArgs, stop: shutdown::Shutdown) -> anyhow::Result<()> {
    let settings = args.common.settings()?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let store = args.common.conn.store(Some(client.clone())).await?;
    let metrics = Arc::new(Metrics::default());
    let (_, server) = http::serve(args.common.listen, metrics::routes(metrics.clone())).await?;
    let ctx = Context {
        client,
        store,
        settings,
        delete_artifacts: args.delete_artifacts,
        metrics,
        instance: args.pod_name,
    };
    controller::run(ctx, stop).await;
    server.abort();
    Ok(())
}

async fn gc_main(args: GcArgs, stop: shutdown::Shutdown) -> anyhow::Result<()> {
    let (config, opts, store) = (args.db_config(), args.options(), args.conn.store(None).await?);
    if let Some(every) = args.every {
        anyhow::ensure!(!every.is_zero(), "--every must be longer than 0s");
        let metrics = Arc::new(Metrics::default());
        let (_, server) = http::serve(args.listen, metrics::routes(metrics.clone())).await?;
        gc::run_every(config, store, opts, every, metrics, stop).await;
        server.abort();
        return Ok(());
    }
    args.run_once(config, store, opts).await
}
