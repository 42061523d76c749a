//! kube-sim + real SeaweedFS + the controller, for end-to-end tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use pipeline_artifacts::desired::secret_credentials;
use pipeline_artifacts::metrics::Metrics;
use pipeline_artifacts::reconcile::Context;
use pipeline_artifacts::secret::Credentials;
use pipeline_artifacts::settings::{ENABLED_LABEL, SECRET_NAME, Settings};
use pipeline_artifacts::store::{SeaweedStore, iam_config, s3_config};
use serde_json::json;
use testsvc::seaweedfs::{FailAfterSend, SeaweedFs};

pub struct Env {
    pub sw: SeaweedFs,
    /// kube-sim (or `KFLITE_E2E_KUBECONFIG`'s cluster), or the real control plane.
    pub tc: kube_sim::TestCluster,
    /// The test's own (admin) client.
    pub client: kube::Client,
    /// The controller's: its ServiceAccount under manifests/pipeline-artifacts' RBAC.
    pub controller: kube::Client,
    /// That ServiceAccount, with a kubeconfig for the controller binary.
    pub identity: kube_sim::Identity,
    pub metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    pub async fn start(test: &str, tc: kube_sim::TestCluster) -> Option<Env> {
        let sw = super::seaweed(test)?;
        let client = tc.client().await.expect("client");
        let home = tc.namespace("kflite").await.expect("the controller's namespace");
        let identity = tc
            .controller_identity("pipeline-artifacts", &home)
            .await
            .expect("controller identity");
        let controller = identity.client().await.expect("controller client");
        Some(Env {
            sw,
            tc,
            client,
            controller,
            identity,
            metrics: Arc::new(Metrics::default()),
            stop: None,
            task: None,
        })
    }

    /// kube-sim's fault injection; None (with a loud skip) on a real cluster.
    pub fn sim(&self, test: &str) -> Option<&kube_sim::Handle> {
        let sim = self.tc.sim();
        if sim.is_none() {
            testkit::skip(
                test,
                "needs kube-sim's fault injection; not available on a real cluster",
            );
        }
        sim
    }

    /// A reconcile context; `fault` makes IAM responses fail after SeaweedFS acted.
    pub fn context(&self, settings: Settings, fault: Option<FailAfterSend>) -> Context {
        let mut iam = iam_config(&self.sw.endpoints, &self.sw.admin);
        if let Some(f) = fault {
            iam = iam.interceptor(f);
        }
        let mut store = SeaweedStore::from_configs(
            &self.sw.endpoints,
            iam,
            s3_config(&self.sw.endpoints, &self.sw.admin),
            &self.sw.bucket,
        );
        store.admin_key_id = Some(self.sw.admin.access_key_id.clone());
        Context {
            client: self.controller.clone(),
            store,
            settings,
            delete_artifacts: false,
            metrics: self.metrics.clone(),
            instance: "test".into(),
        }
    }

    /// A reconcile context whose IAM endpoint is a port nothing listens on (S3 works).
    pub fn context_without_iam(&self, settings: Settings) -> Context {
        let mut broken = self.sw.endpoints.clone();
        broken.iam = format!(
            "http://127.0.0.1:{}",
            testsvc::seaweedfs::free_tcp_port().expect("a free port")
        );
        let mut ctx = self.context(settings, None);
        ctx.store = SeaweedStore::new(&broken, &self.sw.admin, &self.sw.bucket);
        ctx
    }

    /// Runs the controller with `ctx` until [`Env::stop`].
    pub fn run(&mut self, ctx: Context) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(pipeline_artifacts::controller::run(ctx, async move {
            let _ = rx.await;
        }));
        self.stop = Some(tx);
        self.task = Some(task);
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(30), task).await.is_err()
        {
            panic!("controller did not stop within 30s of the shutdown signal");
        }
    }

    /// Aborts the controller mid-flight, as a killed pod would stop.
    pub async fn kill(&mut self) {
        self.stop = None;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn create_namespace(&self, name: &str, labelled: bool) {
        let labels = if labelled {
            json!({ENABLED_LABEL: "true"})
        } else {
            json!({})
        };
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("namespace");
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }

    pub async fn patch_namespace(&self, name: &str, patch: serde_json::Value) {
        Api::<Namespace>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch namespace");
    }

    pub async fn namespace(&self, name: &str) -> Option<Namespace> {
        Api::<Namespace>::all(self.client.clone())
            .get_opt(name)
            .await
            .expect("get namespace")
    }

    pub async fn secret(&self, ns: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(SECRET_NAME)
            .await
            .expect("get secret")
    }

    pub async fn secret_creds(&self, ns: &str) -> Option<Credentials> {
        let s = self.secret(ns).await?;
        secret_credentials(&serde_json::to_value(&s).ok()?)
    }

    pub async fn keys(&self, ns: &str) -> Vec<String> {
        self.sw.store().list_keys(ns).await.expect("list keys")
    }

    /// Waits until the namespace has exactly one key and it is the Secret's; returns it.
    pub async fn converged(&self, ns: &str) -> Credentials {
        let mut last = (None, Vec::new());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let creds = self.secret_creds(ns).await;
            let keys = self.keys(ns).await;
            if let Some(c) = &creds
                && keys == [c.access_key_id.clone()]
                && self.cm_count(ns).await == 3
            {
                return c.clone();
            }
            last = (creds.map(|c| c.access_key_id), keys);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "namespace {ns} did not converge in 60s: secret key {:?}, SeaweedFS keys {:?}",
            last.0, last.1
        );
    }

    /// Events recorded in namespace `ns`.
    pub async fn events(&self, ns: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
        Api::namespaced(self.client.clone(), ns)
            .list(&Default::default())
            .await
            .expect("list events")
            .items
    }

    /// Waits for an Event with `reason` in namespace `ns`; returns its message.
    pub async fn event(&self, ns: &str, reason: &str) -> String {
        wait_for(&format!("a {reason} Event in {ns}"), 30, || async {
            self.events(ns)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
                .map(|e| e.note.unwrap_or_default())
        })
        .await
    }

    /// The namespace's finalizers (empty when it is gone).
    pub async fn finalizers(&self, ns: &str) -> Vec<String> {
        self.namespace(ns)
            .await
            .and_then(|n| n.metadata.finalizers)
            .unwrap_or_default()
    }

    pub async fn cm_count(&self, ns: &str) -> usize {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let mut n = 0;
        for name in ["kfp-launcher", "metadata-grpc-configmap", "artifact-repositories"] {
            if api.get_opt(name).await.expect("get configmap").is_some() {
                n += 1;
            }
        }
        n
    }
}

/// Polls `check` every 200ms until it yields a value, or panics after `secs` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
