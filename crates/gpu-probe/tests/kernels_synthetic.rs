//! Check 3 on synthetic ELF files built here: no section, PTX only, sm_90
//! only against sm_120, mixed containers, damaged sections, and PyTorch
//! discovery in a fake site-packages. Where `cuobjdump` is installed, it
//! confirms that the files are laid out as the real tool reads them.

mod common;

use std::path::PathBuf;

use common::{container, cuobjdump, cuobjdump_list, ptxas, real_code, sm, write_elf};
use gpu_probe::fatbin::FatbinWriter;
use gpu_probe::fatbin::{KIND_ELF, KIND_PTX};
use gpu_probe::kernels::{Coverage, library_check, scan_library};
use gpu_probe::{ProbeEnv, ProbeOptions, Status};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn no_fatbin_section_means_no_kernels() {
    let dir = tmp();
    let lib = dir.path().join("libplain.so");
    write_elf(&lib, None);
    let scanned = scan_library(&lib, Some(sm("sm_120")));
    assert_eq!(scanned.error, None);
    assert_eq!(scanned.summary.containers, 0);
    let check = library_check(&scanned, None);
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(check.reason.contains("no .nv_fatbin section"), "{}", check.reason);
}

#[test]
fn ptx_only_is_jit_compiled_forward_and_never_backward() {
    let dir = tmp();
    let lib = dir.path().join("libptxonly.so");
    write_elf(&lib, Some(&[container(&[(KIND_PTX, "sm_90", (8, 5))])]));

    let on_120 = scan_library(&lib, Some(sm("sm_120")));
    let v = on_120.verdict.as_ref().expect("verdict");
    assert_eq!(v.coverage, Some(Coverage::Ptx));
    assert_eq!(v.best_ptx, Some(sm("sm_90")));
    assert_eq!(v.ptx_needs_cuda, Some((12, 5)));
    assert!(on_120.summary.sass.is_empty());
    assert_eq!(on_120.summary.ptx_isa.iter().collect::<Vec<_>>(), ["8.5"]);
    let check = library_check(&on_120, Some((12, 8)));
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(
        check.reason.contains("JIT-compiles PTX sm_90"),
        "{}",
        check.reason
    );

    // A driver older than the PTX ISA cannot JIT it.
    let check = library_check(&on_120, Some((12, 4)));
    assert_eq!(check.status, Status::Fail, "{check:?}");
    assert!(
        check.reason.contains("needs a CUDA 12.5 driver"),
        "{}",
        check.reason
    );

    // PTX for sm_90 never runs on an older GPU.
    let on_80 = scan_library(&lib, Some(sm("sm_80")));
    assert_eq!(
        on_80.verdict.as_ref().and_then(|v| v.coverage),
        Some(Coverage::None)
    );
    assert_eq!(library_check(&on_80, None).status, Status::Fail);
}

#[test]
fn sm90_only_has_no_image_for_sm120() {
    let dir = tmp();
    let lib = dir.path().join("libsm90.so");
    let c = container(&[(KIND_ELF, "sm_80", (1, 8)), (KIND_ELF, "sm_90", (1, 8))]);
    write_elf(&lib, Some(&[c.clone(), c]));
    let scanned = scan_library(&lib, Some(sm("sm_120")));
    assert_eq!(scanned.summary.sass.values().sum::<usize>(), 4);
    let v = scanned.verdict.as_ref().expect("verdict");
    assert_eq!((v.coverage, v.containers_none), (Some(Coverage::None), 2));
    let check = library_check(&scanned, None);
    assert_eq!(check.status, Status::Fail, "{check:?}");
    assert!(
        check.reason.contains("no kernel image is available"),
        "{}",
        check.reason
    );
    assert!(
        check.fix.as_deref().unwrap_or_default().contains("code=sm_120"),
        "{check:?}"
    );

    // The same file is native on the GPU it was built for, and on sm_86 via sm_80.
    let on_90 = scan_library(&lib, Some(sm("sm_90")));
    assert_eq!(library_check(&on_90, None).status, Status::Ok);
    let on_86 = scan_library(&lib, Some(sm("sm_86")));
    assert_eq!(on_86.verdict.and_then(|v| v.best_sass), Some(sm("sm_80")));
}

#[test]
fn mixed_containers_warn_about_the_missing_part_and_ignore_arch_specific_ones() {
    let dir = tmp();
    let lib = dir.path().join("libmixed.so");
    write_elf(
        &lib,
        Some(&[
            container(&[(KIND_ELF, "sm_90", (1, 8)), (KIND_ELF, "sm_120", (1, 8))]),
            container(&[(KIND_ELF, "sm_90", (1, 8))]),
            container(&[(KIND_ELF, "sm_90a", (1, 8))]),
        ]),
    );
    let scanned = scan_library(&lib, Some(sm("sm_120")));
    let v = scanned.verdict.as_ref().expect("verdict");
    assert_eq!(
        (v.containers_native, v.containers_none, v.containers_specific_only),
        (1, 1, 1)
    );
    let check = library_check(&scanned, None);
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(
        check
            .reason
            .starts_with("1 of 2 compile units have no code for sm_120"),
        "{}",
        check.reason
    );

    // Native here, PTX there: the count says how much goes through the JIT.
    write_elf(
        &lib,
        Some(&[
            container(&[(KIND_ELF, "sm_120", (1, 8))]),
            container(&[(KIND_ELF, "sm_90", (1, 8)), (KIND_PTX, "sm_90", (8, 5))]),
        ]),
    );
    let check = library_check(&scan_library(&lib, Some(sm("sm_120"))), None);
    assert_eq!(check.status, Status::Warn, "{check:?}");
    assert!(
        check
            .reason
            .starts_with("1 of 2 compile units have no SASS for sm_120"),
        "{}",
        check.reason
    );
}

#[test]
fn damaged_section_is_an_error_naming_file_and_offsets() {
    let dir = tmp();
    let lib = dir.path().join("libbroken.so");
    let good = container(&[(KIND_ELF, "sm_90", (1, 8))]);
    let mut bad = good.clone();
    bad[0] = 0x51; // magic no longer 0xBA55ED50
    write_elf(&lib, Some(&[good.clone(), bad]));
    let scanned = scan_library(&lib, Some(sm("sm_120")));
    let err = scanned.error.clone().expect("an error");
    assert!(err.contains("libbroken.so"), "{err}");
    assert!(
        err.contains(&format!("at offset {:#x}: expected fatbin magic", good.len())),
        "{err}"
    );
    assert_eq!(library_check(&scanned, None).status, Status::Fail);

    let not_elf = dir.path().join("notes.txt");
    std::fs::write(&not_elf, "hello").expect("write");
    let err = scan_library(&not_elf, None).error.expect("an error");
    assert!(
        err.contains("notes.txt") && err.contains("neither an ELF file nor a fatbin"),
        "{err}"
    );
}

fn probe_options(site: PathBuf, root: PathBuf) -> ProbeOptions {
    ProbeOptions {
        env: ProbeEnv::under_root(root),
        arch: Some(sm("sm_120")),
        site_packages: vec![site],
        python: None,
        launch: false,
        ..ProbeOptions::default()
    }
}

#[test]
fn finds_pytorch_in_site_packages_and_judges_its_libraries() {
    let dir = tmp();
    let site = dir.path().join("site-packages");
    let torch_lib = site.join("torch/lib");
    // Like PyTorch 2.5 cu124: kernels for sm_50..sm_90, no PTX.
    let old = container(&[
        (KIND_ELF, "sm_50", (1, 8)),
        (KIND_ELF, "sm_80", (1, 8)),
        (KIND_ELF, "sm_90", (1, 8)),
    ]);
    write_elf(&torch_lib.join("libtorch_cuda.so"), Some(&[old]));
    write_elf(&torch_lib.join("libtorch_cpu.so"), None);
    std::fs::write(torch_lib.join("README"), "not a library").expect("write");
    let opts = probe_options(site.clone(), dir.path().join("root"));
    let report = gpu_probe::run_all(&opts);
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["driver", "devices", "kernels:libtorch_cuda.so", "launch", "vram"],
        "{report:#?}"
    );
    let kernels = &report.checks[2];
    assert_eq!(kernels.status, Status::Fail);
    assert!(
        kernels.fix.as_deref().unwrap_or_default().contains("cu128"),
        "{kernels:?}"
    );
    assert_eq!(report.libraries.len(), 1);
    assert_eq!(report.exit_code(false), 1);

    // A CPU-only PyTorch: no library has kernels.
    std::fs::remove_file(torch_lib.join("libtorch_cuda.so")).expect("rm");
    let report = gpu_probe::run_all(&opts);
    let kernels = report
        .checks
        .iter()
        .find(|c| c.id == "kernels")
        .expect("kernels check");
    assert_eq!(kernels.status, Status::Fail);
    assert!(kernels.reason.contains("CPU-only"), "{}", kernels.reason);

    // No PyTorch at all: a skip that says where it looked.
    let report = gpu_probe::run_all(&probe_options(dir.path().join("empty"), dir.path().join("root")));
    let kernels = report
        .checks
        .iter()
        .find(|c| c.id == "kernels")
        .expect("kernels check");
    assert_eq!(kernels.status, Status::Skip, "{kernels:?}");
}

#[test]
fn cuobjdump_reads_the_synthetic_files_as_gpu_probe_does() {
    let test = "cuobjdump_reads_the_synthetic_files_as_gpu_probe_does";
    let (Some(tool), Some(ptxas)) = (cuobjdump(test), ptxas(test)) else {
        return;
    };
    let code = |arch: &str| real_code(&ptxas, arch);
    let (sm80, _) = code("sm_80");
    let (sm90a, _) = code("sm_90a");
    let (sm120, _) = code("sm_120");
    let (_, ptx90) = code("sm_90");
    let (_, ptx52) = code("sm_52");
    let first = FatbinWriter::new()
        .entry(KIND_ELF, sm("sm_80"), (1, 8), 0, &sm80)
        .entry(KIND_ELF, sm("sm_90a"), (1, 8), 0, &sm90a)
        .entry(KIND_PTX, sm("sm_90"), (8, 8), 0, &ptx90)
        .finish();
    let second = FatbinWriter::new()
        .entry(KIND_ELF, sm("sm_120"), (1, 8), 0, &sm120)
        .entry(KIND_ELF, sm("sm_80"), (1, 8), 0, &sm80)
        .entry(KIND_PTX, sm("sm_52"), (8, 8), 0, &ptx52)
        .finish();
    let dir = tmp();
    let lib = dir.path().join("libsynthetic.so");
    write_elf(&lib, Some(&[first, second]));
    let scanned = scan_library(&lib, None);
    assert_eq!(scanned.error, None);
    let (ours_elf, ours_ptx) = common::counts_by_cuobjdump_name(&scanned.summary);
    assert_eq!(ours_elf.values().sum::<usize>(), 4, "{ours_elf:?}");
    assert_eq!(cuobjdump_list(&tool, "--list-elf", &lib), ours_elf);
    assert_eq!(cuobjdump_list(&tool, "--list-ptx", &lib), ours_ptx);
}

#[test]
fn site_packages_come_from_the_interpreters_sys_path() {
    let test = "site_packages_come_from_the_interpreters_sys_path";
    // KFLITE_TOOL_PYTHON (the test venv) first, then PATH.
    let Some(python) = testkit::find_tool("python").or_else(|| testkit::find_tool("python3")) else {
        testkit::skip(
            test,
            "no python or python3 (cargo xtask test sets KFLITE_TOOL_PYTHON)",
        );
        return;
    };
    let purelib = std::process::Command::new(&python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .output()
        .expect("run python");
    let purelib = PathBuf::from(String::from_utf8_lossy(&purelib.stdout).trim());
    let extra = tmp();
    let dirs = gpu_probe::kernels::site_packages_dirs(&[extra.path().to_path_buf()], Some(&python));
    assert_eq!(
        dirs.first().map(PathBuf::as_path),
        Some(extra.path()),
        "given directories come first: {dirs:?}"
    );
    if purelib.is_dir() {
        let canon = purelib.canonicalize().expect("canonicalize");
        assert!(
            dirs.iter()
                .any(|d| d.canonicalize().ok().as_ref() == Some(&canon)),
            "{} not in {dirs:?}",
            purelib.display()
        );
    }
    // A python that does not run adds nothing and breaks nothing.
    let without =
        gpu_probe::kernels::site_packages_dirs(&[], Some(std::path::Path::new("/nonexistent/python")));
    assert!(without.iter().all(|d| d.is_dir()));
}
