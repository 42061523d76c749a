//! Support shared by the integration tests of manifest-render.

use std::path::Path;
use std::process::Command;

/// Runs `git` in `dir` with no user or system configuration; panics with
/// git's message when it fails.
pub fn git_in(git: &Path, dir: &Path, args: &[&str]) {
    let o = Command::new(git)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A repository in `dir` holding what is there, committed and tagged `tag`.
pub fn commit_all(git: &Path, dir: &Path, tag: &str) {
    git_in(git, dir, &["init", "-q"]);
    git_in(git, dir, &["add", "-A"]);
    git_in(
        git,
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            tag,
        ],
    );
    git_in(git, dir, &["tag", tag]);
}
