//! `manifest-render build DIR [--mirror DIR] [-o FILE] [--strict]` and
//! `manifest-render lint DIR|FILE|- [--strict]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use manifest_render::lint;

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
        #[command(flatten)]
        lint: LintArgs,
    },
    /// Report the output's traps (see docs/manifest-render.md, "Lint").
    Lint {
        /// A kustomization directory, or a rendered YAML file (`-`: stdin).
        dir: PathBuf,
        /// Mirror of remote bases in the `../shared/upstream` layout.
        #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
        mirror: Option<PathBuf>,
        #[command(flatten)]
        lint: LintArgs,
    },
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
            c.cluster_provided.push(lint::KindPattern::parse(k).map_err(|e| anyhow::anyhow!("--cluster-provided: {e}"))?);
        }
        Ok(c)
    }

    /// Prints the findings; the error says how many failed the run.
    fn report(&self, findings: &[lint::Finding], build: bool) -> anyhow::Result<()> {
        let failing = |f: &lint::Finding| self.strict || (!build && f.severity == lint::Severity::Error);
        for f in findings {
            let mut f = f.clone();
            f.severity = if failing(&f) { lint::Severity::Error } else { lint::Severity::Warning };
            eprintln!("{f}");
        }
        match findings.iter().filter(|f| failing(f)).count() {
            0 => Ok(()),
            n => anyhow::bail!("lint: {n} finding(s){}", if self.strict { " (--strict)" } else { "" }),
        }
    }
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
    let (dir, mirror, output, lint) = match Cli::parse().command {
        Command::Build { dir, mirror, output, lint } => (dir, mirror, output, lint),
        Command::Lint { dir, mirror, lint } => return run_lint(&dir, mirror, &lint),
    };
    let config = lint.config(&dir)?;
    let options = manifest_render::Options { mirror };
    let (rendered, findings) = manifest_render::build_linted(&dir, &options, &config)?;
    // kustomize prints these lines on stderr as they are; so do we.
    for w in &rendered.warnings {
        eprintln!("{w}");
    }
    lint.report(&findings, true)?;
    match output {
        Some(path) => std::fs::File::create(&path)
            .and_then(|f| rendered.write_to(&mut std::io::BufWriter::new(f)))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => rendered.write_to(&mut std::io::stdout().lock())?,
    }
    Ok(())
}

fn run_lint(dir: &std::path::Path, mirror: Option<PathBuf>, args: &LintArgs) -> anyhow::Result<()> {
    let config = args.config(dir)?;
    let findings = if dir.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        lint::lint_yaml(&text, std::path::Path::new("<stdin>"), &config)?
    } else if dir.is_file() {
        let text = std::fs::read_to_string(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        lint::lint_yaml(&text, dir, &config)?
    } else {
        lint::lint_dir(dir, &manifest_render::Options { mirror }, &config)?
    };
    args.report(&findings, false)
}
