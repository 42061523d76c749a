//! Bad input fails with exit code 1, an error naming the file (and line
//! where known), and nothing on stdout.

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, t) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, t).expect("write");
    }
}

/// Builds `build/` of a case; returns stderr after checking exit 1 and empty stdout.
fn fails(files: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), files);
    let out = Command::new(env!("CARGO_BIN_EXE_manifest-render"))
        .arg("build")
        .arg(tmp.path().join("build"))
        // Hermetic: no fetches, no cache outside the temporary directory.
        .arg("--offline")
        .env("KFLITE_CACHE_DIR", tmp.path().join("cache"))
        .env_remove("KFLITE_UPSTREAM_MIRROR")
        .output()
        .expect("run manifest-render");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "partial output: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";

#[test]
fn malformed_yaml_names_file_and_line() {
    let e = fails(&[
        ("build/kustomization.yaml", "resources: [cm.yaml]\n"),
        (
            "build/cm.yaml",
            "apiVersion: v1\nkind: [ConfigMap\nmetadata: {}\n",
        ),
    ]);
    assert!(e.contains("cm.yaml:3:") && e.contains("malformed YAML"), "{e}");
}

#[test]
fn unknown_kustomization_field_is_named() {
    let e = fails(&[
        (
            "build/kustomization.yaml",
            "resources: [cm.yaml]\nresourcez: [x]\n",
        ),
        ("build/cm.yaml", CM),
    ]);
    assert!(
        e.contains("kustomization.yaml") && e.contains("unknown field \"resourcez\""),
        "{e}"
    );
}

#[test]
fn missing_file_is_named() {
    let e = fails(&[
        ("build/kustomization.yaml", "resources: [cm.yaml, gone.yaml]\n"),
        ("build/cm.yaml", CM),
    ]);
    assert!(e.contains("gone.yaml") && e.contains("kustomization.yaml"), "{e}");
}

#[test]
fn file_outside_the_root_is_refused() {
    let e = fails(&[
        ("build/kustomization.yaml", "resources: [../outside.yaml]\n"),
        ("outside.yaml", CM),
    ]);
    assert!(e.contains("outside.yaml") && e.contains("root-only"), "{e}");
}

#[test]
fn json_patch_without_target_is_refused() {
    let e = fails(&[
        (
            "build/kustomization.yaml",
            "resources: [cm.yaml]\npatches:\n- patch: '[{\"op\": \"add\", \"path\": \"/data\", \"value\": {}}]'\n",
        ),
        ("build/cm.yaml", CM),
    ]);
    assert!(
        e.contains("kustomization.yaml") && e.contains("must specify a target"),
        "{e}"
    );
}

#[test]
fn cycles_are_refused() {
    let e = fails(&[
        ("build/kustomization.yaml", "resources: [../other]\n"),
        ("other/kustomization.yaml", "resources: [../build]\n"),
    ]);
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn plugins_and_helm_are_refused_by_name() {
    let e = fails(&[(
        "build/kustomization.yaml",
        "helmCharts:\n- name: x\n  repo: https://example.com\n",
    )]);
    assert!(
        e.contains("kustomization.yaml") && e.contains("'helmCharts' is not supported"),
        "{e}"
    );
    let e = fails(&[
        (
            "build/kustomization.yaml",
            "resources: [cm.yaml]\ntransformers: [plugin.yaml]\n",
        ),
        ("build/cm.yaml", CM),
        (
            "build/plugin.yaml",
            "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: x\n",
        ),
    ]);
    assert!(
        e.contains("plugin.yaml") && e.contains("external plugins disabled") && e.contains("ChartInflator"),
        "{e}"
    );
}

#[test]
fn missing_kustomization_and_remote_without_mirror() {
    let e = fails(&[("build/readme.txt", "no kustomization here")]);
    assert!(e.contains("unable to find one of 'kustomization.yaml'"), "{e}");
    let e = fails(&[(
        "build/kustomization.yaml",
        "resources:\n- github.com/kubeflow/manifests//common/x?ref=v1.11.0\n",
    )]);
    assert!(e.contains("--mirror") && e.contains("kustomization.yaml"), "{e}");
}
