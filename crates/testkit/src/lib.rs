//! Test support shared by kflite's crates.
//!
//! Tests that need `../shared` or an external tool (kubectl, weed, python)
//! call [`shared_dir`] / [`tool`]. When the thing is missing the test is
//! skipped *loudly*: a line goes to stderr and to the skip log that
//! `cargo xtask test` prints after the run. Under `cargo xtask test` a tool
//! that the pipeline installed is named by `KFLITE_TOOL_<NAME>`, and
//! `KFLITE_REQUIRE=1` turns a skip for a tool the pipeline promised into a
//! failure, so CI can never pass silently.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Root of the Cargo workspace (parent of `crates/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `../shared` beside the checkout (or `KFLITE_SHARED`), when present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KFLITE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"));
    dir.join("README.md")
        .is_file()
        .then(|| dir.canonicalize().unwrap_or(dir))
}

/// Like [`shared_dir`], but records a skip for `test` when it is absent.
pub fn require_shared(test: &str) -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_none() {
        skip(test, "../shared is not beside the checkout (set KFLITE_SHARED)");
    }
    dir
}

/// An executable: `KFLITE_TOOL_<NAME>` (set by `cargo xtask test`), else `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let var = format!("KFLITE_TOOL_{}", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var).map(PathBuf::from)
        && path.is_file()
    {
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// [`find_tool`], recording a skip for `test` when the tool is missing.
///
/// Panics instead when `KFLITE_REQUIRE=1` and `cargo xtask test` said it
/// installed the tool (`KFLITE_TOOL_<NAME>` set): then a missing tool is a
/// broken pipeline, not an environment without it.
pub fn require_tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        let var = format!("KFLITE_TOOL_{}", name.to_ascii_uppercase().replace('-', "_"));
        if std::env::var("KFLITE_REQUIRE").as_deref() == Ok("1") && std::env::var_os(&var).is_some() {
            panic!("{test}: {var} is set but {name} is not there");
        }
        skip(
            test,
            &format!("`{name}` is not installed (cargo xtask test installs it)"),
        );
    }
    found
}

/// Record that `test` was skipped, and why: on stderr and in the skip log.
pub fn skip(test: &str, reason: &str) {
    let log = std::env::var_os("KFLITE_SKIP_LOG").map(PathBuf::from);
    skip_to(log.as_deref(), test, reason);
}

fn skip_to(log: Option<&Path>, test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    if let Some(log) = log
        && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn finds_a_tool_on_path_and_not_a_missing_one() {
        assert!(find_tool("sh").is_some(), "sh is on every PATH");
        assert!(find_tool("kflite-no-such-tool").is_none());
    }

    #[test]
    fn skip_appends_to_the_log() {
        let dir = std::env::temp_dir().join(format!("testkit-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips.txt");
        skip_to(Some(&log), "first", "no tool");
        skip_to(Some(&log), "second", "no shared");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "SKIPPED first: no tool\nSKIPPED second: no shared\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
