//! `cargo xtask conformance`: renders every reference case with
//! manifest-render and compares it byte for byte with kustomize's output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Only cases whose directory contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print only the summary line and the failing case names.
    #[arg(long)]
    pub quiet: bool,
}

/// One case's outcome.
pub enum Outcome {
    Identical,
    Refused,
    /// Differs: the first differing line (1-based), expected and actual text.
    Differs {
        line: usize,
        expected: String,
        actual: String,
    },
    /// We failed where kustomize succeeded.
    Failed(String),
    /// We succeeded where kustomize refused.
    Accepted,
}

/// Renders `dir` and compares it with `expected` (`.yaml` or `.err`).
pub fn check(dir: &Path, mirror: &Path, expected: &Path) -> Outcome {
    let opts = manifest_render::Options {
        mirror: Some(mirror.to_path_buf()),
        ..Default::default()
    };
    let got = manifest_render::render(dir, &opts);
    let want_err = expected.extension().is_some_and(|e| e == "err");
    match (got, want_err) {
        (Err(_), true) => Outcome::Refused,
        (Ok(_), true) => Outcome::Accepted,
        (Err(e), false) => Outcome::Failed(e.to_string()),
        (Ok(r), false) => {
            let want = std::fs::read_to_string(expected).unwrap_or_default();
            if r.yaml == want {
                return Outcome::Identical;
            }
            let (a, w): (Vec<&str>, Vec<&str>) = (r.yaml.lines().collect(), want.lines().collect());
            let line = a
                .iter()
                .zip(&w)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(w.len()));
            Outcome::Differs {
                line: line + 1,
                expected: w.get(line).unwrap_or(&"<end of output>").to_string(),
                actual: a.get(line).unwrap_or(&"<end of output>").to_string(),
            }
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let shared = crate::shared_dir().context("../shared is not beside the checkout (set KFLITE_SHARED)")?;
    let mirror = shared.join("upstream");
    let reference = shared.join("reference");
    let list = std::fs::read_to_string(reference.join("corpus.list")).context("reading corpus.list")?;
    let (mut identical, mut total_yaml, mut refused, mut total_err) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if args.filter.as_deref().is_some_and(|f| !case.contains(f)) {
            continue;
        }
        let stem = case.replace('/', "__");
        let yaml = reference.join("corpus").join(format!("{stem}.yaml"));
        let err = reference.join("corpus").join(format!("{stem}.err"));
        let expected: PathBuf = if err.is_file() { err } else { yaml };
        let is_err = expected.extension().is_some_and(|e| e == "err");
        if is_err {
            total_err += 1;
        } else {
            total_yaml += 1;
        }
        match check(&mirror.join("git").join(case), &mirror, &expected) {
            Outcome::Identical => identical += 1,
            Outcome::Refused => refused += 1,
            Outcome::Accepted => {
                failures.push(format!("{case}: kustomize refuses this case, we rendered it"))
            }
            Outcome::Failed(e) => failures.push(format!("{case}: error: {e}")),
            Outcome::Differs {
                line,
                expected,
                actual,
            } => failures.push(format!(
                "{case}: line {line}: expected {expected:?}, got {actual:?}"
            )),
        }
    }
    let homelab = if args.filter.is_none() {
        match check(
            &reference.join("homelab"),
            &mirror,
            &reference.join("homelab.yaml"),
        ) {
            Outcome::Identical => "identical",
            Outcome::Failed(e) => {
                failures.push(format!("homelab: error: {e}"));
                "differs"
            }
            Outcome::Differs {
                line,
                expected,
                actual,
            } => {
                failures.push(format!(
                    "homelab: line {line}: expected {expected:?}, got {actual:?}"
                ));
                "differs"
            }
            _ => "differs",
        }
    } else {
        "skipped"
    };
    for f in &failures {
        if args.quiet {
            println!("{}", f.split(':').next().unwrap_or(f));
        } else {
            println!("{f}");
        }
    }
    println!("identical: {identical}/{total_yaml}, refused: {refused}/{total_err}, homelab: {homelab}");
    if !failures.is_empty() {
        bail!("{} case(s) do not conform", failures.len());
    }
    Ok(())
}
