//! `kfctl`: the binary. Everything it does lives in the library (`kfctl::cli::run`).

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = kfctl::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // kube-client logs each failed request; kfctl reports the error itself, once.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube_client=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match kfctl::cli::run(&cli, &mut std::io::stdout().lock(), &mut std::io::stderr()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kfctl: {e}");
            2
        }
    };
    std::process::exit(code);
}
