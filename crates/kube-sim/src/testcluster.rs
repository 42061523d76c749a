//! The cluster e2e tests run against, on one of two backends:
//! - [`Backend::KubeSim`]: kube-sim, in process (fault injection), or the real
//!   cluster `KFLITE_E2E_KUBECONFIG` names;
//! - [`Backend::ApiServer`]: a real kube-apiserver + etcd +
//!   kube-controller-manager (`testsvc::ControlPlane`), shared with other
//!   tests when `cargo xtask test` started one, else private to this test.
//!
//! The same test code runs on every backend ([`crate::on_each_backend!`]); it
//! works in namespaces it creates (unique names).

use crate::{Config, Handle, Server, StartError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The variable that points e2e tests at a real cluster.
pub const REAL_CLUSTER_ENV: &str = "KFLITE_E2E_KUBECONFIG";
/// `kube-sim`, `apiserver` or `both` (the default): which backends e2e tests run on.
pub const BACKEND_ENV: &str = "KFLITE_E2E_BACKEND";

#[derive(Debug, thiserror::Error)]
pub enum TestClusterError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{REAL_CLUSTER_ENV}={path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("connecting to the cluster: {0}")]
    Client(#[from] kube::Error),
    #[error("the real control plane: {0}")]
    ControlPlane(#[from] testsvc::ControlPlaneError),
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Where an e2e test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    KubeSim,
    ApiServer,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::KubeSim => "kube-sim",
            Backend::ApiServer => "apiserver",
        }
    }

    /// Whether [`BACKEND_ENV`] selects this backend.
    pub fn selected(self) -> bool {
        match std::env::var(BACKEND_ENV).as_deref() {
            Ok("kube-sim") => self == Backend::KubeSim,
            Ok("apiserver") => self == Backend::ApiServer,
            _ => true,
        }
    }
}

enum Inner {
    Sim(Handle),
    External,
    ApiServer(testsvc::ControlPlane),
}

pub struct TestCluster {
    inner: Inner,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    created: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("kubeconfig", &self.kubeconfig)
            .field("backend", &self.backend())
            .field("real", &self.is_real())
            .finish()
    }
}

impl TestCluster {
    /// kube-sim with the default [`Config`], or the real cluster `KFLITE_E2E_KUBECONFIG` names.
    pub fn start() -> Result<Self, TestClusterError> {
        Self::start_with(Config::default())
    }

    /// Like [`TestCluster::start`], with a kube-sim configuration (ignored on a real cluster).
    pub fn start_with(config: Config) -> Result<Self, TestClusterError> {
        let cache = tempfile::tempdir().map_err(StartError::Runtime)?;
        let (inner, kubeconfig) = match std::env::var_os(REAL_CLUSTER_ENV).filter(|v| !v.is_empty()) {
            Some(path) => (Inner::External, PathBuf::from(path)),
            None => {
                let sim = Server::start(config)?;
                let kubeconfig = sim.kubeconfig_path().to_path_buf();
                (Inner::Sim(sim), kubeconfig)
            }
        };
        Ok(TestCluster {
            inner,
            kubeconfig,
            cache,
            created: Mutex::new(Vec::new()),
        })
    }

    /// A cluster on `backend`: the real control plane `cargo xtask test`
    /// shares (`KFLITE_CONTROL_PLANE_DIR`), else one of this test's own.
    pub fn start_on(backend: Backend) -> Result<Self, TestClusterError> {
        match backend {
            Backend::KubeSim => Self::start(),
            Backend::ApiServer => match testsvc::ControlPlane::shared() {
                Some(shared) => Self::with_control_plane(shared?),
                None => Self::start_private(backend),
            },
        }
    }

    /// A cluster on `backend` that no other test uses: for tests that change
    /// cluster-wide things (CRDs, the API's own behaviour).
    pub fn start_private(backend: Backend) -> Result<Self, TestClusterError> {
        match backend {
            Backend::KubeSim => Self::start(),
            Backend::ApiServer => {
                let binaries = testsvc::Binaries::locate()?;
                Self::with_control_plane(testsvc::ControlPlane::start(&binaries)?)
            }
        }
    }

    fn with_control_plane(cp: testsvc::ControlPlane) -> Result<Self, TestClusterError> {
        let cache = tempfile::tempdir().map_err(StartError::Runtime)?;
        Ok(TestCluster {
            kubeconfig: cp.info().admin_kubeconfig.clone(),
            inner: Inner::ApiServer(cp),
            cache,
            created: Mutex::new(Vec::new()),
        })
    }

    /// [`TestCluster::start_on`] for `test`, or `None` after a loud skip when
    /// the backend is not selected or its binaries are not built. Under
    /// `cargo xtask test` (which builds them) a missing binary fails the test.
    pub fn for_test(test: &str, backend: Backend, private: bool) -> Option<Self> {
        if !backend.selected() {
            let chosen = std::env::var(BACKEND_ENV).unwrap_or_default();
            testkit::skip(
                test,
                &format!("{BACKEND_ENV}={chosen} leaves out {}", backend.name()),
            );
            return None;
        }
        let started = if private {
            Self::start_private(backend)
        } else {
            Self::start_on(backend)
        };
        match started {
            Ok(tc) => Some(tc),
            Err(TestClusterError::ControlPlane(e @ testsvc::ControlPlaneError::MissingBinary { .. })) => {
                if std::env::var("KFLITE_REQUIRE").as_deref() == Ok("1")
                    && std::env::var_os("KFLITE_TOOL_KUBE_APISERVER").is_some()
                {
                    panic!("{test}: cargo xtask test built the control plane, yet: {e}");
                }
                testkit::skip(test, &e.to_string());
                None
            }
            Err(e) => panic!("{test}: cannot start the {} test cluster: {e}", backend.name()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sim(_) | Inner::External => Backend::KubeSim,
            Inner::ApiServer(_) => Backend::ApiServer,
        }
    }

    /// The real control plane, on [`Backend::ApiServer`] (its audit log, CA, logs).
    pub fn control_plane(&self) -> Option<&testsvc::ControlPlane> {
        match &self.inner {
            Inner::ApiServer(cp) => Some(cp),
            _ => None,
        }
    }

    /// A cluster someone else runs (`KFLITE_E2E_KUBECONFIG`): its CRDs are
    /// installed already, and tests must not change cluster-wide objects.
    pub fn is_real(&self) -> bool {
        matches!(self.inner, Inner::External)
    }

    /// The kube-sim handle (fault injection); None on any real API server.
    pub fn sim(&self) -> Option<&Handle> {
        match &self.inner {
            Inner::Sim(h) => Some(h),
            _ => None,
        }
    }

    /// A private directory that lives as long as this handle (kubectl's cache, token kubeconfigs).
    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs config for the cluster.
    pub async fn kube_config(&self) -> Result<kube::Config, TestClusterError> {
        match &self.inner {
            Inner::Sim(h) => Ok(h.kube_config()),
            _ => config_from_file(&self.kubeconfig).await,
        }
    }

    /// A kube-rs client (inside a tokio runtime).
    pub async fn client(&self) -> Result<kube::Client, TestClusterError> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }

    /// `kubectl --kubeconfig ...` with a private discovery cache, so runs never share stale discovery.
    pub fn kubectl(&self, kubectl: &Path) -> Command {
        let mut c = Command::new(kubectl);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path());
        c
    }

    /// `kubectl apply --server-side -f FILE`, as a user runs it. kubectl maps
    /// every object before applying any, so a file that creates CRDs and
    /// objects of those kinds takes a second pass (against a real API server
    /// too); a first pass that fails for any other reason is the error.
    pub fn kubectl_apply_server_side(&self, kubectl: &Path, file: &Path) -> Result<String, String> {
        let run = || {
            let mut c = self.kubectl(kubectl);
            c.args(["apply", "--server-side", "-f"]).arg(file);
            c.output().map_err(|e| format!("running {c:?}: {e}"))
        };
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        let first = run()?;
        if first.status.success() {
            return Ok(String::from_utf8_lossy(&first.stdout).into_owned());
        }
        let err = text(&first);
        let only_crd_order = err
            .lines()
            .filter(|l| l.starts_with("error") || l.starts_with("Error"))
            .all(|l| l.contains("ensure CRDs are installed first"));
        if !only_crd_order {
            return Err(format!("apply of {} failed:\n{err}", file.display()));
        }
        let second = run()?;
        if !second.status.success() {
            return Err(format!(
                "second apply of {} failed:\n{}",
                file.display(),
                text(&second)
            ));
        }
        Ok(String::from_utf8_lossy(&second.stdout).into_owned())
    }

    /// A fresh namespace `<prefix>-<random>`, deleted (on a real cluster) when this drops.
    pub async fn namespace(&self, prefix: &str) -> Result<String, TestClusterError> {
        use kube::api::{Api, PostParams};
        let client = self.client().await?;
        let ns: Api<kube::api::DynamicObject> = Api::all_with(client, &namespace_resource());
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": format!("{prefix}-")}
        }))
        .map_err(|e| TestClusterError::Client(kube::Error::SerdeError(e)))?;
        let created = ns.create(&PostParams::default(), &obj).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        Ok(name)
    }
}

fn namespace_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Namespace".into(),
        plural: "namespaces".into(),
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        // kube-sim and a private control plane vanish with this handle.
        let private = self.control_plane().is_some_and(|cp| cp.owns_processes());
        if self.sim().is_some() || private || names.is_empty() {
            return;
        }
        // Clean up on the real cluster from a thread of our own: Drop may run inside a runtime.
        let kubeconfig = self.kubeconfig.clone();
        let done = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return eprintln!("TestCluster cleanup: {e}"),
            };
            rt.block_on(async move {
                let Ok(kc) = kube::config::Kubeconfig::read_from(&kubeconfig) else {
                    return;
                };
                let Ok(cfg) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await else {
                    return;
                };
                let Ok(client) = kube::Client::try_from(cfg) else {
                    return;
                };
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::all_with(client, &namespace_resource());
                for n in names {
                    if let Err(e) = api.delete(&n, &Default::default()).await {
                        eprintln!("TestCluster cleanup: deleting namespace {n}: {e}");
                    }
                }
            });
        });
        let _ = done.join();
    }
}

/// Writes `items` as one `v1` `List` that `kubectl apply -f` reads (e.g.
/// the CRDs a cluster provides before the platform is installed).
pub fn write_list<T: serde::Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
    std::fs::write(path, serde_json::to_vec(&list).map_err(std::io::Error::other)?)
}

/// A kube-rs config from the kubeconfig file at `path`.
pub(crate) async fn config_from_file(path: &Path) -> Result<kube::Config, TestClusterError> {
    let err = |source| TestClusterError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
    kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(err)
}

/// Runs the async e2e `body` on `backend` (a loud skip where the backend is
/// not available); used by [`crate::on_each_backend!`].
pub fn run_on<F, Fut>(test: &str, backend: Backend, private: bool, body: F)
where
    F: FnOnce(TestCluster) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(tc) = TestCluster::for_test(test, backend, private) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{test}: tokio runtime: {e}"));
    rt.block_on(body(tc));
}

/// One `#[test]` per backend for each named `async fn(TestCluster)`: module
/// `on_kube_sim` (kube-sim, or `KFLITE_E2E_KUBECONFIG`'s cluster) and module
/// `on_apiserver` (the real control plane). `private:` before the names gives
/// each test a control plane of its own (tests that change cluster-wide objects).
///
/// ```ignore
/// kube_sim::on_each_backend!(routes_follow_notebooks, grants_follow_profiles);
/// async fn routes_follow_notebooks(tc: kube_sim::TestCluster) { /* ... */ }
/// ```
#[macro_export]
macro_rules! on_each_backend {
    (private: $($name:ident),+ $(,)?) => {
        $crate::on_each_backend!(@emit true, $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        $crate::on_each_backend!(@emit false, $($name),+);
    };
    (@emit $private:expr, $($name:ident),+) => {
        mod on_kube_sim {
            $(
                #[test]
                fn $name() {
                    $crate::run_on(stringify!($name), $crate::Backend::KubeSim, $private, super::$name);
                }
            )+
        }
        mod on_apiserver {
            $(
                #[test]
                fn $name() {
                    $crate::run_on(stringify!($name), $crate::Backend::ApiServer, $private, super::$name);
                }
            )+
        }
    };
}

/// Gateway API v1.2.1's experimental channel, as the owner's cluster installs it, in `../shared`.
pub fn gateway_api_release(shared: &Path) -> PathBuf {
    shared.join("upstream/http/github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/experimental-install.yaml")
}

impl TestCluster {
    /// Applies CRDs (server-side, forced: tests sharing a server apply the
    /// same ones) and waits until each is Established.
    pub async fn install_crds(&self, crds: &[serde_json::Value]) -> Result<(), TestClusterError> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::api::{Api, Patch, PatchParams};
        let api: Api<CustomResourceDefinition> = Api::all(self.client().await?);
        let mut names = Vec::new();
        for crd in crds {
            let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
            api.patch(
                &name,
                &PatchParams::apply("kflite-test").force(),
                &Patch::Apply(crd),
            )
            .await?;
            names.push(name);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for name in names {
            loop {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(TestClusterError::Manifest {
                        path: PathBuf::from(format!("CustomResourceDefinition/{name}")),
                        message: "not Established within 30 s".into(),
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// kflite's Kubeflow CRDs and the Gateway API's: on a real API server the
    /// upstream v1.2.1 experimental release (schemas and CEL rules) when
    /// `../shared` is there, else (and on kube-sim) `kfmodel`'s definitions.
    /// Nothing on a cluster someone else runs: it has its own.
    pub async fn install_platform_crds(&self) -> Result<(), TestClusterError> {
        if self.is_real() {
            return Ok(());
        }
        let mut crds: Vec<serde_json::Value> = kfmodel::crd::all()
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| TestClusterError::Client(kube::Error::SerdeError(e)))?;
        let upstream = testkit::shared_dir()
            .map(|s| gateway_api_release(&s))
            .filter(|p| p.is_file() && self.sim().is_none());
        match upstream {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| TestClusterError::Manifest {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                    let v: serde_json::Value =
                        serde::Deserialize::deserialize(doc).map_err(|e| TestClusterError::Manifest {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    if v["kind"] == "CustomResourceDefinition" {
                        crds.push(v);
                    }
                }
            }
            None => {
                for crd in kfmodel::gateway::cluster_provided_crds() {
                    crds.push(
                        serde_json::to_value(crd)
                            .map_err(|e| TestClusterError::Client(kube::Error::SerdeError(e)))?,
                    );
                }
            }
        }
        self.install_crds(&crds).await
    }
}
