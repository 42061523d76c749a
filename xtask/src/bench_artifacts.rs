//! `cargo xtask bench artifacts`: pipeline-artifacts provisioning 100
//! namespaces from cold on a real SeaweedFS (kube-sim for the cluster).

use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    namespaces: usize,
}

pub fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let weed = std::env::var_os("KFLITE_TOOL_WEED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::tools::venv_dir().join("bin/weed"));
    if !weed.is_file() {
        bail!(
            "{} is missing: run `cargo xtask test` once (it installs SeaweedFS) or set KFLITE_TOOL_WEED",
            weed.display()
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::tools::run(
        Command::new(cargo)
            .current_dir(&root)
            .args([
                "run",
                "--release",
                "-p",
                "pipeline-artifacts",
                "--example",
                "bench_artifacts",
                "--",
            ])
            .args(["--namespaces", &args.namespaces.to_string()])
            .env("KFLITE_TOOL_WEED", &weed),
    )
    .context("running the pipeline-artifacts bench")
}
