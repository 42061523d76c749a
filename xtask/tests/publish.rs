//! `cargo xtask publish` into throw-away repositories. The files on the
//! branch are compared with what kustomize itself prints (`kubectl
//! kustomize`, and the owner's overlay rendered by kustomize v5.8.1 in
//! `../shared/reference`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;

/// Files on `branch` of `repo`: name → content.
fn branch_files(repo: &Path, branch: &str) -> BTreeMap<String, String> {
    git(repo, &["ls-tree", "--name-only", branch])
        .lines()
        .map(|name| {
            let text = run(Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["show", &format!("{branch}:{name}")]));
            (name.to_string(), text)
        })
        .collect()
}

/// A YAML stream as kustomize prints it, cut into its documents.
fn documents(stream: &str) -> Vec<String> {
    let parts: Vec<&str> = stream.split("\n---\n").collect();
    let last = parts.len() - 1;
    let mut docs: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, d)| if i < last { format!("{d}\n") } else { d.to_string() })
        .collect();
    docs.sort();
    docs
}

fn sorted_values(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = files.values().cloned().collect();
    v.sort();
    v
}

fn write_overlay(dir: &Path, with_deployment: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut resources = vec!["config.yaml"];
    if with_deployment {
        resources.push("deployment.yaml");
    }
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}",
            resources.iter().map(|r| format!("- {r}\n")).collect::<String>()
        ),
    )
    .unwrap();
    // Same kind and name in two namespaces: must become two files.
    std::fs::write(
        dir.join("config.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n  k: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-b\ndata:\n  k: b\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: team-a\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: ghcr.io/kflite/route-controller:0.1.0\n",
    )
    .unwrap();
}

fn publish(overlay: &Path, repo: &Path, app: &Path) -> String {
    xtask_ok(&[
        "publish",
        "--branch",
        "rendered",
        "--repo",
        path_str(repo),
        "--overlay",
        path_str(overlay),
        "--application",
        path_str(app),
        "--repo-url",
        "https://git.example.invalid/owner/platform.git",
    ])
}

#[test]
fn publish_commits_only_changes_one_object_per_file() {
    let tmp = tempdir();
    let (overlay, repo, app) = (
        tmp.path().join("overlay"),
        tmp.path().join("repo.git"),
        tmp.path().join("app.yaml"),
    );
    write_overlay(&overlay, true);
    git(tmp.path(), &["init", "-q", "--bare", path_str(&repo)]);

    let out = publish(&overlay, &repo, &app);
    assert!(out.contains("committed"), "{out}");
    let first = git(&repo, &["rev-parse", "rendered"]);
    let files = branch_files(&repo, "rendered");
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "ConfigMap.team-a.settings.k8s.yaml",
            "ConfigMap.team-b.settings.k8s.yaml",
            "Deployment.web.k8s.yaml",
            "Namespace.team-a.k8s.yaml"
        ]
    );
    // Each file is exactly one of the objects kustomize prints.
    match testkit::require_tool("publish_commits_only_changes_one_object_per_file", "kubectl") {
        Some(kubectl) => {
            let reference = run(Command::new(kubectl).arg("kustomize").arg(&overlay));
            assert_eq!(sorted_values(&files), documents(&reference));
        }
        None => {
            for (name, text) in &files {
                assert!(
                    !text.contains("\n---\n") && text.starts_with("apiVersion: "),
                    "{name}: {text}"
                );
            }
        }
    }

    // Nothing changed: no commit.
    let out = publish(&overlay, &repo, &app);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(git(&repo, &["rev-parse", "rendered"]), first);

    // An object removed from the overlay leaves the branch (ArgoCD prunes it).
    write_overlay(&overlay, false);
    publish(&overlay, &repo, &app);
    let third = git(&repo, &["rev-parse", "rendered"]);
    assert_ne!(third, first);
    assert_eq!(git(&repo, &["rev-parse", "rendered^"]), first);
    assert!(!branch_files(&repo, "rendered").contains_key("Deployment.web.k8s.yaml"));

    let app: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&app).unwrap()).unwrap();
    assert_eq!(app["kind"], "Application");
    assert_eq!(
        app["spec"]["source"]["repoURL"],
        "https://git.example.invalid/owner/platform.git"
    );
    assert_eq!(app["spec"]["source"]["targetRevision"], "rendered");
    assert_eq!(app["spec"]["source"]["path"], ".");
    assert_eq!(
        app["spec"]["syncPolicy"]["automated"],
        serde_json::json!({"prune": true, "selfHeal": true})
    );
    assert_eq!(
        app["spec"]["syncPolicy"]["syncOptions"],
        serde_json::json!(["ServerSideApply=true"])
    );
}

#[test]
fn publish_leaves_the_checkout_alone() {
    let tmp = tempdir();
    let (overlay, repo, app) = (
        tmp.path().join("overlay"),
        tmp.path().join("work"),
        tmp.path().join("app.yaml"),
    );
    write_overlay(&overlay, true);
    git(tmp.path(), &["init", "-q", "-b", "main", path_str(&repo)]);
    std::fs::write(repo.join("notes.txt"), "uncommitted work\n").unwrap();
    git(&repo, &["add", "notes.txt"]);
    let before = (
        git(&repo, &["status", "--porcelain"]),
        git(&repo, &["write-tree"]),
    );

    publish(&overlay, &repo, &app);
    assert_eq!(
        (
            git(&repo, &["status", "--porcelain"]),
            git(&repo, &["write-tree"])
        ),
        before
    );
    assert_eq!(git(&repo, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(branch_files(&repo, "rendered").len(), 4);

    // The branch someone has checked out is refused.
    let out = xtask(&[
        "publish",
        "--branch",
        "main",
        "--repo",
        path_str(&repo),
        "--overlay",
        path_str(&overlay),
        "--application",
        path_str(&app),
        "--repo-url",
        "x",
    ]);
    assert!(!out.status.success());
    assert_eq!(git(&repo, &["status", "--porcelain"]), before.0);
}

#[test]
fn publish_of_the_owners_overlay_matches_kustomize() {
    let test = "publish_of_the_owners_overlay_matches_kustomize";
    let Some(shared) = testkit::require_shared(test) else {
        return;
    };
    let tmp = tempdir();
    let (repo, app) = (tmp.path().join("repo.git"), tmp.path().join("app.yaml"));
    git(tmp.path(), &["init", "-q", "--bare", path_str(&repo)]);
    // The overlay, copied where its lock can be written.
    let overlay = tmp.path().join("homelab");
    std::fs::create_dir_all(&overlay).unwrap();
    for f in std::fs::read_dir(shared.join("reference/homelab"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(f.path(), overlay.join(f.file_name())).unwrap();
    }
    let mirror = shared.join("upstream");
    let publish_args = [
        "publish",
        "--branch",
        "manifests",
        "--repo",
        path_str(&repo),
        "--overlay",
        path_str(&overlay),
        "--mirror",
        path_str(&mirror),
        "--application",
        path_str(&app),
        "--repo-url",
        "https://git.example.invalid/owner/platform.git",
    ];
    // Publishing renders --locked: no lock, no publish.
    assert!(
        !xtask(&publish_args).status.success(),
        "published an overlay with remote bases and no kflite.lock"
    );
    let devnull = tmp.path().join("render.yaml");
    xtask_ok(&[
        "render",
        path_str(&overlay),
        "--mirror",
        path_str(&mirror),
        "-o",
        path_str(&devnull),
    ]);
    let out = xtask_ok(&publish_args);
    assert!(out.contains("committed"), "{out}");
    let files = branch_files(&repo, "manifests");
    let reference = std::fs::read_to_string(shared.join("reference/homelab.yaml")).unwrap();
    let docs = documents(&reference);
    assert_eq!(files.len(), docs.len(), "one file per object");
    assert_eq!(
        sorted_values(&files),
        docs,
        "files are kustomize's objects, byte for byte"
    );
    // The owner's names: <Kind>.<name>.k8s.yaml (no collisions in this overlay).
    assert!(
        files.contains_key("Deployment.centraldashboard.k8s.yaml"),
        "{:?}",
        files.keys().take(5).collect::<Vec<_>>()
    );
}
