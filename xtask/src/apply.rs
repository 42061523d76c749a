//! `cargo xtask apply [ARGS]`: `kfctl apply ARGS`, the same code run in
//! process. Paths are relative to the project root (as `cargo xtask
//! render`'s), and the mirror defaults to ../shared/upstream when present.

use anyhow::{Context, Result};
use clap::Parser as _;

#[derive(clap::Args)]
pub struct Args {
    /// Arguments of `kfctl apply` (see `kfctl apply --help`), e.g. `--diff`, `--prune`, `-o json`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let mut argv: Vec<String> = vec!["kfctl".into(), "apply".into()];
    argv.extend(args.args);
    let has_mirror = argv.iter().any(|a| a == "--mirror" || a.starts_with("--mirror="));
    if !has_mirror
        && std::env::var_os("KFLITE_UPSTREAM_MIRROR").is_none()
        && let Some(mirror) = crate::render::default_mirror()
    {
        argv.push("--mirror".into());
        argv.push(mirror.display().to_string());
    }
    let cli = kfctl::cli::Cli::parse_from(argv);
    std::env::set_current_dir(crate::project_root()).context("changing to the project root")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = runtime.block_on(kfctl::cli::run(
        &cli,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    ))?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
