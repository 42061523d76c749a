//! The content-addressed cache of fetched remotes.
//!
//! ```text
//! <cache>/git/<commit>/...      a checked-out tree (no .git), named by its commit
//! <cache>/http/<sha256>         a downloaded file, named by the sha256 of its bytes
//! <cache>/refs/<sha256(url, ref)>  "<url>\n<ref>\n<commit or sha256>\n": what a ref last resolved to
//! <cache>/tmp/                  work in progress; renamed into place when complete
//! ```
//!
//! Entries are immutable once renamed into place, so readers never see a
//! partial tree and concurrent writers of the same entry both succeed (the
//! second discards its copy).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// `KFLITE_CACHE_DIR`, else `$XDG_CACHE_HOME/kflite`, else `~/.cache/kflite`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("KFLITE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("kflite")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/kflite")))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tree of `commit`, if cached.
    pub fn tree(&self, commit: &str) -> Option<PathBuf> {
        let p = self.dir.join("git").join(commit);
        (valid_name(commit) && p.is_dir()).then_some(p)
    }

    /// The file whose bytes hash to `sha256`, if cached.
    pub fn blob(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.dir.join("http").join(sha256);
        (valid_name(sha256) && p.is_file()).then_some(p)
    }

    /// A fresh scratch directory under `tmp/` (same filesystem, so rename works).
    pub fn scratch(&self) -> std::io::Result<PathBuf> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = self.dir.join("tmp").join(format!(
            "{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Moves a complete checkout into place as the tree of `commit`.
    pub fn put_tree(&self, tmp: &Path, commit: &str) -> std::io::Result<PathBuf> {
        let dest = self.dir.join("git").join(commit);
        self.place(tmp, &dest)?;
        Ok(dest)
    }

    /// Stores downloaded bytes; returns their path and sha256.
    pub fn put_blob(&self, bytes: &[u8]) -> std::io::Result<(PathBuf, String)> {
        let sha = hex(&Sha256::digest(bytes));
        let dest = self.dir.join("http").join(&sha);
        if dest.is_file() {
            return Ok((dest, sha));
        }
        let tmp = self.scratch()?;
        let f = tmp.join("blob");
        std::fs::write(&f, bytes)?;
        self.place(&f, &dest)?;
        let _ = std::fs::remove_dir_all(&tmp);
        Ok((dest, sha))
    }

    fn place(&self, from: &Path, dest: &Path) -> std::io::Result<()> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::rename(from, dest) {
            Ok(()) => Ok(()),
            // Another build stored the same entry first: same content by name.
            Err(_) if dest.exists() => {
                let _ = if from.is_dir() {
                    std::fs::remove_dir_all(from)
                } else {
                    std::fs::remove_file(from)
                };
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn ref_file(&self, url: &str, git_ref: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(url.as_bytes());
        h.update(b"\n");
        h.update(git_ref.as_bytes());
        self.dir.join("refs").join(hex(&h.finalize()))
    }

    /// What `url` at `git_ref` resolved to when last fetched.
    pub fn get_ref(&self, url: &str, git_ref: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.ref_file(url, git_ref)).ok()?;
        let mut lines = text.lines();
        (lines.next() == Some(super::redact(url).as_str()) && lines.next() == Some(git_ref))
            .then(|| lines.next().map(str::to_string))?
    }

    pub fn put_ref(&self, url: &str, git_ref: &str, id: &str) -> std::io::Result<()> {
        let dest = self.ref_file(url, git_ref);
        let tmp = self.scratch()?;
        let f = tmp.join("ref");
        // The file is named by a hash of the whole URL; its text never holds credentials.
        std::fs::write(&f, format!("{}\n{git_ref}\n{id}\n", super::redact(url)))?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A ref may move: the newest answer replaces the old one.
        std::fs::rename(&f, &dest)?;
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(())
    }
}
