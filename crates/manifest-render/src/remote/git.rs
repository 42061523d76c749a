//! Shallow fetches through the `git` command line.
//!
//! `git init; git fetch --depth 1 <url> <ref>; git checkout FETCH_HEAD`, as
//! kustomize's cloner does, so credentials helpers, `insteadOf` rewrites and
//! ssh configuration work exactly as they do for `git` itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs git in `dir`; returns stdout, or a message with git's own words.
fn git(dir: &Path, args: &[&str], timeout: Duration, what: &str) -> Result<String, String> {
    git_as(dir, args, None, timeout, what)
}

/// [`git`], with the credentials a URL carried handed to git's credential
/// mechanism (see [`super::credentials`]) instead of its command line.
fn git_as(
    dir: &Path,
    args: &[&str],
    creds: Option<&super::credentials::Credentials>,
    timeout: Duration,
    what: &str,
) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(c) = creds {
        c.apply(&mut cmd);
    }
    let mut child = cmd
        .args(args)
        .current_dir(dir)
        // Never wait for a password on a terminal nobody watches.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("git is not installed (or not on PATH); it is needed to {what}: install git, or use --mirror/--offline with a vendored mirror")
            }
            _ => format!("running git to {what}: {e}"),
        })?;
    // Read both pipes on threads so a chatty git never blocks on a full pipe.
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("running git to {what}: no output pipes"));
    };
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "timed out after {}s trying to {what} (raise it with ?timeout=)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for git to {what}: {e}")),
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(4)..].join(" / ");
        return Err(super::redact(&format!(
            "failed to {what}: git {}: {tail}",
            status
        )));
    }
    Ok(stdout)
}

/// What `git_ref` (empty: the default branch) names at `url`, without
/// fetching anything; None when the server does not list it (a commit id).
pub fn ls_remote(url: &str, git_ref: &str, timeout: Duration) -> Result<Option<String>, String> {
    let r = if git_ref.is_empty() { "HEAD" } else { git_ref };
    let what = format!("list refs of {}", super::redact(url));
    let peeled = format!("{r}^{{}}");
    let (url, creds) = super::credentials::split(url);
    let out = git_as(
        &std::env::temp_dir(),
        &["ls-remote", "--", &url, r, &peeled],
        creds.as_ref(),
        timeout,
        &what,
    )?;
    let mut best: Option<(u8, String)> = None;
    for line in out.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        // Exact names first; a peeled tag (`^{}`) names the commit itself.
        let rank = if name.ends_with("^{}") {
            0
        } else if name == format!("refs/tags/{r}") || name == format!("refs/heads/{r}") || name == r {
            1
        } else {
            2
        };
        if best.as_ref().is_none_or(|(b, _)| rank < *b) {
            best = Some((rank, sha.to_string()));
        }
    }
    Ok(best.map(|(_, s)| s))
}

/// Fetches `want` (a ref or a commit) from `url` into the empty directory
/// `dir` and checks it out; returns the commit. The `.git` directory is
/// removed afterwards: the cache keeps only the tree.
pub fn fetch(
    dir: &Path,
    url: &str,
    want: &str,
    submodules: bool,
    timeout: Duration,
) -> Result<String, String> {
    let shown = super::redact(url);
    let want = if want.is_empty() { "HEAD" } else { want };
    let what = format!("fetch {shown} at '{want}'");
    git(dir, &["init", "--quiet"], timeout, &what)?;
    let (url, creds) = super::credentials::split(url);
    git_as(
        dir,
        &["fetch", "--quiet", "--depth", "1", "--no-tags", "--", &url, want],
        creds.as_ref(),
        timeout,
        &what,
    )?;
    git(
        dir,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "FETCH_HEAD",
        ],
        timeout,
        &what,
    )?;
    if submodules && dir.join(".gitmodules").is_file() {
        git(
            dir,
            &[
                "submodule",
                "update",
                "--quiet",
                "--init",
                "--recursive",
                "--depth",
                "1",
            ],
            timeout,
            &what,
        )?;
    }
    let commit = git(dir, &["rev-parse", "HEAD"], timeout, &what)?
        .trim()
        .to_string();
    std::fs::remove_dir_all(dir.join(".git"))
        .map_err(|e| format!("cleaning the checkout of {shown}: {e}"))?;
    Ok(commit)
}
