//! Check 3 on real CUDA libraries: `libnvjpeg.so.12` from the PyPI wheel
//! `nvidia-nvjpeg-cu12==12.4.0.76` (5 MB; LZ4-compressed cubins for
//! sm_50…sm_121 and PTX) and `libnvjpeg.so.13` from `nvidia-nvjpeg==13.3.2.43`
//! (4 MB; ZSTD-compressed, sm_75…sm_121), compared entry for entry with NVIDIA's own `cuobjdump` (wheel
//! `nvidia-cuda-cuobjdump==13.5.37`), and the embedded launch kernel
//! assembled by `ptxas` (wheel `nvidia-cuda-nvcc-cu12==12.9.86`).

mod common;

use std::process::Command;

use common::{cuobjdump, cuobjdump_list, ptxas, sm, wheel_file};
use gpu_probe::Status;
use gpu_probe::kernels::{Coverage, library_check, scan_library};

const NVJPEG: &str = "nvidia/nvjpeg/lib/libnvjpeg.so.12";
const NVJPEG_PKG: &str = "nvidia-nvjpeg-cu12==12.4.0.76";
/// The CUDA 13 build: ZSTD-compressed entries and longer entry headers.
const NVJPEG13: &str = "nvidia/cu13/lib/libnvjpeg.so.13";
const NVJPEG13_PKG: &str = "nvidia-nvjpeg==13.3.2.43";

#[test]
fn nvjpeg_arch_lists_equal_cuobjdump() {
    arch_lists_equal_cuobjdump("nvjpeg_arch_lists_equal_cuobjdump", NVJPEG, NVJPEG_PKG);
}

#[test]
fn nvjpeg13_arch_lists_equal_cuobjdump() {
    arch_lists_equal_cuobjdump("nvjpeg13_arch_lists_equal_cuobjdump", NVJPEG13, NVJPEG13_PKG);
}

fn arch_lists_equal_cuobjdump(test: &str, rel: &str, package: &str) {
    let Some(lib) = wheel_file(test, rel, package) else {
        return;
    };
    let Some(tool) = cuobjdump(test) else { return };
    let started = std::time::Instant::now();
    let scanned = scan_library(&lib, None);
    let took = started.elapsed();
    assert_eq!(scanned.error, None);
    let (ours_elf, ours_ptx) = common::counts_by_cuobjdump_name(&scanned.summary);
    let theirs_elf = cuobjdump_list(&tool, "--list-elf", &lib);
    let theirs_ptx = cuobjdump_list(&tool, "--list-ptx", &lib);
    assert_eq!(ours_elf, theirs_elf);
    assert_eq!(ours_ptx, theirs_ptx);
    // Several architectures, or the comparison proves little.
    assert!(theirs_elf.len() >= 5, "{theirs_elf:?}");
    eprintln!(
        "{}: {} containers, {} SASS + {} PTX entries over {} archs, read in {took:?}",
        lib.display(),
        scanned.summary.containers,
        ours_elf.values().sum::<usize>(),
        ours_ptx.values().sum::<usize>(),
        ours_elf.len()
    );
}

#[test]
fn nvjpeg_verdicts_follow_cuobjdumps_arch_list() {
    let test = "nvjpeg_verdicts_follow_cuobjdumps_arch_list";
    let Some(lib) = wheel_file(test, NVJPEG, NVJPEG_PKG) else {
        return;
    };
    let Some(tool) = cuobjdump(test) else { return };
    let containers = scan_library(&lib, None).summary.containers;
    // Every architecture cuobjdump lists in every container is native there.
    for (name, count) in cuobjdump_list(&tool, "--list-elf", &lib) {
        if count != containers {
            continue;
        }
        let device = sm(&name);
        let v = scan_library(&lib, Some(device)).verdict.expect("verdict");
        assert_eq!(
            (v.coverage, v.best_sass),
            (Some(Coverage::Native), Some(device)),
            "{name}: {v:?}"
        );
    }
    // A GPU newer than every cubin gets PTX where cuobjdump lists PTX (one
    // entry per container here) and nothing elsewhere.
    let ptx_entries: usize = cuobjdump_list(&tool, "--list-ptx", &lib).values().sum();
    let future = scan_library(&lib, Some(sm("sm_130")));
    let v = future.verdict.as_ref().expect("verdict");
    assert_eq!(
        (v.containers_native, v.containers_ptx, v.containers_none),
        (0, ptx_entries, containers - ptx_entries),
        "{v:?}"
    );
    let expected = if ptx_entries == 0 {
        Status::Fail
    } else {
        Status::Warn
    };
    assert_eq!(library_check(&future, None).status, expected);
    let on_120 = scan_library(&lib, Some(sm("sm_120")));
    assert_eq!(library_check(&on_120, None).status, Status::Ok);
}

#[test]
fn cli_kernels_json_on_a_real_library() {
    let test = "cli_kernels_json_on_a_real_library";
    let Some(lib) = wheel_file(test, NVJPEG, NVJPEG_PKG) else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .args(["kernels", "--json", "--strict", "--arch", "sm_90"])
        .arg(&lib)
        .output()
        .expect("run gpu-probe");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(json["schema"], "gpu-probe/v1");
    assert_eq!(json["checks"][0]["id"], "kernels:libnvjpeg.so.12");
    assert_eq!(json["checks"][0]["status"], "ok");
    let lib_json = &json["libraries"][0];
    assert_eq!(lib_json["verdict"]["coverage"], "native");
    assert_eq!(lib_json["verdict"]["device"], "sm_90");
    assert!(
        lib_json["summary"]["sass"]["sm_90"].as_u64().unwrap_or(0) > 0,
        "{lib_json}"
    );
}

#[test]
fn launch_kernel_ptx_assembles_for_old_and_new_gpus() {
    let test = "launch_kernel_ptx_assembles_for_old_and_new_gpus";
    let Some(ptxas) = ptxas(test) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("add_one.ptx");
    std::fs::write(&src, gpu_probe::launch::ADD_ONE_PTX).expect("write");
    // The driver JITs the same text; ptxas is its offline twin.
    for arch in ["sm_50", "sm_80", "sm_90", "sm_120"] {
        let out = dir.path().join(format!("{arch}.cubin"));
        let run = Command::new(&ptxas)
            .arg(format!("-arch={arch}"))
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run ptxas");
        assert!(
            run.status.success(),
            "ptxas -arch={arch}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > 0);
    }
}
