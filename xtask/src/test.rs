//! `cargo xtask test`: the README's test command and CI's only step.
//!
//! Installs what the tests need, points them at it through `KFLITE_TOOL_*`,
//! runs the whole suite with nextest, then prints every test that skipped
//! and why — so nothing passes silently.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::tools;

#[derive(clap::Args)]
pub struct Args {
    /// Don't install anything; use what is already there.
    #[arg(long)]
    no_install: bool,
    /// Extra arguments for `cargo nextest run` (e.g. a filter).
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let mut env: Vec<(String, String)> = Vec::new();

    if args.no_install {
        eprintln!(
            "xtask: --no-install: using tools already in {}",
            tools::venv_dir().display()
        );
    }
    match if args.no_install {
        Ok(existing_venv_tools())
    } else {
        tools::ensure_venv()
    } {
        Ok(found) => {
            for tool in &found {
                env.push((tool.env.into(), tool.path.display().to_string()));
            }
            // Tools the pipeline provides must be there: a missing one fails its test.
            env.push(("KFLITE_REQUIRE".into(), "1".into()));
        }
        Err(err) => {
            eprintln!("xtask: WARNING: test tools not installed ({err:#}); tests that need them will skip")
        }
    }

    for tool in tools::ensure_debian(!args.no_install) {
        env.push((tool.env.into(), tool.path.display().to_string()));
    }

    match crate::shared_dir() {
        Some(shared) => {
            let shared = shared.canonicalize().unwrap_or(shared);
            env.push(("KFLITE_SHARED".into(), shared.display().to_string()));
            env.push((
                "KFLITE_UPSTREAM_MIRROR".into(),
                shared.join("upstream").display().to_string(),
            ));
        }
        None => eprintln!("xtask: WARNING: ../shared is absent: conformance and mirror tests will skip"),
    }

    let skip_log = root.join("target/kflite-skips.txt");
    let _ = std::fs::remove_file(&skip_log);
    env.push(("KFLITE_SKIP_LOG".into(), skip_log.display().to_string()));

    let venv_bin = tools::venv_dir().join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(&path)))
        .context("building PATH")?;

    let mut cmd = if has_nextest() {
        let mut c = Command::new(cargo());
        c.args(["nextest", "run", "--workspace", "--all-targets", "--no-fail-fast"]);
        c
    } else {
        eprintln!("xtask: WARNING: cargo-nextest is not installed; falling back to `cargo test`");
        let mut c = Command::new(cargo());
        c.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
        c
    };
    cmd.args(&args.nextest_args)
        .current_dir(&root)
        .env("PATH", path)
        .envs(env);
    let status = cmd.status().context("running the test suite")?;

    print_skips(&skip_log);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

fn existing_venv_tools() -> Vec<tools::Tool> {
    let bin = tools::venv_dir().join("bin");
    [
        ("KFLITE_TOOL_PYTHON", "python"),
        ("KFLITE_TOOL_KUBECTL", "kubectl"),
        ("KFLITE_TOOL_WEED", "weed"),
    ]
    .into_iter()
    .map(|(env, name)| tools::Tool {
        env,
        path: bin.join(name),
    })
    .filter(|t| t.path.is_file())
    .collect()
}

fn print_skips(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.dedup();
    if lines.is_empty() {
        eprintln!("xtask: no test skipped");
    } else {
        eprintln!("xtask: {} test(s) SKIPPED:", lines.len());
        for line in lines {
            eprintln!("  {line}");
        }
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn has_nextest() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
