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
//! Each kind is watched on its own (see [`crate::watches`]): one absent CRD
//! leaves the other kinds routed.

use std::sync::Arc;
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

use kflite_runtime::http::Status;

use crate::config::Config;
use crate::desired::{self, MANAGED_BY, MANAGED_BY_LABEL, SOURCE_NAMESPACE_LABEL, Source, SourceKind};
use crate::metrics::Metrics;
use crate::watches::{QuickBackoff, Watched, Watches};

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
    /// Routed objects in `namespace` of the kinds `watched` accepts, skipping those being deleted.
    pub fn sources_in(&self, namespace: &str, watched: impl Fn(SourceKind) -> bool) -> Vec<Source> {
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
        for kind in SourceKind::ALL.into_iter().filter(|k| watched(*k)) {
            match kind {
                SourceKind::Notebook => collect(&self.notebooks, kind, namespace, &mut out),
                SourceKind::Tensorboard => collect(&self.tensorboards, kind, namespace, &mut out),
                SourceKind::PVCViewer => collect(&self.pvcviewers, kind, namespace, &mut out),
            }
        }
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
    pub watches: Watches,
    recorder: Recorder,
    /// Set by the first reconcile: the runner only starts once the namespace cache is filled.
    namespaces_synced: tokio::sync::watch::Sender<bool>,
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
    watched: Watched,
    events: S,
    writer: reflector::store::Writer<K>,
    namespace_of: fn(&K) -> Option<String>,
    (namespaces, watches): (Store<Namespace>, Watches),
) -> futures::stream::BoxStream<'static, ObjectRef<Namespace>>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events
        .reflect(writer)
        .flat_map(move |event| {
            // After `reflect`, so a kind is marked synced only once its store is filled.
            watches.observe(watched, &event);
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
                Ok(watcher::Event::Init) | Err(_) => Vec::new(),
            };
            stream::iter(refs)
        })
        .boxed()
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

/// Full objects, slimmed before they are cached (the kinds we write: a
/// failing watch is an API server problem, retried gently).
fn full<K>(
    api: Api<K>,
    wc: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, wc).default_backoff().modify(slim::<K>)
}

/// An optional kind: retried quickly, so an absent CRD installed later is
/// picked up within seconds (see `watches`).
fn optional<K>(api: Api<K>) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .backoff(QuickBackoff::default())
        .modify(slim::<K>)
}

/// Metadata only (PartialObjectMetadata requests): a routed object's name and
/// namespace are all reconcile reads, so pod specs never reach memory.
fn meta_only<K>(
    client: Client,
) -> impl Stream<Item = Result<watcher::Event<PartialObjectMeta<K>>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    optional(Api::<PartialObjectMeta<K>>::all(client))
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Metrics,
    watches: Watches,
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
    let shared = || (namespaces.clone(), watches.clone());
    let triggers = stream::select_all(vec![
        namespace_triggers(
            Watched::Source(SourceKind::Notebook),
            meta_only::<Notebook>(client.clone()),
            nb_w,
            |o| o.namespace(),
            shared(),
        ),
        namespace_triggers(
            Watched::Source(SourceKind::Tensorboard),
            meta_only::<Tensorboard>(client.clone()),
            tb_w,
            |o| o.namespace(),
            shared(),
        ),
        namespace_triggers(
            Watched::Source(SourceKind::PVCViewer),
            meta_only::<PVCViewer>(client.clone()),
            pv_w,
            |o| o.namespace(),
            shared(),
        ),
        namespace_triggers(
            Watched::Profile,
            optional(Api::<Profile>::all(client.clone())),
            pr_w,
            |p| Some(p.name_any()),
            shared(),
        ),
        namespace_triggers(
            Watched::Routes,
            full(
                Api::<HttpRoute>::namespaced(client.clone(), &config.route_namespace),
                managed.clone(),
            ),
            rt_w,
            route_source_namespace,
            shared(),
        ),
        namespace_triggers(
            Watched::Grants,
            full(Api::<ReferenceGrant>::all(client.clone()), managed),
            gr_w,
            ns_of,
            shared(),
        ),
    ]);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kflite-route-controller".into(),
            instance: Some(identity),
        },
    );
    let namespaces_synced = tokio::sync::watch::Sender::new(false);
    let ctx = Arc::new(Context {
        client,
        config,
        stores,
        metrics,
        watches,
        recorder,
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
    Ok(())
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.watches.wait_ready().await.map_err(|()| Error::CacheClosed)?;
    ctx.namespaces_synced.send_replace(true);
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
    let watched = |kind: SourceKind| ctx.watches.is_synced(Watched::Source(kind));
    // A terminating namespace keeps no routes: its objects are on their way out.
    let sources = if terminating {
        Vec::new()
    } else {
        ctx.stores.sources_in(ns, watched)
    };
    let profile = ctx.stores.profiles.get(&ObjectRef::new(ns));
    let observed_routes: Vec<Arc<HttpRoute>> = ctx
        .stores
        .routes
        .state()
        .into_iter()
        .filter(|r| route_source_namespace(r).as_deref() == Some(ns))
        .collect();
    let observed_grants: Vec<Arc<ReferenceGrant>> = ctx
        .stores
        .grants
        .state()
        .into_iter()
        .filter(|g| g.metadata.namespace.as_deref() == Some(ns))
        .collect();
    let route_refs: Vec<&HttpRoute> = observed_routes.iter().map(Arc::as_ref).collect();
    let grant_refs: Vec<&ReferenceGrant> = observed_grants.iter().map(Arc::as_ref).collect();
    let observed = desired::Observed {
        namespace: ns,
        sources: &sources,
        profile: profile.as_deref(),
        routes: &route_refs,
        grants: &grant_refs,
    };
    // In a terminating namespace every kind counts as known: nothing is kept.
    let plan = desired::plan(&observed, |k| terminating || watched(k), config);
    if plan.is_empty() {
        return Ok(());
    }
    tracing::info!(
        namespace = ns,
        apply = plan.apply.len(),
        delete = plan.delete.len(),
        apply_grants = plan.apply_grants.len(),
        delete_grants = plan.delete_grants.len(),
        "reconciling"
    );

    let ssa = PatchParams::apply(&config.field_manager).force();
    let routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), &config.route_namespace);
    let grants: Api<ReferenceGrant> = Api::namespaced(ctx.client.clone(), ns);
    let mut failures: Vec<Failure> = Vec::new();
    let total = plan.apply.len() + plan.delete.len() + plan.apply_grants.len() + plan.delete_grants.len();

    // Grants first: a route without one is rejected by the gateway.
    for grant in &plan.apply_grants {
        let name = grant.metadata.name.as_deref().unwrap_or_default();
        if let Err(err) = grants.patch(name, &ssa, &Patch::Apply(grant)).await {
            failures.push(Failure::of(&err, format!("ReferenceGrant {ns}/{name}: {err}")));
        }
    }
    // Routes are independent: apply and delete them a few at a time.
    let applied: Vec<Option<Failure>> = stream::iter(plan.apply)
        .map(|route| {
            let (routes, ssa) = (routes.clone(), ssa.clone());
            async move { apply_route(ctx, &routes, &ssa, &route, ns).await }
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect()
        .await;
    let deleted: Vec<Option<Failure>> = stream::iter(plan.delete)
        .map(|name| {
            let routes = routes.clone();
            async move {
                match routes.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        ctx.metrics.routes_deleted.inc();
                        None
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(err) => Some(Failure::of(
                        &err,
                        format!("delete HTTPRoute {}/{name}: {err}", config.route_namespace),
                    )),
                }
            }
        })
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect()
        .await;
    failures.extend(applied.into_iter().chain(deleted).flatten());
    // Stale grants last: routes that needed them are gone or moved to another grant.
    for name in &plan.delete_grants {
        match grants.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(err) => failures.push(Failure::of(
                &err,
                format!("delete ReferenceGrant {ns}/{name}: {err}"),
            )),
        }
    }
    report_permissions(ctx, &failures);
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(Error::Partial {
            namespace: ns.into(),
            failed: failures.len(),
            total,
            first: first.text.clone(),
        }),
    }
}

/// Health check that turns failing while the API server forbids a write.
pub const PERMISSIONS_CHECK: &str = "permissions";

/// One failed write of a reconcile.
struct Failure {
    text: String,
    forbidden: bool,
}

impl Failure {
    fn of(err: &kube::Error, text: String) -> Self {
        let forbidden = matches!(err, kube::Error::Api(s) if s.code == 403);
        Failure { text, forbidden }
    }
}

/// A 403 is a broken install (RBAC short of a verb), not a transient error:
/// it fails /readyz, logged as an error, until a reconcile writes without one.
fn report_permissions(ctx: &Context, failures: &[Failure]) {
    match failures.iter().find(|f| f.forbidden) {
        Some(f) => {
            if ctx.watches.health().status(PERMISSIONS_CHECK) != Some(Status::Failing) {
                tracing::error!(
                    error = %f.text,
                    "forbidden by the API server: route-controller's RBAC lacks a verb (see manifests/route-controller/rbac.yaml)"
                );
            }
            ctx.watches.health().set(
                PERMISSIONS_CHECK,
                Status::Failing,
                format!("forbidden: {}", f.text),
            );
        }
        None => {
            if ctx.watches.health().status(PERMISSIONS_CHECK) == Some(Status::Failing) {
                tracing::info!("writes allowed again: permissions restored");
            }
            ctx.watches.health().set(PERMISSIONS_CHECK, Status::Ok, "");
        }
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
) -> Option<Failure> {
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
    Some(Failure::of(&err, format!("HTTPRoute {route_ns}/{name}: {err}")))
}

fn source_of(route: &HttpRoute, ns: &str) -> Option<Source> {
    Source::of_route(route).filter(|s| s.namespace == ns)
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
    if ctx.watches.wait_ready().await.is_err() || namespaces.wait_for(|s| *s).await.is_err() {
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
