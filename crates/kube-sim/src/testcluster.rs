//! The cluster e2e tests run against: kube-sim by default, a real cluster
//! when `KFLITE_E2E_KUBECONFIG` names a kubeconfig. The same test code runs
//! on both; on a real cluster it works in namespaces it creates (unique
//! names) and deletes them when the `TestCluster` drops.

use crate::{Config, Handle, Server, StartError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The variable that points e2e tests at a real cluster.
pub const REAL_CLUSTER_ENV: &str = "KFLITE_E2E_KUBECONFIG";

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
}

pub struct TestCluster {
    sim: Option<Handle>,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    created: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("kubeconfig", &self.kubeconfig)
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
        match std::env::var_os(REAL_CLUSTER_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Ok(TestCluster {
                sim: None,
                kubeconfig: PathBuf::from(path),
                cache,
                created: Mutex::new(Vec::new()),
            }),
            None => {
                let sim = Server::start(config)?;
                let kubeconfig = sim.kubeconfig_path().to_path_buf();
                Ok(TestCluster {
                    sim: Some(sim),
                    kubeconfig,
                    cache,
                    created: Mutex::new(Vec::new()),
                })
            }
        }
    }

    pub fn is_real(&self) -> bool {
        self.sim.is_none()
    }

    /// The kube-sim handle (fault injection); None on a real cluster.
    pub fn sim(&self) -> Option<&Handle> {
        self.sim.as_ref()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs config for the cluster.
    pub async fn kube_config(&self) -> Result<kube::Config, TestClusterError> {
        match &self.sim {
            Some(h) => Ok(h.kube_config()),
            None => {
                let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).map_err(|source| {
                    TestClusterError::Kubeconfig {
                        path: self.kubeconfig.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|source| TestClusterError::Kubeconfig {
                        path: self.kubeconfig.clone(),
                        source,
                    })
            }
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
        if self.sim.is_some() || names.is_empty() {
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
