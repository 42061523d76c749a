//! Checks 1, 2 and 4 without a GPU: the diagnosis when NVML is missing
//! (the pod runs without the NVIDIA runtime), the Talos library path, a
//! library that is there but broken, and what the binary prints and exits.

use std::path::Path;
use std::process::Command;

use gpu_probe::driver::{NVML_NAMES, TALOS_LIB_DIR, locate_library, probe_driver};
use gpu_probe::launch::{launch_check, launch_test};
use gpu_probe::{ProbeEnv, Status};

fn env(root: &Path, visible: Option<&str>) -> ProbeEnv {
    ProbeEnv {
        visible_devices: visible.map(str::to_string),
        ..ProbeEnv::under_root(root.to_path_buf())
    }
}

#[test]
fn nvml_missing_with_a_gpu_assigned_means_no_nvidia_runtime() {
    let root = tempfile::tempdir().expect("tempdir");
    let probe = probe_driver(&env(root.path(), Some("GPU-0b2c")));
    assert!(!probe.available);
    let driver = &probe.checks[0];
    assert_eq!((driver.id.as_str(), driver.status), ("driver", Status::Fail));
    assert!(
        driver.reason.contains("NVIDIA_VISIBLE_DEVICES=GPU-0b2c")
            && driver
                .reason
                .contains("runs without the NVIDIA container runtime: set runtimeClassName: nvidia"),
        "{}",
        driver.reason
    );
    assert!(driver.fix.as_deref().unwrap_or_default().contains(TALOS_LIB_DIR));
    assert_eq!(probe.checks[1].status, Status::Skip);
    // Every standard directory, the Talos one included, was searched.
    let talos = root
        .path()
        .join(TALOS_LIB_DIR.trim_start_matches('/'))
        .join(NVML_NAMES[0]);
    assert!(probe.info.searched.contains(&talos), "{:?}", probe.info.searched);
}

#[test]
fn nvml_missing_without_a_gpu_says_to_request_one() {
    let root = tempfile::tempdir().expect("tempdir");
    for visible in [None, Some("void"), Some("")] {
        let probe = probe_driver(&env(root.path(), visible));
        let driver = &probe.checks[0];
        assert_eq!(driver.status, Status::Fail);
        assert!(
            driver.reason.contains("no GPU assigned"),
            "{visible:?}: {}",
            driver.reason
        );
        assert!(
            driver
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("nvidia.com/gpu: 1")
        );
    }
}

#[test]
fn finds_nvml_on_the_talos_path_and_reports_a_broken_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join(TALOS_LIB_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let lib = dir.join("libnvidia-ml.so.1");
    std::fs::write(&lib, b"not a shared library").expect("write");
    let e = env(root.path(), Some("all"));
    let found = locate_library(&e, None, NVML_NAMES);
    assert_eq!(found.found.as_deref(), Some(lib.as_path()));
    assert!(found.talos);

    // The dynamic loader refuses the file: say where it was and why.
    let probe = probe_driver(&e);
    assert!(probe.info.talos_path);
    let driver = &probe.checks[0];
    assert_eq!(driver.status, Status::Fail);
    assert!(
        driver.reason.contains(&lib.display().to_string()) && driver.reason.contains("could not be used"),
        "{}",
        driver.reason
    );

    // LD_LIBRARY_PATH comes first.
    let other = root.path().join("custom");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("libnvidia-ml.so.1"), b"x").expect("write");
    let e = ProbeEnv {
        ld_library_path: Some(other.display().to_string()),
        ..e
    };
    let found = locate_library(&e, None, NVML_NAMES);
    assert_eq!(found.found, Some(other.join("libnvidia-ml.so.1")));
    assert!(!found.talos);
}

#[test]
fn launch_without_libcuda_is_skipped_or_failed_by_what_nvml_said() {
    let root = tempfile::tempdir().expect("tempdir");
    let report = launch_test(&env(root.path(), None), &[]);
    assert!(!report.ok);
    assert!(
        report
            .load_error
            .as_deref()
            .unwrap_or_default()
            .contains("libcuda.so.1 not found"),
        "{report:?}"
    );
    assert_eq!(launch_check(&report, false).status, Status::Skip);
    let partial = launch_check(&report, true);
    assert_eq!(partial.status, Status::Fail);
    assert!(
        partial
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("NVIDIA_DRIVER_CAPABILITIES"),
        "{partial:?}"
    );

    // A libcuda that is not a library: the loader's words come back.
    let fake = root.path().join("libcuda.so.1");
    std::fs::write(&fake, b"junk").expect("write");
    let e = ProbeEnv {
        cuda_path: Some(fake.clone()),
        ..env(root.path(), None)
    };
    let report = launch_test(&e, &[]);
    assert_eq!(report.library.as_deref(), Some(fake.as_path()));
    assert!(
        report.load_error.is_some() && !report.library_missing,
        "{report:?}"
    );
    let broken = launch_check(&report, true);
    assert_eq!(broken.status, Status::Fail);
    assert!(broken.reason.contains(&fake.display().to_string()), "{broken:?}");
    assert!(
        broken
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("runtimeClassName: nvidia"),
        "{broken:?}"
    );
}

/// Whether this machine has an NVIDIA driver the binary could find.
fn host_has_nvml() -> bool {
    let found = locate_library(&ProbeEnv::from_process(), None, NVML_NAMES)
        .found
        .is_some();
    let in_cache = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libnvidia-ml.so"))
        .unwrap_or(false);
    found || in_cache
}

#[test]
fn binary_diagnoses_a_pod_without_the_nvidia_runtime() {
    let test = "binary_diagnoses_a_pod_without_the_nvidia_runtime";
    if host_has_nvml() {
        testkit::skip(
            test,
            "this machine has an NVIDIA driver; the diagnosis needs one without",
        );
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .args(["--json", "--python", "/nonexistent/python"])
        .env("NVIDIA_VISIBLE_DEVICES", "all")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run gpu-probe");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["status"], "fail");
    let driver = &json["checks"][0];
    assert_eq!(driver["id"], "driver");
    assert!(
        driver["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("set runtimeClassName: nvidia"),
        "{driver}"
    );
    let launch = json["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "launch"))
        .cloned();
    assert_eq!(launch.map(|l| l["status"].clone()), Some("skip".into()));

    // The table form says the same, and the fix follows it.
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .args(["--no-launch", "--python", "/nonexistent/python"])
        .env("NVIDIA_VISIBLE_DEVICES", "all")
        .output()
        .expect("run gpu-probe");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        table.starts_with("CHECK")
            && table.contains("driver   FAIL")
            && table.contains("fix driver: set runtimeClassName: nvidia"),
        "{table}"
    );
}

#[test]
fn usage_errors_exit_1_not_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .arg("--no-such-flag")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .arg("--help")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lint-pod"));
}

#[test]
fn binary_searches_a_mounted_node_root_and_reports_the_talos_path() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join(TALOS_LIB_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("libnvidia-ml.so.1"), b"not a library").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .args([
            "--json",
            "--no-launch",
            "--python",
            "/nonexistent/python",
            "--root",
        ])
        .arg(root.path())
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run gpu-probe");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["driver"]["talos_path"], true, "{json:#}");
    let reason = json["checks"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&dir.join("libnvidia-ml.so.1").display().to_string()),
        "{reason}"
    );
}
