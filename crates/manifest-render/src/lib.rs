//! A kustomize v5.8.1-compatible manifest renderer.
//!
//! [`render`] builds a kustomization directory and returns exactly the bytes
//! `kustomize build` prints. Remote bases come from a mirror directory laid
//! out like `../shared/upstream` (see [`loader::Remote`]).

mod builtin_data;
#[cfg(test)]
mod builtin_data_check;
mod builtins;
pub mod fieldspec;
mod generators;
pub mod kustomization;
pub mod lint;
pub mod loader;
mod nameref;
mod par;
mod patch;
mod pattern;
pub mod remote;
mod replacements;
pub mod resource;
mod restrict;
mod schema;
mod smp;
mod sort;
pub mod target;
mod transformers;
mod vars;
pub mod yaml;

use std::path::{Path, PathBuf};

/// Why a build failed. Every variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: malformed YAML: {message}")]
    Yaml {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
    pub(crate) fn yaml(path: &Path, e: yaml::ParseError) -> Self {
        Error::Yaml {
            path: path.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
    /// Adds where the failing item was named (`file: what: error`).
    pub(crate) fn context(self, file: &Path, what: String) -> Self {
        Error::Invalid {
            path: file.to_path_buf(),
            message: format!("{what}: {self}"),
        }
    }
}

/// Build options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory holding remote bases in the `../shared/upstream` layout.
    pub mirror: Option<PathBuf>,
    /// Fetching, cache and lockfile for remote bases ([`remote::Session`]);
    /// None: remote bases come from the mirror only. Call
    /// [`remote::Session::finish`] after the build to check or write the lock.
    pub session: Option<std::sync::Arc<remote::Session>>,
}

/// A successful build.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The YAML stream, byte for byte what kustomize prints.
    pub yaml: String,
    /// Number of objects.
    pub objects: usize,
    /// What kustomize would print on stderr (deprecations, unused vars).
    pub warnings: Vec<String>,
}

/// Builds the kustomization in `dir`.
pub fn render(dir: &Path, options: &Options) -> Result<Rendered> {
    build(dir, options).map(Built::into_rendered)
}

/// A build whose YAML is still in the pieces the printers produced.
#[derive(Debug)]
pub struct Built {
    parts: Vec<String>,
    /// Number of objects.
    pub objects: usize,
    /// What kustomize would print on stderr (deprecations, unused vars).
    pub warnings: Vec<String>,
}

impl Built {
    /// Writes the YAML stream without joining it into one string first,
    /// which saves copying (and faulting in) the whole output once.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 && !p.is_empty() {
                out.write_all(b"---\n")?;
            }
            out.write_all(p.as_bytes())?;
        }
        out.flush()
    }

    pub fn into_rendered(self) -> Rendered {
        let Built {
            mut parts,
            objects,
            warnings,
        } = self;
        let total = parts.iter().map(String::len).sum::<usize>() + parts.len() * 4;
        let rest = parts.split_off(parts.len().min(1));
        let mut yaml = parts.pop().unwrap_or_default();
        yaml.reserve(total - yaml.len());
        for p in rest {
            if !p.is_empty() {
                yaml.push_str("---\n");
            }
            yaml.push_str(&p);
        }
        Rendered {
            yaml,
            objects,
            warnings,
        }
    }
}

/// Builds the kustomization in `dir`, leaving the output in pieces.
pub fn build(dir: &Path, options: &Options) -> Result<Built> {
    build_inner(dir, options, None).map(|(built, _)| built)
}

/// [`build`], and [`lint::lint`] over the same objects while they print.
pub fn build_linted(
    dir: &Path,
    options: &Options,
    config: &lint::Config,
) -> Result<(Built, Vec<lint::Finding>)> {
    build_inner(dir, options, Some(config))
}

fn build_inner(
    dir: &Path,
    options: &Options,
    lint_config: Option<&lint::Config>,
) -> Result<(Built, Vec<lint::Finding>)> {
    loader::forget_resolved_dirs();
    let (mut resources, warnings) = target::build(dir, options)?;
    if lint_config.is_some() {
        lint::shorten_origins(&mut resources, options.mirror.as_deref());
    }
    let objects = resources.len();
    // Objects print independently: emit them on spare CPUs, in order.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks: Vec<&[resource::Resource]> = resources.chunks(objects.div_ceil(workers).max(1)).collect();
    let (parts, findings) = std::thread::scope(|s| {
        let linted = lint_config.map(|c| s.spawn(|| lint::lint(&resources, c)));
        let parts = par::map(&chunks, |c| yaml::emit_documents(c.iter().map(|r| &r.obj)));
        let findings = linted.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (parts, findings.unwrap_or_default())
    });
    drop(chunks);
    // Freeing the objects costs as much as printing a tenth of them: halve it.
    let rest = resources.split_off(objects / 2);
    std::thread::scope(|s| {
        s.spawn(move || drop(rest));
        drop(resources);
    });
    Ok((
        Built {
            parts,
            objects,
            warnings,
        },
        findings,
    ))
}

/// Builds the kustomization in `dir` into its final objects (what [`render`]
/// prints, before printing) and kustomize's warnings; for [`lint`].
pub fn build_objects(dir: &Path, options: &Options) -> Result<(Vec<resource::Resource>, Vec<String>)> {
    target::build(dir, options)
}
