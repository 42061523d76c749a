//! `pipeline-artifacts run`: a kube-runtime controller on Namespaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::reconcile::{Context, ReconcileError, publish_event, reconcile, record_error};
use crate::settings::SECRET_NAME;

/// How often a converged namespace is checked again (metacontroller's resync upstream).
pub const RESYNC: Duration = Duration::from_secs(3600);

/// Bucket and lifecycle rule, retried until SeaweedFS answers.
pub async fn prepare_bucket(ctx: &Context) {
    ctx.store.prepare(ctx.settings.artifact_retention_days).await;
}

/// First retry after a failure; doubled per failure in a row up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(2);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Failures in a row per namespace, for exponential backoff.
#[derive(Debug, Default)]
pub struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    /// Counts a failure; returns how many in a row.
    pub fn fail(&self, ns: &str) -> u32 {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ns.to_owned()).or_default();
        *n = n.saturating_add(1);
        *n
    }

    pub fn reset(&self, ns: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(ns);
    }

    /// The wait before retry number `failures`.
    pub fn delay(failures: u32) -> Duration {
        MIN_BACKOFF
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(MAX_BACKOFF)
    }
}

struct Running {
    ctx: Context,
    backoff: Backoff,
}

async fn reconcile_one(ns: Arc<Namespace>, run: Arc<Running>) -> Result<Action, ReconcileError> {
    let ctx = &run.ctx;
    let name = kube::ResourceExt::name_any(ns.as_ref());
    let start = Instant::now();
    let result = reconcile(&ns, ctx).await;
    ctx.metrics
        .reconcile_micros
        .add(start.elapsed().as_micros() as u64);
    match &result {
        Ok(out) => {
            ctx.metrics.reconciles_ok.inc();
            run.backoff.reset(&name);
            if ns.metadata.deletion_timestamp.is_none() {
                record_error(ctx, &ns, None).await;
            }
            if *out != Default::default() {
                tracing::info!(namespace = %name, ?out, "reconciled");
            }
        }
        Err(e) => {
            ctx.metrics.reconciles_failed.inc();
            // Visible on the namespace (kfctl doctor), Terminating ones included.
            let n = run.backoff.fail(&name);
            // A conflict only means the cache was stale; the retry sees fresh data.
            if !e.is_conflict() {
                record_error(ctx, &ns, Some((n, &e.to_string()))).await;
            }
        }
    }
    result.map(|out| Action::requeue(out.requeue_after.map_or(RESYNC, |d| d.min(RESYNC))))
}

fn error_policy(ns: Arc<Namespace>, err: &ReconcileError, run: Arc<Running>) -> Action {
    let name = kube::ResourceExt::name_any(ns.as_ref());
    let failures = run
        .backoff
        .0
        .lock()
        .map_or(1, |m| m.get(&name).copied().unwrap_or(1));
    let delay = Backoff::delay(failures);
    tracing::warn!(namespace = %name, error = %err, failures, retry_in_s = delay.as_secs(), "reconcile failed; retrying");
    let note = err.to_string();
    tokio::spawn(async move { publish_event(&run.ctx, &name, "Warning", "ReconcileFailed", &note).await });
    Action::requeue(delay)
}

/// Runs the controller until `shutdown` resolves. Marks the metrics ready once the bucket is prepared.
pub async fn run(ctx: Context, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    use futures::FutureExt as _;
    let shutdown = shutdown.shared();
    // SeaweedFS may be down for a long time: stay stoppable while waiting for it.
    tokio::select! {
        _ = prepare_bucket(&ctx) => {}
        _ = shutdown.clone() => return,
    }
    ctx.metrics.set_ready(true);
    let client = ctx.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::all(client);
    // A deleted or edited Secret wakes its namespace up for repair.
    let secret_cfg = watcher::Config::default().fields(&format!("metadata.name={SECRET_NAME}"));
    Controller::new(namespaces, watcher::Config::default())
        // SeaweedFS serializes IAM writes (each rewrites its identity file): more
        // parallel reconciles only lengthen each one (see the bench in the docs).
        .with_config(kube::runtime::controller::Config::default().concurrency(4))
        .watches(secrets, secret_cfg, |s: Secret| {
            s.metadata.namespace.map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile_one,
            error_policy,
            Arc::new(Running {
                ctx,
                backoff: Backoff::default(),
            }),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_resets() {
        let b = Backoff::default();
        let waits: Vec<u64> = (0..10).map(|_| Backoff::delay(b.fail("n")).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        b.reset("n");
        assert_eq!(b.fail("n"), 1);
        assert_eq!(Backoff::delay(u32::MAX), MAX_BACKOFF);
    }
}
