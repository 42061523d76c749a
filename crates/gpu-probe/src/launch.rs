//! Check 4, the ground truth: load `libcuda.so.1` at run time, create a
//! context, JIT a tiny kernel from embedded PTX, launch it and check its
//! result; optionally load fatbin containers taken from libraries, to see
//! whether the driver finds an image for this GPU where check 3 said so.
//!
//! The CUDA driver API is C; calling it needs `unsafe`. Every call goes
//! through `Cuda::call`, which turns a non-zero `CUresult` into an error
//! carrying the driver's own name and text.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::time::Instant;

use libloading::Library;
use serde::{Deserialize, Serialize};

use crate::arch::SmArch;
use crate::driver::{CUDA_NAMES, ProbeEnv, locate_library};
use crate::fatbin::{ByteSource, Container};
use crate::kernels::{Coverage, container_coverage};
use crate::report::Check;

/// The kernel: `buf[i] += 1` for `i < n`. PTX ISA 6.0 for sm_50, so every
/// driver since CUDA 9 can JIT it for every GPU it supports.
pub const ADD_ONE_PTX: &str = include_str!("add_one.ptx");
const KERNEL_NAME: &CStr = c"add_one";
const ELEMENTS: usize = 1024;

type CuResult = c_int;
type CuDevice = c_int;
type CuContext = *mut c_void;
type CuModule = *mut c_void;
type CuFunction = *mut c_void;
type CuDevicePtr = u64;

const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;

/// A failed driver call: which one, the code, and the driver's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaError {
    pub call: String,
    pub code: i32,
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for CudaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: {} ({}): {}",
            self.call, self.name, self.code, self.message
        )
    }
}

/// The resolved entry points of libcuda. The `Library` is kept alive as
/// long as the function pointers are.
struct Cuda {
    _lib: Library,
    init: unsafe extern "C" fn(c_uint) -> CuResult,
    driver_get_version: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get_count: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get: unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult,
    device_get_name: unsafe extern "C" fn(*mut c_char, c_int, CuDevice) -> CuResult,
    device_get_attribute: unsafe extern "C" fn(*mut c_int, c_int, CuDevice) -> CuResult,
    primary_ctx_retain: unsafe extern "C" fn(*mut CuContext, CuDevice) -> CuResult,
    primary_ctx_release: unsafe extern "C" fn(CuDevice) -> CuResult,
    ctx_set_current: unsafe extern "C" fn(CuContext) -> CuResult,
    ctx_synchronize: unsafe extern "C" fn() -> CuResult,
    module_load_data: unsafe extern "C" fn(*mut CuModule, *const c_void) -> CuResult,
    module_unload: unsafe extern "C" fn(CuModule) -> CuResult,
    module_get_function: unsafe extern "C" fn(*mut CuFunction, CuModule, *const c_char) -> CuResult,
    mem_alloc: unsafe extern "C" fn(*mut CuDevicePtr, usize) -> CuResult,
    mem_free: unsafe extern "C" fn(CuDevicePtr) -> CuResult,
    memcpy_htod: unsafe extern "C" fn(CuDevicePtr, *const c_void, usize) -> CuResult,
    memcpy_dtoh: unsafe extern "C" fn(*mut c_void, CuDevicePtr, usize) -> CuResult,
    #[allow(clippy::type_complexity)]
    launch_kernel: unsafe extern "C" fn(
        CuFunction,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        *mut c_void,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    get_error_name: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
    get_error_string: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {
        // SAFETY: the symbol is a function of libcuda with the C signature
        // of the field it is stored in, as declared in cuda.h.
        *unsafe { $lib.get($name) }
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&$name[..$name.len() - 1])))?
    };
}

impl Cuda {
    fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: loading libcuda runs its initialisers, which have no
        // preconditions beyond a sane process; nothing else is touched.
        let lib = unsafe { Library::new(path) }.map_err(|e| e.to_string())?;
        Ok(Cuda {
            init: sym!(lib, b"cuInit\0"),
            driver_get_version: sym!(lib, b"cuDriverGetVersion\0"),
            device_get_count: sym!(lib, b"cuDeviceGetCount\0"),
            device_get: sym!(lib, b"cuDeviceGet\0"),
            device_get_name: sym!(lib, b"cuDeviceGetName\0"),
            device_get_attribute: sym!(lib, b"cuDeviceGetAttribute\0"),
            primary_ctx_retain: sym!(lib, b"cuDevicePrimaryCtxRetain\0"),
            primary_ctx_release: sym!(lib, b"cuDevicePrimaryCtxRelease_v2\0"),
            ctx_set_current: sym!(lib, b"cuCtxSetCurrent\0"),
            ctx_synchronize: sym!(lib, b"cuCtxSynchronize\0"),
            module_load_data: sym!(lib, b"cuModuleLoadData\0"),
            module_unload: sym!(lib, b"cuModuleUnload\0"),
            module_get_function: sym!(lib, b"cuModuleGetFunction\0"),
            mem_alloc: sym!(lib, b"cuMemAlloc_v2\0"),
            mem_free: sym!(lib, b"cuMemFree_v2\0"),
            memcpy_htod: sym!(lib, b"cuMemcpyHtoD_v2\0"),
            memcpy_dtoh: sym!(lib, b"cuMemcpyDtoH_v2\0"),
            launch_kernel: sym!(lib, b"cuLaunchKernel\0"),
            get_error_name: sym!(lib, b"cuGetErrorName\0"),
            get_error_string: sym!(lib, b"cuGetErrorString\0"),
            _lib: lib,
        })
    }

    /// Turn a `CUresult` into `Ok` or an error with the driver's name and text.
    fn call(&self, call: &str, code: CuResult) -> Result<(), CudaError> {
        if code == 0 {
            return Ok(());
        }
        let text = |f: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult| {
            let mut p: *const c_char = std::ptr::null();
            // SAFETY: cuGetErrorName/String write a pointer to a static,
            // NUL-terminated string, or fail and leave it null.
            let rc = unsafe { f(code, &mut p) };
            if rc == 0 && !p.is_null() {
                // SAFETY: non-null and NUL-terminated, per the driver API.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            } else {
                "unknown error".to_string()
            }
        };
        Err(CudaError {
            call: call.to_string(),
            code,
            name: text(self.get_error_name),
            message: text(self.get_error_string),
        })
    }
}

/// A fatbin container to hand to the driver, and what check 3 predicted for it.
#[derive(Debug, Clone)]
pub struct ImageProbe {
    pub library: PathBuf,
    pub container: Container,
    /// Offset of the `.nv_fatbin` section in the library.
    pub section_offset: u64,
}

/// The driver's answer for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLoad {
    pub library: PathBuf,
    /// Offset of the container within `.nv_fatbin`.
    pub container_offset: u64,
    /// The container's entries, e.g. `["sass:sm_80", "sass:sm_90", "ptx:sm_90"]`.
    pub entries: Vec<String>,
    /// Check 3's verdict for this container.
    pub predicted: Coverage,
    /// The driver loaded it (it found an image for this GPU).
    pub loaded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CudaError>,
    /// `loaded` is what `predicted` said (anything but `none` loads).
    pub agrees: bool,
}

/// What the launch test did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchReport {
    /// The libcuda that was loaded.
    pub library: Option<PathBuf>,
    /// CUDA version of the driver API, e.g. `12.8`.
    pub driver_cuda_version: Option<String>,
    pub device_name: Option<String>,
    pub device_arch: Option<SmArch>,
    /// Last stage reached: `load`, `init`, `device`, `context`, `module`, `launch`, `verify`, `done`.
    pub stage: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CudaError>,
    /// Loading or resolving libcuda failed before any driver call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    /// libcuda was not there at all (as opposed to there but unusable).
    #[serde(default)]
    pub library_missing: bool,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub images: Vec<ImageLoad>,
}

/// Pick at most `max` containers per library to load: for each distinct set
/// of entries (architectures and kinds), the smallest container with it.
pub fn representative_images(
    library: &Path,
    section_offset: u64,
    containers: &[Container],
    max: usize,
) -> Vec<ImageProbe> {
    let mut best: std::collections::BTreeMap<Vec<String>, &Container> = std::collections::BTreeMap::new();
    for c in containers {
        let sig = entry_signature(c);
        let keep = best.get(&sig).is_none_or(|b| c.size < b.size);
        if keep {
            best.insert(sig, c);
        }
    }
    let mut picked: Vec<&Container> = best.into_values().collect();
    picked.sort_by_key(|c| c.size);
    picked
        .into_iter()
        .take(max)
        .map(|c| ImageProbe {
            library: library.to_path_buf(),
            container: c.clone(),
            section_offset,
        })
        .collect()
}

fn entry_signature(c: &Container) -> Vec<String> {
    let mut sig: Vec<String> = c
        .entries
        .iter()
        .map(|e| format!("{}:{}", e.kind.as_str(), e.arch))
        .collect();
    sig.sort();
    sig.dedup();
    sig
}

/// Run the launch test with the libcuda found for `env`, then load `images`.
pub fn launch_test(env: &ProbeEnv, images: &[ImageProbe]) -> LaunchReport {
    let started = Instant::now();
    let mut report = LaunchReport {
        stage: "load".into(),
        ..LaunchReport::default()
    };
    let search = locate_library(env, env.cuda_path.as_deref(), CUDA_NAMES);
    let path = match search.found {
        Some(p) => p,
        None if env.loader_fallback => PathBuf::from(CUDA_NAMES[0]),
        None => {
            report.load_error = Some(format!(
                "libcuda.so.1 not found ({} paths searched)",
                search.searched.len()
            ));
            report.library_missing = true;
            return report;
        }
    };
    let searched_by_loader = path.parent().is_none_or(|p| p.as_os_str().is_empty());
    report.library = Some(path.clone());
    let cuda = match Cuda::load(&path) {
        Ok(c) => c,
        Err(e) => {
            // The loader's own search failing to open it means: not there.
            report.library_missing = searched_by_loader && e.contains("No such file");
            report.load_error = Some(e);
            return report;
        }
    };
    if let Err(e) = run_kernel(&cuda, &mut report, images, started) {
        report.error = Some(e);
    }
    if !report.ok {
        report.elapsed_ms = millis(started);
    }
    report
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn run_kernel(
    cuda: &Cuda,
    report: &mut LaunchReport,
    images: &[ImageProbe],
    started: Instant,
) -> Result<(), CudaError> {
    report.stage = "init".into();
    // SAFETY (all calls below): arguments are valid out-pointers to locals or
    // handles the driver returned earlier in this function; sizes match the
    // buffers they describe.
    cuda.call("cuInit", unsafe { (cuda.init)(0) })?;
    let mut version = 0;
    cuda.call("cuDriverGetVersion", unsafe {
        (cuda.driver_get_version)(&mut version)
    })?;
    report.driver_cuda_version = Some(format!("{}.{}", version / 1000, (version % 1000) / 10));
    report.stage = "device".into();
    let mut count = 0;
    cuda.call("cuDeviceGetCount", unsafe { (cuda.device_get_count)(&mut count) })?;
    let mut dev: CuDevice = 0;
    cuda.call("cuDeviceGet", unsafe { (cuda.device_get)(&mut dev, 0) })?;
    let mut name = [0 as c_char; 256];
    cuda.call("cuDeviceGetName", unsafe {
        (cuda.device_get_name)(name.as_mut_ptr(), name.len() as c_int, dev)
    })?;
    // SAFETY: the driver wrote a NUL-terminated name into the buffer.
    report.device_name = Some(
        unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    );
    let (mut major, mut minor) = (0, 0);
    cuda.call("cuDeviceGetAttribute", unsafe {
        (cuda.device_get_attribute)(&mut major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    })?;
    cuda.call("cuDeviceGetAttribute", unsafe {
        (cuda.device_get_attribute)(&mut minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    })?;
    let arch = SmArch::new(
        u32::try_from(major).unwrap_or(0),
        u32::try_from(minor).unwrap_or(0),
    );
    report.device_arch = Some(arch);
    report.stage = "context".into();
    let mut ctx: CuContext = std::ptr::null_mut();
    cuda.call("cuDevicePrimaryCtxRetain", unsafe {
        (cuda.primary_ctx_retain)(&mut ctx, dev)
    })?;
    let result = with_context(cuda, ctx, report, images, arch, started);
    // Release even when the kernel failed; the first error is the one reported.
    let released = cuda.call("cuDevicePrimaryCtxRelease", unsafe {
        (cuda.primary_ctx_release)(dev)
    });
    result.and(released)
}

fn with_context(
    cuda: &Cuda,
    ctx: CuContext,
    report: &mut LaunchReport,
    images: &[ImageProbe],
    arch: SmArch,
    started: Instant,
) -> Result<(), CudaError> {
    cuda.call("cuCtxSetCurrent", unsafe { (cuda.ctx_set_current)(ctx) })?;
    report.stage = "module".into();
    let ptx = CString::new(ADD_ONE_PTX).unwrap_or_default();
    let mut module: CuModule = std::ptr::null_mut();
    cuda.call("cuModuleLoadData(embedded PTX)", unsafe {
        (cuda.module_load_data)(&mut module, ptx.as_ptr().cast())
    })?;
    let result = launch_add_one(cuda, module, report);
    let unloaded = cuda.call("cuModuleUnload", unsafe { (cuda.module_unload)(module) });
    result.and(unloaded)?;
    report.ok = true;
    report.stage = "done".into();
    report.elapsed_ms = millis(started); // the kernel alone, not the image loads below
    // Library images are probed only once the basic launch works, so that an
    // image failure means "no image for this GPU", not a broken driver.
    for image in images {
        report.images.push(load_image(cuda, image, arch));
    }
    Ok(())
}

fn launch_add_one(cuda: &Cuda, module: CuModule, report: &mut LaunchReport) -> Result<(), CudaError> {
    let mut func: CuFunction = std::ptr::null_mut();
    cuda.call("cuModuleGetFunction", unsafe {
        (cuda.module_get_function)(&mut func, module, KERNEL_NAME.as_ptr())
    })?;
    let host: Vec<u32> = (0..ELEMENTS as u32).map(|i| i.wrapping_mul(7)).collect();
    let bytes = ELEMENTS * std::mem::size_of::<u32>();
    let mut dptr: CuDevicePtr = 0;
    cuda.call("cuMemAlloc", unsafe { (cuda.mem_alloc)(&mut dptr, bytes) })?;
    let result = (|| {
        cuda.call("cuMemcpyHtoD", unsafe {
            (cuda.memcpy_htod)(dptr, host.as_ptr().cast(), bytes)
        })?;
        report.stage = "launch".into();
        let mut n = ELEMENTS as c_uint;
        let mut params: [*mut c_void; 2] = [
            (&mut dptr as *mut CuDevicePtr).cast(),
            (&mut n as *mut c_uint).cast(),
        ];
        let threads = 256;
        let blocks = (ELEMENTS as c_uint).div_ceil(threads);
        cuda.call("cuLaunchKernel", unsafe {
            (cuda.launch_kernel)(
                func,
                blocks,
                1,
                1,
                threads,
                1,
                1,
                0,
                std::ptr::null_mut(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        })?;
        cuda.call("cuCtxSynchronize", unsafe { (cuda.ctx_synchronize)() })?;
        report.stage = "verify".into();
        let mut back = vec![0u32; ELEMENTS];
        cuda.call("cuMemcpyDtoH", unsafe {
            (cuda.memcpy_dtoh)(back.as_mut_ptr().cast(), dptr, bytes)
        })?;
        if let Some(i) = (0..ELEMENTS).find(|&i| back[i] != host[i].wrapping_add(1)) {
            return Err(CudaError {
                call: "verify".into(),
                code: -1,
                name: "WRONG_RESULT".into(),
                message: format!(
                    "element {i} is {} after the kernel, expected {}",
                    back[i],
                    host[i].wrapping_add(1)
                ),
            });
        }
        Ok(())
    })();
    let freed = cuda.call("cuMemFree", unsafe { (cuda.mem_free)(dptr) });
    result.and(freed)
}

fn load_image(cuda: &Cuda, image: &ImageProbe, arch: SmArch) -> ImageLoad {
    let c = &image.container;
    let predicted = container_coverage(c, arch);
    let mut out = ImageLoad {
        library: image.library.clone(),
        container_offset: c.offset,
        entries: entry_signature(c),
        predicted,
        loaded: false,
        error: None,
        agrees: false,
    };
    // The driver reads the fatbin through a pointer; keep it 8-byte aligned.
    let words = usize::try_from(c.size.div_ceil(8)).unwrap_or(0);
    let mut buf = vec![0u64; words];
    let read = std::fs::File::open(&image.library).and_then(|f| {
        // SAFETY: viewing an initialised u64 buffer as bytes of the same length.
        let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), words * 8) };
        f.read_exact_at(image.section_offset + c.offset, &mut bytes[..c.size as usize])
    });
    if let Err(e) = read {
        out.error = Some(CudaError {
            call: "read".into(),
            code: -1,
            name: "IO".into(),
            message: e.to_string(),
        });
        return out;
    }
    let mut module: CuModule = std::ptr::null_mut();
    match cuda.call("cuModuleLoadData(fatbin)", unsafe {
        (cuda.module_load_data)(&mut module, buf.as_ptr().cast())
    }) {
        Ok(()) => {
            out.loaded = true;
            let _ = cuda.call("cuModuleUnload", unsafe { (cuda.module_unload)(module) });
        }
        Err(e) => out.error = Some(e),
    }
    out.agrees = out.loaded == (predicted != Coverage::None);
    out
}

/// The fix for a driver error code, in the words a notebook user needs.
fn fix_for(code: i32) -> &'static str {
    match code {
        35 => {
            "the CUDA in the image is newer than the node's driver: upgrade the driver, or use an image built for the driver's CUDA version (see the driver check)"
        }
        100 => {
            "no GPU is visible: request nvidia.com/gpu and set runtimeClassName: nvidia (check NVIDIA_VISIBLE_DEVICES)"
        }
        101 | 3 => {
            "the device nodes are not usable in this container: use runtimeClassName: nvidia instead of mounting /dev/nvidia* by hand"
        }
        803 | 804 => {
            "remove the cuda-compat libraries from LD_LIBRARY_PATH: forward compatibility works only on datacenter GPUs"
        }
        209 | 200 => {
            "the code has no image for this GPU: see the kernels check for a build with this architecture"
        }
        218 | 222 => "the driver cannot JIT this PTX: upgrade the NVIDIA driver",
        2 => "GPU memory is full: other jobs on the time-sliced GPU use it (see the vram check)",
        999 => {
            "the driver is in a bad state (often a kernel module / userspace version mismatch after an upgrade): reboot the node"
        }
        _ => {
            "see the driver's error above; run `nvidia-smi` on the node and check the NVIDIA device plugin's logs"
        }
    }
}

/// The `launch` check line for a report. `driver_ok` says whether NVML worked.
pub fn launch_check(r: &LaunchReport, driver_ok: bool) -> Check {
    let lib = r
        .library
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "libcuda".into());
    if let Some(e) = &r.load_error {
        return match (driver_ok, r.library_missing) {
            (false, _) => Check::skip("launch", format!("needs the driver (see the driver check): {e}")),
            (true, true) => Check::fail(
                "launch",
                format!("NVML works but the CUDA driver library is missing: {e}"),
                "set NVIDIA_DRIVER_CAPABILITIES=compute,utility (the runtime injects libcuda only with 'compute')",
            ),
            (true, false) => Check::fail(
                "launch",
                format!("cannot use the CUDA driver library {lib}: {e}"),
                "libcuda must come from the node's driver: do not bake or hand-mount it; use runtimeClassName: nvidia",
            ),
        };
    }
    if let Some(e) = &r.error {
        return Check::fail("launch", format!("at stage {}: {e}", r.stage), fix_for(e.code));
    }
    let dev = r.device_name.as_deref().unwrap_or("GPU");
    let arch = r.device_arch.map(|a| a.to_string()).unwrap_or_default();
    let mut reason = format!(
        "JIT-compiled and launched a kernel on {dev} ({arch}) via {lib} (CUDA {}): {ELEMENTS} results verified in {} ms",
        r.driver_cuda_version.as_deref().unwrap_or("?"),
        r.elapsed_ms
    );
    let disagree: Vec<&ImageLoad> = r.images.iter().filter(|i| !i.agrees).collect();
    if !r.images.is_empty() {
        let loaded = r.images.iter().filter(|i| i.loaded).count();
        reason.push_str(&format!("; {loaded} of {} library images loaded", r.images.len()));
    }
    if let Some(first) = disagree.first() {
        return Check::fail(
            "launch",
            format!(
                "{reason}; {} image(s) disagree with the kernels check, e.g. {} container {:#x} {:?}: predicted {:?}, loaded {}",
                disagree.len(),
                first.library.display(),
                first.container_offset,
                first.entries,
                first.predicted,
                first.loaded
            ),
            "report this: gpu-probe's fatbin reading and the driver disagree",
        );
    }
    Check::ok("launch", reason)
}
