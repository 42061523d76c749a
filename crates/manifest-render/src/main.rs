//! `manifest-render build DIR [--mirror DIR] [-o FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "manifest-render", version, about = "A kustomize v5.8.1-compatible manifest renderer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a kustomization directory and print the objects as YAML.
    Build {
        /// The kustomization directory.
        dir: PathBuf,
        /// Mirror of remote bases in the `../shared/upstream` layout.
        #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
        mirror: Option<PathBuf>,
        /// Write the YAML here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
    ).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let Command::Build { dir, mirror, output } = Cli::parse().command;
    let rendered = manifest_render::build(&dir, &manifest_render::Options { mirror })?;
    // kustomize prints these lines on stderr as they are; so do we.
    for w in &rendered.warnings {
        eprintln!("{w}");
    }
    match output {
        Some(path) => std::fs::File::create(&path)
            .and_then(|f| rendered.write_to(&mut std::io::BufWriter::new(f)))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => rendered.write_to(&mut std::io::stdout().lock())?,
    }
    Ok(())
}
