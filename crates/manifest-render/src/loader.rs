//! Finding files: kustomization roots, the root-only load restrictor, and
//! remote bases resolved from a mirror directory.

use std::path::{Component, Path, PathBuf};

use crate::Error;

/// A remote named in a kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A git repository at a ref, and a path inside it.
    Git { host: String, org: String, repo: String, git_ref: String, path: String },
    /// A plain https file.
    Http { host: String, path: String },
}

impl Remote {
    /// Parses the spellings kustomize accepts for remote resources:
    /// `github.com/o/r//p?ref=x`, `https://github.com/o/r//p?ref=x`,
    /// `https://github.com/o/r/p?ref=x`, `git::https://...`, and plain
    /// `https://host/path` files.
    pub fn parse(s: &str) -> Option<Remote> {
        let (s, git_forced) = match s.strip_prefix("git::") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (body, query) = match s.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (s, None),
        };
        let git_ref = query.and_then(|q| {
            q.split('&').find_map(|kv| kv.strip_prefix("ref=").or_else(|| kv.strip_prefix("version=")))
        });
        let (scheme, rest) = if let Some(r) = body.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = body.strip_prefix("http://") {
            ("http", r)
        } else if body.starts_with("github.com/") || body.starts_with("gitlab.com/") || body.starts_with("bitbucket.org/") {
            ("", body)
        } else {
            return None;
        };
        let (host, path) = rest.split_once('/')?;
        let is_git = git_forced || git_ref.is_some() || scheme.is_empty() || rest.contains("//") || path.ends_with(".git");
        if !is_git {
            return Some(Remote::Http { host: host.to_string(), path: path.to_string() });
        }
        // `//` separates the repository from the path inside it; without
        // it, the first two segments name the repository (as kustomize does
        // for github.com).
        let (repo_part, inner) = match path.split_once("//") {
            Some((r, p)) => (r.to_string(), p.to_string()),
            None => {
                let mut parts = path.splitn(3, '/');
                let org = parts.next().unwrap_or_default();
                let repo = parts.next().unwrap_or_default();
                (format!("{org}/{repo}"), parts.next().unwrap_or_default().to_string())
            }
        };
        let repo_part = repo_part.trim_end_matches('/').trim_end_matches(".git");
        let (org, repo) = repo_part.split_once('/')?;
        Some(Remote::Git {
            host: host.to_string(),
            org: org.to_string(),
            repo: repo.to_string(),
            git_ref: git_ref.unwrap_or_default().to_string(),
            path: inner.trim_matches('/').to_string(),
        })
    }

    /// Where the remote lives in a mirror laid out like `../shared/upstream`.
    pub fn mirror_path(&self, mirror: &Path) -> Result<PathBuf, String> {
        match self {
            Remote::Git { host, org, repo, git_ref, path } => {
                if git_ref.is_empty() {
                    return Err("a remote base needs ?ref= to be found in the mirror".into());
                }
                let mut p = mirror.join("git").join(host).join(org).join(repo).join(git_ref);
                if !path.is_empty() {
                    p = p.join(path);
                }
                Ok(p)
            }
            Remote::Http { host, path } => Ok(mirror.join("http").join(host).join(path)),
        }
    }
}

/// Lexically normalises `a/b/../c` to `a/c` (kustomize cleans paths the same way).
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path.canonicalize()` for a file, resolving its directory once per
/// render: realpath(3) walks every component with a syscall each, and a
/// platform build reads hundreds of files from a few dozen directories.
fn canonical_file(path: &Path) -> std::io::Result<PathBuf> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return path.canonicalize();
    };
    if matches!(Path::new(name).components().next(), Some(Component::ParentDir | Component::CurDir)) {
        return path.canonicalize();
    }
    let cached = DIRS.lock().ok().and_then(|d| d.as_ref().and_then(|d| d.get(parent).cloned()));
    let dir = match cached {
        Some(d) => d,
        None => {
            let d = parent.canonicalize()?;
            if let Ok(mut dirs) = DIRS.lock() {
                dirs.get_or_insert_with(std::collections::HashMap::new).insert(parent.to_path_buf(), d.clone());
            }
            d
        }
    };
    let file = dir.join(name);
    // The file itself may be a link out of the root: resolve it fully then.
    if std::fs::symlink_metadata(&file)?.file_type().is_symlink() { file.canonicalize() } else { Ok(file) }
}

static DIRS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, PathBuf>>> = std::sync::Mutex::new(None);

/// Forgets directories resolved by earlier renders (links may have moved).
pub(crate) fn forget_resolved_dirs() {
    if let Ok(mut dirs) = DIRS.lock() {
        *dirs = None;
    }
}

/// A kustomization root directory.
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
    /// Roots above this one, for cycle detection.
    pub parents: Vec<PathBuf>,
    /// The mirror of remote bases (`--mirror` / `KFLITE_UPSTREAM_MIRROR`).
    pub mirror: Option<PathBuf>,
}

impl Root {
    pub fn new(dir: &Path, mirror: Option<PathBuf>) -> Result<Root, Error> {
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        if !dir.is_dir() {
            return Err(Error::invalid(&dir, "must be a directory holding a kustomization file"));
        }
        Ok(Root { dir, parents: Vec::new(), mirror })
    }

    /// Reads a file named relative to this root, enforcing the root-only
    /// load restrictor; `https://` files come from the mirror.
    pub fn load(&self, name: &str) -> Result<(PathBuf, String), Error> {
        if let Some(remote) = Remote::parse(name) {
            let Remote::Http { .. } = remote else {
                return Err(Error::invalid(&self.dir, format!("'{name}' names a git repository, not a file")));
            };
            let mirror = self.mirror_dir(name)?;
            let path = remote.mirror_path(&mirror).map_err(|m| Error::invalid(&self.dir, m))?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::invalid(&self.dir, format!("remote file '{name}' is not in the mirror ({}): {e}", path.display())))?;
            return Ok((path, text));
        }
        let joined = self.dir.join(name);
        let real = canonical_file(&joined).map_err(|e| Error::io(&joined, e))?;
        if !real.starts_with(&self.dir) {
            return Err(Error::invalid(
                &joined,
                format!("security; file '{}' is not in or below '{}' (root-only load restrictor)", real.display(), self.dir.display()),
            ));
        }
        if real.is_dir() {
            return Err(Error::invalid(&real, "is a directory, not a file"));
        }
        tracing::debug!(file = %real.display(), "load");
        let text = std::fs::read(&real).map_err(|e| Error::io(&real, e))?;
        let text = String::from_utf8(text).map_err(|_| Error::invalid(&real, "is not UTF-8 text"))?;
        Ok((real, text))
    }

    fn mirror_dir(&self, name: &str) -> Result<PathBuf, Error> {
        match &self.mirror {
            Some(m) => Ok(m.clone()),
            None => Err(Error::invalid(
                &self.dir,
                format!("remote '{name}' needs a mirror: pass --mirror DIR or set KFLITE_UPSTREAM_MIRROR"),
            )),
        }
    }

    /// A sub-root for a directory (or remote base) named relative to this one.
    pub fn sub(&self, name: &str) -> Result<Root, Error> {
        let dir = if let Some(remote) = Remote::parse(name) {
            let mirror = self.mirror_dir(name)?;
            remote.mirror_path(&mirror).map_err(|m| Error::invalid(&self.dir, format!("{name}: {m}")))?
        } else {
            self.dir.join(name)
        };
        let real = dir.canonicalize().map_err(|e| Error::io(&dir, e))?;
        if !real.is_dir() {
            return Err(Error::invalid(&real, "is not a directory"));
        }
        if real == self.dir || self.parents.contains(&real) {
            return Err(Error::invalid(&real, "cycle detected: this kustomization includes itself"));
        }
        // kustomize refuses a base that contains the current root.
        if self.dir.starts_with(&real) {
            return Err(Error::invalid(
                &real,
                format!("cycle detected: candidate root '{}' contains visited root '{}'", real.display(), self.dir.display()),
            ));
        }
        let mut parents = self.parents.clone();
        parents.push(self.dir.clone());
        Ok(Root { dir: real, parents, mirror: self.mirror.clone() })
    }

    /// The kustomization file of this root and its text.
    pub fn kustomization_file(&self) -> Result<(PathBuf, String), Error> {
        let found: Vec<PathBuf> =
            crate::kustomization::FILE_NAMES.iter().map(|n| self.dir.join(n)).filter(|p| p.is_file()).collect();
        match found.len() {
            0 => Err(Error::invalid(
                &self.dir,
                "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory",
            )),
            1 => {
                let p = found.into_iter().next().expect("one file");
                let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                Ok((p, text))
            }
            _ => Err(Error::invalid(
                &self.dir,
                "found multiple kustomization files; keep only one of 'kustomization.yaml', 'kustomization.yml', 'Kustomization'",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_spellings() {
        let want = Remote::Git {
            host: "github.com".into(),
            org: "kubeflow".into(),
            repo: "manifests".into(),
            git_ref: "v1.11.0".into(),
            path: "common/x".into(),
        };
        for s in [
            "github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "git::https://github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests/common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests.git//common/x?ref=v1.11.0",
        ] {
            assert_eq!(Remote::parse(s).as_ref(), Some(&want), "{s}");
        }
        assert_eq!(
            Remote::parse("https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml"),
            Some(Remote::Http {
                host: "github.com".into(),
                path: "kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml".into()
            })
        );
        assert_eq!(Remote::parse("../base"), None);
    }
}
