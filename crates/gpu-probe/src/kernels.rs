//! Check 3: which GPU code a CUDA library ships, and whether any of it runs
//! on the device — read from the ELF `.nv_fatbin` section, without loading
//! the library or importing torch.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::{SmArch, cuda_for_ptx_isa};
use crate::fatbin::{ByteSource, Container, EntryKind, FatbinError, FatbinSummary, parse_region};
use crate::report::Check;

/// Name of the ELF section that holds the fatbin containers.
pub const FATBIN_SECTION: &str = ".nv_fatbin";

/// Why a library could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KernelsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: neither an ELF file nor a fatbin (a CUDA library or executable is ELF)")]
    NotElf { path: PathBuf },
    #[error("{path}: malformed ELF: {message}")]
    Elf { path: PathBuf, message: String },
    #[error("{path}: section {FATBIN_SECTION} at file offset {section_offset:#x}: {source}")]
    Fatbin {
        path: PathBuf,
        section_offset: u64,
        source: FatbinError,
    },
}

/// Where the `.nv_fatbin` section lies in a file: (offset, size); a bare
/// fatbin file is all region.
pub fn find_fatbin_section(path: &Path) -> Result<Option<(u64, u64)>, KernelsError> {
    let io = |source| KernelsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    if n == 4 && u32::from_le_bytes(magic) == crate::fatbin::FATBIN_MAGIC {
        // A bare .fatbin file (nvcc -fatbin, nvFatbin): the whole file is the region.
        let size = file.metadata().map_err(io)?.len();
        return Ok(Some((0, size)));
    }
    if n < 4 || magic != *b"\x7fELF" {
        return Err(KernelsError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| KernelsError::Elf {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    use object::{Object, ObjectSection};
    for section in elf.sections() {
        if section.name().ok() == Some(FATBIN_SECTION) {
            // A SHT_NOBITS section has no bytes in the file: nothing to read.
            return Ok(section.file_range());
        }
    }
    Ok(None)
}

/// Parse every fatbin container of an ELF file: (section offset, section
/// size, containers), all zero/empty when it has no `.nv_fatbin`.
pub fn read_containers(path: &Path) -> Result<(u64, u64, Vec<Container>), KernelsError> {
    let Some((offset, size)) = find_fatbin_section(path)? else {
        return Ok((0, 0, Vec::new()));
    };
    let file = File::open(path).map_err(|source| KernelsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if offset.saturating_add(size) > file.size() {
        return Err(KernelsError::Elf {
            path: path.to_path_buf(),
            message: format!(
                "section {FATBIN_SECTION} ({size} bytes at {offset:#x}) runs past the end of the file"
            ),
        });
    }
    let containers = parse_region(&file, offset, size).map_err(|source| KernelsError::Fatbin {
        path: path.to_path_buf(),
        section_offset: offset,
        source,
    })?;
    Ok((offset, size, containers))
}

/// How a device can run a container's (or a library's) kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// SASS for the device's architecture (or an earlier minor of its major).
    Native,
    /// No SASS, but PTX the driver can JIT-compile for the device.
    Ptx,
    /// Neither: launches fail with "no kernel image is available".
    None,
}

/// The best code a container offers `device`.
pub fn container_coverage(container: &Container, device: SmArch) -> Coverage {
    let entries = &container.entries;
    if entries
        .iter()
        .any(|e| e.kind == EntryKind::Sass && e.arch.sass_runs_on(device))
    {
        Coverage::Native
    } else if entries
        .iter()
        .any(|e| e.kind == EntryKind::Ptx && e.arch.ptx_jits_to(device))
    {
        Coverage::Ptx
    } else {
        Coverage::None
    }
}

/// A container whose code is all arch- or family-specific (`sm_90a`, `sm_100f`)
/// holds kernels meant for those GPUs only; the library calls them only there.
pub fn is_specific_only(container: &Container) -> bool {
    let code = container
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Sass | EntryKind::Ptx));
    let mut any = false;
    for e in code {
        if e.arch.variant.is_none() {
            return false;
        }
        any = true;
    }
    any
}

/// A library's kernels judged against one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelVerdict {
    pub device: SmArch,
    /// Worst coverage over the containers that count (not arch-specific only);
    /// absent when no container counts.
    pub coverage: Option<Coverage>,
    pub containers_native: usize,
    pub containers_ptx: usize,
    pub containers_none: usize,
    /// Containers skipped because all their code is arch-/family-specific.
    pub containers_specific_only: usize,
    /// Newest SASS that runs on the device, if any.
    pub best_sass: Option<SmArch>,
    /// Newest PTX the driver could JIT for the device, if any.
    pub best_ptx: Option<SmArch>,
    /// Oldest CUDA driver (major, minor) that can JIT the PTX that would be used.
    pub ptx_needs_cuda: Option<(u32, u32)>,
}

/// Judge parsed containers against `device`.
pub fn verdict(containers: &[Container], device: SmArch) -> KernelVerdict {
    let mut v = KernelVerdict {
        device,
        coverage: None,
        containers_native: 0,
        containers_ptx: 0,
        containers_none: 0,
        containers_specific_only: 0,
        best_sass: None,
        best_ptx: None,
        ptx_needs_cuda: None,
    };
    for c in containers {
        if is_specific_only(c) {
            v.containers_specific_only += 1;
            continue;
        }
        let cov = container_coverage(c, device);
        match cov {
            Coverage::Native => v.containers_native += 1,
            Coverage::Ptx => {
                v.containers_ptx += 1;
                for e in c
                    .entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Ptx && e.arch.ptx_jits_to(device))
                {
                    let need = cuda_for_ptx_isa(e.version.0, e.version.1);
                    v.ptx_needs_cuda = v.ptx_needs_cuda.max(need);
                }
            }
            Coverage::None => v.containers_none += 1,
        }
        v.coverage = v.coverage.max(Some(cov));
        for e in &c.entries {
            if e.kind == EntryKind::Sass && e.arch.sass_runs_on(device) {
                v.best_sass = v.best_sass.max(Some(e.arch));
            }
            if e.kind == EntryKind::Ptx && e.arch.ptx_jits_to(device) {
                v.best_ptx = v.best_ptx.max(Some(e.arch));
            }
        }
    }
    v
}

/// What one file holds, and (when the device is known) the verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LibraryKernels {
    pub path: PathBuf,
    /// File offset of `.nv_fatbin`; 0 when the file has none.
    pub fatbin_offset: u64,
    /// Size of `.nv_fatbin`; 0 when the file has none.
    pub fatbin_bytes: u64,
    pub summary: FatbinSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<KernelVerdict>,
    /// Why the file could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub containers: Vec<Container>,
}

/// Read one file and judge it against `device` (when known). Errors are kept
/// in the result so that one bad file does not hide the others.
pub fn scan_library(path: &Path, device: Option<SmArch>) -> LibraryKernels {
    match read_containers(path) {
        Ok((fatbin_offset, fatbin_bytes, containers)) => LibraryKernels {
            path: path.to_path_buf(),
            fatbin_offset,
            fatbin_bytes,
            summary: FatbinSummary::of(&containers),
            verdict: device.map(|d| verdict(&containers, d)),
            error: None,
            containers,
        },
        Err(e) => LibraryKernels {
            path: path.to_path_buf(),
            fatbin_offset: 0,
            fatbin_bytes: 0,
            summary: FatbinSummary::default(),
            verdict: None,
            error: Some(e.to_string()),
            containers: Vec::new(),
        },
    }
}

fn arch_list<'a>(archs: impl Iterator<Item = &'a SmArch>) -> String {
    let names: Vec<String> = archs.map(ToString::to_string).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The fix for a library without code for `device`.
fn rebuild_fix(path: &Path, device: SmArch) -> String {
    let p = path.to_string_lossy();
    if p.contains("torch") {
        if device.major >= 10 {
            // Blackwell (sm_100, sm_120) kernels first shipped in PyTorch 2.7's CUDA 12.8 builds.
            format!(
                "install a PyTorch build with {device} kernels: PyTorch >= 2.7 built with CUDA 12.8 or later \
                 (pip install torch --index-url https://download.pytorch.org/whl/cu128), or an image that ships one"
            )
        } else {
            format!(
                "install a PyTorch build whose torch.cuda.get_arch_list() includes {device}, or an image that ships one"
            )
        }
    } else {
        let n = device.number();
        format!(
            "rebuild {} with -gencode arch=compute_{n},code=sm_{n} (or add PTX: code=compute_XX for an older XX), \
             or install a release built for {device}",
            file_label(path)
        )
    }
}

/// One check line for a scanned library. `driver_cuda` is the driver's CUDA
/// version, used to tell whether it can JIT the PTX at hand.
pub fn library_check(lib: &LibraryKernels, driver_cuda: Option<(u32, u32)>) -> Check {
    let id = format!("kernels:{}", file_label(&lib.path));
    if let Some(err) = &lib.error {
        return Check::fail(id, err.clone(), "pass a readable CUDA ELF library or executable");
    }
    let s = &lib.summary;
    let contents = format!(
        "SASS {}; PTX {}",
        arch_list(s.sass.keys()),
        arch_list(s.ptx.keys())
    );
    if s.containers == 0 {
        return Check::warn(
            id,
            format!(
                "no {FATBIN_SECTION} section: {} holds no CUDA kernels",
                lib.path.display()
            ),
            "if this should be a CUDA build, install the CUDA variant (a CPU-only build has no kernels)",
        );
    }
    let Some(v) = &lib.verdict else {
        return Check::skip(
            id,
            format!("{contents}; device architecture unknown (pass --arch)"),
        );
    };
    let dev = v.device;
    let counted = v.containers_native + v.containers_ptx + v.containers_none;
    match v.coverage {
        None => Check::ok(
            id,
            format!(
                "{contents}; all {} containers are arch-specific only",
                v.containers_specific_only
            ),
        ),
        Some(_) if v.containers_none > 0 && v.containers_none < counted => Check::warn(
            id,
            format!(
                "{} of {counted} compile units have no code for {dev} (the ops they hold fail); {contents}",
                v.containers_none
            ),
            rebuild_fix(&lib.path, dev),
        ),
        Some(Coverage::None) => Check::fail(
            id,
            format!(
                "no kernel image for {dev}: {contents} — every launch fails with \
                 \"no kernel image is available for execution on the device\""
            ),
            rebuild_fix(&lib.path, dev),
        ),
        Some(Coverage::Ptx) => {
            let ptx = v.best_ptx.map(|a| a.to_string()).unwrap_or_default();
            if let (Some(need), Some(have)) = (v.ptx_needs_cuda, driver_cuda)
                && have < need
            {
                return Check::fail(
                    id,
                    format!(
                        "no SASS for {dev}, and its PTX ({ptx}) needs a CUDA {}.{} driver to JIT; this driver is CUDA {}.{}",
                        need.0, need.1, have.0, have.1
                    ),
                    format!(
                        "upgrade the NVIDIA driver to one supporting CUDA {}.{}, or {}",
                        need.0,
                        need.1,
                        rebuild_fix(&lib.path, dev)
                    ),
                );
            }
            Check::warn(
                id,
                format!(
                    "{}no SASS for {dev}; the driver JIT-compiles PTX {ptx} at first use (slow first start, cached in \
                     ~/.nv/ComputeCache); {contents}",
                    if v.containers_native > 0 {
                        format!("{} of {counted} compile units have ", v.containers_ptx)
                    } else {
                        String::new()
                    }
                ),
                format!(
                    "for a fast start, {}; or keep the JIT cache: CUDA_CACHE_MAXSIZE=4294967296 on a persistent home",
                    rebuild_fix(&lib.path, dev)
                ),
            )
        }
        Some(Coverage::Native) => {
            let sass = v.best_sass.map(|a| a.to_string()).unwrap_or_default();
            Check::ok(
                id,
                format!("native {sass} code for {dev} in all {counted} compile units; {contents}"),
            )
        }
    }
}

/// Directories that may hold Python packages: `extra` first, then the
/// interpreter's `sys.path` (when `python` runs), then the usual prefixes.
pub fn site_packages_dirs(extra: &[PathBuf], python: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    if let Some(py) = python
        && let Ok(out) = std::process::Command::new(py)
            .args(["-c", "import sys; print('\\n'.join(p for p in sys.path if p))"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
        && out.status.success()
    {
        dirs.extend(String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from));
    }
    let mut prefixes = vec![
        PathBuf::from("/opt/conda/lib"),
        PathBuf::from("/usr/local/lib"),
        PathBuf::from("/usr/lib"),
        PathBuf::from("/usr/lib64"),
    ];
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(v) = std::env::var_os(var) {
            prefixes.insert(0, PathBuf::from(v).join("lib"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        prefixes.push(PathBuf::from(home).join(".local/lib"));
    }
    for prefix in prefixes {
        let Ok(read) = std::fs::read_dir(&prefix) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for py in pythons {
            dirs.push(py.join("site-packages"));
            dirs.push(py.join("dist-packages"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| d.is_dir() && seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
    dirs
}

/// PyTorch's shared libraries (`torch/lib/lib*.so*`) in the first site
/// directory that has a `torch` package: (torch/lib directory, files).
pub fn find_torch_libs(site_dirs: &[PathBuf]) -> Option<(PathBuf, Vec<PathBuf>)> {
    for dir in site_dirs {
        let lib = dir.join("torch").join("lib");
        let Ok(read) = std::fs::read_dir(&lib) else {
            continue;
        };
        let mut files: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("lib") && name.contains(".so")
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        return Some((lib, files));
    }
    None
}
