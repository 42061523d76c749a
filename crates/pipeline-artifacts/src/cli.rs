//! The binary's flags (and their environment variables) and what they turn
//! into: [`Settings`], a [`SeaweedStore`], gc options. `main.rs` only wires.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kflite_runtime::logging::LogFormat;

use crate::secret::SecretString;
use crate::settings::{
    Settings, parse_flag, parse_grace_seconds, parse_namespace_list, parse_retention_days,
};
use crate::store::{Endpoints, SeaweedStore};
use crate::{admin, gc};

/// Logs unless `RUST_LOG` says otherwise.
pub const DEFAULT_LOG_FILTER: &str = "info,kube=warn,aws=warn,hyper=warn";

#[derive(Parser)]
#[command(
    version,
    about = "Per-namespace SeaweedFS credentials and Kubeflow Pipelines artifact config"
)]
pub struct Cli {
    /// Log format: json (default) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the Namespace controller (replaces metacontroller and its hook).
    Run(RunArgs),
    /// Serve metacontroller's DecoratorController webhook (POST /sync), for migration.
    Hook(Common),
    /// Delete artifacts and logs of runs gone from KFP's database (or archived).
    Gc(GcArgs),
}

#[derive(Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// KFP database, mysql://USER[:PASSWORD]@HOST:3306/mlpipeline (prefer DB_URL + DB_PASSWORD to argv).
    #[arg(long, env = "DB_URL", hide_env_values = true, value_parser = parse_secret)]
    pub db_url: SecretString,
    /// KFP's MLMD database (metadb), to attribute Argo logs of deleted runs; else they are kept.
    #[arg(long, env = "MLMD_DB_URL", hide_env_values = true, value_parser = parse_secret)]
    pub mlmd_db_url: Option<SecretString>,
    /// Plan and report only; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Grace period: keep runs with objects modified (or, archived, finished) more recently.
    #[arg(long, env = "GC_OLDER_THAN", default_value = "7d", value_parser = parse_duration)]
    pub older_than: Duration,
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Also delete objects of archived runs (finished before the grace period).
    #[arg(long, env = "GC_INCLUDE_ARCHIVED")]
    pub include_archived: bool,
    /// Report format: table or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    /// Controller mode: run a cycle every INTERVAL (e.g. 6h) and serve /metrics.
    #[arg(long, env = "GC_EVERY", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Address for /healthz, /readyz and /metrics with --every.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Delete even when run_details is empty or the plan exceeds --max-delete-share.
    #[arg(long)]
    pub force: bool,
    /// Largest share (0..1) of the listed objects one cycle may delete without --force.
    #[arg(long, env = "GC_MAX_DELETE_SHARE", default_value_t = gc::safety::DEFAULT_MAX_DELETE_SHARE)]
    pub max_delete_share: f64,
    /// Test aid: pause this long before each delete, so a test can kill gc midway.
    #[arg(long, hide = true, env = "KFLITE_GC_DELETE_DELAY_MS", default_value = "0")]
    pub delete_delay_ms: u64,
}

pub fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(raw))
}

pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    gc::parse_duration(raw).map_err(|e| e.to_string())
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Also delete a namespace's artifacts when it is deleted or unlabelled.
    #[arg(long, env = "DELETE_ARTIFACTS")]
    pub delete_artifacts: bool,
    /// Reporting instance for Events (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "pipeline-artifacts")]
    pub pod_name: String,
}

/// Where SeaweedFS is and who we are there.
#[derive(Args)]
pub struct Connection {
    /// SeaweedFS IAM API.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://seaweedfs.kubeflow:8111"
    )]
    pub iam_endpoint: String,
    /// SeaweedFS S3 API.
    #[arg(
        long,
        env = "S3_ENDPOINT_URL",
        default_value = "http://seaweedfs.kubeflow:8333"
    )]
    s3_endpoint: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    #[arg(long, env = "S3_BUCKET", default_value = "mlpipeline")]
    pub bucket: String,
    /// Admin credentials Secret NAMESPACE/NAME (keys accesskey, secretkey); else the AWS_* variables.
    #[arg(long, env = "ADMIN_SECRET")]
    pub admin_secret: Option<String>,
}

#[derive(Args)]
pub struct Common {
    #[command(flatten)]
    pub conn: Connection,
    /// Namespaces with this label set to "true" get credentials and config.
    #[arg(long, env = "ENABLED_LABEL", default_value = crate::settings::ENABLED_LABEL)]
    pub enabled_label: String,
    #[arg(long, env = "FRONTEND_IMAGE", default_value = "ghcr.io/kubeflow/kfp-frontend")]
    pub frontend_image: String,
    /// Artifact proxy image tag; defaults to KFP_VERSION, as upstream.
    #[arg(long, env = "FRONTEND_TAG")]
    pub frontend_tag: Option<String>,
    #[arg(long, env = "KFP_VERSION")]
    pub kfp_version: Option<String>,
    #[arg(long, env = "DISABLE_ISTIO_SIDECAR", default_value = "false")]
    pub disable_istio_sidecar: String,
    #[arg(long, env = "ARTIFACTS_PROXY_ENABLED", default_value = "false")]
    pub artifacts_proxy_enabled: String,
    /// Days before private-artifacts/ objects expire; <= 0 removes the rule.
    #[arg(
        long,
        env = "ARTIFACT_RETENTION_DAYS",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    pub artifact_retention_days: String,
    /// Where Argo writes logs (artifact-repositories ConfigMap).
    #[arg(long, env = "ARGO_S3_ENDPOINT", default_value = "minio-service.kubeflow:9000")]
    argo_s3_endpoint: String,
    #[arg(
        long,
        env = "METADATA_GRPC_SERVICE_HOST",
        default_value = "metadata-grpc-service.kubeflow"
    )]
    pub metadata_grpc_host: String,
    #[arg(long, env = "METADATA_GRPC_SERVICE_PORT", default_value = "8080")]
    pub metadata_grpc_port: String,
    /// Address for /sync (hook), /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Seconds a rotated-out access key keeps working.
    #[arg(long, env = "ROTATION_GRACE_SECONDS", default_value = "86400")]
    pub rotation_grace_seconds: String,
    /// Namespaces never provisioned or cleaned up (comma-separated), besides
    /// this pod's own and ADMIN_SECRET's.
    #[arg(long, env = "PROTECTED_NAMESPACES", default_value = "kubeflow")]
    pub protected_namespaces: String,
    /// SeaweedFS IAM user of the admin identity; a namespace of that name is refused.
    #[arg(long, env = "ADMIN_USER", default_value = "kubeflow-admin")]
    pub admin_user: String,
    /// The namespace this pod runs in (downward API); always protected.
    #[arg(long, env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
}

impl Common {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let frontend_tag = self
            .frontend_tag
            .clone()
            .or_else(|| self.kfp_version.clone())
            .context("set FRONTEND_TAG or KFP_VERSION (the artifact proxy image tag)")?;
        let mut settings = Settings {
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
            rotation_grace: parse_grace_seconds(&self.rotation_grace_seconds).map_err(anyhow::Error::msg)?,
            protected_namespaces: parse_namespace_list(&self.protected_namespaces),
            admin_user: self.admin_user.clone(),
        };
        if let Some(ns) = &self.pod_namespace {
            settings.protect(ns);
        }
        if let Some((ns, _)) = self.conn.admin_secret.as_deref().and_then(|r| r.split_once('/')) {
            settings.protect(ns);
        }
        Ok(settings)
    }
}

impl Connection {
    pub async fn store(&self, client: Option<kube::Client>) -> anyhow::Result<SeaweedStore> {
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

impl GcArgs {
    /// gc's options from the flags.
    pub fn options(&self) -> gc::GcOptions {
        gc::GcOptions {
            older_than: self.older_than,
            namespace: self.namespace.clone(),
            include_archived: self.include_archived,
            dry_run: self.dry_run,
            delete_delay: Duration::from_millis(self.delete_delay_ms),
            force: self.force,
            max_delete_share: self.max_delete_share,
        }
    }

    /// One cycle, its report printed as `--output` asks; Err when any deletion failed.
    pub async fn run_once(
        &self,
        config: gc::DbConfig,
        store: SeaweedStore,
        opts: gc::GcOptions,
    ) -> anyhow::Result<()> {
        let db = config.open().await?;
        let report = gc::run_once(&db, &store, &opts, None).await?;
        db.close().await;
        match self.output.as_str() {
            "json" => println!("{}", report.to_json()),
            _ => print!("{}", report.to_table()),
        }
        let errors = report.errors.len();
        anyhow::ensure!(errors == 0, "gc finished with {errors} error(s)");
        Ok(())
    }

    /// The databases to read; DB_PASSWORD is read here so clap never holds or prints it.
    pub fn db_config(&self) -> gc::DbConfig {
        let password = std::env::var("DB_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(SecretString::new);
        gc::DbConfig {
            url: self.db_url.clone(),
            mlmd_url: self.mlmd_db_url.clone(),
            password,
        }
    }
}
