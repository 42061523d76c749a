//! kfctl: the kflite operator's CLI, as a library so tests drive it in-process.
//!
//! - [`doctor`]: every troubleshooting check of the owner's runbook, as a
//!   snapshot of the cluster ([`doctor::snapshot`]) and pure checks over it
//!   ([`doctor::checks`]).
//! - [`profile`], [`notebook`], [`urls`]: the objects kfctl creates and lists.
//! - [`apply`]: the platform onto a cluster (`kfctl apply`, `kfctl diff`);
//!   [`overlay`]: rendering with kflite.lock, shared with `cargo xtask render`.
//! - [`cli`]: the clap interface; [`output`]: table/JSON/YAML printing.
//!
//! The JSON printed by `--output json` is documented in docs/kfctl.md.

pub mod apply;
pub mod cli;
pub mod client;
pub mod db;
pub mod doctor;
pub mod notebook;
pub mod output;
pub mod overlay;
pub mod profile;
pub mod resources;
pub mod urls;

/// What can go wrong outside a check (a check's failure is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("{what}: {source}")]
    Kube {
        what: String,
        // Boxed: kube::Error is large and most results here never carry it.
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{0}")]
    Name(#[from] kfmodel::naming::NameError),
    #[error("{0}")]
    Invalid(String),
    #[error("{what} already exists{detail}")]
    Exists { what: String, detail: String },
    #[error("encoding the output: {0}")]
    Encode(String),
    #[error("render: {0}")]
    Render(#[from] manifest_render::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
