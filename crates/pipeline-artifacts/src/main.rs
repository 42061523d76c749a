//! `pipeline-artifacts`: run the controller, serve metacontroller's hook, or collect garbage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pipeline_artifacts::metrics::Metrics;
use pipeline_artifacts::reconcile::Context;
use pipeline_artifacts::secret::SecretString;
use pipeline_artifacts::settings::{Settings, parse_flag, parse_retention_days};
use pipeline_artifacts::store::{Endpoints, SeaweedStore};
use pipeline_artifacts::{admin, controller, gc, hook};

#[derive(Parser)]
#[command(
    version,
    about = "Per-namespace SeaweedFS credentials and Kubeflow Pipelines artifact config"
)]
struct Cli {
    /// Log format: json (default) or text.
    #[arg(long, env = "LOG_FORMAT", default_value = "json", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Namespace controller (replaces metacontroller and its hook).
    Run(RunArgs),
    /// Serve metacontroller's DecoratorController webhook (POST /sync), for migration.
    Hook(Common),
    /// Delete artifacts and logs of runs gone from KFP's database (or archived).
    Gc(GcArgs),
}

#[derive(Args)]
struct GcArgs {
    #[command(flatten)]
    conn: Connection,
    /// KFP database, mysql://USER[:PASSWORD]@HOST:3306/mlpipeline (prefer DB_URL + DB_PASSWORD to argv).
    #[arg(long, env = "DB_URL", hide_env_values = true, value_parser = parse_secret)]
    db_url: SecretString,
    /// KFP's MLMD database (metadb), to attribute Argo logs of deleted runs; else they are kept.
    #[arg(long, env = "MLMD_DB_URL", hide_env_values = true, value_parser = parse_secret)]
    mlmd_db_url: Option<SecretString>,
    /// Plan and report only; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete even when run_details is empty or the plan exceeds --max-delete-share.
    #[arg(long)]
    force: bool,
    /// Largest share (0..1) of the listed objects one cycle may delete without --force.
    #[arg(long, env = "GC_MAX_DELETE_SHARE", default_value_t = gc::safety::DEFAULT_MAX_DELETE_SHARE)]
    max_delete_share: f64,
    /// Grace period: keep runs with objects modified (or, archived, finished) more recently.
    #[arg(long, env = "GC_OLDER_THAN", default_value = "7d", value_parser = parse_duration)]
    older_than: Duration,
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Also delete objects of archived runs (finished before the grace period).
    #[arg(long, env = "GC_INCLUDE_ARCHIVED")]
    include_archived: bool,
    /// Report format: table or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
    /// Controller mode: run a cycle every INTERVAL (e.g. 6h) and serve /metrics.
    #[arg(long, env = "GC_EVERY", value_parser = parse_duration)]
    every: Option<Duration>,
    /// Address for /healthz, /readyz and /metrics with --every.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Test aid: pause this long before each delete, so a test can kill gc midway.
    #[arg(long, hide = true, env = "KFLITE_GC_DELETE_DELAY_MS", default_value = "0")]
    delete_delay_ms: u64,
}

fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(raw))
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    gc::parse_duration(raw).map_err(|e| e.to_string())
}

async fn gc_main(args: GcArgs) -> anyhow::Result<()> {
    // Read directly so clap never holds or prints it.
    let password = std::env::var("DB_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretString::new);
    let store = args.conn.store(None).await?;
    let config = gc::DbConfig {
        url: args.db_url,
        mlmd_url: args.mlmd_db_url,
        password,
    };
    let opts = gc::GcOptions {
        older_than: args.older_than,
        namespace: args.namespace,
        include_archived: args.include_archived,
        dry_run: args.dry_run,
        delete_delay: Duration::from_millis(args.delete_delay_ms),
        force: args.force,
        max_delete_share: args.max_delete_share,
    };
    if let Some(every) = args.every {
        anyhow::ensure!(!every.is_zero(), "--every must be longer than 0s");
        let metrics = Arc::new(Metrics::default());
        let http = tokio::spawn(serve(
            args.listen,
            pipeline_artifacts::metrics::routes(metrics.clone()),
        ));
        gc::run_every(config, store, opts, every, metrics, shutdown_signal()).await;
        http.abort();
        return Ok(());
    }
    let db = config.open().await?;
    let report = gc::run_once(&db, &store, &opts, None).await?;
    db.close().await;
    if args.output == "json" {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    anyhow::ensure!(
        report.errors.is_empty(),
        "gc finished with {} error(s)",
        report.errors.len()
    );
    Ok(())
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Also delete a namespace's artifacts when it is deleted or unlabelled.
    #[arg(long, env = "DELETE_ARTIFACTS")]
    delete_artifacts: bool,
    /// Reporting instance for Events (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "pipeline-artifacts")]
    pod_name: String,
}

/// Where SeaweedFS is and who we are there.
#[derive(Args)]
struct Connection {
    /// SeaweedFS IAM API.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://seaweedfs.kubeflow:8111"
    )]
    iam_endpoint: String,
    /// SeaweedFS S3 API.
    #[arg(
        long,
        env = "S3_ENDPOINT_URL",
        default_value = "http://seaweedfs.kubeflow:8333"
    )]
    s3_endpoint: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    #[arg(long, env = "S3_BUCKET", default_value = "mlpipeline")]
    bucket: String,
    /// Admin credentials Secret NAMESPACE/NAME (keys accesskey, secretkey); else the AWS_* variables.
    #[arg(long, env = "ADMIN_SECRET")]
    admin_secret: Option<String>,
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    conn: Connection,
    /// Namespaces with this label set to "true" get credentials and config.
    #[arg(long, env = "ENABLED_LABEL", default_value = pipeline_artifacts::settings::ENABLED_LABEL)]
    enabled_label: String,
    #[arg(long, env = "FRONTEND_IMAGE", default_value = "ghcr.io/kubeflow/kfp-frontend")]
    frontend_image: String,
    /// Artifact proxy image tag; defaults to KFP_VERSION, as upstream.
    #[arg(long, env = "FRONTEND_TAG")]
    frontend_tag: Option<String>,
    #[arg(long, env = "KFP_VERSION")]
    kfp_version: Option<String>,
    #[arg(long, env = "DISABLE_ISTIO_SIDECAR", default_value = "false")]
    disable_istio_sidecar: String,
    #[arg(long, env = "ARTIFACTS_PROXY_ENABLED", default_value = "false")]
    artifacts_proxy_enabled: String,
    /// Days before private-artifacts/ objects expire; <= 0 removes the rule.
    #[arg(
        long,
        env = "ARTIFACT_RETENTION_DAYS",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    artifact_retention_days: String,
    /// Where Argo writes logs (artifact-repositories ConfigMap).
    #[arg(long, env = "ARGO_S3_ENDPOINT", default_value = "minio-service.kubeflow:9000")]
    argo_s3_endpoint: String,
    #[arg(
        long,
        env = "METADATA_GRPC_SERVICE_HOST",
        default_value = "metadata-grpc-service.kubeflow"
    )]
    metadata_grpc_host: String,
    #[arg(long, env = "METADATA_GRPC_SERVICE_PORT", default_value = "8080")]
    metadata_grpc_port: String,
    /// Address for /sync (hook), /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

impl Common {
    fn settings(&self) -> anyhow::Result<Settings> {
        let frontend_tag = self
            .frontend_tag
            .clone()
            .or_else(|| self.kfp_version.clone())
            .context("set FRONTEND_TAG or KFP_VERSION (the artifact proxy image tag)")?;
        Ok(Settings {
            enabled_label: self.enabled_label.clone(),
            bucket: self.conn.bucket.clone(),
            frontend_image: self.frontend_image.clone(),
            frontend_tag,
            disable_istio_sidecar: self.disable_istio_sidecar == "true",
            artifacts_proxy_enabled: parse_flag(&self.artifacts_proxy_enabled),
            artifact_retention_days: parse_retention_days(&self.artifact_retention_days)
                .map_err(anyhow::Error::msg)?,
            argo_s3_endpoint: self.argo_s3_endpoint.clone(),
            metadata_grpc_host: self.metadata_grpc_host.clone(),
            metadata_grpc_port: self.metadata_grpc_port.clone(),
            // ROTATION_GRACE_SECONDS, PROTECTED_NAMESPACES, ADMIN_USER: defaults until wired.
            ..Settings::default()
        })
    }
}

impl Connection {
    async fn store(&self, client: Option<kube::Client>) -> anyhow::Result<SeaweedStore> {
        let admin = match (&self.admin_secret, client) {
            (Some(reference), Some(client)) => admin::from_secret(client, reference).await?,
            (Some(reference), None) => {
                admin::from_secret(kube::Client::try_default().await?, reference).await?
            }
            // Read directly so clap never holds or prints the secret.
            (None, _) => admin::from_env_values(
                std::env::var("AWS_ACCESS_KEY_ID").ok(),
                std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
            )?,
        };
        let endpoints = Endpoints {
            iam: self.iam_endpoint.clone(),
            s3: self.s3_endpoint.clone(),
            region: self.region.clone(),
        };
        Ok(SeaweedStore::new(&endpoints, &admin, &self.bucket))
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,aws=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(listen: SocketAddr, router: axum::Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    match cli.command {
        Command::Run(args) => {
            let settings = args.common.settings()?;
            let client = kube::Client::try_default()
                .await
                .context("connecting to the Kubernetes API")?;
            let store = args.common.conn.store(Some(client.clone())).await?;
            let metrics = Arc::new(Metrics::default());
            let ctx = Context {
                client,
                store,
                settings,
                delete_artifacts: args.delete_artifacts,
                metrics: metrics.clone(),
                instance: args.pod_name,
            };
            let http = tokio::spawn(serve(
                args.common.listen,
                pipeline_artifacts::metrics::routes(metrics),
            ));
            controller::run(ctx, shutdown_signal()).await;
            http.abort();
            Ok(())
        }
        Command::Hook(common) => {
            let settings = common.settings()?;
            let store = common.conn.store(None).await?;
            let metrics = Arc::new(Metrics::default());
            let state = hook::HookState {
                settings,
                store,
                metrics: metrics.clone(),
                client: kube::Client::try_default().await?,
            };
            // The bucket and rule first, as the controller does; the hook then only reports.
            let prep = state.clone();
            tokio::spawn(async move {
                hook::prepare(&prep).await;
                prep.metrics.set_ready(true);
            });
            serve(common.listen, hook::router(state)).await
        }
        Command::Gc(args) => gc_main(args).await,
    }
}
