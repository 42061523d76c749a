//! The command line: clap definitions and [`run`], which the binary and the
//! tests share.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::Target;
use crate::doctor::{self, DoctorConfig};
use crate::notebook::{self, NotebookRequest};
use crate::output::{self, Format};
use crate::{Error, Result, profile, urls};

#[derive(Parser, Debug)]
#[command(
    name = "kfctl",
    version,
    about = "The kflite operator's CLI: apply, doctor, profiles, GPU notebooks, URLs, render, gpu"
)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's). For `profile add`: the profile's namespace.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Output format; JSON and YAML are documented in docs/kfctl.md.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub output: Format,
    /// Namespace of the HTTPRoutes (dashboard and route-controller's).
    #[arg(long, global = true, default_value = "kubeflow")]
    pub route_namespace: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every troubleshooting check; exit 1 if any fails.
    Doctor(DoctorArgs),
    /// Kubeflow Profiles (a user and their namespace).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Kubeflow Notebooks.
    #[command(subcommand)]
    Notebook(NotebookCommand),
    /// Print every URL the gateway routes.
    Urls,
    /// Render an overlay and server-side apply it: preflight, phases, ApplySet pruning.
    Apply(crate::apply::command::ApplyArgs),
    /// What `kfctl apply` would change, as `kubectl diff` prints it; changes nothing.
    Diff(crate::apply::command::ApplyArgs),
    /// Render a kustomization directory, byte for byte as kustomize v5.8.1.
    Render(RenderArgs),
    /// Will CUDA work here? gpu-probe's checks (driver, kernels, launch, VRAM).
    Gpu(GpuArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Name of the dashboard HTTPRoute in the route namespace.
    #[arg(long, default_value = "kubeflow-dashboard")]
    pub dashboard_route: String,
    /// route-controller's Deployment, NAMESPACE/NAME.
    #[arg(long, default_value = "kubeflow/route-controller")]
    pub route_controller: String,
    /// route-controller's leader-election Lease, in its Deployment's namespace.
    #[arg(long, default_value = "kflite-route-controller")]
    pub route_controller_lease: String,
    /// The artifact controller's Deployment, NAMESPACE/NAME.
    #[arg(long, default_value = "kubeflow/pipeline-artifacts")]
    pub artifact_controller: String,
    /// Name of the ReferenceGrant route-controller makes per namespace.
    #[arg(long, default_value = "allow-kubeflow-gateway")]
    pub reference_grant: String,
    /// Also check the KFP MySQL database: mysql://USER:PASSWORD@HOST:PORT/DB
    /// (from the environment keeps the password out of shell history).
    #[arg(long, env = "KFCTL_DB_URL", hide_env_values = true)]
    pub db_url: Option<String>,
    /// Seconds to wait for the database.
    #[arg(long, default_value_t = 5)]
    pub db_timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Create a Profile for EMAIL; its namespace is derived like Kubeflow's
    /// (user@example.com → kubeflow-user-example-com) unless -n/--namespace is given.
    Add {
        email: String,
        /// Print the Profile instead of creating it.
        #[arg(long)]
        dry_run: bool,
    },
    /// List Profiles, their owners and whether their namespaces exist.
    List,
}

#[derive(Subcommand, Debug)]
pub enum NotebookCommand {
    /// Create a Notebook in -n NAMESPACE.
    Create {
        name: String,
        /// One GPU, runtimeClassName nvidia and the GPU node selector.
        #[arg(long)]
        gpu: bool,
        /// Container image (default: Kubeflow v1.11.0's jupyter-pytorch-cuda-full with --gpu, jupyter-scipy without).
        #[arg(long)]
        image: Option<String>,
        /// CPU request.
        #[arg(long, default_value = "1")]
        cpu: String,
        /// Memory request and limit.
        #[arg(long, default_value = "4Gi")]
        memory: String,
        /// Also create a workspace PVC NAME-workspace of this size (e.g. 5Gi),
        /// mounted at /home/jovyan as jupyter-web-app does.
        #[arg(long, value_name = "SIZE")]
        workspace: Option<String>,
        /// Storage class of the workspace PVC (default: the cluster's).
        #[arg(long, requires = "workspace")]
        storage_class: Option<String>,
        /// Print the Notebook (and workspace PVC) instead of creating them.
        #[arg(long)]
        dry_run: bool,
    },
    /// List Notebooks with their URLs.
    List {
        /// All namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// The kustomization directory.
    pub dir: PathBuf,
    /// Mirror of remote bases in the ../shared/upstream layout.
    #[arg(long, env = "KFLITE_MIRROR")]
    pub mirror: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GpuArgs {
    /// Judge kernels against this architecture (e.g. sm_120) instead of the GPU's.
    #[arg(long)]
    pub arch: Option<gpu_probe::SmArch>,
    /// Skip the kernel launch test.
    #[arg(long)]
    pub no_launch: bool,
    #[command(subcommand)]
    pub command: Option<GpuCommand>,
}

#[derive(Subcommand, Debug)]
pub enum GpuCommand {
    /// Which GPU code CUDA libraries ship, and whether it runs on this GPU.
    Kernels {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check Pod/Notebook/Deployment YAML that asks for nvidia.com/gpu.
    Lint { file: PathBuf },
}

impl Cli {
    pub(crate) fn target(&self) -> Target {
        Target {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }

    fn print<T: serde::Serialize>(
        &self,
        out: &mut dyn Write,
        value: &T,
        table: impl FnOnce() -> String,
    ) -> Result<()> {
        let text = match self.output {
            Format::Table => table(),
            f => output::encode(value, f)?,
        };
        write_all(out, &text)
    }
}

fn write_all(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes()).map_err(|source| Error::Io {
        path: "<stdout>".into(),
        source,
    })
}

/// Run one command; returns the exit code (1: a check failed).
pub async fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32> {
    match &cli.command {
        Command::Doctor(args) => {
            let conn = cli.target().connect().await?;
            let config = DoctorConfig {
                route_namespace: cli.route_namespace.clone(),
                dashboard_route: args.dashboard_route.clone(),
                route_controller: args.route_controller.clone(),
                route_controller_lease: args.route_controller_lease.clone(),
                artifact_controller: args.artifact_controller.clone(),
                reference_grant: args.reference_grant.clone(),
                db_url: args.db_url.clone(),
                db_timeout: Duration::from_secs(args.db_timeout),
            };
            let report = doctor::run(&conn.client, &config).await?;
            cli.print(out, &report, || report.to_table())?;
            Ok(report.exit_code())
        }
        Command::Profile(ProfileCommand::Add { email, dry_run }) => {
            let object = profile::profile_object(email, cli.namespace.as_deref())?;
            if *dry_run {
                let format = if cli.output == Format::Table {
                    Format::Yaml
                } else {
                    cli.output
                };
                write_all(out, &output::encode(&object, format)?)?;
                return Ok(0);
            }
            let conn = cli.target().connect().await?;
            let created = profile::add(&conn.client, &object).await?;
            cli.print(out, &created, || {
                format!(
                    "profile {} created for {} (the profile controller makes namespace {0})\n",
                    created.metadata.name.as_deref().unwrap_or(""),
                    email.trim()
                )
            })?;
            Ok(0)
        }
        Command::Profile(ProfileCommand::List) => {
            let conn = cli.target().connect().await?;
            let rows = profile::list(&conn.client).await?;
            cli.print(out, &rows, || {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.owner.clone().unwrap_or_else(|| "-".into()),
                            if r.namespace_exists { "yes" } else { "no" }.into(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "OWNER", "NAMESPACE EXISTS"], &cells)
            })?;
            Ok(0)
        }
        Command::Notebook(NotebookCommand::Create {
            name,
            gpu,
            image,
            cpu,
            memory,
            workspace,
            storage_class,
            dry_run,
        }) => {
            // A dry run needs no cluster: without -n it uses the context's
            // namespace when a kubeconfig is at hand, else `default`.
            let conn = match (*dry_run, &cli.namespace) {
                (false, _) => Some(cli.target().connect().await?),
                (true, None) => cli.target().connect().await.ok(),
                (true, Some(_)) => None,
            };
            let namespace = cli
                .namespace
                .clone()
                .or_else(|| conn.as_ref().map(|c| c.namespace.clone()))
                .unwrap_or_else(|| "default".into());
            let request = NotebookRequest {
                name: name.clone(),
                namespace,
                image: image.clone(),
                gpu: *gpu,
                cpu: cpu.clone(),
                memory: memory.clone(),
                workspace: workspace.clone(),
                storage_class: storage_class.clone(),
            };
            for w in request.warnings() {
                let _ = writeln!(err, "warning: {w}\n  fix: {}", notebook::SM120_FIX);
            }
            if *dry_run {
                let format = if cli.output == Format::Table {
                    Format::Yaml
                } else {
                    cli.output
                };
                let mut text = output::encode(&request.object()?, format)?;
                if let Some(pvc) = request.workspace_object() {
                    // A YAML stream or a JSON array of both, as kubectl apply -f takes them.
                    text = match format {
                        Format::Json => output::encode(&[pvc, request.object()?], format)?,
                        _ => format!("{}---\n{text}", output::encode(&pvc, format)?),
                    };
                }
                write_all(out, &text)?;
                return Ok(0);
            }
            let Some(conn) = conn else { return Ok(0) };
            let created = notebook::create(&conn.client, &request).await?;
            cli.print(out, &created, || {
                format!(
                    "notebook {}/{} created ({}); its URL appears in `kfctl notebook list` once route-controller routes it\n",
                    request.namespace,
                    request.name,
                    if request.gpu { "1 GPU" } else { "no GPU" }
                )
            })?;
            Ok(0)
        }
        Command::Notebook(NotebookCommand::List { all_namespaces }) => {
            let conn = cli.target().connect().await?;
            let ns = (!*all_namespaces).then_some(conn.namespace.as_str());
            let rows = notebook::list(&conn.client, ns, &cli.route_namespace).await?;
            cli.print(out, &rows, || {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.namespace.clone(),
                            r.name.clone(),
                            r.gpus.to_string(),
                            if r.ready { "yes" } else { "no" }.into(),
                            r.url.clone().unwrap_or_else(|| "<no route>".into()),
                        ]
                    })
                    .collect();
                output::table(&["NAMESPACE", "NAME", "GPUS", "READY", "URL"], &cells)
            })?;
            Ok(0)
        }
        Command::Urls => {
            let conn = cli.target().connect().await?;
            let rows = urls::list(&conn.client, &cli.route_namespace).await?;
            cli.print(out, &rows, || {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| vec![r.url.clone(), r.route.clone(), r.backend.clone()])
                    .collect();
                output::table(&["URL", "ROUTE", "BACKEND"], &cells)
            })?;
            Ok(0)
        }
        Command::Apply(args) => crate::apply::command::run(cli, args, false, out, err).await,
        Command::Diff(args) => crate::apply::command::run(cli, args, true, out, err).await,
        Command::Render(args) => {
            let options = manifest_render::Options {
                mirror: args.mirror.clone(),
                ..Default::default()
            };
            let rendered = manifest_render::render(&args.dir, &options)?;
            for w in &rendered.warnings {
                let _ = writeln!(err, "{w}");
            }
            write_all(out, &rendered.yaml)?;
            Ok(0)
        }
        Command::Gpu(args) => {
            let mut opts = gpu_probe::ProbeOptions {
                arch: args.arch,
                launch: !args.no_launch,
                ..Default::default()
            };
            let report = match &args.command {
                None => gpu_probe::run_all(&opts),
                Some(GpuCommand::Kernels { files }) => {
                    opts.libraries = files.clone();
                    gpu_probe::run_kernels(&opts)
                }
                Some(GpuCommand::Lint { file }) => {
                    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
                        path: file.display().to_string(),
                        source,
                    })?;
                    gpu_probe::run_lint(&file.display().to_string(), &text)
                }
            };
            cli.print(out, &report, || report.to_table())?;
            Ok(report.exit_code(false))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "kfctl", &mut buf);
            out.write_all(&buf).map_err(|source| Error::Io {
                path: "<stdout>".into(),
                source,
            })?;
            Ok(0)
        }
    }
}
