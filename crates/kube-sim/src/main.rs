//! `kube-sim serve --port N --kubeconfig-out FILE`: run the simulated API
//! server until killed. Faults through `POST /kube-sim/faults/...` (see docs/testing.md).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "kube-sim", about = "A Kubernetes API server stand-in for tests")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve on 127.0.0.1 until killed.
    Serve {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write a kubeconfig for the server here.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Events kept for watches from old resourceVersions.
        #[arg(long, default_value_t = 10_000)]
        history: usize,
        /// Seconds between watch bookmarks.
        #[arg(long, default_value_t = 1)]
        bookmark_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cmd::Serve {
        port,
        kubeconfig_out,
        history,
        bookmark_seconds,
    } = Cli::parse().command;
    let config = kube_sim::Config {
        port,
        history_limit: history,
        bookmark_interval: Duration::from_secs(bookmark_seconds.max(1)),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    if let Some(path) = &kubeconfig_out {
        std::fs::write(path, kube_sim::kubeconfig_yaml(&url))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!("kube-sim serving at {url}");
    kube_sim::Server::serve(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
