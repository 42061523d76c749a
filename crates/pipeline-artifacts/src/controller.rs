//! `pipeline-artifacts run`: a kube-runtime controller on Namespaces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::reconcile::{Context, ReconcileError, publish_event, reconcile};
use crate::settings::SECRET_NAME;

/// How often a converged namespace is checked again (metacontroller's resync upstream).
pub const RESYNC: Duration = Duration::from_secs(3600);

/// Bucket and lifecycle rule, retried until SeaweedFS answers.
pub async fn prepare_bucket(ctx: &Context) {
    ctx.store.prepare(ctx.settings.artifact_retention_days).await;
}

async fn reconcile_one(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let start = Instant::now();
    let result = reconcile(&ns, &ctx).await;
    ctx.metrics
        .reconcile_micros
        .add(start.elapsed().as_micros() as u64);
    match &result {
        Ok(out) => {
            ctx.metrics.reconciles_ok.inc();
            if *out != Default::default() {
                tracing::info!(namespace = %kube::ResourceExt::name_any(ns.as_ref()), ?out, "reconciled");
            }
        }
        Err(_) => ctx.metrics.reconciles_failed.inc(),
    }
    result.map(|_| Action::requeue(RESYNC))
}

fn error_policy(ns: Arc<Namespace>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let name = kube::ResourceExt::name_any(ns.as_ref());
    tracing::warn!(namespace = %name, error = %err, "reconcile failed; retrying");
    let note = err.to_string();
    tokio::spawn(async move { publish_event(&ctx, &name, "Warning", "ReconcileFailed", &note).await });
    Action::requeue(Duration::from_secs(2))
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
        .run(reconcile_one, error_policy, Arc::new(ctx))
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
