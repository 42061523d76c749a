//! Remote bases: where a remote named in a kustomization comes from, and
//! the lockfile that pins it.
//!
//! A [`Session`] resolves each remote once per build, from the first of:
//! the mirror (`--mirror`), the cache at the commit `kflite.lock` pins, the
//! cache at what the ref last resolved to (offline only), or a fetch (a
//! shallow `git fetch`, or an HTTP GET) into the cache. Different remotes
//! resolve in parallel; the same repository@ref is fetched once.
//!
//! While the build runs the loader reports every file it reads from a
//! remote; [`Session::finish`] hashes them into the lock (see [`lock`]).

pub mod cache;
mod credentials;
pub mod fixture;
mod git;
mod http;
pub mod lock;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::loader::Remote;
use cache::{Cache, hex};
use lock::{Entry, Lock};

/// What to do with `kflite.lock`, as Cargo does with `Cargo.lock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Use the pinned commits; add new remotes, drop unused ones, rewrite
    /// when anything changed.
    #[default]
    Use,
    /// Fail if the lock is missing or would change in any way.
    Locked,
    /// Ignore the pins: resolve every ref afresh and rewrite the lock.
    Update,
}

/// How remotes are found and pinned.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// Cache directory; None: [`cache::default_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Never fetch: cache and mirror only.
    pub offline: bool,
    pub lock: LockMode,
    /// Lockfile; None: `kflite.lock` in the overlay directory.
    pub lockfile: Option<PathBuf>,
    /// Spinners on stderr while fetching (only on a terminal, never under CI).
    pub progress: bool,
}

/// Where a resolved remote came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Mirror,
    Cache,
    Fetched,
}

/// A resolved remote: a repository tree at a commit, or a file.
#[derive(Debug)]
pub struct Source {
    pub remote: Remote,
    /// The tree's root (git) or the file (http), canonical.
    pub root: PathBuf,
    pub commit: Option<String>,
    pub origin: Origin,
    key: (String, String),
}

type Key = (String, String);
type Slot = Arc<OnceLock<Result<Arc<Source>, String>>>;

/// One build's view of its remotes.
pub struct Session {
    opts: RemoteOptions,
    mirror: Option<PathBuf>,
    cache: Option<Cache>,
    lock_path: PathBuf,
    old: Option<Lock>,
    slots: Mutex<HashMap<Key, Slot>>,
    /// Per remote: relative path → sha256 of each file the build read.
    reads: Mutex<HashMap<Key, BTreeMap<String, [u8; 32]>>>,
    bars: Option<indicatif::MultiProgress>,
    /// The up-front survey, when it runs beside the build.
    survey: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("opts", &self.opts)
            .field("lock", &self.lock_path)
            .finish_non_exhaustive()
    }
}

/// Hides credentials in a URL (`https://user:token@host` → `https://***@host`).
pub fn redact(s: &str) -> String {
    let re = regex_userinfo();
    re.replace_all(s, "${1}***@").into_owned()
}

fn regex_userinfo() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@").expect("valid regex"))
}

/// What a remote is called in messages: its URL (credentials hidden) and ref.
fn describe(url: &str, git_ref: &str) -> String {
    if git_ref.is_empty() {
        redact(url)
    } else {
        format!("{}?ref={git_ref}", redact(url))
    }
}

impl Session {
    /// Starts a session for the overlay in `dir`. Offline, every remote the
    /// overlay names (transitively, as far as what is available shows) is
    /// looked up first, and all missing ones are reported together.
    pub fn new(dir: &Path, mirror: Option<PathBuf>, opts: RemoteOptions) -> Result<Arc<Session>, Error> {
        let lock_path = opts.lockfile.clone().unwrap_or_else(|| dir.join("kflite.lock"));
        let old = Lock::read(&lock_path).map_err(|m| Error::invalid(&lock_path, m))?;
        let cache = opts.cache_dir.clone().or_else(cache::default_dir).map(Cache::new);
        let bars = (opts.progress && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none())
            .then(indicatif::MultiProgress::new);
        let session = Arc::new(Session {
            opts,
            mirror,
            cache,
            lock_path,
            old,
            slots: Mutex::default(),
            reads: Mutex::default(),
            bars,
            survey: Mutex::default(),
        });
        // Online: fetch everything up front, in parallel, while the build
        // starts (it waits for a remote only when it reaches it; an overlay
        // with local bases only loses nothing to the survey). Offline: report
        // every missing remote at once, not just the first.
        if !session.opts.offline {
            let (s, dir) = (Arc::clone(&session), dir.to_path_buf());
            let handle = std::thread::spawn(move || drop(s.survey(&dir)));
            *session.survey.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            return Ok(session);
        }
        let missing = session.survey(dir);
        if session.opts.offline && !missing.is_empty() {
            return Err(Error::invalid(
                dir,
                format!(
                    "--offline: {} remote(s) are neither in the cache ({}) nor in the mirror \
                         (pass --mirror DIR, or build once without --offline):\n  {}",
                    missing.len(),
                    session
                        .cache
                        .as_ref()
                        .map_or("none".into(), |c| c.dir().display().to_string()),
                    missing.join("\n  ")
                ),
            ));
        }
        Ok(session)
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn old_entry(&self, url: &str, git_ref: &str) -> Option<&Entry> {
        if self.opts.lock == LockMode::Update {
            return None;
        }
        self.old.as_ref()?.find(&redact(url), git_ref)
    }

    /// Resolves a remote (once per repository@ref or URL per session).
    pub fn resolve(&self, remote: &Remote) -> Result<Arc<Source>, String> {
        let key = key_of(remote);
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        slot.get_or_init(|| {
            let r = match remote {
                Remote::Git { submodules, timeout, .. } => {
                    self.resolve_git(remote, &key, *submodules, *timeout)
                }
                Remote::Http { .. } => self.resolve_http(remote, &key),
            };
            r.map(|(root, commit, origin)| {
                let root = root.canonicalize().unwrap_or(root);
                tracing::debug!(remote = %describe(&key.0, &key.1), root = %root.display(), ?origin, "resolved");
                Arc::new(Source { remote: remote.clone(), root, commit, origin, key: key.clone() })
            })
        })
        .clone()
    }

    /// Under `--locked`, a remote the lockfile does not name is an error
    /// before anything is fetched.
    fn check_locked(&self, url: &str, git_ref: &str) -> Result<(), String> {
        if self.opts.lock == LockMode::Locked && self.old_entry(url, git_ref).is_none() {
            return Err(format!(
                "--locked: {} is not in {}; build once without --locked to add it",
                describe(url, git_ref),
                self.lock_path.display()
            ));
        }
        Ok(())
    }

    fn resolve_git(
        &self,
        remote: &Remote,
        key: &(String, String),
        submodules: bool,
        timeout: Duration,
    ) -> Result<(PathBuf, Option<String>, Origin), String> {
        let (url, git_ref) = (&key.0, &key.1);
        let locked = self.old_entry(url, git_ref).and_then(|e| e.commit.clone());
        if let Some(root) = self
            .mirror
            .as_ref()
            .and_then(|m| remote.mirror_root(m).ok())
            .filter(|p| p.is_dir())
        {
            return Ok((root, locked, Origin::Mirror));
        }
        self.check_locked(url, git_ref)?;
        let cache = self
            .cache
            .as_ref()
            .ok_or("no cache directory: set KFLITE_CACHE_DIR or HOME")?;
        if let Some(tree) = locked.as_deref().and_then(|c| cache.tree(c)) {
            return Ok((tree, locked, Origin::Cache));
        }
        if self.opts.offline {
            let known = locked.or_else(|| cache.get_ref(url, git_ref));
            return match known.as_deref().and_then(|c| cache.tree(c)) {
                Some(tree) => Ok((tree, known, Origin::Cache)),
                None => Err(format!(
                    "--offline: {} is not in the cache or the mirror",
                    describe(url, git_ref)
                )),
            };
        }
        // A ref whose commit is already cached needs no fetch.
        if locked.is_none()
            && let Some(c) = git::ls_remote(url, git_ref, timeout)?
            && let Some(tree) = cache.tree(&c)
        {
            cache
                .put_ref(url, git_ref, &c)
                .map_err(|e| format!("writing the cache: {e}"))?;
            return Ok((tree, Some(c), Origin::Cache));
        }
        let tree_of = |want: &str| -> Result<(PathBuf, String), String> {
            let bar = self.bar(&format!("fetching {}", describe(url, want)));
            let tmp = cache
                .scratch()
                .map_err(|e| format!("cache {}: {e}", cache.dir().display()))?;
            let r = git::fetch(&tmp, url, want, submodules, timeout);
            let r = r.and_then(|c| {
                Ok((
                    cache
                        .put_tree(&tmp, &c)
                        .map_err(|e| format!("writing the cache: {e}"))?,
                    c,
                ))
            });
            let _ = std::fs::remove_dir_all(&tmp);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            r
        };
        // As Cargo does: a pinned commit is fetched as such, whatever the
        // ref names now (one fetch; --update-lock moves the pin).
        let pin_error = match &locked {
            Some(pin) => match tree_of(pin) {
                Ok((tree, commit)) => {
                    tracing::info!(remote = %describe(url, git_ref), %commit, "fetched the pinned commit");
                    return Ok((tree, Some(commit), Origin::Fetched));
                }
                // Some servers refuse fetching by commit id: try the ref.
                Err(e) => Some(e),
            },
            None => None,
        };
        let (tree, commit) = tree_of(git_ref)?;
        cache
            .put_ref(url, git_ref, &commit)
            .map_err(|e| format!("writing the cache: {e}"))?;
        tracing::info!(remote = %describe(url, git_ref), %commit, "fetched");
        if let (Some(pin), Some(e)) = (locked.filter(|p| *p != commit), pin_error) {
            return Err(format!(
                "{} pins commit {pin}, which could not be fetched ({e}); the ref now names {commit}: \
                 run with --update-lock to move the pin",
                self.lock_path.display()
            ));
        }
        Ok((tree, Some(commit), Origin::Fetched))
    }

    fn resolve_http(
        &self,
        remote: &Remote,
        key: &(String, String),
    ) -> Result<(PathBuf, Option<String>, Origin), String> {
        let url = &key.0;
        if let Some(p) = self
            .mirror
            .as_ref()
            .and_then(|m| remote.mirror_path(m).ok())
            .filter(|p| p.is_file())
        {
            return Ok((p, None, Origin::Mirror));
        }
        self.check_locked(url, "")?;
        let cache = self
            .cache
            .as_ref()
            .ok_or("no cache directory: set KFLITE_CACHE_DIR or HOME")?;
        let locked = self.old_entry(url, "").map(|e| e.sha256.clone());
        let known = locked.or_else(|| self.opts.offline.then(|| cache.get_ref(url, "")).flatten());
        if let Some(p) = known.as_deref().and_then(|s| cache.blob(s)) {
            return Ok((p, None, Origin::Cache));
        }
        if self.opts.offline {
            return Err(format!(
                "--offline: {} is not in the cache or the mirror",
                describe(url, "")
            ));
        }
        let bar = self.bar(&format!("fetching {}", redact(url)));
        let bytes = http::get(url, Duration::from_secs(120));
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let (path, sha) = cache
            .put_blob(&bytes?)
            .map_err(|e| format!("writing the cache: {e}"))?;
        cache
            .put_ref(url, "", &sha)
            .map_err(|e| format!("writing the cache: {e}"))?;
        tracing::info!(remote = %redact(url), %sha, "fetched");
        Ok((path, None, Origin::Fetched))
    }

    fn bar(&self, msg: &str) -> Option<indicatif::ProgressBar> {
        let bars = self.bars.as_ref()?;
        let b = bars.add(indicatif::ProgressBar::new_spinner());
        b.set_message(msg.to_string());
        b.enable_steady_tick(Duration::from_millis(100));
        Some(b)
    }

    /// Notes a file the build read from a resolved remote.
    pub fn record(&self, source: &Source, file: &Path, bytes: &[u8]) {
        let rel = file
            .strip_prefix(&source.root)
            .unwrap_or(Path::new(""))
            .to_string_lossy()
            .into_owned();
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(source.key.clone())
            .or_default()
            .insert(rel, digest);
    }

    /// Every remote this build resolved.
    pub fn sources(&self) -> Vec<Arc<Source>> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Arc<Source>> = slots
            .values()
            .filter_map(|s| s.get().and_then(|r| r.as_ref().ok()).cloned())
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// The content hash of what the build read from `source`: for a file,
    /// the sha256 of its bytes; for a tree, the sha256 of the listing
    /// `<sha256 of file>  <path>\n` (what `sha256sum` prints) over every file
    /// read, sorted by path.
    fn content_hash(&self, source: &Source) -> String {
        let reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        let files = reads.get(&source.key).cloned().unwrap_or_default();
        if let Remote::Http { .. } = source.remote {
            return files.values().next().map(|d| hex(d)).unwrap_or_default();
        }
        let mut h = Sha256::new();
        for (path, digest) in &files {
            h.update(format!("{}  {path}\n", hex(digest)).as_bytes());
        }
        hex(&h.finalize())
    }

    /// Compares what was used with the lock; under `--locked` any difference
    /// fails, otherwise the lock is rewritten when it changed. Returns
    /// warnings for stderr.
    pub fn finish(&self) -> Result<Vec<String>, Error> {
        // Whatever the survey resolved is part of this build's remotes.
        if let Some(survey) = self.survey.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = survey.join();
        }
        let sources = self.sources();
        let mut now: Vec<Entry> = sources
            .iter()
            .map(|s| Entry {
                // Credentials in a URL never reach the lockfile.
                url: redact(&s.key.0),
                git_ref: s.key.1.clone(),
                commit: s.commit.clone(),
                sha256: self.content_hash(s),
            })
            .collect();
        now.sort();
        let new = Lock { entries: now };
        let old = self.old.clone().unwrap_or_default();
        let mut diffs = Vec::new();
        for e in &new.entries {
            let name = describe(&e.url, &e.git_ref);
            match old.find(&e.url, &e.git_ref) {
                None => diffs.push(format!("{name}: not in the lockfile (sha256 {})", e.sha256)),
                Some(o) if o.sha256 != e.sha256 => diffs.push(format!(
                    "{name}: content differs: lockfile sha256 {}, found sha256 {}",
                    o.sha256, e.sha256
                )),
                Some(o) if o.commit.is_some() && e.commit.is_some() && o.commit != e.commit => {
                    diffs.push(format!(
                        "{name}: commit differs: lockfile {}, found {}",
                        o.commit.as_deref().unwrap_or_default(),
                        e.commit.as_deref().unwrap_or_default()
                    ))
                }
                Some(_) => {}
            }
        }
        for o in &old.entries {
            if new.find(&o.url, &o.git_ref).is_none() {
                diffs.push(format!(
                    "{}: in the lockfile but no longer used",
                    describe(&o.url, &o.git_ref)
                ));
            }
        }
        if diffs.is_empty() {
            return Ok(Vec::new());
        }
        if self.opts.lock == LockMode::Locked && self.old.is_none() {
            return Err(Error::invalid(
                &self.lock_path,
                "--locked: the lockfile does not exist; build once without --locked to create it",
            ));
        }
        if self.opts.lock == LockMode::Locked {
            return Err(Error::invalid(
                &self.lock_path,
                format!(
                    "--locked: the build does not match the lockfile:\n  {}",
                    diffs.join("\n  ")
                ),
            ));
        }
        // As Cargo treats a checksum: a locked remote whose content (or
        // commit) changed is an error in every mode but --update-lock,
        // whether it came from a fetch, the cache or a mirror.
        let changed: Vec<&String> = diffs
            .iter()
            .filter(|d| d.contains("content differs") || d.contains("commit differs"))
            .collect();
        if self.opts.lock == LockMode::Use && !changed.is_empty() {
            return Err(Error::invalid(
                &self.lock_path,
                format!(
                    "locked remote content changed (a changed cached or mirrored file, or the overlay now reads \
                     other files from it); if that is intended, run with --update-lock:\n  {}",
                    changed
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join("\n  ")
                ),
            ));
        }
        let mut warnings = Vec::new();
        // A directory without write bits (a read-only mirror, ../shared) keeps
        // no lock, even for root, who could write there regardless.
        let read_only = self
            .lock_path
            .parent()
            .and_then(|d| std::fs::metadata(d).ok())
            .is_some_and(|m| m.permissions().readonly());
        if read_only {
            warnings.push(format!(
                "warning: not writing {}: its directory is read-only",
                self.lock_path.display()
            ));
            return Ok(warnings);
        }
        match new.write(&self.lock_path) {
            Ok(()) => tracing::info!(lock = %self.lock_path.display(), "lockfile written"),
            Err(e) => warnings.push(format!(
                "warning: could not write {}: {e}",
                self.lock_path.display()
            )),
        }
        Ok(warnings)
    }

    /// Looks up every remote the overlay in `dir` names, before the build:
    /// walks kustomization files through local directories, resolves the
    /// remotes found (each wave in parallel: fetches wait on the network,
    /// not on CPUs), then walks into what they resolved to. Returns each
    /// remote that did not resolve, with the file naming it. The build
    /// then finds every remote already resolved (or its error, reported
    /// with the build's own context).
    fn survey(&self, dir: &Path) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        let mut frontier = vec![dir.to_path_buf()];
        while !frontier.is_empty() {
            let mut named = Vec::new();
            for d in frontier.drain(..) {
                walk(&d, &mut named, &mut seen);
            }
            // One thread per repository@ref or file; each remote's own path is walked after.
            let mut firsts: HashMap<Key, &Remote> = HashMap::new();
            for (r, _, _) in &named {
                firsts.entry(key_of(r)).or_insert(r);
            }
            std::thread::scope(|s| {
                for r in firsts.into_values() {
                    s.spawn(move || self.resolve(r));
                }
            });
            for (remote, name, file) in &named {
                match self.resolve(remote) {
                    Ok(src) => {
                        if let Remote::Git { path, .. } = remote {
                            frontier.push(src.root.join(path));
                        }
                    }
                    Err(_) => missing.push(format!("{} (named in {})", redact(name), file.display())),
                }
            }
        }
        missing
    }

    /// Writes every resolved remote into `out` in the `../shared/upstream`
    /// layout (`git/<host>/<org>/<repo>/<ref>/…`, `http/<host>/<path>`), so
    /// that `--mirror out` renders the same bytes without a network.
    pub fn vendor(&self, out: &Path) -> Result<Vec<PathBuf>, Error> {
        let mut written = Vec::new();
        for s in self.sources() {
            let dest = match &s.remote {
                Remote::Git { .. } => s.remote.mirror_root(out),
                Remote::Http { .. } => s.remote.mirror_path(out),
            }
            .map_err(|m| Error::invalid(out, format!("{}: {m}", describe(&s.key.0, &s.key.1))))?;
            let parent = dest.parent().unwrap_or(out);
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            // Copy beside the destination, then swap it in: a reader never
            // sees half a tree.
            let tmp = parent.join(format!(".vendor-tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            copy_all(&s.root, &tmp).map_err(|e| Error::io(&s.root, e))?;
            if dest.is_dir() {
                std::fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
            } else if dest.is_file() {
                std::fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
            }
            std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
            written.push(dest);
        }
        Ok(written)
    }
}

fn key_of(remote: &Remote) -> Key {
    match remote {
        Remote::Git { url, git_ref, .. } => (url.clone(), git_ref.clone()),
        Remote::Http { url, .. } => (url.clone(), String::new()),
    }
}

/// Collects the remotes named by the kustomization in `dir` and, through
/// local directories, below it (as written, with the naming file).
/// Unreadable files are skipped: the build reports them properly.
fn walk(dir: &Path, named: &mut Vec<(Remote, String, PathBuf)>, seen: &mut HashSet<PathBuf>) {
    if !seen.insert(dir.to_path_buf()) {
        return;
    }
    let Some(file) = crate::kustomization::FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    else {
        return;
    };
    // Bounded like every read of a build (a link to /dev/zero ends here too).
    let Some(doc) = crate::restrict::read_bounded(&file)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| crate::yaml::parse_documents_last_key_wins(&t).ok())
        .and_then(|d| d.into_iter().next())
    else {
        return;
    };
    let list = |field: &str| {
        doc.get(field)
            .and_then(|v| v.as_seq())
            .cloned()
            .unwrap_or_default()
    };
    let mut names: Vec<String> = Vec::new();
    for field in [
        "resources",
        "bases",
        "components",
        "patchesStrategicMerge",
        "configurations",
        "crds",
    ] {
        names.extend(list(field).iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    for field in ["patches", "patchesJson6902"] {
        names.extend(
            list(field)
                .iter()
                .filter_map(|p| p.get("path")?.as_str().map(str::to_string)),
        );
    }
    for name in names {
        match Remote::parse(&name) {
            Some(remote) => named.push((remote, name, file.clone())),
            None => {
                let local = dir.join(&name);
                if local.is_dir() {
                    walk(&local, named, seen);
                }
            }
        }
    }
}

fn copy_all(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_file() {
        std::fs::copy(from, to)?;
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            copy_all(&e.path(), &to.join(e.file_name()))?;
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_userinfo_only() {
        assert_eq!(
            super::redact("https://u:tok@h/o/r?ref=x"),
            "https://***@h/o/r?ref=x"
        );
        assert_eq!(
            super::redact("see ssh://git@h/o and https://h/p"),
            "see ssh://***@h/o and https://h/p"
        );
        assert_eq!(super::redact("git@github.com:o/r"), "git@github.com:o/r");
    }
}
