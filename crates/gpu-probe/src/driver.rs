//! Checks 1, 2 and 5: is the NVIDIA driver reachable (NVML), which GPUs does
//! it show, and how full is their memory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use serde::{Deserialize, Serialize};

use crate::arch::SmArch;
use crate::report::Check;

/// Where Talos keeps the NVIDIA userspace libraries (glibc lives apart there).
pub const TALOS_LIB_DIR: &str = "/usr/local/glibc/usr/lib";

/// Directories searched for the driver's libraries, after `LD_LIBRARY_PATH`.
pub const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/local/nvidia/lib",
    TALOS_LIB_DIR,
    "/run/nvidia/driver/usr/lib/x86_64-linux-gnu",
    "/usr/lib/wsl/lib",
];

/// File names of NVML and the CUDA driver library.
pub const NVML_NAMES: &[&str] = &["libnvidia-ml.so.1", "libnvidia-ml.so"];
pub const CUDA_NAMES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// What the probe looks at in its environment; tests build their own.
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    /// Filesystem root the standard directories are taken under (`/` normally).
    pub root: PathBuf,
    /// `LD_LIBRARY_PATH`, searched first.
    pub ld_library_path: Option<String>,
    /// `NVIDIA_VISIBLE_DEVICES`: set by the device plugin when a GPU is assigned.
    pub visible_devices: Option<String>,
    /// An explicit NVML library (`--nvml PATH`), tried before any search.
    pub nvml_path: Option<PathBuf>,
    /// An explicit CUDA driver library (`--libcuda PATH`).
    pub cuda_path: Option<PathBuf>,
    /// When nothing is found on the paths, let the dynamic loader try its own
    /// search (ld.so.cache). Tests that fake a root turn this off.
    pub loader_fallback: bool,
}

impl ProbeEnv {
    /// The environment of this process.
    pub fn from_process() -> Self {
        ProbeEnv {
            root: PathBuf::from("/"),
            ld_library_path: std::env::var("LD_LIBRARY_PATH").ok(),
            visible_devices: std::env::var("NVIDIA_VISIBLE_DEVICES").ok(),
            nvml_path: None,
            cuda_path: None,
            loader_fallback: true,
        }
    }

    /// Only what lies under `root`: no `LD_LIBRARY_PATH`, no GPU assigned, no
    /// loader search. For inspecting a mounted filesystem, and for tests.
    pub fn under_root(root: impl Into<PathBuf>) -> Self {
        ProbeEnv {
            root: root.into(),
            ld_library_path: None,
            visible_devices: None,
            nvml_path: None,
            cuda_path: None,
            loader_fallback: false,
        }
    }

    /// A GPU was assigned by the runtime/device plugin (not `void`/`none`/empty).
    pub fn gpu_assigned(&self) -> bool {
        self.visible_devices
            .as_deref()
            .map(str::trim)
            .is_some_and(|v| !v.is_empty() && v != "void" && v != "none")
    }

    fn rooted(&self, dir: &str) -> PathBuf {
        self.root.join(dir.trim_start_matches('/'))
    }

    /// Directories to search, in order, without duplicates.
    pub fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(ld) = &self.ld_library_path {
            dirs.extend(ld.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
        }
        dirs.extend(LIB_DIRS.iter().map(|d| self.rooted(d)));
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        dirs
    }
}

/// Result of looking for a library on the search paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibSearch {
    pub found: Option<PathBuf>,
    /// Found in the Talos directory.
    pub talos: bool,
    pub searched: Vec<PathBuf>,
}

/// Look for the first of `names` in `explicit`, then each search directory.
pub fn locate_library(env: &ProbeEnv, explicit: Option<&Path>, names: &[&str]) -> LibSearch {
    let mut searched = Vec::new();
    let talos_dir = env.rooted(TALOS_LIB_DIR);
    let candidates = explicit.map(Path::to_path_buf).into_iter().chain(
        env.search_dirs()
            .into_iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n))),
    );
    for path in candidates {
        if path.is_file() {
            let talos = path.parent() == Some(talos_dir.as_path());
            return LibSearch {
                found: Some(path),
                talos,
                searched,
            };
        }
        searched.push(path);
    }
    LibSearch {
        found: None,
        talos: false,
        searched,
    }
}

/// A process using a GPU, as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// Bytes of GPU memory; absent when the driver does not say.
    pub used_memory: Option<u64>,
    /// `compute` or `graphics`.
    pub kind: String,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// e.g. `sm_120`.
    pub arch: SmArch,
    /// e.g. `12.0`.
    pub compute_capability: String,
    pub memory_total: u64,
    pub memory_used: u64,
    pub memory_free: u64,
    pub processes: Vec<GpuProcess>,
}

/// What the driver check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// Path of the NVML library that was loaded (or `"dynamic loader"`).
    pub nvml_library: Option<String>,
    /// NVML was found in Talos's `/usr/local/glibc/usr/lib`.
    pub talos_path: bool,
    /// Paths looked at before the library was found (all of them when it was not).
    pub searched: Vec<PathBuf>,
    pub visible_devices: Option<String>,
    /// e.g. `570.133.07`.
    pub driver_version: Option<String>,
    /// CUDA version the driver supports, e.g. `12.8`.
    pub cuda_driver_version: Option<String>,
    pub devices: Vec<DeviceInfo>,
}

impl DriverInfo {
    /// The driver's CUDA version as (major, minor).
    pub fn cuda_version(&self) -> Option<(u32, u32)> {
        let (a, b) = self.cuda_driver_version.as_deref()?.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

/// The outcome of probing the driver: facts plus the `driver` and `devices` checks.
#[derive(Debug, Clone)]
pub struct DriverProbe {
    pub info: DriverInfo,
    pub checks: Vec<Check>,
    /// NVML loaded and answered.
    pub available: bool,
}

const RUNTIME_FIX: &str = "set runtimeClassName: nvidia on the pod: only the NVIDIA container runtime hook injects \
     the driver libraries (on Talos they live under /usr/local/glibc/usr/lib on the host)";
const REQUEST_FIX: &str = "request a GPU: resources.limits nvidia.com/gpu: 1, runtimeClassName: nvidia, \
     nodeSelector nvidia.com/gpu.present: \"true\" (check with gpu-probe lint-pod)";

/// Why NVML is missing: the diagnosis behind "Found no NVIDIA driver on your system".
pub fn nvml_missing_check(env: &ProbeEnv, search: &LibSearch) -> Check {
    let n = search.searched.len();
    if env.gpu_assigned() {
        let v = env.visible_devices.as_deref().unwrap_or_default();
        Check::fail(
            "driver",
            format!(
                "NVIDIA_VISIBLE_DEVICES={v} is set but libnvidia-ml is nowhere ({n} paths searched): \
                 runs without the NVIDIA container runtime: set runtimeClassName: nvidia"
            ),
            RUNTIME_FIX,
        )
    } else {
        Check::fail(
            "driver",
            format!(
                "no NVIDIA driver: libnvidia-ml not found ({n} paths searched) and no GPU assigned (NVIDIA_VISIBLE_DEVICES unset)"
            ),
            REQUEST_FIX,
        )
    }
}

fn nvml_error_check(path: &str, err: &NvmlError) -> Check {
    match err {
        NvmlError::DriverNotLoaded => Check::fail(
            "driver",
            format!("{path} loaded, but the NVIDIA kernel module is not loaded on this node"),
            "load the nvidia kernel modules on the node (Talos: the nvidia-open-gpu-kernel-modules and \
             nvidia-container-toolkit extensions, plus machine.kernel.modules nvidia, nvidia_uvm, nvidia_drm, nvidia_modeset)",
        ),
        NvmlError::NoPermission => Check::fail(
            "driver",
            format!("{path} loaded, but NVML was denied access to the GPU device files"),
            "let the runtime mount /dev/nvidia*: runtimeClassName: nvidia and a nvidia.com/gpu request",
        ),
        other => Check::fail(
            "driver",
            format!("libnvidia-ml at {path} could not be used: {other}"),
            "the driver libraries in the container must match the node's kernel module: do not bake or hand-mount \
             libnvidia-ml; use runtimeClassName: nvidia so the runtime injects the node's own",
        ),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Checks 1 and 2: load NVML and list the devices.
pub fn probe_driver(env: &ProbeEnv) -> DriverProbe {
    let search = locate_library(env, env.nvml_path.as_deref(), NVML_NAMES);
    let mut info = DriverInfo {
        talos_path: search.talos,
        searched: search.searched.clone(),
        visible_devices: env.visible_devices.clone(),
        ..DriverInfo::default()
    };
    let (nvml, label) = match &search.found {
        Some(path) => (
            Nvml::builder().lib_path(path.as_os_str()).init(),
            path.display().to_string(),
        ),
        None if env.loader_fallback => (
            Nvml::builder().lib_path(OsStr::new(NVML_NAMES[0])).init(),
            "dynamic loader".to_string(),
        ),
        None => {
            let check = nvml_missing_check(env, &search);
            return DriverProbe {
                info,
                checks: vec![check, Check::skip("devices", "needs the driver")],
                available: false,
            };
        }
    };
    let nvml = match nvml {
        Ok(nvml) => nvml,
        Err(err) => {
            let not_loadable = matches!(err, NvmlError::LibloadingError(_));
            let check = if search.found.is_none() && not_loadable {
                nvml_missing_check(env, &search)
            } else {
                nvml_error_check(&label, &err)
            };
            return DriverProbe {
                info,
                checks: vec![check, Check::skip("devices", "needs the driver")],
                available: false,
            };
        }
    };
    info.nvml_library = Some(label.clone());
    info.driver_version = nvml.sys_driver_version().ok();
    info.cuda_driver_version = nvml
        .sys_cuda_driver_version()
        .ok()
        .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let talos = if search.talos { " (Talos path)" } else { "" };
    let driver = Check::ok(
        "driver",
        format!(
            "NVIDIA driver {} (CUDA {}) via {label}{talos}",
            info.driver_version.as_deref().unwrap_or("?"),
            info.cuda_driver_version.as_deref().unwrap_or("?")
        ),
    );
    let devices = match list_devices(&nvml) {
        Ok(devices) => devices,
        Err(err) => {
            let check = Check::fail(
                "devices",
                format!("NVML could not list the GPUs: {err}"),
                REQUEST_FIX,
            );
            return DriverProbe {
                info,
                checks: vec![driver, check],
                available: true,
            };
        }
    };
    let check = if devices.is_empty() {
        Check::fail("devices", "NVML sees no GPU in this container", REQUEST_FIX)
    } else {
        let list: Vec<String> = devices
            .iter()
            .map(|d| {
                format!(
                    "#{} {} {} ({}), {} total, {} used",
                    d.index,
                    d.name,
                    d.arch,
                    d.uuid,
                    gib(d.memory_total),
                    gib(d.memory_used)
                )
            })
            .collect();
        Check::ok("devices", list.join("; "))
    };
    info.devices = devices;
    DriverProbe {
        info,
        checks: vec![driver, check],
        available: true,
    }
}

fn list_devices(nvml: &Nvml) -> Result<Vec<DeviceInfo>, NvmlError> {
    let mut out = Vec::new();
    for index in 0..nvml.device_count()? {
        let dev = nvml.device_by_index(index)?;
        let cc = dev.cuda_compute_capability()?;
        let arch = SmArch::new(
            u32::try_from(cc.major).unwrap_or(0),
            u32::try_from(cc.minor).unwrap_or(0),
        );
        let mem = dev.memory_info()?;
        let mut processes = Vec::new();
        for (kind, list) in [
            ("compute", dev.running_compute_processes()),
            ("graphics", dev.running_graphics_processes()),
        ] {
            // Some drivers refuse process lists inside containers; memory totals still count.
            for p in list.unwrap_or_default() {
                let used_memory = match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                };
                processes.push(GpuProcess {
                    pid: p.pid,
                    used_memory,
                    kind: kind.to_string(),
                });
            }
        }
        out.push(DeviceInfo {
            index,
            name: dev.name()?,
            uuid: dev.uuid()?,
            arch,
            compute_capability: arch.capability(),
            memory_total: mem.total,
            memory_used: mem.used,
            memory_free: mem.free,
            processes,
        });
    }
    Ok(out)
}

/// Check 5: GPU memory in use against total; warn above `warn_share` (0..1).
///
/// Time-sliced GPUs share one VRAM with no isolation, so another pod's model
/// can leave too little for this one. In use = the larger of the device's
/// used memory and the sum over processes (process lists can be hidden).
pub fn vram_check(devices: &[DeviceInfo], warn_share: f64) -> Check {
    if devices.is_empty() {
        return Check::skip("vram", "no GPU to measure");
    }
    let mut worst: Option<(f64, String)> = None;
    let mut lines = Vec::new();
    for d in devices {
        let by_procs: u64 = d.processes.iter().filter_map(|p| p.used_memory).sum();
        let used = d.memory_used.max(by_procs);
        let share = if d.memory_total == 0 {
            0.0
        } else {
            used as f64 / d.memory_total as f64
        };
        let mut procs: Vec<&GpuProcess> = d.processes.iter().collect();
        procs.sort_by_key(|p| std::cmp::Reverse(p.used_memory.unwrap_or(0)));
        let top: Vec<String> = procs
            .iter()
            .take(3)
            .map(|p| {
                format!(
                    "pid {} {}",
                    p.pid,
                    p.used_memory.map(gib).unwrap_or_else(|| "?".into())
                )
            })
            .collect();
        let by = if top.is_empty() {
            String::new()
        } else {
            format!(" by {} process(es): {}", d.processes.len(), top.join(", "))
        };
        let line = format!(
            "#{} {} of {} in use ({:.0}%){by}",
            d.index,
            gib(used),
            gib(d.memory_total),
            share * 100.0
        );
        if share > warn_share && worst.as_ref().is_none_or(|(s, _)| share > *s) {
            worst = Some((share, line.clone()));
        }
        lines.push(line);
    }
    match worst {
        Some(_) => Check::warn(
            "vram",
            format!("{} — above {:.0}%", lines.join("; "), warn_share * 100.0),
            "the time-sliced GPU shares one VRAM with no isolation: stop or shrink another job (e.g. unload an \
             Ollama model: keep_alive 0), run big jobs one at a time, or cap this job's memory \
             (PYTORCH_CUDA_ALLOC_CONF, torch.cuda.set_per_process_memory_fraction)",
        ),
        None => Check::ok("vram", lines.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(total: u64, used: u64, procs: &[(u32, Option<u64>)]) -> DeviceInfo {
        DeviceInfo {
            index: 0,
            name: "NVIDIA GeForce RTX 5070 Ti".into(),
            uuid: "GPU-0".into(),
            arch: SmArch::new(12, 0),
            compute_capability: "12.0".into(),
            memory_total: total,
            memory_used: used,
            memory_free: total - used,
            processes: procs
                .iter()
                .map(|&(pid, used_memory)| GpuProcess {
                    pid,
                    used_memory,
                    kind: "compute".into(),
                })
                .collect(),
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn vram_warns_above_share_and_names_the_biggest_user() {
        let flux_and_ollama = dev(16 * GIB, 15 * GIB, &[(10, Some(12 * GIB)), (20, Some(3 * GIB))]);
        let c = vram_check(std::slice::from_ref(&flux_and_ollama), 0.8);
        assert_eq!(c.status, crate::report::Status::Warn, "{c:?}");
        assert!(
            c.reason.contains("94%") && c.reason.contains("pid 10 12.0 GiB"),
            "{}",
            c.reason
        );
        let c = vram_check(&[flux_and_ollama], 0.95);
        assert_eq!(c.status, crate::report::Status::Ok, "{c:?}");
    }

    #[test]
    fn vram_counts_processes_when_device_total_lags() {
        let hidden = dev(16 * GIB, GIB, &[(1, Some(14 * GIB)), (2, None)]);
        let c = vram_check(&[hidden], 0.8);
        assert_eq!(c.status, crate::report::Status::Warn, "{c:?}");
        assert!(vram_check(&[], 0.8).status == crate::report::Status::Skip);
    }
}
