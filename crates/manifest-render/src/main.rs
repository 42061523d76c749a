//! `manifest-render build DIR [--mirror DIR] [-o FILE] [--strict] [--offline] [--locked|--update-lock]`,
//! `manifest-render lint DIR|FILE|- [--strict]` and `manifest-render vendor DIR [OUT]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use manifest_render::lint;
use manifest_render::remote::Session;

#[derive(Parser)]
#[command(
    name = "manifest-render",
    version,
    about = "A kustomize v5.8.1-compatible manifest renderer"
)]
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
        #[command(flatten)]
        lint: LintArgs,
    },
    /// Report the output's traps (see docs/manifest-render.md, "Lint").
    Lint {
        /// A kustomization directory, or a rendered YAML file (`-`: stdin).
        dir: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        lint: LintArgs,
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
    fn options(self, dir: &std::path::Path) -> anyhow::Result<(manifest_render::Options, Arc<Session>)> {
        use manifest_render::remote::{LockMode, RemoteOptions};
        let lock = if self.locked {
            LockMode::Locked
        } else if self.update_lock {
            LockMode::Update
        } else {
            LockMode::Use
        };
        let opts = RemoteOptions {
            cache_dir: self.cache_dir,
            offline: self.offline,
            lock,
            lockfile: self.lockfile,
            progress: true,
        };
        let session = Session::new(dir, self.mirror.clone(), opts)?;
        Ok((
            manifest_render::Options {
                mirror: self.mirror,
                session: Some(session.clone()),
            },
            session,
        ))
    }
}

#[derive(Args)]
struct LintArgs {
    /// Every lint finding is an error: exit 1 (build prints nothing).
    #[arg(long)]
    strict: bool,
    /// Kinds the cluster serves without a CRD in the output (group/Kind or group/*).
    #[arg(long, num_args = 1.., value_name = "KIND")]
    cluster_provided: Vec<String>,
    /// Lint configuration (default: kflite-lint.yaml in the kustomization directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl LintArgs {
    /// `--config`, else `kflite-lint.yaml` in the kustomization directory, else the defaults.
    fn config(&self, dir: &std::path::Path) -> anyhow::Result<lint::Config> {
        let beside = dir.join(lint::CONFIG_FILE);
        let mut c = match &self.config {
            Some(path) => lint::Config::from_file(path)?,
            None if dir.is_dir() && beside.is_file() => lint::Config::from_file(&beside)?,
            None => lint::Config::default(),
        };
        for k in &self.cluster_provided {
            c.cluster_provided
                .push(lint::KindPattern::parse(k).map_err(|e| anyhow::anyhow!("--cluster-provided: {e}"))?);
        }
        Ok(c)
    }

    /// Prints the findings; the error says how many failed the run.
    fn report(&self, findings: &[lint::Finding], build: bool) -> anyhow::Result<()> {
        let failing = |f: &lint::Finding| self.strict || (!build && f.severity == lint::Severity::Error);
        for f in findings {
            let mut f = f.clone();
            f.severity = if failing(&f) {
                lint::Severity::Error
            } else {
                lint::Severity::Warning
            };
            eprintln!("{f}");
        }
        match findings.iter().filter(|f| failing(f)).count() {
            0 => Ok(()),
            n => anyhow::bail!(
                "lint: {n} finding(s){}",
                if self.strict { " (--strict)" } else { "" }
            ),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
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
    let (dir, remote, output, lint, vendor) = match Cli::parse().command {
        Command::Build {
            dir,
            output,
            remote,
            lint,
        } => (dir, remote, output, Some(lint), None),
        Command::Vendor { out, dir, remote } => {
            let out = out.unwrap_or_else(|| dir.join("upstream"));
            (dir, remote, None, None, Some(out))
        }
        Command::Lint { dir, remote, lint } => return run_lint(&dir, remote, &lint),
    };
    let config = lint.as_ref().map(|l| l.config(&dir)).transpose()?;
    let (options, session) = remote.options(&dir)?;
    let (rendered, findings) = match &config {
        Some(c) => manifest_render::build_linted(&dir, &options, c)?,
        None => (manifest_render::build(&dir, &options)?, Vec::new()),
    };
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
    if let Some(l) = &lint {
        l.report(&findings, true)?;
    }
    match output {
        Some(path) => std::fs::File::create(&path)
            .and_then(|f| rendered.write_to(&mut std::io::BufWriter::new(f)))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => rendered.write_to(&mut std::io::stdout().lock())?,
    }
    Ok(())
}

fn run_lint(dir: &std::path::Path, remote: RemoteArgs, args: &LintArgs) -> anyhow::Result<()> {
    let config = args.config(dir)?;
    let findings = if dir.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        lint::lint_yaml(&text, std::path::Path::new("<stdin>"), &config)?
    } else if dir.is_file() {
        let text = std::fs::read_to_string(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        lint::lint_yaml(&text, dir, &config)?
    } else {
        let (options, session) = remote.options(dir)?;
        let findings = lint::lint_dir(dir, &options, &config)?;
        for w in session.finish()? {
            eprintln!("{w}");
        }
        findings
    };
    args.report(&findings, false)
}
