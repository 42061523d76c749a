//! The JSON report is a documented interface: every field a report can
//! carry must be described in docs/gpu-probe.md, and a report must read
//! back into the library's types (what kfctl does).

mod common;

use std::collections::BTreeSet;

use common::{container, sm, write_elf};
use gpu_probe::driver::{DeviceInfo, GpuProcess};
use gpu_probe::fatbin::{KIND_ELF, KIND_PTX};
use gpu_probe::{ProbeEnv, ProbeOptions, Report, SCHEMA_VERSION};
use serde_json::Value;

/// Every object key in `v`, except the architecture names that key the
/// `sass`/`ptx` maps (data, not schema).
fn keys(v: &Value, parent: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if parent != "sass" && parent != "ptx" {
                    out.insert(k.clone());
                }
                keys(child, k, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, parent, out)),
        _ => {}
    }
}

/// A report with every section filled: a run over a fake PyTorch (one good
/// library, one unreadable), a device with a process, a lint finding.
fn full_report(dir: &std::path::Path) -> Report {
    let site = dir.join("site");
    let torch_lib = site.join("torch/lib");
    write_elf(
        &torch_lib.join("libtorch_cuda.so"),
        Some(&[
            container(&[(KIND_ELF, "sm_90", (1, 8)), (KIND_PTX, "sm_90", (8, 5))]),
            container(&[(KIND_ELF, "sm_90a", (1, 8))]),
        ]),
    );
    std::fs::write(torch_lib.join("libbroken.so"), b"\x7fELF garbage").expect("write");
    let opts = ProbeOptions {
        env: ProbeEnv {
            visible_devices: Some("all".into()),
            ..ProbeEnv::under_root(dir.join("root"))
        },
        arch: Some(sm("sm_120")),
        site_packages: vec![site],
        python: None,
        ..ProbeOptions::default()
    };
    let mut report = gpu_probe::run_all(&opts);
    let driver = report.driver.as_mut().expect("driver section");
    driver.nvml_library = Some("/usr/local/glibc/usr/lib/libnvidia-ml.so.1".into());
    driver.driver_version = Some("570.133.07".into());
    driver.cuda_driver_version = Some("12.8".into());
    driver.devices.push(DeviceInfo {
        index: 0,
        name: "NVIDIA GeForce RTX 5070 Ti".into(),
        uuid: "GPU-1".into(),
        arch: sm("sm_120"),
        compute_capability: "12.0".into(),
        memory_total: 16 << 30,
        memory_used: 1 << 30,
        memory_free: 15 << 30,
        processes: vec![GpuProcess {
            pid: 42,
            used_memory: Some(1 << 30),
            kind: "compute".into(),
        }],
    });
    let launch = report.launch.as_mut().expect("launch section");
    launch.error = Some(gpu_probe::launch::CudaError {
        call: "cuInit".into(),
        code: 100,
        name: "CUDA_ERROR_NO_DEVICE".into(),
        message: "no device".into(),
    });
    launch.images.push(gpu_probe::launch::ImageLoad {
        library: "libtorch_cuda.so".into(),
        container_offset: 0,
        entries: vec!["sass:sm_90".into()],
        predicted: gpu_probe::kernels::Coverage::None,
        loaded: false,
        error: launch.error.clone(),
        agrees: true,
    });
    let lint = gpu_probe::run_lint(
        "x.yaml",
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - resources: {limits: {nvidia.com/gpu: 1}}\n",
    );
    report.checks.extend(lint.checks);
    report
}

#[test]
fn every_report_field_is_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = full_report(dir.path());
    let json = serde_json::to_value(&report).expect("serialize");
    let mut found = BTreeSet::new();
    keys(&json, "", &mut found);
    // Sections that must be there for the test to mean anything.
    for k in [
        "driver",
        "devices",
        "processes",
        "launch",
        "images",
        "libraries",
        "summary",
        "verdict",
        "error",
        "fix",
    ] {
        assert!(found.contains(k), "the test report lacks {k}: {json:#}");
    }
    let doc_path = testkit::workspace_root().join("docs/gpu-probe.md");
    let doc = std::fs::read_to_string(&doc_path).expect("read docs/gpu-probe.md");
    let undocumented: Vec<&String> = found
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields missing from {}: {undocumented:?}",
        doc_path.display()
    );
    assert!(doc.contains(SCHEMA_VERSION));
}

#[test]
fn a_report_reads_back_into_the_library_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = full_report(dir.path());
    let text = serde_json::to_string(&report).expect("serialize");
    let back: Report = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back.schema, SCHEMA_VERSION);
    assert_eq!(back.checks, report.checks);
    assert_eq!(back.driver, report.driver);
    assert_eq!(back.launch, report.launch);
    assert_eq!(back.libraries.len(), 2);
    assert_eq!(back.libraries[0].summary, report.libraries[0].summary);
    assert_eq!(back.libraries[0].verdict, report.libraries[0].verdict);
    assert_eq!(back.status, Some(gpu_probe::Status::Fail));
}
