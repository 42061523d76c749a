//! Rendering an overlay the way `cargo xtask render` and `kfctl apply` both
//! do: remote bases from the mirror or the cache, pinned in `kflite.lock`
//! (Cargo's rules: use, `--locked`, `--update-lock`), and the overlay's own
//! lint settings.

use std::path::{Path, PathBuf};

use manifest_render::remote::{LockMode, RemoteOptions, Session};

use crate::{Error, Result};

/// How to render an overlay.
#[derive(Clone, Debug, Default)]
pub struct RenderRequest {
    pub dir: PathBuf,
    /// Offline mirror of remote bases (`../shared/upstream` layout), looked up before fetching.
    pub mirror: Option<PathBuf>,
    /// Never fetch remote bases: mirror and cache only.
    pub offline: bool,
    pub lock: LockMode,
    /// Fail on any lint finding instead of returning it as a warning.
    pub strict: bool,
}

/// A finished render.
#[derive(Debug)]
pub struct RenderedOverlay {
    pub built: manifest_render::Built,
    /// kustomize's own warnings, the lockfile's notes and lint findings, one line each.
    pub warnings: Vec<String>,
}

impl RenderRequest {
    /// Lock mode from the two flags both CLIs offer (`--locked` wins).
    pub fn lock_mode(locked: bool, update_lock: bool) -> LockMode {
        match (locked, update_lock) {
            (true, _) => LockMode::Locked,
            (_, true) => LockMode::Update,
            _ => LockMode::Use,
        }
    }

    pub fn render(&self) -> Result<RenderedOverlay> {
        let dir = &self.dir;
        // Remote bases the mirror lacks are fetched into the cache
        // (KFLITE_CACHE_DIR, else ~/.cache/kflite) and pinned in kflite.lock.
        let session = Session::new(
            dir,
            self.mirror.clone(),
            RemoteOptions {
                cache_dir: std::env::var_os("KFLITE_CACHE_DIR").map(PathBuf::from),
                offline: self.offline,
                lock: self.lock,
                lockfile: None,
                progress: true,
            },
        )?;
        let options = manifest_render::Options {
            mirror: self.mirror.clone(),
            session: Some(session.clone()),
        };
        let config = lint_config(dir)?;
        let (built, findings) = manifest_render::build_linted(dir, &options, &config)?;
        let mut warnings = built.warnings.clone();
        warnings.extend(session.finish()?);
        warnings.extend(findings.iter().map(ToString::to_string));
        if self.strict && !findings.is_empty() {
            return Err(Error::Invalid(format!(
                "lint: {} finding(s) in {} (--strict):\n{}",
                findings.len(),
                dir.display(),
                warnings.join("\n")
            )));
        }
        Ok(RenderedOverlay { built, warnings })
    }
}

/// The overlay's own lint settings, as `manifest-render build` reads them.
fn lint_config(dir: &Path) -> Result<manifest_render::lint::Config> {
    let beside = dir.join(manifest_render::lint::CONFIG_FILE);
    Ok(if beside.is_file() {
        manifest_render::lint::Config::from_file(&beside)?
    } else {
        manifest_render::lint::Config::default()
    })
}
