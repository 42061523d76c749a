//! The controller: one reconcile per namespace.
//!
//! Every watched kind (Notebook, Tensorboard, PVCViewer, Profile, our
//! HTTPRoutes and ReferenceGrants) triggers its namespace; reconcile compares
//! the namespace's sources with the routes and grant observed in the caches
//! (`desired::plan`) and applies the difference with server-side apply. A
//! deleted source, a hand-deleted or hand-edited route, and a changed Profile
//! owner are all "the namespace changed", so no finalizer is needed on users'
//! objects and nothing blocks their deletion when the controller is gone.
//! Routes of namespaces that no longer exist are removed by the sweep.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, future, stream};
use k8s_openapi::api::core::v1::Namespace;
use kfmodel::gateway::{HttpRoute, ReferenceGrant};
use kfmodel::{Notebook, PVCViewer, Profile, Tensorboard};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::desired::{self, MANAGED_BY, MANAGED_BY_LABEL, SOURCE_NAMESPACE_LABEL, Source, SourceKind};
use crate::http::Health;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{failed} of {total} changes in namespace {namespace} failed; first: {first}")]
    Partial {
        namespace: String,
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("a watch cache stopped before it was filled")]
    CacheClosed,
}

/// The caches reconcile reads.
#[derive(Clone)]
pub struct Stores {
    pub notebooks: Store<PartialObjectMeta<Notebook>>,
    pub tensorboards: Store<PartialObjectMeta<Tensorboard>>,
    pub pvcviewers: Store<PartialObjectMeta<PVCViewer>>,
    pub profiles: Store<Profile>,
    pub routes: Store<HttpRoute>,
    pub grants: Store<ReferenceGrant>,
    pub namespaces: Store<Namespace>,
}

impl Stores {
    async fn wait_until_ready(&self) -> Result<(), Error> {
        let closed = |_| Error::CacheClosed;
        self.notebooks.wait_until_ready().await.map_err(closed)?;
        self.tensorboards.wait_until_ready().await.map_err(closed)?;
        self.pvcviewers.wait_until_ready().await.map_err(closed)?;
        self.profiles.wait_until_ready().await.map_err(closed)?;
        self.routes.wait_until_ready().await.map_err(closed)?;
        self.grants.wait_until_ready().await.map_err(closed)
        // Not `namespaces`: the controller's runner already waits on that
        // store, and a second waiter could steal its wake-up (see `Context`).
    }

    /// Routed objects in `namespace`, skipping those being deleted.
    pub fn sources_in(&self, namespace: &str) -> Vec<Source> {
        fn collect<K: Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            kind: SourceKind,
            ns: &str,
            out: &mut Vec<Source>,
        ) {
            for obj in store.state() {
                let meta = obj.meta();
                if meta.namespace.as_deref() == Some(ns) && meta.deletion_timestamp.is_none() {
                    let name = meta.name.clone().unwrap_or_default();
                    out.push(Source {
                        kind,
                        namespace: ns.to_string(),
                        name,
                    });
                }
            }
        }
        let mut out = Vec::new();
        collect(&self.notebooks, SourceKind::Notebook, namespace, &mut out);
        collect(&self.tensorboards, SourceKind::Tensorboard, namespace, &mut out);
        collect(&self.pvcviewers, SourceKind::PVCViewer, namespace, &mut out);
        out
    }

    fn source_ref(&self, source: &Source) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
        let ns = source.namespace.as_str();
        match source.kind {
            SourceKind::Notebook => self
                .notebooks
                .get(&ObjectRef::new(&source.name).within(ns))
                .map(|o| o.object_ref(&())),
            SourceKind::Tensorboard => self
                .tensorboards
                .get(&ObjectRef::new(&source.name).within(ns))
                .map(|o| o.object_ref(&())),
            SourceKind::PVCViewer => self
                .pvcviewers
                .get(&ObjectRef::new(&source.name).within(ns))
                .map(|o| o.object_ref(&())),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub stores: Stores,
    pub metrics: Metrics,
    pub health: Health,
    recorder: Recorder,
    synced: tokio::sync::watch::Receiver<bool>,
    /// Set by the first reconcile: the runner only starts once the namespace cache is filled.
    namespaces_synced: tokio::sync::watch::Sender<bool>,
}

impl Context {
    /// Wait until every cache has been filled once.
    ///
    /// One task waits on the stores and flips a watch channel that any number
    /// of reconciles can wait on: `Store::wait_until_ready` keeps only the
    /// last waiter's waker, so concurrent waiters on it can hang.
    async fn wait_until_synced(&self) -> Result<(), Error> {
        let mut rx = self.synced.clone();
        rx.wait_for(|synced| *synced)
            .await
            .map_err(|_| Error::CacheClosed)?;
        Ok(())
    }
}

fn route_source_namespace(route: &HttpRoute) -> Option<String> {
    route.labels().get(SOURCE_NAMESPACE_LABEL).cloned()
}

fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// Reflect `api` into `writer`, yielding the namespace each event touches.
/// After a (re)list, every known namespace is triggered: objects deleted while
/// the watch was down vanish from the cache without a delete event.
fn namespace_triggers<K, S>(
    events: S,
    writer: reflector::store::Writer<K>,
    namespace_of: fn(&K) -> Option<String>,
    namespaces: Store<Namespace>,
) -> impl Stream<Item = ObjectRef<Namespace>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.reflect(writer).flat_map(move |event| {
        let refs: Vec<ObjectRef<Namespace>> = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => {
                namespace_of(&o)
                    .map(|ns| ObjectRef::new(&ns))
                    .into_iter()
                    .collect()
            }
            Ok(watcher::Event::InitDone) => namespaces
                .state()
                .iter()
                .map(|n| ObjectRef::from_obj(n.as_ref()))
                .collect(),
            Ok(watcher::Event::Init) => Vec::new(),
            Err(err) => {
                tracing::warn!(kind = %K::kind(&()), %err, "watch failed; retrying with backoff");
                Vec::new()
            }
        };
        stream::iter(refs)
    })
}

/// What the caches keep of an object: no managedFields and no
/// last-applied annotation, which are most of a small object's bytes and
/// never read here.
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Full objects, slimmed before they are cached.
fn full<K>(
    api: Api<K>,
    wc: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, wc).default_backoff().modify(slim::<K>)
}

/// Metadata only (PartialObjectMetadata requests): a routed object's name and
/// namespace are all reconcile reads, so pod specs never reach memory.
fn meta_only<K>(
    client: Client,
) -> impl Stream<Item = Result<watcher::Event<PartialObjectMeta<K>>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    full(
        Api::<PartialObjectMeta<K>>::all(client),
        watcher::Config::default(),
    )
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Metrics,
    health: Health,
    identity: String,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let (notebooks, nb_w) = reflector::store();
    let (tensorboards, tb_w) = reflector::store();
    let (pvcviewers, pv_w) = reflector::store();
    let (profiles, pr_w) = reflector::store();
    let (routes, rt_w) = reflector::store();
    let (grants, gr_w) = reflector::store();

    let controller = Controller::new(Api::<Namespace>::all(client.clone()), watcher::Config::default());
    let namespaces = controller.store();
    let stores = Stores {
        notebooks,
        tensorboards,
        pvcviewers,
        profiles,
        routes: routes.clone(),
        grants,
        namespaces: namespaces.clone(),
    };

    let managed = watcher::Config::default().labels(&managed_selector());
    let ns_of = |o: &_| -> Option<String> { ResourceExt::namespace(o) };
    let triggers = stream::select_all(vec![
        namespace_triggers(
            meta_only::<Notebook>(client.clone()),
            nb_w,
            |o| o.namespace(),
            namespaces.clone(),
        )
        .boxed(),
        namespace_triggers(
            meta_only::<Tensorboard>(client.clone()),
            tb_w,
            |o| o.namespace(),
            namespaces.clone(),
        )
        .boxed(),
        namespace_triggers(
            meta_only::<PVCViewer>(client.clone()),
            pv_w,
            |o| o.namespace(),
            namespaces.clone(),
        )
        .boxed(),
        namespace_triggers(
            full(Api::<Profile>::all(client.clone()), watcher::Config::default()),
            pr_w,
            |p| Some(p.name_any()),
            namespaces.clone(),
        )
        .boxed(),
        namespace_triggers(
            full(
                Api::<HttpRoute>::namespaced(client.clone(), &config.route_namespace),
                managed.clone(),
            ),
            rt_w,
            route_source_namespace,
            namespaces.clone(),
        )
        .boxed(),
        namespace_triggers(
            full(Api::<ReferenceGrant>::all(client.clone()), managed),
            gr_w,
            ns_of,
            namespaces.clone(),
        )
        .boxed(),
    ]);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kflite-route-controller".into(),
            instance: Some(identity),
        },
    );
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    let waiter = {
        let stores = stores.clone();
        tokio::spawn(async move {
            if stores.wait_until_ready().await.is_ok() {
                let _ = synced_tx.send(true);
            }
            // Keep the sender alive so waiters see `true`, not a closed channel.
            std::future::pending::<()>().await;
        })
    };
    let namespaces_synced = tokio::sync::watch::Sender::new(false);
    let ctx = Arc::new(Context {
        client,
        config,
        stores,
        metrics,
        health,
        recorder,
        synced,
        namespaces_synced,
    });

    let sweeper = tokio::spawn(sweep_forever(ctx.clone()));
    controller
        .reconcile_on(triggers)
        // Bounded: every request in flight is an HTTP/1.1 connection with its buffers.
        .with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.config.max_concurrent_reconciles),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(%err, "reconcile request not run");
            }
            future::ready(())
        })
        .await;
    sweeper.abort();
    waiter.abort();
    Ok(())
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.wait_until_synced().await?;
    ctx.namespaces_synced.send_replace(true);
    ctx.health.synced.store(true, Ordering::Relaxed);
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let ns = namespace.name_any();
    let result = reconcile_namespace(&ns, namespace.metadata.deletion_timestamp.is_some(), &ctx).await;
    ctx.metrics.duration.observe(started.elapsed().as_secs_f64());
    ctx.metrics.managed_routes.set(ctx.stores.routes.len() as i64);
    result?;
    Ok(Action::requeue(ctx.config.sweep_interval))
}

async fn reconcile_namespace(ns: &str, terminating: bool, ctx: &Context) -> Result<(), Error> {
    let config = &ctx.config;
    // A terminating namespace keeps no routes: its objects are on their way out.
    let sources = if terminating {
        Vec::new()
    } else {
        ctx.stores.sources_in(ns)
    };
    let profile = ctx.stores.profiles.get(&ObjectRef::new(ns));
    let observed: Vec<Arc<HttpRoute>> = ctx
        .stores
        .routes
        .state()
        .into_iter()
        .filter(|r| route_source_namespace(r).as_deref() == Some(ns))
        .collect();
    let observed_refs: Vec<&HttpRoute> = observed.iter().map(Arc::as_ref).collect();
    let grant = ctx
        .stores
        .grants
        .get(&ObjectRef::new(&config.reference_grant_name).within(ns));
    let plan = desired::plan(
        ns,
        &sources,
        profile.as_deref(),
        &observed_refs,
        grant.as_deref(),
        config,
    );
    if plan.is_empty() {
        return Ok(());
    }
    tracing::info!(
        namespace = ns,
        apply = plan.apply.len(),
        delete = plan.delete.len(),
        grant = plan.apply_grant.is_some(),
        delete_grant = plan.delete_grant,
        "reconciling"
    );

    let ssa = PatchParams::apply(&config.field_manager).force();
    let routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), &config.route_namespace);
    let grants: Api<ReferenceGrant> = Api::namespaced(ctx.client.clone(), ns);
    let mut failures: Vec<String> = Vec::new();
    let total =
        plan.apply.len() + plan.delete.len() + usize::from(plan.apply_grant.is_some() || plan.delete_grant);

    // The grant first: a route without it is rejected by the gateway.
    if let Some(grant) = &plan.apply_grant
        && let Err(err) = grants
            .patch(&config.reference_grant_name, &ssa, &Patch::Apply(grant))
            .await
    {
        failures.push(format!(
            "ReferenceGrant {ns}/{}: {err}",
            config.reference_grant_name
        ));
    }
    // Routes are independent: apply and delete them a few at a time.
    let applied: Vec<Option<String>> = stream::iter(plan.apply)
        .map(|route| {
            let (routes, ssa) = (routes.clone(), ssa.clone());
            async move { apply_route(ctx, &routes, &ssa, &route, ns).await }
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect()
        .await;
    let deleted: Vec<Option<String>> = stream::iter(plan.delete)
        .map(|name| {
            let routes = routes.clone();
            async move {
                match routes.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        ctx.metrics.routes_deleted.inc();
                        None
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(err) => Some(format!(
                        "delete HTTPRoute {}/{name}: {err}",
                        config.route_namespace
                    )),
                }
            }
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect()
        .await;
    failures.extend(applied.into_iter().chain(deleted).flatten());
    if plan.delete_grant {
        match grants
            .delete(&config.reference_grant_name, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(err) => failures.push(format!(
                "delete ReferenceGrant {ns}/{}: {err}",
                config.reference_grant_name
            )),
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(Error::Partial {
            namespace: ns.into(),
            failed: failures.len(),
            total,
            first: first.clone(),
        }),
    }
}

/// Requests in flight per namespace reconcile.
const APPLY_CONCURRENCY: usize = 4;

/// Apply one route; on failure, an Event on its source and the error text.
async fn apply_route(
    ctx: &Context,
    routes: &Api<HttpRoute>,
    ssa: &PatchParams,
    route: &HttpRoute,
    ns: &str,
) -> Option<String> {
    let name = route.metadata.name.clone().unwrap_or_default();
    let err = match routes.patch(&name, ssa, &Patch::Apply(route)).await {
        Ok(_) => {
            ctx.metrics.routes_applied.inc();
            return None;
        }
        Err(err) => err,
    };
    let route_ns = &ctx.config.route_namespace;
    if let Some(reference) = source_of(route, ns)
        .as_ref()
        .and_then(|s| ctx.stores.source_ref(s))
    {
        let event = Event {
            type_: EventType::Warning,
            reason: "RouteFailed".into(),
            note: Some(format!("cannot apply HTTPRoute {route_ns}/{name}: {err}")),
            action: "ApplyRoute".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%e, "could not publish event");
        }
    }
    Some(format!("HTTPRoute {route_ns}/{name}: {err}"))
}

fn source_of(route: &HttpRoute, ns: &str) -> Option<Source> {
    let kind = SourceKind::parse(route.labels().get(desired::SOURCE_KIND_LABEL)?)?;
    let name = route.annotations().get(desired::SOURCE_NAME_ANNOTATION)?.clone();
    Some(Source {
        kind,
        namespace: ns.into(),
        name,
    })
}

fn error_policy(namespace: Arc<Namespace>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.errors.inc();
    tracing::warn!(namespace = %namespace.name_any(), %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Remove routes (and grants) whose source namespace no longer exists; the
/// per-namespace reconcile cannot, as a deleted namespace is never reconciled.
async fn sweep_forever(ctx: Arc<Context>) {
    // Never sweep against an empty namespace cache: that would delete every route.
    let mut namespaces = ctx.namespaces_synced.subscribe();
    if ctx.wait_until_synced().await.is_err() || namespaces.wait_for(|s| *s).await.is_err() {
        return;
    }
    loop {
        if let Err(err) = sweep(&ctx).await {
            tracing::warn!(%err, "sweep failed");
        }
        tokio::time::sleep(ctx.config.sweep_interval).await;
    }
}

pub async fn sweep(ctx: &Context) -> Result<usize, Error> {
    let routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), &ctx.config.route_namespace);
    let mut removed = 0;
    for route in ctx.stores.routes.state() {
        let Some(ns) = route_source_namespace(&route) else {
            continue;
        };
        if ctx.stores.namespaces.get(&ObjectRef::new(&ns)).is_none() {
            match routes.delete(&route.name_any(), &DeleteParams::default()).await {
                Ok(_) => {
                    removed += 1;
                    ctx.metrics.routes_deleted.inc();
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "swept routes of deleted namespaces");
    }
    Ok(removed)
}
