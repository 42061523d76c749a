//! Local stand-ins for the network, for tests and benchmarks: real git
//! repositories built from a mirror's trees (one commit per ref, tagged with
//! it) and a loopback HTTP server for its plain files.
//!
//! As `../shared/tools/kustomize-ref` does, git URLs keep their spelling and
//! a git config (`GIT_CONFIG_GLOBAL`, see [`Fixture::env`]) rewrites
//! `https://<host>/<org>/<repo>` to the local `file://` repository, so both
//! kustomize and manifest-render run real `git fetch`es. Plain https files
//! named inside the trees are rewritten to `http://127.0.0.1:<port>/<host>/<path>`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
pub struct Fixture {
    /// `<work>/repos/<host>/<org>/<repo>`: one git repository per remote.
    pub repos: PathBuf,
    /// The git config holding the `insteadOf` rewrites.
    pub gitconfig: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub http_base: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

fn io_err(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

fn git(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("git")
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        // Fixed dates: the same mirror gives the same commits every time.
        .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .output()?;
    if !out.status.success() {
        return Err(io_err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn dirs(p: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn files(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(p)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            files(&e.path(), out)?;
        } else if e.file_type()?.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

impl Fixture {
    /// Builds repositories for every `git/<host>/<org>/<repo>/<ref>` of
    /// `mirror` under `work`, and serves `mirror/http`.
    pub fn build(mirror: &Path, work: &Path) -> std::io::Result<Fixture> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let http_base = format!("http://{addr}");
        let stop = Arc::new(AtomicBool::new(false));
        let http_root = mirror.join("http");
        {
            let (stop, root) = (stop.clone(), http_root.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(c) = conn {
                        let root = root.clone();
                        std::thread::spawn(move || serve(c, &root));
                    }
                }
            });
        }
        // Every plain file the mirror holds, as https URL → loopback URL.
        let mut http_files = Vec::new();
        if http_root.is_dir() {
            files(&http_root, &mut http_files)?;
        }
        let rewrites: Vec<(String, String)> = http_files
            .iter()
            .filter_map(|f| f.strip_prefix(&http_root).ok())
            .map(|rel| {
                (
                    format!("https://{}", rel.display()),
                    format!("{http_base}/{}", rel.display()),
                )
            })
            .collect();
        let repos = work.join("repos");
        let mut config = String::new();
        for host in dirs(&mirror.join("git"))? {
            for org in dirs(&host)? {
                for repo in dirs(&org)? {
                    let rel = repo
                        .strip_prefix(mirror.join("git"))
                        .map_err(|e| io_err(e.to_string()))?
                        .to_path_buf();
                    let git_dir = repos.join(&rel);
                    git(&["init", "--quiet", &git_dir.to_string_lossy()])?;
                    config.push_str(&format!(
                        "[url \"file://{}\"]\n\tinsteadOf = https://{}\n",
                        git_dir.display(),
                        rel.display()
                    ));
                    for tree in dirs(&repo)? {
                        let git_ref = tree
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default()
                            .to_string();
                        let copy = work.join("trees").join(&rel).join(&git_ref);
                        copy_tree(&tree, &copy)?;
                        rewrite_urls(&copy, &rewrites)?;
                        let (wt, gd) = (
                            copy.to_string_lossy().into_owned(),
                            git_dir.join(".git").to_string_lossy().into_owned(),
                        );
                        git(&["--work-tree", &wt, "--git-dir", &gd, "add", "-A", "."])?;
                        git(&[
                            "--work-tree",
                            &wt,
                            "--git-dir",
                            &gd,
                            "-c",
                            "user.email=fixture@localhost",
                            "-c",
                            "user.name=fixture",
                            "commit",
                            "--quiet",
                            "--allow-empty",
                            "-m",
                            &git_ref,
                        ])?;
                        git(&["--git-dir", &gd, "tag", "-f", &git_ref])?;
                        git(&["--git-dir", &gd, "rm", "-r", "--quiet", "--cached", "."])?;
                    }
                }
            }
        }
        let gitconfig = work.join("gitconfig");
        std::fs::write(&gitconfig, config)?;
        Ok(Fixture {
            repos,
            gitconfig,
            http_base,
            stop,
            addr,
        })
    }

    /// Environment for a process that should fetch from the fixture.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GIT_CONFIG_GLOBAL", self.gitconfig.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
        ]
    }

    /// `file://` URL of the repository for `host/org/repo`.
    pub fn file_url(&self, repo: &str) -> String {
        format!("file://{}", self.repos.join(repo).display())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Rewrites known https file URLs in every kustomization file under `dir`.
pub fn rewrite_urls(dir: &Path, rewrites: &[(String, String)]) -> std::io::Result<()> {
    let mut all = Vec::new();
    files(dir, &mut all)?;
    for f in all {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !crate::kustomization::FILE_NAMES.contains(&name) {
            continue;
        }
        let text = std::fs::read_to_string(&f)?;
        let mut new = text.clone();
        for (from, to) in rewrites {
            new = new.replace(from, to);
        }
        if new != text {
            std::fs::write(&f, new)?;
        }
    }
    Ok(())
}

/// One HTTP/1.1 GET: `/<host>/<path>` → `<root>/<host>/<path>`, or 404.
fn serve(mut c: TcpStream, root: &Path) {
    let mut reader = BufReader::new(match c.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header.trim() != "" {
        header.clear();
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/");
    let file = root.join(path.trim_start_matches('/'));
    let body = (!path.contains(".."))
        .then(|| std::fs::read(&file).ok())
        .flatten();
    let _ = match body {
        Some(b) => c
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| c.write_all(&b)),
        None => c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}
