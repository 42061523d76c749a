//! `cargo xtask release`: images, a render pinned by digest, the branch.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// An overlay with one Deployment per image, referenced the way kflite's
/// manifests do (`ghcr.io/kflite/<name>:<version>`), plus an unrelated image.
fn write_overlay(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut resources = String::new();
    for name in names {
        resources.push_str(&format!("- {name}.yaml\n"));
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: kubeflow\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      initContainers:\n      - name: wait\n        image: busybox:1.36\n      containers:\n      - name: main\n        image: ghcr.io/kflite/{name}:0.0.1\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join("kustomization.yaml"), format!("resources:\n{resources}")).unwrap();
}

fn release_args<'a>(
    version: &'a str,
    overlay: &'a Path,
    repo: &'a Path,
    registry: &'a str,
    out: &'a Path,
    names: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "release",
        version,
        "--overlay",
        path_str(overlay),
        "--repo",
        path_str(repo),
        "--registry",
        registry,
        "--out",
        path_str(out),
        "--branch",
        "manifests",
        "--repo-url",
        "https://git.example.invalid/owner/platform.git",
    ];
    for n in names {
        args.extend(["--image", n]);
    }
    args.extend(build_flag());
    args
}

/// `name: main` container images of the rendered Deployments.
fn pinned_images(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image: "))
        .filter(|i| !i.starts_with("busybox"))
        .map(str::to_string)
        .collect()
}

/// An overlay naming `names`, an empty bare repository for the branch, and an output dir.
fn release_scratch(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let (overlay, repo, out) = (dir.join("overlay"), dir.join("repo.git"), dir.join("out"));
    write_overlay(&overlay, names);
    git(dir, &["init", "-q", "--bare", path_str(&repo)]);
    (overlay, repo, out)
}

#[test]
fn release_dry_run_pins_by_digest_and_pushes_nothing() {
    let test = "release_dry_run_pins_by_digest_and_pushes_nothing";
    let names = buildable_images(test);
    let tmp = tempdir();
    let (overlay, repo, out) = release_scratch(tmp.path(), &names);
    let version = workspace_version();
    // Port 1 on loopback: any push attempt would fail the run.
    let registry = "127.0.0.1:1/kflite";
    let mut args = release_args(&version, &overlay, &repo, registry, &out, &names);
    args.push("--dry-run");
    let stdout = xtask_ok(&args);
    assert!(stdout.contains("would commit"), "{stdout}");
    assert_eq!(git(&repo, &["for-each-ref"]), "", "a dry run moves no branch");

    let rendered = std::fs::read_to_string(out.join("rendered.yaml")).unwrap();
    let mut want = Vec::new();
    for name in &names {
        let digest = printed_digest(&stdout, name);
        // The digest is the archive's, as an independent reader sees it.
        if let Some(skopeo) = testkit::find_tool("skopeo") {
            let archive = out.join(format!("images/{name}.oci.tar"));
            let info = skopeo_inspect(&skopeo, &format!("oci-archive:{}", archive.display()), &[]);
            assert_eq!(info["Digest"], digest.as_str());
        }
        want.push(format!("{registry}/{name}:{version}@{digest}"));
    }
    let mut got = pinned_images(&rendered);
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(
        rendered.contains("- image: busybox:1.36\n"),
        "other images are left alone"
    );
}

#[test]
fn release_refuses_a_version_that_is_not_the_workspaces() {
    let tmp = tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["release", "v99.0.0", "--dry-run", "--out", path_str(tmp.path())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("releasing 99.0.0"), "{err}");
}

#[test]
fn release_pushes_pins_and_publishes() {
    let test = "release_pushes_pins_and_publishes";
    let Some((skopeo, registry)) = skopeo_and_registry(test) else {
        return;
    };
    let names = buildable_images(test);
    let tmp = tempdir();
    let (overlay, repo, out) = release_scratch(tmp.path(), &names);
    let version = workspace_version();
    let target = format!("{}/kflite", registry.addr);
    let stdout = xtask_ok(&release_args(&version, &overlay, &repo, &target, &out, &names));
    assert!(stdout.contains("manifests: committed"), "{stdout}");

    for name in &names {
        let file = git(&repo, &["show", &format!("manifests:Deployment.{name}.k8s.yaml")]);
        let pinned = pinned_images(&file);
        assert_eq!(pinned.len(), 1, "{file}");
        let (_, digest) = pinned[0].split_once('@').unwrap();
        let info = skopeo_inspect(
            &skopeo,
            &format!("docker://{target}/{name}:{version}"),
            &["--tls-verify=false"],
        );
        assert_eq!(
            info["Digest"], digest,
            "{name}: the branch pins what the registry holds"
        );
    }
}
