//! The launch test's plumbing (check 4) against a stand-in libcuda built
//! here with `cc` (tests/mock/libcuda_mock.c): argument passing, result
//! verification, the driver's error names and texts, cleanup, and the
//! comparison of fatbin verdicts with what the driver loads. The real
//! driver is exercised by `cargo xtask gpu-check` on a GPU machine.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{container, sm, write_elf};
use gpu_probe::fatbin::KIND_ELF;
use gpu_probe::kernels::{Coverage, scan_library};
use gpu_probe::launch::{launch_check, launch_test, representative_images};
use gpu_probe::{ProbeEnv, Status};

/// Compile the mock with extra `-D` flags into `dir`; `None` (a loud skip) without a C compiler.
fn mock(test: &str, dir: &Path, defines: &[&str]) -> Option<PathBuf> {
    let cc = testkit::require_tool(test, "cc")?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mock/libcuda_mock.c");
    let out = dir.join("libcuda.so.1");
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .args(defines.iter().map(|d| format!("-D{d}")))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed on {}", src.display());
    Some(out)
}

fn env_with(lib: &Path) -> ProbeEnv {
    ProbeEnv {
        visible_devices: Some("all".into()),
        cuda_path: Some(lib.to_path_buf()),
        ..ProbeEnv::under_root(lib.parent().expect("dir").join("no-root"))
    }
}

#[test]
fn launches_the_kernel_and_verifies_its_result() {
    let test = "launches_the_kernel_and_verifies_its_result";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(lib) = mock(test, dir.path(), &[]) else {
        return;
    };
    let report = launch_test(&env_with(&lib), &[]);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.stage, "done");
    assert_eq!(report.device_arch, Some(sm("sm_120")));
    assert_eq!(report.driver_cuda_version.as_deref(), Some("12.8"));
    let check = launch_check(&report, true);
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(
        check.reason.contains("Mock RTX 5070 Ti (sm_120)") && check.reason.contains("1024 results verified"),
        "{}",
        check.reason
    );
}

#[test]
fn a_wrong_result_is_caught() {
    let test = "a_wrong_result_is_caught";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(lib) = mock(test, dir.path(), &["WRONG_RESULT"]) else {
        return;
    };
    let report = launch_test(&env_with(&lib), &[]);
    assert!(!report.ok);
    let err = report.error.clone().expect("error");
    assert_eq!((err.call.as_str(), err.name.as_str()), ("verify", "WRONG_RESULT"));
    assert!(
        err.message
            .starts_with("element 0 is 0 after the kernel, expected 1"),
        "{err:?}"
    );
    assert_eq!(launch_check(&report, true).status, Status::Fail);
}

#[test]
fn driver_errors_come_back_in_the_drivers_words() {
    let test = "driver_errors_come_back_in_the_drivers_words";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(lib) = mock(test, dir.path(), &["INIT_ERROR=100"]) else {
        return;
    };
    let report = launch_test(&env_with(&lib), &[]);
    assert_eq!(report.stage, "init");
    let check = launch_check(&report, true);
    assert_eq!(check.status, Status::Fail);
    assert_eq!(
        check.reason,
        "at stage init: cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"
    );
    assert!(
        check
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("runtimeClassName: nvidia")
    );
}

#[test]
fn fatbin_loads_are_compared_with_the_verdict() {
    let test = "fatbin_loads_are_compared_with_the_verdict";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(cuda) = mock(test, dir.path(), &[]) else {
        return;
    };
    // The mock refuses every fatbin: right for sm_90-only code on its sm_120…
    let old = dir.path().join("libold.so");
    write_elf(
        &old,
        Some(&[container(&[
            (KIND_ELF, "sm_80", (1, 8)),
            (KIND_ELF, "sm_90", (1, 8)),
        ])]),
    );
    let scanned = scan_library(&old, Some(sm("sm_120")));
    let images = representative_images(&scanned.path, scanned.fatbin_offset, &scanned.containers, 4);
    assert_eq!(images.len(), 1);
    let report = launch_test(&env_with(&cuda), &images);
    assert_eq!(report.images.len(), 1);
    let image = &report.images[0];
    assert_eq!(
        (image.predicted, image.loaded, image.agrees),
        (Coverage::None, false, true),
        "{image:?}"
    );
    assert_eq!(
        image.error.as_ref().map(|e| e.name.as_str()),
        Some("CUDA_ERROR_NO_BINARY_FOR_GPU")
    );
    assert_eq!(launch_check(&report, true).status, Status::Ok);

    // …and a disagreement when gpu-probe promised native sm_120 code.
    let new = dir.path().join("libnew.so");
    write_elf(
        &new,
        Some(&[
            container(&[(KIND_ELF, "sm_120", (1, 8))]),
            container(&[(KIND_ELF, "sm_120", (1, 8)), (KIND_ELF, "sm_90", (1, 8))]),
            container(&[(KIND_ELF, "sm_120", (1, 8))]),
        ]),
    );
    let scanned = scan_library(&new, Some(sm("sm_120")));
    // Two distinct entry sets: one image each.
    let images = representative_images(&scanned.path, scanned.fatbin_offset, &scanned.containers, 4);
    assert_eq!(images.len(), 2);
    let report = launch_test(&env_with(&cuda), &images);
    assert!(
        report
            .images
            .iter()
            .all(|i| i.predicted == Coverage::Native && !i.loaded && !i.agrees),
        "{:#?}",
        report.images
    );
    let check = launch_check(&report, true);
    assert_eq!(check.status, Status::Fail);
    assert!(
        check
            .reason
            .contains("2 image(s) disagree with the kernels check"),
        "{}",
        check.reason
    );
}

#[test]
fn without_nvml_the_cuda_driver_names_the_device_for_the_kernels_check() {
    let test = "without_nvml_the_cuda_driver_names_the_device_for_the_kernels_check";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(cuda) = mock(test, dir.path(), &[]) else {
        return;
    };
    let site = dir.path().join("site");
    write_elf(
        &site.join("torch/lib/libtorch_cuda.so"),
        Some(&[container(&[(KIND_ELF, "sm_90", (1, 8))])]),
    );
    for load_images in [0, 4] {
        let opts = gpu_probe::ProbeOptions {
            env: env_with(&cuda),
            arch: None,
            site_packages: vec![site.clone()],
            python: None,
            load_images,
            ..gpu_probe::ProbeOptions::default()
        };
        let report = gpu_probe::run_all(&opts);
        let kernels = report
            .checks
            .iter()
            .find(|c| c.id == "kernels:libtorch_cuda.so")
            .expect("kernels check");
        assert_eq!(kernels.status, Status::Fail, "{kernels:?}");
        assert!(
            kernels.reason.starts_with("no kernel image for sm_120"),
            "{}",
            kernels.reason
        );
        let launch = report.launch.as_ref().expect("launch");
        assert!(launch.ok);
        assert_eq!(launch.images.len(), load_images.min(1), "{launch:#?}");
        assert_eq!(report.checks.iter().filter(|c| c.id == "launch").count(), 1);
    }
}
