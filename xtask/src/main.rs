//! `cargo xtask`: kflite's pipeline — render, test, conformance, bench,
//! images, publish, release. Each subcommand lives in its own module.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

mod apply;
mod bench_artifacts;
mod bench_render;
mod bench_routes;
mod buildinfo;
mod ca_roots;
mod conformance;
mod control_plane;
mod generate;
mod gpu_check;
mod images;
mod oci;
mod publish;
mod registry;
mod release;
mod render;
mod test;
mod tools;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "kflite's build, test and release pipeline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the platform (default overlays/homelab) to stdout.
    Render(render::Args),
    /// Render and apply the platform: `kfctl apply` (preflight, phases, --diff, --prune).
    Apply(apply::Args),
    /// Install what the tests need, start services, run every test with nextest.
    Test(test::Args),
    /// Render every reference case and compare with kustomize's output.
    Conformance(conformance::Args),
    /// Benchmarks against the reference, measured in the same run.
    #[command(subcommand)]
    Bench(Bench),
    /// Write the manifests derived from code and configs (stub Istio CRDs, dashboard route).
    Generate(generate::Args),
    /// The prepared GPU-machine check for gpu-probe.
    GpuCheck(gpu_check::Args),
    /// Release-build the controllers into reproducible OCI images (no Docker); optionally push.
    Images(images::Args),
    /// Render an overlay to one file per object on a git branch for ArgoCD.
    Publish(publish::Args),
    /// Images pushed, render pinned by digest, branch published.
    Release(release::Args),
}

#[derive(Subcommand)]
enum Bench {
    /// manifest-render against `kubectl kustomize` on the owner's overlay.
    Render(bench_render::Args),
    /// route-controller at homelab scale on kube-sim: convergence, latency, RSS.
    Routes(bench_routes::Args),
    /// pipeline-artifacts provisioning namespaces from cold on real SeaweedFS.
    Artifacts(bench_artifacts::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Render(args) => render::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Test(args) => test::run(args),
        Command::Conformance(args) => conformance::run(args),
        Command::Bench(Bench::Render(args)) => bench_render::run(args),
        Command::Bench(Bench::Routes(args)) => bench_routes::run(args),
        Command::Bench(Bench::Artifacts(args)) => bench_artifacts::run(args),
        Command::GpuCheck(args) => gpu_check::run(args),
        Command::Images(args) => images::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Release(args) => release::run(args),
        Command::Generate(args) => generate::run(args),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    // Another checkout of the same sources (the image reproducibility test
    // builds two clones with one xtask binary).
    if let Some(dir) = std::env::var_os("KFLITE_PROJECT_ROOT") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `../shared` beside the checkout, or `KFLITE_SHARED`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KFLITE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("../shared"));
    dir.join("README.md").is_file().then_some(dir)
}
