//! `kfctl apply` / `kfctl diff` on the command line: render the overlay in
//! process (kflite.lock rules of `cargo xtask render`), then [`super::apply`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::applyset::Parent;
use super::{ApplyOptions, FIELD_MANAGER};
use crate::cli::Cli;
use crate::output::{self, Format};
use crate::overlay::RenderRequest;
use crate::{Error, Result};

#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    /// The overlay (kustomization directory) to render and apply.
    #[arg(default_value = "overlays/homelab")]
    pub dir: PathBuf,
    /// Offline mirror of remote bases (`../shared/upstream` layout), looked up before fetching.
    #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
    pub mirror: Option<PathBuf>,
    /// Never fetch remote bases: mirror and cache only.
    #[arg(long)]
    pub offline: bool,
    /// Fail unless DIR/kflite.lock exists and matches the build exactly.
    #[arg(long, conflicts_with = "update_lock")]
    pub locked: bool,
    /// Resolve every remote ref afresh and rewrite DIR/kflite.lock.
    #[arg(long)]
    pub update_lock: bool,
    /// Fail on any lint finding instead of printing it as a warning.
    #[arg(long)]
    pub strict: bool,
    /// Print what would change, object by object (kubectl diff's format), and change nothing.
    #[arg(long)]
    pub diff: bool,
    /// Server-side dry run: report what would be created, configured and pruned; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects of this ApplySet that left the render.
    #[arg(long)]
    pub prune: bool,
    /// Take over fields another field manager owns, as kubectl's --force-conflicts.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Field manager for server-side apply.
    #[arg(long, default_value = FIELD_MANAGER)]
    pub field_manager: String,
    /// Name of the ApplySet parent Secret.
    #[arg(long, default_value = "kflite")]
    pub applyset: String,
    /// Namespace of the ApplySet parent Secret.
    #[arg(long, default_value = "kube-system")]
    pub applyset_namespace: String,
    /// Seconds to wait for the render's CRDs to be Established.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
}

/// Runs `kfctl apply` (or `kfctl diff` when `diff_only`); returns the exit code.
pub async fn run(
    cli: &Cli,
    args: &ApplyArgs,
    diff_only: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32> {
    if !args.dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: no such overlay directory; run kfctl apply in the kflite checkout (its default is overlays/homelab) or name the overlay: kfctl apply DIR",
            args.dir.display()
        )));
    }
    let request = RenderRequest {
        dir: args.dir.clone(),
        mirror: args.mirror.clone(),
        offline: args.offline,
        lock: RenderRequest::lock_mode(args.locked, args.update_lock),
        strict: args.strict,
    };
    let rendered = request.render()?;
    for w in &rendered.warnings {
        let _ = writeln!(err, "{w}");
    }
    let yaml = rendered.built.into_rendered().yaml;
    let conn = cli.target().connect().await?;
    let opts = ApplyOptions {
        field_manager: args.field_manager.clone(),
        force_conflicts: args.force_conflicts,
        dry_run: args.dry_run,
        diff: args.diff || diff_only,
        prune: args.prune,
        applyset: Parent {
            name: args.applyset.clone(),
            namespace: args.applyset_namespace.clone(),
        },
        default_namespace: conn.namespace.clone(),
        wait: Duration::from_secs(args.wait),
        concurrency: 8,
        interactive: true,
    };
    let source = args.dir.display().to_string();
    let summary = super::apply(&conn.client, &yaml, &source, &opts, err).await?;
    let text = match (cli.output, &summary.diff) {
        // The diff alone on stdout, as kubectl diff prints it; the counts go to stderr.
        (Format::Table, Some(diff)) => {
            let _ = write!(err, "{}", summary.to_table());
            diff.clone()
        }
        (Format::Table, None) => summary.to_table(),
        (f, _) => output::encode(&summary, f)?,
    };
    out.write_all(text.as_bytes()).map_err(|source| Error::Io {
        path: "<stdout>".into(),
        source,
    })?;
    Ok(summary.exit_code())
}
