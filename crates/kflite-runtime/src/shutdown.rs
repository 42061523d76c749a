//! Shutdown: a cloneable future every task of a controller can await.

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

/// Resolves once, for every clone, when the process should stop.
pub type Shutdown = Shared<BoxFuture<'static, ()>>;

/// A [`Shutdown`] from any future (tests stop controllers with a channel).
pub fn on(fut: impl Future<Output = ()> + Send + 'static) -> Shutdown {
    fut.boxed().shared()
}

/// Resolves on SIGTERM or SIGINT. Kubernetes stops pods with SIGTERM, so a
/// controller that waited only for Ctrl-C would never release its Lease.
pub fn signals() -> Shutdown {
    on(async {
        let name = wait_for_signal().await;
        tracing::info!(signal = name, "shutting down");
    })
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(err), _) | (_, Err(err)) => {
            // Only when the runtime cannot install handlers; keep Ctrl-C at least.
            tracing::warn!(%err, "cannot watch SIGTERM/SIGINT; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
