//! `manifest-render build DIR [--mirror DIR] [-o FILE] [--offline] [--locked|--update-lock]`,
//! `manifest-render vendor DIR [OUT]`

use std::io::Write;
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
        /// Write the YAML here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Fetch every remote base DIR uses and write them as a mirror in the
    /// `../shared/upstream` layout (for `--mirror`).
    Vendor {
        /// The kustomization directory.
        dir: PathBuf,
        /// Where to write the mirror (default: DIR/upstream).
        out: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(clap::Args)]
struct RemoteArgs {
    /// Mirror of remote bases in the `../shared/upstream` layout (looked up first).
    #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
    mirror: Option<PathBuf>,
    /// Cache of fetched remotes (default: $XDG_CACHE_HOME/kflite or ~/.cache/kflite).
    #[arg(long, env = "KFLITE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Never fetch: use the mirror and the cache; lists every missing remote.
    #[arg(long)]
    offline: bool,
    /// Fail unless the lockfile exists and matches the build exactly.
    #[arg(long, conflicts_with = "update_lock")]
    locked: bool,
    /// Resolve every ref afresh and rewrite the lockfile.
    #[arg(long)]
    update_lock: bool,
    /// Lockfile (default: DIR/kflite.lock).
    #[arg(long)]
    lockfile: Option<PathBuf>,
}

impl RemoteArgs {
    fn options(self, dir: &std::path::Path) -> anyhow::Result<manifest_render::Options> {
        use manifest_render::remote::{LockMode, RemoteOptions, Session};
        let lock = if self.locked { LockMode::Locked } else if self.update_lock { LockMode::Update } else { LockMode::Use };
        let opts = RemoteOptions { cache_dir: self.cache_dir, offline: self.offline, lock, lockfile: self.lockfile, progress: true };
        let session = Session::new(dir, self.mirror.clone(), opts)?;
        Ok(manifest_render::Options { mirror: self.mirror, session: Some(session) })
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
    ).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages quote URLs as written; credentials in them stay hidden.
            eprintln!("error: {}", manifest_render::remote::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let (dir, remote, output, vendor) = match Cli::parse().command {
        Command::Build { dir, output, remote } => (dir, remote, output, None),
        Command::Vendor { out, dir, remote } => (dir.clone(), remote, None, Some(out.unwrap_or_else(|| dir.join("upstream")))),
    };
    let options = remote.options(&dir)?;
    let rendered = manifest_render::render(&dir, &options)?;
    let session = options.session.as_ref().expect("the CLI always has a session");
    // kustomize prints these lines on stderr as they are; so do we.
    for w in rendered.warnings.iter().chain(&session.finish()?) {
        eprintln!("{w}");
    }
    if let Some(out) = vendor {
        for p in session.vendor(&out)? {
            eprintln!("vendored {}", p.display());
        }
        return Ok(());
    }
    match output {
        Some(path) => std::fs::write(&path, rendered.yaml.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(rendered.yaml.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}
