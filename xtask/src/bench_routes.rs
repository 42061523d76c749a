//! `cargo xtask bench routes`: route-controller at homelab scale on kube-sim
//! (2,000 Notebooks, 500 Tensorboards, 500 PVCViewers, 300 namespaces).

use std::process::Command;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Changes made during the latency phase.
    #[arg(long, default_value_t = 500)]
    changes: usize,
    /// Changes per second during the latency phase.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
}

pub fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::tools::run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "route-controller",
        "--bin",
        "route-controller",
        "--example",
        "bench_routes",
    ]))
    .context("building route-controller (release)")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("release");
    crate::tools::run(
        Command::new(release.join("examples/bench_routes"))
            .arg("--controller")
            .arg(release.join("route-controller"))
            .args([
                "--changes",
                &args.changes.to_string(),
                "--rate",
                &args.rate.to_string(),
            ]),
    )
}
