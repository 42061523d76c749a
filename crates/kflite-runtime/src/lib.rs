//! What every kflite controller process shares, so each binary is wiring only:
//!
//! - [`logging`]: JSON (or text) logs on stderr, filtered by `RUST_LOG`.
//! - [`shutdown`]: one future that resolves on SIGTERM (how Kubernetes stops a
//!   pod) or SIGINT (Ctrl-C), cloneable for every task that must stop.
//! - [`http`]: /healthz, /readyz with a line per check, /metrics from a
//!   `prometheus-client` registry.
//! - [`leader`]: Lease leader election that gives the Lease up on shutdown.

pub mod http;
pub mod leader;
pub mod logging;
pub mod shutdown;

pub use http::{Health, Status};
pub use shutdown::Shutdown;
