//! Per-namespace SeaweedFS credentials and Kubeflow Pipelines artifact configuration.
//!
//! Replaces metacontroller and the upstream Python hook (`sync.py`):
//! [`desired`] is the hook's output as a pure function, [`store`] talks to
//! SeaweedFS, [`reconcile`] converges one namespace without leaking keys,
//! [`controller`] runs it on Namespaces, and [`hook`] serves metacontroller's
//! webhook for the migration. [`gc`] deletes the artifacts of deleted runs.

pub mod admin;
pub mod cli;
pub mod controller;
pub mod desired;
pub mod gc;
pub mod hook;
pub mod metrics;
pub mod pyjson;
pub mod reconcile;
pub mod secret;
pub mod settings;
pub mod store;
