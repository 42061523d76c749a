//! `cargo xtask test`: the README's test command and CI's only step.
//!
//! Checks formatting and lints, installs what the tests need (cargo-nextest,
//! the Python venv, Debian packages, the Go-built control plane), points the
//! tests at it through `KFLITE_TOOL_*`, starts one real control plane that
//! tests share, runs the whole suite with nextest, then the checks that read
//! the suite's audit log (RBAC minimality), and prints every test that
//! skipped and why — so nothing passes silently.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::tools;

#[derive(clap::Args)]
pub struct Args {
    /// Don't install anything; use what is already there.
    #[arg(long)]
    no_install: bool,
    /// Skip `cargo fmt --check` and clippy (a quicker local loop; CI never sets it).
    #[arg(long)]
    no_lint: bool,
    /// Extra arguments for `cargo nextest run` (e.g. a filter).
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let result = run_inner(args);
    eprintln!(
        "xtask: cargo xtask test took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    result
}

fn run_inner(args: Args) -> Result<()> {
    let root = crate::project_root();
    let mut env: Vec<(String, String)> = Vec::new();

    if !args.no_lint {
        check_format(&root)?;
        check_clippy(&root)?;
    }
    if !args.no_install && !has_nextest() {
        eprintln!("xtask: cargo install --locked cargo-nextest (once per machine)");
        let ok = Command::new(cargo())
            .args(["install", "--locked", "cargo-nextest"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("xtask: WARNING: cargo-nextest could not be installed");
        }
    }

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

    // The real control plane: built once, then one instance shared by the
    // tests that don't interfere (each works in namespaces of its own).
    let mut control_plane = None;
    let built = if args.no_install {
        let bins = testsvc::Binaries::locate().map_err(anyhow::Error::from);
        bins.map(|b| {
            vec![
                crate::tools::Tool {
                    env: "KFLITE_TOOL_ETCD",
                    path: b.etcd,
                },
                crate::tools::Tool {
                    env: "KFLITE_TOOL_KUBE_APISERVER",
                    path: b.kube_apiserver,
                },
                crate::tools::Tool {
                    env: "KFLITE_TOOL_KUBE_CONTROLLER_MANAGER",
                    path: b.kube_controller_manager,
                },
            ]
        })
    } else {
        crate::control_plane::ensure_built()
    };
    match built {
        Ok(found) => {
            for tool in &found {
                env.push((tool.env.into(), tool.path.display().to_string()));
            }
            let dir = root.join("target/control-plane/shared");
            let _ = std::fs::remove_dir_all(&dir);
            let binaries = testsvc::Binaries::locate()?;
            let cp = testsvc::ControlPlane::start_in(&dir, &binaries)
                .context("starting the shared control plane")?;
            eprintln!(
                "xtask: control plane ({}) up in {:.1} s at {}",
                testsvc::control_plane::KUBERNETES_VERSION,
                cp.startup.as_secs_f64(),
                cp.info().url
            );
            env.push((
                testsvc::control_plane::SHARED_ENV.into(),
                dir.display().to_string(),
            ));
            // Private control planes leave their audit lines here for the after-suite checks.
            let audit = root.join("target/control-plane/audit");
            let _ = std::fs::remove_dir_all(&audit);
            env.push((
                testsvc::control_plane::AUDIT_DIR_ENV.into(),
                audit.display().to_string(),
            ));
            control_plane = Some(cp);
        }
        Err(err) => eprintln!(
            "xtask: WARNING: no real control plane ({err:#}); e2e tests run on kube-sim only, the apiserver ones skip"
        ),
    }

    let skip_log = root.join("target/kflite-skips.txt");
    let _ = std::fs::remove_file(&skip_log);
    env.push(("KFLITE_SKIP_LOG".into(), skip_log.display().to_string()));

    let venv_bin = tools::venv_dir().join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(&path)))
        .context("building PATH")?;

    let nextest = has_nextest();
    if !nextest {
        eprintln!("xtask: WARNING: cargo-nextest is not installed; falling back to `cargo test`");
    }
    let suite = |phase: Phase| -> Result<std::process::ExitStatus> {
        let mut c = Command::new(cargo());
        match (nextest, phase) {
            (true, Phase::Suite) => {
                c.args(["nextest", "run", "--workspace", "--all-targets", "--no-fail-fast"])
            }
            (false, Phase::Suite) => c.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]),
            (true, Phase::AfterSuite) => c
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--all-targets",
                    "--run-ignored",
                    "only",
                    "-E",
                ])
                .arg(format!("test(/{AFTER_SUITE_PREFIX}/)"))
                // Their report (each RBAC grant with its request count) is the point: show it.
                .arg("--no-capture"),
            (false, Phase::AfterSuite) => c.args([
                "test",
                "--workspace",
                "--all-targets",
                "--",
                "--ignored",
                "--nocapture",
                AFTER_SUITE_PREFIX,
            ]),
        };
        if phase == Phase::Suite {
            c.args(&args.nextest_args);
        }
        c.current_dir(&root).env("PATH", &path).envs(env.iter().cloned());
        c.status().context("running the test suite")
    };
    let status = suite(Phase::Suite)?;
    // Checks over the whole suite's audit log: only meaningful after a full run on the control plane.
    let after = if control_plane.is_some() && args.nextest_args.is_empty() && status.success() {
        eprintln!("xtask: checks that read the suite's audit log ({AFTER_SUITE_PREFIX}*)");
        Some(suite(Phase::AfterSuite)?)
    } else {
        None
    };
    drop(control_plane);

    print_skips(&skip_log);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    if let Some(after) = after
        && !after.success()
    {
        bail!("the after-suite checks failed ({after})");
    }
    Ok(())
}

/// Tests named so, marked `#[ignore]`, run after the suite, when its audit log is complete.
const AFTER_SUITE_PREFIX: &str = "after_suite_";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Suite,
    AfterSuite,
}

/// `cargo fmt --check` over the workspace at `root`; the error lists the files.
pub(crate) fn check_format(root: &Path) -> Result<()> {
    let out = Command::new(cargo())
        .args(["fmt", "--all", "--", "--check", "-l"])
        .current_dir(root)
        .output()
        .context("running cargo fmt")?;
    if out.status.success() {
        return Ok(());
    }
    let files = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    bail!(
        "cargo fmt --check: not formatted (run `cargo fmt --all`):\n{}{}",
        files.trim_end(),
        if files.trim().is_empty() {
            stderr.to_string()
        } else {
            String::new()
        }
    )
}

fn check_clippy(root: &Path) -> Result<()> {
    eprintln!("xtask: cargo clippy --workspace --all-targets -- -D warnings");
    let status = Command::new(cargo())
        .args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        .current_dir(root)
        .status()
        .context("running cargo clippy")?;
    if !status.success() {
        bail!("cargo clippy found problems ({status})");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unformatted_file_fails_the_format_check_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"fmt-probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "pub fn f( ) -> u8 {1}\n").unwrap();
        let err = check_format(dir.path()).unwrap_err().to_string();
        assert!(err.contains("src/lib.rs"), "{err}");

        std::fs::write(dir.path().join("src/lib.rs"), "pub fn f() -> u8 {\n    1\n}\n").unwrap();
        check_format(dir.path()).unwrap();
    }
}
