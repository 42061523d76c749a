//! `kflite.lock`: each remote pinned by commit and by the sha256 of what the
//! build read from it. YAML, one entry per repository@ref or file URL:
//!
//! ```yaml
//! version: 1
//! remotes:
//! - url: "https://github.com/kubeflow/manifests"
//!   ref: "v1.11.0"
//!   commit: "854bd3a21044f767204def71b2dcda83e376891f"
//!   sha256: "…"
//! ```

use std::path::Path;

use crate::yaml::{Value, parse_documents};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub url: String,
    /// The ref as written (empty: default branch; always empty for files).
    pub git_ref: String,
    /// The commit a git ref resolved to; None for files and for trees taken
    /// from a mirror when no commit was locked before.
    pub commit: Option<String>,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub entries: Vec<Entry>,
}

impl Lock {
    pub fn read(path: &Path) -> Result<Option<Lock>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            // No lock yet; or DIR is no directory, which the build reports.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Lock::parse(&text)
            .map(Some)
            .map_err(|m| format!("{}: {m}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Lock, String> {
        let docs = parse_documents(text)
            .map_err(|e| format!("{}:{}: malformed YAML: {}", e.line, e.column, e.message))?;
        let doc = docs.into_iter().next().unwrap_or(Value::Null);
        match doc.get("version").and_then(Value::scalar_text).as_deref() {
            Some("1") => {}
            other => {
                return Err(format!(
                    "unsupported lockfile version {other:?} (this manifest-render writes version 1)"
                ));
            }
        }
        let mut entries = Vec::new();
        for (i, e) in doc
            .get("remotes")
            .and_then(Value::as_seq)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = |k: &str| e.get(k).and_then(Value::scalar_text).filter(|s| !s.is_empty());
            let (Some(url), Some(sha256)) = (field("url"), field("sha256")) else {
                return Err(format!("remotes[{i}] needs url and sha256"));
            };
            entries.push(Entry {
                url,
                git_ref: field("ref").unwrap_or_default(),
                commit: field("commit"),
                sha256,
            });
        }
        entries.sort();
        Ok(Lock { entries })
    }

    pub fn find(&self, url: &str, git_ref: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.url == url && e.git_ref == git_ref)
    }

    pub fn render(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from(
            "# kflite.lock: remote bases pinned by commit and by the sha256 of the files the\n\
             # build read from them. Written by manifest-render; see docs/manifest-render.md.\n\
             version: 1\nremotes:\n",
        );
        for e in &self.entries {
            out.push_str(&format!("- url: {}\n", q(&e.url)));
            if !e.git_ref.is_empty() {
                out.push_str(&format!("  ref: {}\n", q(&e.git_ref)));
            }
            if let Some(c) = &e.commit {
                out.push_str(&format!("  commit: {}\n", q(c)));
            }
            out.push_str(&format!("  sha256: {}\n", q(&e.sha256)));
        }
        out
    }

    /// Writes atomically (temporary file beside it, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("lock.tmp{}", std::process::id()));
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let lock = Lock {
            entries: vec![
                Entry {
                    url: "https://example.com/a.yaml".into(),
                    git_ref: String::new(),
                    commit: None,
                    sha256: "ab".into(),
                },
                Entry {
                    url: "https://github.com/o/r".into(),
                    git_ref: "v1 \"x\"".into(),
                    commit: Some("c0ffee".into()),
                    sha256: "cd".into(),
                },
            ],
        };
        assert_eq!(Lock::parse(&lock.render()).unwrap(), lock);
        assert!(Lock::parse("version: 2\n").unwrap_err().contains("version"));
        assert!(
            Lock::parse("version: 1\nremotes:\n- url: x\n")
                .unwrap_err()
                .contains("remotes[0]")
        );
    }
}
