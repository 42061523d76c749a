//! `cargo xtask bench routes`: the route-controller binary against kube-sim.
//!
//! 2,000 Notebooks + 500 Tensorboards + 500 PVCViewers over 300 namespaces.
//! Prints time to full convergence from cold, event→route latency (p50/p99)
//! under a steady 50 changes/s, and the controller's peak RSS.
//!
//! Usage: bench_routes --controller PATH [--changes N] [--rate PER_SEC]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use kfmodel::Notebook;
use kfmodel::gateway::HttpRoute;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

const NAMESPACES: usize = 300;
const NOTEBOOKS: usize = 2000;
const TENSORBOARDS: usize = 500;
const PVCVIEWERS: usize = 500;

struct Args {
    controller: String,
    changes: usize,
    rate: f64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        controller: String::new(),
        changes: 500,
        rate: 50.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--controller" => a.controller = value()?,
            "--changes" => a.changes = value()?.parse()?,
            "--rate" => a.rate = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if a.controller.is_empty() {
        bail!("--controller PATH (the release route-controller binary) is required");
    }
    Ok(a)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "../tests/common/scale.rs"]
mod scale;

const SCALE: scale::Scale = scale::Scale {
    notebooks: NOTEBOOKS,
    tensorboards: TENSORBOARDS,
    pvcviewers: PVCVIEWERS,
};

async fn populate(client: &Client) -> Result<()> {
    scale::install_crds(client, &[]).await?;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("team-{i}")).collect();
    for ns in std::iter::once("kubeflow").chain(names.iter().map(String::as_str)) {
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    }
    scale::populate(client, &names, SCALE).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let sim = kube_sim::Server::start(kube_sim::Config {
        history_limit: 200_000,
        ..Default::default()
    })?;
    let client = sim.client()?;
    let t = Instant::now();
    populate(&client).await?;
    eprintln!(
        "populated {} objects in {NAMESPACES} namespaces in {:.1?}",
        SCALE.total(),
        t.elapsed()
    );

    // Watch routes from now on: creation times by name.
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), "kubeflow");
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let routes = routes.clone();
        tokio::spawn(async move {
            let mut stream = watcher(routes, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(Ok(route)) = stream.next().await {
                seen.lock()
                    .unwrap()
                    .entry(route.name_any())
                    .or_insert_with(Instant::now);
            }
        })
    };

    let started = Instant::now();
    let child = Command::new(&args.controller)
        .args([
            "--gateway-name",
            "homelab-gateway",
            "--gateway-namespace",
            "kube-system",
        ])
        .args([
            "--hostname",
            "kubeflow.example",
            "--metrics-addr",
            "127.0.0.1:0",
            "--no-leader-election",
        ])
        .env("KUBECONFIG", sim.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.controller))?;
    let controller = Guard(child);
    let pid = controller.0.id();
    let total = SCALE.total();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if seen.lock().unwrap().len() >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "no convergence within 120 s: {} of {total} routes",
                seen.lock().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let convergence = started.elapsed();
    let listed = routes.list(&ListParams::default()).await?.items.len();

    // Steady changes: new notebooks at `rate`/s; latency = create acknowledged → route seen.
    let spec = scale::notebook_spec();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut sent: Vec<(String, Instant)> = Vec::with_capacity(args.changes);
    let mut tick = tokio::time::interval(interval);
    for i in 0..args.changes {
        tick.tick().await;
        let ns = format!("team-{}", i % NAMESPACES);
        let name = format!("live-{i}");
        let at = Instant::now();
        Api::<Notebook>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &Notebook::new(&name, spec.clone()))
            .await?;
        sent.push((kfmodel::naming::route_name("Notebook", &ns, &name), at));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut latencies = loop {
        let map = seen.lock().unwrap();
        let lat: Vec<Duration> = sent
            .iter()
            .filter_map(|(n, at)| map.get(n).map(|s| s.saturating_duration_since(*at)))
            .collect();
        if lat.len() == sent.len() || Instant::now() > deadline {
            break lat;
        }
        drop(map);
        std::thread::sleep(Duration::from_millis(20));
    };
    latencies.sort();
    let rss_mib = peak_rss_kib(pid).map(|k| k as f64 / 1024.0);
    watch.abort();
    drop(controller);

    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    println!("objects: {total} in {NAMESPACES} namespaces; routes listed after convergence: {listed}");
    println!(
        "convergence from cold: {:.2} s (target < 10 s)",
        convergence.as_secs_f64()
    );
    println!(
        "event->route latency at {:.0} changes/s over {} changes: p50 {:.1} ms, p99 {:.1} ms (target p99 < 100 ms); routed {}/{}",
        args.rate,
        sent.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.len(),
        sent.len()
    );
    match rss_mib {
        Some(m) => println!("controller peak RSS: {m:.1} MiB (target < 40 MiB)"),
        None => println!("controller peak RSS: unavailable (no /proc)"),
    }
    let ok = convergence < Duration::from_secs(10)
        && p99 < Duration::from_millis(100)
        && latencies.len() == sent.len()
        && rss_mib.is_some_and(|m| m < 40.0);
    println!("targets: {}", if ok { "met" } else { "NOT met" });
    Ok(())
}
