//! A Kubernetes API server stand-in for tests.
//!
//! [`Server::start`] runs the simulated API server on `127.0.0.1` (an
//! ephemeral port by default) in a thread of its own, so it serves sync and
//! async tests alike, and returns a [`Handle`]: its URL, a kubeconfig file for
//! kubectl and the Python client, a [`kube::Config`] for kube-rs, and the
//! fault-injection controls. [`TestCluster`] is what e2e tests use: kube-sim
//! by default, a real cluster when `KFLITE_E2E_KUBECONFIG` is set.
//!
//! See docs/testing.md for what it implements and how it differs from a
//! real kube-apiserver.

mod faults;
mod http;
mod identity;
mod patch;
mod registry;
mod schema;
mod select;
mod ssa;
mod status;
mod store;
mod table;
mod testcluster;

pub use faults::{FailRule, LatencyRule};
pub use identity::{Grant, Identity, assert_rbac_minimal, rbac_objects, rbac_report, rbac_usage};
pub use status::ApiError;
pub use testcluster::{
    BACKEND_ENV, Backend, REAL_CLUSTER_ENV, TestCluster, TestClusterError, gateway_api_release, run_on,
    write_list,
};

use faults::Faults;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;

/// How the simulated API server behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Events kept for watches from an old resourceVersion; older ones get 410 Gone.
    pub history_limit: usize,
    /// How often a watch with allowWatchBookmarks gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How long a watch without timeoutSeconds stays open.
    pub watch_timeout: Duration,
    /// Put the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap
    /// in every new namespace, as kube-controller-manager does.
    pub namespace_defaults: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
            watch_timeout: Duration::from_secs(1800),
            namespace_defaults: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("starting the kube-sim runtime: {0}")]
    Runtime(std::io::Error),
    #[error("writing the kubeconfig {path}: {source}")]
    Kubeconfig { path: PathBuf, source: std::io::Error },
    #[error("the kube-sim server thread stopped before it was ready")]
    Stopped,
}

/// State shared by every connection.
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    cut: tokio::sync::watch::Sender<u64>,
    config: Config,
    addr: SocketAddr,
    /// Requests served, by (verb, resource as `plural` or `plural.group`).
    requests: Mutex<std::collections::BTreeMap<(String, String), u64>>,
    /// Watch streams open now.
    watches: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts an open watch stream for as long as it lives.
pub(crate) struct WatchGuard(Arc<std::sync::atomic::AtomicUsize>);

impl WatchGuard {
    pub(crate) fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        WatchGuard(count.clone())
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Shared {
    pub(crate) fn count_request(&self, verb: &str, resource: &str, group: &str) {
        let key = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry((verb.to_string(), key)).or_default() += 1;
    }

    fn new(config: Config, addr: SocketAddr) -> Self {
        Shared {
            store: Mutex::new(Store::new(config.history_limit, config.namespace_defaults)),
            faults: Mutex::new(Faults::default()),
            cut: tokio::sync::watch::Sender::new(0),
            config,
            addr,
            requests: Mutex::new(Default::default()),
            watches: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// The store; a poisoned lock is still usable (a panicking request must not wedge the server).
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn fail_next(&self, rule: FailRule) {
        self.faults().add_failure(rule);
    }

    pub(crate) fn add_latency(&self, rule: LatencyRule) {
        self.faults().add_latency(rule);
    }

    pub(crate) fn clear_faults(&self) {
        self.faults().clear();
    }

    pub(crate) fn cut_watches(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    pub(crate) fn expire_resource_versions(&self) {
        self.store().expire();
        self.cut_watches();
    }
}

async fn serve_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // Open connections (watches above all) close when the server stops.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            acc = listener.accept() => match acc {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let mut stop = stop_rx.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| http::handle(shared.clone(), req));
                        let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        tokio::select! {
                            r = conn => {
                                if let Err(e) = r {
                                    tracing::debug!("connection ended: {e}");
                                }
                            }
                            _ = stop.changed() => {}
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    let _ = stop_tx.send(true);
}

/// A kubeconfig for an API server at `url` (no credentials: kube-sim has no auth).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user: {{}}\npreferences: {{}}\n"
    )
}

fn write_kubeconfig(path: &Path, url: &str) -> Result<(), StartError> {
    std::fs::write(path, kubeconfig_yaml(url)).map_err(|source| StartError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

pub struct Server;

impl Server {
    /// Start kube-sim in a thread of its own; it stops when the handle drops.
    pub fn start(config: Config) -> Result<Handle, StartError> {
        let dir = tempfile::tempdir().map_err(StartError::Runtime)?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Arc<Shared>, StartError>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let port = config.port;
        let thread = std::thread::Builder::new()
            .name("kube-sim".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StartError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(l) => l,
                        Err(source) => {
                            let _ = ready_tx.send(Err(StartError::Bind { port, source }));
                            return;
                        }
                    };
                    let addr = match listener.local_addr() {
                        Ok(a) => a,
                        Err(source) => {
                            let _ = ready_tx.send(Err(StartError::Bind { port, source }));
                            return;
                        }
                    };
                    let shared = Arc::new(Shared::new(config, addr));
                    let _ = ready_tx.send(Ok(shared.clone()));
                    serve_loop(shared, listener, async move {
                        let _ = stop_rx.await;
                    })
                    .await;
                });
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(StartError::Runtime)?;
        let shared = ready_rx.recv().map_err(|_| StartError::Stopped)??;
        let url = format!("http://{}", shared.addr);
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig, &url)?;
        tracing::info!("kube-sim serving at {url}");
        Ok(Handle {
            shared,
            url,
            kubeconfig,
            _dir: dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Serve on `listener` in the caller's runtime until `shutdown` resolves
    /// (the binary uses this); faults through the admin endpoint.
    pub async fn serve(
        config: Config,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, addr));
        serve_loop(shared, listener, shutdown).await;
        Ok(())
    }
}

/// A running kube-sim. Dropping it stops the server.
pub struct Handle {
    shared: Arc<Shared>,
    url: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("url", &self.url).finish()
    }
}

impl Handle {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A kubeconfig file for this server (kubectl `--kubeconfig`, `KUBECONFIG`, the Python client).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url)
    }

    /// A kube-rs config for this server.
    pub fn kube_config(&self) -> kube::Config {
        let mut c = kube::Config::new(self.url.parse().unwrap_or_default());
        c.default_namespace = "default".into();
        c
    }

    /// A kube-rs client (call inside a tokio runtime).
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        kube::Client::try_from(self.kube_config())
    }

    /// Fail the next `count` requests matching `verb`/`resource` (None: any) with `code`.
    pub fn fail_next(&self, verb: Option<&str>, resource: Option<&str>, code: u16, count: u32) {
        self.shared.fail_next(FailRule {
            verb: verb.map(str::to_string),
            resource: resource.map(str::to_string),
            code,
            count,
            message: None,
        });
    }

    pub fn fail(&self, rule: FailRule) {
        self.shared.fail_next(rule);
    }

    /// Delay requests matching `verb`/`resource` (None: any).
    pub fn add_latency(&self, verb: Option<&str>, resource: Option<&str>, delay: Duration) {
        self.shared.add_latency(LatencyRule {
            verb: verb.map(str::to_string),
            resource: resource.map(str::to_string),
            millis: delay.as_millis().try_into().unwrap_or(u64::MAX),
        });
    }

    /// End every open watch stream now (clients see a clean end of stream).
    pub fn cut_watches(&self) {
        self.shared.cut_watches();
    }

    /// Expire every resourceVersion handed out so far and cut watches:
    /// re-watching from an old version gets 410 Gone, forcing a relist.
    pub fn expire_resource_versions(&self) {
        self.shared.expire_resource_versions();
    }

    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// A snapshot of every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.shared
            .store()
            .all_objects()
            .iter()
            .map(|o| (**o).clone())
            .collect()
    }

    /// How many requests matching `verb`/`resource` (None: any) were served
    /// so far (failed and injected ones included); `resource` is a plural
    /// (any group) or `plural.group` (`deployments.apps`). Lets tests check
    /// what a controller did.
    pub fn request_count(&self, verb: Option<&str>, resource: Option<&str>) -> u64 {
        let r = self.shared.requests.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .filter(|((v, res), _)| {
                verb.is_none_or(|x| x == v)
                    && resource.is_none_or(|x| x == res || res.split('.').next() == Some(x))
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Watch streams open now (a test can wait for a controller's watches before cutting them).
    pub fn open_watches(&self) -> usize {
        self.shared.watches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
