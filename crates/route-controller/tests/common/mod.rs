//! What route-controller's integration tests share.
#![allow(dead_code)] // each test binary uses a different part

pub mod replica;
pub mod scale;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kfmodel::Notebook;
use kfmodel::gateway::HttpRoute;
use kfmodel::routes::{MANAGED_BY, MANAGED_BY_LABEL, SOURCE_NAMESPACE_LABEL};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};

/// How long a convergence may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Wait until the API server serves `K` (a CRD just installed).
pub async fn wait_until_served<K>(client: &Client)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for("CRDs served", || {
        let api: Api<K> = Api::all(client.clone());
        async move { api.list(&ListParams::default().limit(1)).await.is_ok() }
    })
    .await;
}

pub async fn route_names(client: &Client, route_ns: &str, source_ns: &str) -> BTreeSet<String> {
    let api: Api<HttpRoute> = Api::namespaced(client.clone(), route_ns);
    let lp = ListParams::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{SOURCE_NAMESPACE_LABEL}={source_ns}"
    ));
    api.list(&lp)
        .await
        .map(|l| l.items.iter().map(|r| r.name_any()).collect())
        .unwrap_or_default()
}

pub fn notebook(name: &str) -> Notebook {
    Notebook::new(name, scale::notebook_spec())
}

pub async fn create_notebook(client: &Client, ns: &str, name: &str) {
    let api: Api<Notebook> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &notebook(name))
        .await
        .expect("create notebook");
}
