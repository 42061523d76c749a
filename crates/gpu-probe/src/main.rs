//! `gpu-probe`: the command-line face of the gpu-probe library.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gpu_probe::{ProbeOptions, Report, SmArch};

#[derive(Parser)]
#[command(
    name = "gpu-probe",
    version,
    about = "Will CUDA really work on this GPU? Checks driver, devices, kernels, launch, VRAM."
)]
struct Cli {
    /// Print the report as JSON (schema gpu-probe/v1, see docs/gpu-probe.md).
    #[arg(long, global = true)]
    json: bool,
    /// Exit 2 when a check warns (exit 1 on failure either way).
    #[arg(long, global = true)]
    strict: bool,
    /// Judge kernels against this architecture (sm_120, 12.0) instead of the GPU's.
    #[arg(long, global = true, env = "GPU_PROBE_ARCH")]
    arch: Option<SmArch>,
    /// Look for the driver libraries under this root, e.g. /host for a debug
    /// pod that mounts the node's filesystem there.
    #[arg(long, global = true, default_value = "/")]
    root: PathBuf,
    /// Use this NVML library instead of searching for libnvidia-ml.
    #[arg(long, global = true, env = "GPU_PROBE_NVML")]
    nvml: Option<PathBuf>,
    /// Use this CUDA driver library instead of searching for libcuda.so.1.
    #[arg(long, global = true, env = "GPU_PROBE_LIBCUDA")]
    libcuda: Option<PathBuf>,
    /// Also look for torch in this site-packages directory (repeatable).
    #[arg(long = "site-packages", global = true)]
    site_packages: Vec<PathBuf>,
    /// Python whose sys.path is searched for torch (torch is never imported).
    #[arg(long, global = true, default_value = "python3")]
    python: PathBuf,
    /// Skip the launch test.
    #[arg(long)]
    no_launch: bool,
    /// During the launch test, also hand up to N fatbin containers per library
    /// to the driver, to confirm the kernels verdict on the real GPU.
    #[arg(long, default_value_t = 0)]
    load_images: usize,
    /// Warn when more than this share of a GPU's memory is in use.
    #[arg(long, default_value_t = 0.8)]
    vram_warn: f64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Which GPU code CUDA libraries or executables ship, and whether it runs here.
    Kernels {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check Pod/Notebook/Deployment specs that ask for nvidia.com/gpu.
    LintPod {
        /// A YAML file, or - for standard input.
        file: String,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 }; // 2 means "warnings" here
            let _ = e.print();
            std::process::exit(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(report) => {
            if cli.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("gpu-probe: cannot encode the report: {e}");
                        std::process::exit(1);
                    }
                }
            } else {
                print!("{}", report.to_table());
            }
            std::process::exit(report.exit_code(cli.strict));
        }
        Err(e) => {
            eprintln!("gpu-probe: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: &Cli) -> Result<Report> {
    let mut opts = ProbeOptions::default();
    opts.env.root = cli.root.clone();
    opts.env.nvml_path = cli.nvml.clone();
    opts.env.cuda_path = cli.libcuda.clone();
    opts.arch = cli.arch;
    opts.site_packages = cli.site_packages.clone();
    opts.python = Some(cli.python.clone());
    opts.launch = !cli.no_launch;
    opts.load_images = cli.load_images;
    if !(0.0..=1.0).contains(&cli.vram_warn) {
        anyhow::bail!(
            "--vram-warn must be a share between 0 and 1, got {}",
            cli.vram_warn
        );
    }
    opts.vram_warn = cli.vram_warn;
    match &cli.command {
        None => Ok(gpu_probe::run_all(&opts)),
        Some(Command::Kernels { files }) => {
            opts.libraries = files.clone();
            Ok(gpu_probe::run_kernels(&opts))
        }
        Some(Command::LintPod { file }) => {
            let (name, text) = if file == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the spec from standard input")?;
                ("<stdin>".to_string(), s)
            } else {
                let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
                (file.clone(), text)
            };
            Ok(gpu_probe::run_lint(&name, &text))
        }
    }
}
