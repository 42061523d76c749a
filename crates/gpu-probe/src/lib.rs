//! gpu-probe: tells a notebook user, before they lose an hour, whether CUDA
//! will really work on this GPU — and why not.
//!
//! Six checks, each a [`Check`] with a status (ok/warn/fail/skip), one line
//! of reason and the fix:
//! 1. `driver` — NVML reachable ([`driver::probe_driver`]); the diagnosis when
//!    the pod runs without the NVIDIA container runtime.
//! 2. `devices` — GPUs, compute capability, memory, processes.
//! 3. `kernels:<lib>` — which SASS/PTX a CUDA library ships, read from its
//!    `.nv_fatbin` ([`kernels`], [`fatbin`]), against the device.
//! 4. `launch` — a real kernel launched through libcuda ([`launch`]).
//! 5. `vram` — memory in use against total ([`driver::vram_check`]).
//! 6. `lint` — a Pod/Notebook/Deployment spec asking for a GPU ([`lint`]).
//!
//! [`run_all`], [`run_kernels`] and [`run_lint`] assemble a [`Report`]; its
//! JSON form is documented in docs/gpu-probe.md.

pub mod arch;
pub mod driver;
pub mod fatbin;
pub mod kernels;
pub mod launch;
pub mod lint;
pub mod report;

use std::path::PathBuf;

pub use arch::SmArch;
pub use driver::ProbeEnv;
pub use report::{Check, Report, SCHEMA_VERSION, Status};

/// What [`run_all`] looks at and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub env: ProbeEnv,
    /// Judge kernels against this architecture instead of the GPU's.
    pub arch: Option<SmArch>,
    /// Libraries to check instead of PyTorch's (`kernels` mode, or explicit).
    pub libraries: Vec<PathBuf>,
    /// Extra site-packages directories to look for torch in (searched first).
    pub site_packages: Vec<PathBuf>,
    /// Python whose `sys.path` is searched for torch (torch is not imported).
    pub python: Option<PathBuf>,
    /// Run the launch test (check 4).
    pub launch: bool,
    /// Fatbin containers per library handed to the driver during the launch
    /// test (0: none), to confirm check 3 on the real GPU.
    pub load_images: usize,
    /// Warn when more than this share (0..1) of a GPU's memory is in use.
    pub vram_warn: f64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            env: ProbeEnv::from_process(),
            arch: None,
            libraries: Vec::new(),
            site_packages: Vec::new(),
            python: Some(PathBuf::from("python3")),
            launch: true,
            load_images: 0,
            vram_warn: 0.8,
        }
    }
}

/// Scan libraries (the given ones, else PyTorch's) and add their checks.
fn kernel_checks(
    opts: &ProbeOptions,
    device: Option<SmArch>,
    driver_cuda: Option<(u32, u32)>,
    report: &mut Report,
) {
    let explicit = !opts.libraries.is_empty();
    let libs: Vec<kernels::LibraryKernels> = if explicit {
        opts.libraries
            .iter()
            .map(|p| kernels::scan_library(p, device))
            .collect()
    } else {
        let dirs = kernels::site_packages_dirs(&opts.site_packages, opts.python.as_deref());
        let Some((torch_lib, files)) = kernels::find_torch_libs(&dirs) else {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            report.push(Check::skip(
                "kernels",
                format!(
                    "no PyTorch found (searched {}); pass libraries with `gpu-probe kernels FILE...`",
                    searched.join(", ")
                ),
            ));
            return;
        };
        let scanned: Vec<_> = files.iter().map(|p| kernels::scan_library(p, device)).collect();
        let with_kernels: Vec<_> = scanned
            .into_iter()
            .filter(|l| l.summary.containers > 0 || l.error.is_some())
            .collect();
        if with_kernels.is_empty() {
            report.push(Check::fail(
                "kernels",
                format!("PyTorch in {} has no CUDA kernels: a CPU-only build", torch_lib.display()),
                "install a CUDA build of PyTorch (for sm_120: pip install torch --index-url https://download.pytorch.org/whl/cu128)",
            ));
            return;
        }
        with_kernels
    };
    for lib in &libs {
        report.push(kernels::library_check(lib, driver_cuda));
    }
    report.libraries = libs;
}

/// All checks (the default `gpu-probe` run).
pub fn run_all(opts: &ProbeOptions) -> Report {
    let mut report = Report::new();
    let probe = driver::probe_driver(&opts.env);
    for c in &probe.checks {
        report.push(c.clone());
    }
    let mut device = opts.arch.or_else(|| probe.info.devices.first().map(|d| d.arch));
    // Without NVML (e.g. Jetson) the CUDA driver can still name the device.
    let mut early_launch = None;
    if device.is_none() && opts.launch {
        let result = launch::launch_test(&opts.env, &[]);
        device = result.device_arch;
        early_launch = Some(result);
    }
    kernel_checks(opts, device, probe.info.cuda_version(), &mut report);
    if let Some(result) = early_launch.filter(|_| opts.load_images == 0) {
        report.push(launch::launch_check(&result, probe.available));
        report.launch = Some(result);
    } else if opts.launch {
        let images: Vec<launch::ImageProbe> = if opts.load_images == 0 {
            Vec::new()
        } else {
            report
                .libraries
                .iter()
                .flat_map(|l| {
                    launch::representative_images(&l.path, l.fatbin_offset, &l.containers, opts.load_images)
                })
                .collect()
        };
        let result = launch::launch_test(&opts.env, &images);
        report.push(launch::launch_check(&result, probe.available));
        report.launch = Some(result);
    } else {
        report.push(Check::skip("launch", "not run (--no-launch)"));
    }
    report.push(driver::vram_check(&probe.info.devices, opts.vram_warn));
    report.driver = Some(probe.info);
    report
}

/// Check 3 alone, on the given files (`gpu-probe kernels FILE...`). The
/// device is `opts.arch`, else the first GPU NVML shows, else unknown.
pub fn run_kernels(opts: &ProbeOptions) -> Report {
    let mut report = Report::new();
    let (device, driver_cuda) = match opts.arch {
        Some(a) => (Some(a), None),
        None => {
            let probe = driver::probe_driver(&opts.env);
            (
                probe.info.devices.first().map(|d| d.arch),
                probe.info.cuda_version(),
            )
        }
    };
    kernel_checks(opts, device, driver_cuda, &mut report);
    report
}

/// Check 6 on one YAML input (`gpu-probe lint-pod FILE|-`); `name` labels it.
pub fn run_lint(name: &str, text: &str) -> Report {
    let mut report = Report::new();
    match lint::lint_yaml(name, text) {
        Ok(findings) if findings.is_empty() => {
            report.push(Check::ok(
                "lint",
                format!("{name}: no workload asks for nvidia.com/gpu"),
            ));
        }
        Ok(findings) => findings.iter().for_each(|f| report.push(f.to_check())),
        Err(e) => report.push(Check::fail(
            "lint",
            e.to_string(),
            "pass Kubernetes objects as YAML (a file, or - for stdin)",
        )),
    }
    report
}
