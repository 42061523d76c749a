//! What images, publish and release need to know about the workspace and
//! its git checkout: package metadata from `cargo metadata`, the commit and
//! its time, and a small runner for `git` and `cargo`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// One workspace package, as `cargo metadata` describes it.
#[derive(Debug, Clone)]
pub struct Package {
    pub version: String,
    pub description: String,
    pub license: String,
    pub repository: String,
    pub bins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub packages: BTreeMap<String, Package>,
}

/// The cargo that runs us (`cargo xtask` sets `CARGO`), else `cargo` on PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn workspace() -> Result<Workspace> {
    let root = crate::project_root();
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed ({})", out.status);
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let root = PathBuf::from(text(&meta["workspace_root"]));
    let workspace_repository = workspace_package_field(&root.join("Cargo.toml"), "repository")?;
    let mut packages = BTreeMap::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let bins = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
            .map(|t| text(&t["name"]))
            .collect();
        packages.insert(
            text(&p["name"]),
            Package {
                version: text(&p["version"]),
                description: text(&p["description"]),
                license: text(&p["license"]),
                // Packages that do not inherit `repository` still live in the workspace's.
                repository: p["repository"]
                    .as_str()
                    .map_or_else(|| workspace_repository.clone(), str::to_string),
                bins,
            },
        );
    }
    Ok(Workspace {
        root,
        target_dir: PathBuf::from(text(&meta["target_directory"])),
        packages,
    })
}

/// A string field of `[workspace.package]` in the root Cargo.toml (`key = "value"` lines).
fn workspace_package_field(manifest: &Path, key: &str) -> Result<String> {
    let text =
        std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Ok(v.trim().trim_matches('"').to_string());
        }
    }
    Ok(String::new())
}

/// Runs `git -C dir args`, feeding `stdin`, and returns stdout trimmed.
pub fn git_with(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running git {} (is git installed?)", args.join(" ")))?;
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().context("git stdin")?;
        // git may answer before reading everything; a broken pipe then shows up as its exit status.
        let _ = pipe.write_all(data);
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_with(dir, args, &[], None)
}

/// The checkout's commit, or `unknown` outside git.
pub fn revision(root: &Path) -> String {
    git(root, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into())
}

/// The time images claim to be built: `SOURCE_DATE_EPOCH` if set, else the
/// commit time, so two builds of one commit agree.
pub fn source_date_epoch(root: &Path) -> Result<i64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a Unix time"));
    }
    match git(root, &["log", "-1", "--format=%ct", "HEAD"]) {
        Ok(t) => t.parse().with_context(|| format!("git commit time '{t}'")),
        Err(_) => Ok(0),
    }
}

/// The host's target triple (`rustc -vV`).
pub fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host triple")
}

/// `path` relative to `base` (both absolute), with `..` where needed.
pub fn relative_path(base: &Path, path: &Path) -> PathBuf {
    let (b, p): (Vec<_>, Vec<_>) = (base.components().collect(), path.components().collect());
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let rel = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(
            rel("/w/target/x", "/w/overlays/homelab"),
            "../../overlays/homelab"
        );
        assert_eq!(rel("/w", "/w/a"), "a");
        assert_eq!(rel("/w/a", "/w/a"), ".");
    }

    #[test]
    fn workspace_lists_controller_binaries() {
        let ws = workspace().unwrap();
        assert!(
            ws.packages["route-controller"]
                .bins
                .contains(&"route-controller".to_string())
        );
        assert!(
            ws.packages["route-controller"].repository.starts_with("https://"),
            "{:?}",
            ws.packages["route-controller"]
        );
    }
}
