//! A kustomize v5.8.1-compatible manifest renderer.
//!
//! [`render`] builds a kustomization directory and returns exactly the bytes
//! `kustomize build` prints. Remote bases come from a mirror directory laid
//! out like `../shared/upstream` (see [`loader::Remote`]).

mod builtin_data;
#[cfg(test)]
mod builtin_data_check;
pub mod fieldspec;
mod generators;
pub mod kustomization;
pub mod loader;
mod nameref;
mod par;
mod patch;
pub mod remote;
mod replacements;
mod smp;
pub mod resource;
mod schema;
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
    Yaml { path: PathBuf, line: u64, column: u64, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Error::Invalid { path: path.to_path_buf(), message: message.into() }
    }
    pub(crate) fn yaml(path: &Path, e: yaml::ParseError) -> Self {
        Error::Yaml { path: path.to_path_buf(), line: e.line, column: e.column, message: e.message }
    }
    /// Adds where the failing item was named (`file: what: error`).
    pub(crate) fn context(self, file: &Path, what: String) -> Self {
        Error::Invalid { path: file.to_path_buf(), message: format!("{what}: {self}") }
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
    let (resources, warnings) = target::build(dir, options)?;
    // Objects print independently; emit them on spare CPUs, join in order.
    let chunk = resources.len().div_ceil(std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let chunks: Vec<&[resource::Resource]> = resources.chunks(chunk).collect();
    let parts = par::map(&chunks, |c| yaml::emit_documents(c.iter().map(|r| &r.obj)));
    let mut yaml = String::with_capacity(parts.iter().map(String::len).sum::<usize>() + parts.len() * 4);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 && !p.is_empty() {
            yaml.push_str("---\n");
        }
        yaml.push_str(p);
    }
    Ok(Rendered { yaml, objects: resources.len(), warnings })
}
