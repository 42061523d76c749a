//! Finding files: kustomization roots, the root-only load restrictor, and
//! remote bases resolved from a mirror directory.

use std::path::{Component, Path, PathBuf};

use crate::Error;
use crate::remote::{Session, Source};
use std::sync::Arc;

/// A remote named in a kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A git repository at a ref, and a path inside it. `host`, `org` and
    /// `repo` key the mirror layout (`git/<host>/<org>/<repo>/<ref>`); `url`
    /// is what `git fetch` is given, built as kustomize builds it.
    Git {
        host: String,
        org: String,
        repo: String,
        git_ref: String,
        path: String,
        url: String,
        submodules: bool,
        timeout: std::time::Duration,
    },
    /// A plain http(s) file.
    Http { host: String, path: String, url: String },
}

/// kustomize's clone timeout when `?timeout=` is absent.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(27);

impl Remote {
    /// Parses the spellings kustomize v5 accepts (`api/internal/git/repospec.go`):
    /// `github.com/o/r//p?ref=x`, `https://host/o/r//p?ref=x`,
    /// `https://github.com/o/r/p?ref=x`, `git::https://...` (prefix dropped),
    /// `ssh://[user@]host/o/r`, `user@host:o/r` (scp style), `file:///abs/repo//p`,
    /// `.git` suffixes and Azure's `_git/` marking where the repository
    /// ends, `?ref=`/`?version=`, `?timeout=` and `?submodules=`; plain
    /// `http(s)://host/path` without a ref or repository marker is a file.
    /// Anything else (`../base`, `gitlab.com/o/r`) is a local path: kustomize
    /// knows scheme-less hosts only for github.com.
    pub fn parse(s: &str) -> Option<Remote> {
        let lower = s.to_ascii_lowercase();
        let (s, git_forced) = if lower.starts_with("git::") {
            (&s[5..], true)
        } else {
            (s, false)
        };
        let (body, query) = s.split_once('?').unwrap_or((s, ""));
        let q = |key: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
        };
        let git_ref = q("ref").or_else(|| q("version")).unwrap_or_default().to_string();
        let timeout = q("timeout")
            .and_then(|t| {
                t.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(std::time::Duration::from_secs)
                    .or_else(|| go_duration(t))
            })
            .unwrap_or(DEFAULT_TIMEOUT);
        let submodules = !matches!(
            q("submodules"),
            Some("false" | "0" | "f" | "F" | "FALSE" | "False")
        );
        let lower = body.to_ascii_lowercase();
        let scheme = ["ssh://", "https://", "http://", "file://"]
            .into_iter()
            .find(|p| lower.starts_with(p))
            .unwrap_or("");
        let rest = &body[scheme.len()..];
        let user_len = rest
            .find('@')
            .filter(|&i| {
                let u = &rest[..i];
                u.starts_with(|c: char| c.is_ascii_alphabetic())
                    && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .map_or(0, |i| i + 1);
        let (user, rest) = rest.split_at(user_len);
        let github = rest.to_ascii_lowercase().starts_with("github.com/")
            || rest.to_ascii_lowercase().starts_with("github.com:");
        let scp = scheme.is_empty() && (!user.is_empty() || github);
        if scheme.is_empty() && !scp {
            return None;
        }
        if scheme == "file://" {
            let all = format!("{user}{rest}");
            let (repo_path, inner) = split_repo_path(&all, None)?;
            return Remote::git(
                "file",
                &repo_path,
                git_ref,
                inner,
                format!("file://{repo_path}"),
                submodules,
                timeout,
            );
        }
        let sep = match (rest.find('/'), rest.find(':')) {
            (Some(s), Some(c)) if scp && c > 0 && c < s => c,
            (None, Some(c)) if scp && c > 0 => c,
            (Some(s), _) => s,
            _ => return None,
        };
        let (host_name, after) = (&rest[..sep], &rest[sep + 1..]);
        // `user:token@host`: credentials stay in `url` (for git) and never
        // key a mirror or cache directory.
        let host_name = host_name.rsplit_once('@').map_or(host_name, |(_, h)| h);
        if host_name.is_empty() {
            return None;
        }
        let is_http = scheme.starts_with("http");
        let marked = after.contains("//")
            || after.contains("_git/")
            || after.split('/').any(|seg| seg.ends_with(".git"));
        if is_http && !git_forced && git_ref.is_empty() && !marked {
            return Some(Remote::Http {
                host: host_name.to_string(),
                path: after.to_string(),
                url: s.to_string(),
            });
        }
        let clone_host = if github {
            if scheme == "ssh://" || !user.is_empty() {
                format!("{user}github.com:")
            } else {
                "https://github.com/".to_string()
            }
        } else {
            format!("{scheme}{user}{}", &rest[..=sep])
        };
        let (repo_path, inner) = split_repo_path(after, Some(2))?;
        let url = format!("{clone_host}{repo_path}");
        Remote::git(host_name, &repo_path, git_ref, inner, url, submodules, timeout)
    }

    fn git(
        host: &str,
        repo_path: &str,
        git_ref: String,
        inner: String,
        url: String,
        submodules: bool,
        timeout: std::time::Duration,
    ) -> Option<Remote> {
        let key = repo_path.trim_matches('/').trim_end_matches(".git");
        let (org, repo) = key.rsplit_once('/').unwrap_or(("", key));
        // The mirror and cache are keyed by these names: nothing may climb out.
        if repo.is_empty() || key.split('/').any(|seg| seg == ".." || seg == ".") {
            return None;
        }
        Some(Remote::Git {
            host: host.to_string(),
            org: org.to_string(),
            repo: repo.to_string(),
            git_ref,
            path: inner,
            url,
            submodules,
            timeout,
        })
    }

    /// The URL as it keys the lockfile and cache: the repository (without
    /// the path inside it) for git, the whole URL for a file.
    pub fn source_url(&self) -> &str {
        match self {
            Remote::Git { url, .. } | Remote::Http { url, .. } => url,
        }
    }

    /// Where the remote lives in a mirror laid out like `../shared/upstream`.
    pub fn mirror_path(&self, mirror: &Path) -> Result<PathBuf, String> {
        // Names from a URL become directories: none may climb out of the mirror.
        let (host, path) = match self {
            Remote::Git { host, path, .. } | Remote::Http { host, path, .. } => (host, path),
        };
        if host.contains('/')
            || [host.as_str(), path.as_str()]
                .iter()
                .any(|p| p.split('/').any(|s| s == ".." || s == "."))
        {
            return Err(format!(
                "'{}' has '.' or '..' segments; it cannot name a mirror directory",
                self.source_url()
            ));
        }
        match self {
            Remote::Git { path, .. } => {
                let mut p = self.mirror_root(mirror)?;
                if !path.is_empty() {
                    p = p.join(path);
                }
                Ok(p)
            }
            Remote::Http { host, path, .. } => {
                let file = path.split('?').next().unwrap_or(path).trim_start_matches('/');
                Ok(mirror.join("http").join(host).join(file))
            }
        }
    }

    /// The repository's tree at its ref in a mirror (git remotes only).
    pub fn mirror_root(&self, mirror: &Path) -> Result<PathBuf, String> {
        match self {
            Remote::Git {
                host,
                org,
                repo,
                git_ref,
                ..
            } => {
                if host.contains('/') || git_ref.split('/').any(|s| s == ".." || s == ".") {
                    return Err(format!(
                        "'{}' at '{git_ref}' cannot name a mirror directory",
                        self.source_url()
                    ));
                }
                if git_ref.is_empty() {
                    return Err("a remote base needs ?ref= to be found in the mirror".into());
                }
                Ok(mirror.join("git").join(host).join(org).join(repo).join(git_ref))
            }
            Remote::Http { .. } => self.mirror_path(mirror),
        }
    }
}

/// kustomize's `parsePathParts`: the repository ends at `_git/<name>`, a
/// `//`, or a `.git`; failing those after `default_len` segments (all of
/// them for `file://`). The rest is the path inside, which may not climb out.
fn split_repo_path(n: &str, default_len: Option<usize>) -> Option<(String, String)> {
    let (repo, inner) = if let Some(i) = n.find("_git/") {
        let after = &n[i + 5..];
        let (name, inner) = after.split_once('/').unwrap_or((after, ""));
        (format!("{}{name}", &n[..i + 5]), inner.to_string())
    } else if let Some(i) = n.find("//") {
        (n[..i].to_string(), n[i + 2..].to_string())
    } else if let Some(i) = n.find(".git") {
        (n[..i + 4].to_string(), n[i + 4..].to_string())
    } else if let Some(len) = default_len {
        let segs: Vec<&str> = n.split('/').collect();
        if segs.len() < len {
            return None;
        }
        (segs[..len].join("/"), segs[len..].join("/"))
    } else {
        (n.to_string(), String::new())
    };
    // kustomize's kustRootPathExitsRepo: the cleaned path may not climb out.
    let mut depth = 0i32;
    for seg in inner.split('/') {
        match seg {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return None;
        }
    }
    let inner = clean(Path::new(inner.trim_start_matches('/')));
    if repo.is_empty() {
        return None;
    }
    Some((repo, inner.to_string_lossy().trim_matches('/').to_string()))
}

/// Go's `time.ParseDuration` for the forms a `?timeout=` uses (`90s`, `2m`, `1m30s`).
fn go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    (total > 0.0).then(|| std::time::Duration::from_secs_f64(total))
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
    if matches!(
        Path::new(name).components().next(),
        Some(Component::ParentDir | Component::CurDir)
    ) {
        return path.canonicalize();
    }
    let cached = DIRS
        .lock()
        .ok()
        .and_then(|d| d.as_ref().and_then(|d| d.get(parent).cloned()));
    let dir = match cached {
        Some(d) => d,
        None => {
            let d = parent.canonicalize()?;
            if let Ok(mut dirs) = DIRS.lock() {
                dirs.get_or_insert_with(std::collections::HashMap::new)
                    .insert(parent.to_path_buf(), d.clone());
            }
            d
        }
    };
    let file = dir.join(name);
    // The file itself may be a link out of the root: resolve it fully then.
    if std::fs::symlink_metadata(&file)?.file_type().is_symlink() {
        file.canonicalize()
    } else {
        Ok(file)
    }
}

static DIRS: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, PathBuf>>> =
    std::sync::Mutex::new(None);

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
    /// Fetching, cache and lockfile; None: remotes come from the mirror only.
    pub session: Option<Arc<Session>>,
    /// The remote this root lies in, whose reads the lockfile hashes.
    pub origin: Option<Arc<Source>>,
}

impl Root {
    pub fn new(dir: &Path, mirror: Option<PathBuf>) -> Result<Root, Error> {
        let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        if !dir.is_dir() {
            return Err(Error::invalid(
                &dir,
                "must be a directory holding a kustomization file",
            ));
        }
        Ok(Root {
            dir,
            parents: Vec::new(),
            mirror,
            session: None,
            origin: None,
        })
    }

    /// The top root of a build with `options` (remote session included).
    pub fn for_build(dir: &Path, options: &crate::Options) -> Result<Root, Error> {
        Ok(Root {
            session: options.session.clone(),
            ..Root::new(dir, options.mirror.clone())?
        })
    }

    /// Tells the session a file was read from this root's remote.
    fn note_read(&self, file: &Path, bytes: &[u8]) {
        if let (Some(session), Some(origin)) = (&self.session, &self.origin)
            && file.starts_with(&origin.root)
        {
            session.record(origin, file, bytes);
        }
    }

    fn resolve(&self, remote: &Remote) -> Result<Option<Arc<Source>>, Error> {
        match &self.session {
            // Callers name the remote and the kustomization file in context.
            Some(s) => s
                .resolve(remote)
                .map(Some)
                .map_err(|m| Error::invalid(&self.dir, m)),
            None => Ok(None),
        }
    }

    /// Reads a text file named relative to this root through [`Root::read`].
    pub fn load(&self, name: &str) -> Result<(PathBuf, String), Error> {
        let (path, bytes) = self.read(name)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::invalid(&path, "is not UTF-8 text"))?;
        Ok((path, text))
    }

    /// Reads a file named relative to this root, enforcing the root-only
    /// load restrictor; `http(s)://` files come from the remote session
    /// (or, without one, from the mirror). Every file a build reads comes
    /// through here (or [`Root::kustomization_file`]), so there is no
    /// second, unchecked path.
    pub fn read(&self, name: &str) -> Result<(PathBuf, Vec<u8>), Error> {
        if let Some(remote) = Remote::parse(name) {
            let Remote::Http { .. } = remote else {
                return Err(Error::invalid(
                    &self.dir,
                    format!("'{name}' names a git repository, not a file"),
                ));
            };
            let (path, source) = match self.resolve(&remote)? {
                Some(src) => (src.root.clone(), Some(src)),
                None => {
                    let mirror = self.mirror_dir(name)?;
                    (
                        remote
                            .mirror_path(&mirror)
                            .map_err(|m| Error::invalid(&self.dir, m))?,
                        None,
                    )
                }
            };
            let bytes = crate::restrict::read_bounded(&path).map_err(|e| {
                Error::invalid(
                    &self.dir,
                    format!(
                        "remote file '{}' is not in the mirror ({}): {e}",
                        crate::remote::redact(name),
                        path.display()
                    ),
                )
            })?;
            if let (Some(session), Some(src)) = (&self.session, &source) {
                session.record(src, &path, &bytes);
            }
            return Ok((path, bytes));
        }
        let joined = self.dir.join(name);
        let real = canonical_file(&joined).map_err(|e| Error::io(&joined, e))?;
        crate::restrict::check(&self.dir, &joined, &real)?;
        if real.is_dir() {
            return Err(Error::invalid(&real, "is a directory, not a file"));
        }
        tracing::debug!(file = %real.display(), "load");
        let bytes = crate::restrict::read_bounded(&real).map_err(|e| Error::io(&real, e))?;
        self.note_read(&real, &bytes);
        Ok((real, bytes))
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
        let mut origin = self.origin.clone();
        let dir = if let Some(remote) = Remote::parse(name) {
            let Remote::Git { path, .. } = &remote else {
                return Err(Error::invalid(
                    &self.dir,
                    format!("'{name}' names a file, not a kustomization directory"),
                ));
            };
            match self.resolve(&remote)? {
                Some(src) => {
                    let dir = src.root.join(path);
                    origin = Some(src);
                    dir
                }
                None => {
                    let mirror = self.mirror_dir(name)?;
                    remote
                        .mirror_path(&mirror)
                        .map_err(|m| Error::invalid(&self.dir, format!("{name}: {m}")))?
                }
            }
        } else {
            self.dir.join(name)
        };
        let real = dir.canonicalize().map_err(|e| Error::io(&dir, e))?;
        if !real.is_dir() {
            return Err(Error::invalid(&real, "is not a directory"));
        }
        // kustomize's git containment rule: a local path inside a remote
        // repository stays inside it (here: inside its cached tree).
        if let Some(o) = origin.as_ref().filter(|o| !real.starts_with(&o.root)) {
            return Err(Error::invalid(
                &self.dir,
                format!(
                    "'{name}' leaves the remote repository {} it is named in",
                    crate::remote::redact(o.remote.source_url())
                ),
            ));
        }
        if real == self.dir || self.parents.contains(&real) {
            return Err(Error::invalid(
                &real,
                "cycle detected: this kustomization includes itself",
            ));
        }
        // kustomize refuses a base that contains the current root.
        if self.dir.starts_with(&real) {
            return Err(Error::invalid(
                &real,
                format!(
                    "cycle detected: candidate root '{}' contains visited root '{}'",
                    real.display(),
                    self.dir.display()
                ),
            ));
        }
        let mut parents = self.parents.clone();
        parents.push(self.dir.clone());
        Ok(Root {
            dir: real,
            parents,
            mirror: self.mirror.clone(),
            session: self.session.clone(),
            origin,
        })
    }

    /// The kustomization file of this root and its text.
    pub fn kustomization_file(&self) -> Result<(PathBuf, String), Error> {
        let found: Vec<PathBuf> = crate::kustomization::FILE_NAMES
            .iter()
            .map(|n| self.dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        match found.len() {
            0 => Err(Error::invalid(
                &self.dir,
                "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory",
            )),
            1 => {
                let p = found.into_iter().next().expect("one file");
                // A symlinked kustomization file is held to the root too.
                let real = p.canonicalize().map_err(|e| Error::io(&p, e))?;
                crate::restrict::check(&self.dir, &p, &real)?;
                let bytes = crate::restrict::read_bounded(&real).map_err(|e| Error::io(&p, e))?;
                self.note_read(&p, &bytes);
                let text = String::from_utf8(bytes).map_err(|_| Error::invalid(&p, "is not UTF-8 text"))?;
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

    fn git(s: &str) -> (String, String, String, String, String, String) {
        match Remote::parse(s) {
            Some(Remote::Git {
                host,
                org,
                repo,
                git_ref,
                path,
                url,
                ..
            }) => (host, org, repo, git_ref, path, url),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn remote_spellings() {
        let want = ("github.com", "kubeflow", "manifests", "v1.11.0", "common/x");
        for s in [
            "github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "git::https://github.com/kubeflow/manifests//common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests/common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests.git//common/x?ref=v1.11.0",
            "https://github.com/kubeflow/manifests.git/common/x?version=v1.11.0",
            "github.com/kubeflow/manifests/common/x?version=v0&ref=v1.11.0",
        ] {
            let (h, o, r, rf, p, url) = git(s);
            assert_eq!(
                (h.as_str(), o.as_str(), r.as_str(), rf.as_str(), p.as_str()),
                want,
                "{s}"
            );
            assert!(
                url.starts_with("https://github.com/kubeflow/manifests"),
                "{s}: {url}"
            );
        }
        // scp and ssh spellings clone over ssh, as kustomize builds them.
        assert_eq!(
            git("git@github.com:kubeflow/manifests//common/x?ref=v1").5,
            "git@github.com:kubeflow/manifests"
        );
        assert_eq!(
            git("ssh://git@github.com/kubeflow/manifests/common/x").5,
            "git@github.com:kubeflow/manifests"
        );
        let g = git("ssh://git@example.com:2222/team/repo.git//deploy?ref=main");
        assert_eq!(
            (
                g.0.as_str(),
                g.1.as_str(),
                g.2.as_str(),
                g.4.as_str(),
                g.5.as_str()
            ),
            (
                "example.com:2222",
                "team",
                "repo",
                "deploy",
                "ssh://git@example.com:2222/team/repo.git"
            )
        );
        let g = git("user@gitlab.example:group/sub/repo.git//app?ref=v2");
        assert_eq!(
            (g.1.as_str(), g.2.as_str(), g.5.as_str()),
            ("group/sub", "repo", "user@gitlab.example:group/sub/repo.git")
        );
        // Azure's `_git/` marks the repository.
        let g = git("https://dev.azure.com/org/project/_git/repo/path/to/base?ref=main");
        assert_eq!(
            (g.1.as_str(), g.2.as_str(), g.4.as_str()),
            ("org/project/_git", "repo", "path/to/base")
        );
        // file:// takes every segment unless `//` splits them.
        let g = git("file:///tmp/repos/r//sub/dir?ref=v1");
        assert_eq!(
            (g.0.as_str(), g.2.as_str(), g.4.as_str(), g.5.as_str()),
            ("file", "r", "sub/dir", "file:///tmp/repos/r")
        );
        assert_eq!(git("file:///tmp/repos/r?ref=v1").4, "");
        match Remote::parse("github.com/o/r/p?ref=x&timeout=90&submodules=false") {
            Some(Remote::Git {
                timeout, submodules, ..
            }) => assert_eq!((timeout.as_secs(), submodules), (90, false)),
            other => panic!("{other:?}"),
        }
        match Remote::parse("github.com/o/r/p?timeout=1m30s") {
            Some(Remote::Git {
                timeout, submodules, ..
            }) => assert_eq!((timeout.as_secs(), submodules), (90, true)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Remote::parse(
                "https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml"
            ),
            Some(Remote::Http {
                host: "github.com".into(),
                path: "kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml".into(),
                url: "https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml"
                    .into(),
            })
        );
        let m = Path::new("/m");
        for bad in [
            "https://h/a/../../../etc/passwd",
            "https://../x.yaml",
            "github.com/o/r//p?ref=../../x",
        ] {
            let r = Remote::parse(bad).unwrap_or_else(|| panic!("{bad} parses"));
            assert!(r.mirror_path(m).is_err(), "{bad}: {:?}", r.mirror_path(m));
        }
        assert_eq!(
            Remote::parse("https://h//etc/passwd")
                .unwrap()
                .mirror_path(m)
                .unwrap(),
            Path::new("/m/http/h/etc/passwd")
        );
        // Credentials in a URL never name a mirror (or vendored) directory.
        for with_token in [
            "https://me:t0ken@git.example/o/r.git//p?ref=v1",
            "https://me:t0ken@h.example/files/x.yaml",
        ] {
            let p = Remote::parse(with_token).unwrap().mirror_path(m).unwrap();
            assert!(!p.to_string_lossy().contains("t0ken"), "{}", p.display());
        }
        for local in [
            "../base",
            "gitlab.com/o/r",
            "overlays/x",
            "github.com/o/r//../../etc?ref=x",
            "/abs/path",
        ] {
            assert_eq!(Remote::parse(local), None, "{local}");
        }
    }
}
