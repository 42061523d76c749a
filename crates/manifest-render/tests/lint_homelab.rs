//! Lint on the owner's overlay (`../shared/reference/homelab`) and on the
//! platform overlay (`overlays/homelab`): the traps the owner patched by
//! hand are found when the patches are taken out, and nothing is found on
//! the overlays as they are.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use manifest_render::lint::{Config, Finding, Rule, Severity, lint, lint_dir, lint_yaml};
use manifest_render::yaml::{Value, emit_documents, parse_documents};
use manifest_render::{Options, build_objects};

struct Shared {
    overlay: PathBuf,
    reference: PathBuf,
    mirror: PathBuf,
}

fn shared(test: &str) -> Option<Shared> {
    let dir = testkit::require_shared(test)?;
    Some(Shared {
        overlay: dir.join("reference/homelab"),
        reference: dir.join("reference/homelab.yaml"),
        mirror: dir.join("upstream"),
    })
}

/// A copy of the owner's overlay without the `patches` entries `drop` picks.
/// Returns the temp dir and how many entries were dropped.
fn overlay_without(s: &Shared, drop: impl Fn(&Value) -> bool) -> (tempfile::TempDir, usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&s.overlay).expect("read overlay") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy overlay file");
    }
    let path = tmp.path().join("kustomization.yaml");
    let mut doc = parse_documents(&std::fs::read_to_string(&path).expect("read kustomization"))
        .expect("kustomization parses")
        .remove(0);
    let patches = doc
        .get_mut("patches")
        .and_then(Value::as_seq_mut)
        .expect("the overlay has patches");
    let before = patches.len();
    patches.retain(|p| !drop(p));
    let dropped = before - patches.len();
    std::fs::write(&path, emit_documents([&doc])).expect("write kustomization");
    (tmp, dropped)
}

fn target_field<'a>(patch: &'a Value, field: &str) -> &'a str {
    patch
        .get_path(&["target", field])
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn lint_overlay(dir: &Path, mirror: &Path) -> Vec<Finding> {
    lint_dir(
        dir,
        &Options {
            mirror: Some(mirror.to_path_buf()),
            ..Default::default()
        },
        &Config::default(),
    )
    .expect("overlay builds")
}

fn show(fs: &[Finding]) -> String {
    fs.iter().map(|f| format!("{f}\n")).collect()
}

#[test]
fn owners_overlay_has_no_findings() {
    let Some(s) = shared("owners_overlay_has_no_findings") else {
        return;
    };
    let fs = lint_overlay(&s.overlay, &s.mirror);
    assert!(fs.is_empty(), "{}", show(&fs));
    // The reference output itself (what kustomize printed) is clean too.
    let text = std::fs::read_to_string(&s.reference).expect("reference output");
    let fs = lint_yaml(&text, &s.reference, &Config::default()).expect("reference parses");
    assert!(fs.is_empty(), "{}", show(&fs));
}

#[test]
fn without_the_profile_patch_the_profile_is_reported() {
    let Some(s) = shared("without_the_profile_patch_the_profile_is_reported") else {
        return;
    };
    let (dir, dropped) = overlay_without(&s, |p| target_field(p, "kind") == "Profile");
    assert_eq!(dropped, 1);
    let fs = lint_overlay(dir.path(), &s.mirror);
    assert!(!fs.is_empty(), "the unpatched Profile must be reported");
    // Every finding is about that one Profile, and its name is among them.
    for f in &fs {
        assert_eq!(
            (f.object.group(), f.object.kind.as_str(), f.object.name.as_str()),
            ("kubeflow.org", "Profile", "$(profile-name)"),
            "{f}"
        );
        assert_eq!(f.rule, Rule::UnexpandedVar, "{f}");
    }
    assert!(
        fs.iter().any(|f| f.field.as_deref() == Some("metadata.name")),
        "{}",
        show(&fs)
    );
    assert!(
        fs[0]
            .origin
            .as_deref()
            .is_some_and(|o| o.ends_with("common/user-namespace/base/profile-instance.yaml")),
        "{}",
        show(&fs)
    );
}

#[test]
fn without_the_istio_delete_patches_the_istio_objects_are_reported() {
    let Some(s) = shared("without_the_istio_delete_patches_the_istio_objects_are_reported") else {
        return;
    };
    let is_istio_delete = |p: &Value| {
        target_field(p, "group").ends_with(".istio.io")
            && p.get("patch")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("$patch: delete"))
    };
    let (dir, dropped) = overlay_without(&s, is_istio_delete);
    assert_eq!(
        dropped, 3,
        "DestinationRule, VirtualService and AuthorizationPolicy deletes"
    );
    let options = Options {
        mirror: Some(s.mirror.clone()),
        ..Default::default()
    };
    let (objects, _) = build_objects(dir.path(), &options).expect("overlay builds");

    // What the deletes removed: every object of an Istio group. The rest is
    // the reference output, object for object.
    let id = |api: &str, kind: &str, ns: &str, name: &str| format!("{api} {kind} {ns}/{name}");
    let istio: BTreeSet<String> = objects
        .iter()
        .filter(|r| r.gvk().group.ends_with(".istio.io") && r.kind() != "CustomResourceDefinition")
        .map(|r| id(r.api_version(), r.kind(), r.namespace(), r.name()))
        .collect();
    let reference = std::fs::read_to_string(&s.reference).expect("reference output");
    let reference_objects = parse_documents(&reference).expect("reference parses").len();
    assert_eq!(
        objects.len() - reference_objects,
        istio.len(),
        "only Istio objects come back"
    );
    assert_eq!(istio.len(), 19, "the issue counts 19 Istio objects: {istio:#?}");

    let fs = lint(&objects, &Config::default());
    let reported: BTreeSet<String> = fs
        .iter()
        .map(|f| {
            id(
                &f.object.api_version,
                &f.object.kind,
                &f.object.namespace,
                &f.object.name,
            )
        })
        .collect();
    assert_eq!(reported, istio, "{}", show(&fs));
    assert_eq!(fs.len(), 19, "one finding per object: {}", show(&fs));
    assert!(
        fs.iter()
            .all(|f| f.rule == Rule::UnknownKind && f.message.contains("stub CRD")),
        "{}",
        show(&fs)
    );
}

#[test]
fn without_the_network_policy_deletes_the_gateway_blocking_policy_is_reported() {
    let test = "without_the_network_policy_deletes_the_gateway_blocking_policy_is_reported";
    let Some(s) = shared(test) else { return };
    let (dir, dropped) = overlay_without(&s, |p| target_field(p, "kind") == "NetworkPolicy");
    assert_eq!(dropped, 2, "centraldashboard and seaweedfs deletes");
    let options = Options {
        mirror: Some(s.mirror.clone()),
        ..Default::default()
    };
    let (objects, _) = build_objects(dir.path(), &options).expect("overlay builds");
    let policies: Vec<String> = objects
        .iter()
        .filter(|r| r.kind() == "NetworkPolicy")
        .map(|r| r.name().to_string())
        .collect();
    // Upstream's seaweedfs policy admits only profile namespaces, istio-system
    // and same-namespace pods: the gateway is kept out.
    assert_eq!(policies, ["seaweedfs"], "what the deletes removed");
    let fs = lint(&objects, &Config::default());
    assert_eq!(fs.len(), 1, "{}", show(&fs));
    assert_eq!(
        (fs[0].rule, fs[0].severity),
        (Rule::GatewayBlocked, Severity::Warning),
        "{}",
        fs[0]
    );
    assert_eq!(fs[0].object.name, "seaweedfs");
    assert!(fs[0].message.contains("kubeflow/seaweedfs"), "{}", fs[0]);
}

#[test]
fn build_strict_passes_on_the_owners_overlay_with_the_same_bytes() {
    let Some(s) = shared("build_strict_passes_on_the_owners_overlay_with_the_same_bytes") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_manifest-render"))
        .args(["build", "--strict", "--mirror"])
        .arg(&s.mirror)
        .arg(&s.overlay)
        .output()
        .expect("run manifest-render");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning[") && !stderr.contains("error["),
        "{stderr}"
    );
    assert!(
        out.stdout == std::fs::read(&s.reference).expect("reference"),
        "output differs from the reference"
    );
}

/// Issue 10, acceptance 1: `manifest-render lint --strict` passes on the platform.
#[test]
fn platform_overlay_passes_lint_strict() {
    let test = "platform_overlay_passes_lint_strict";
    let overlay = testkit::workspace_root().join("overlays/homelab");
    if !overlay.join("kustomization.yaml").is_file() {
        testkit::skip(test, "overlays/homelab/kustomization.yaml is missing");
        return;
    }
    let mirror = match std::env::var_os("KFLITE_UPSTREAM_MIRROR") {
        Some(m) => PathBuf::from(m),
        None => match testkit::require_shared(test) {
            Some(s) => s.join("upstream"),
            None => return,
        },
    };
    let out = Command::new(env!("CARGO_BIN_EXE_manifest-render"))
        .args(["lint", "--strict", "--mirror"])
        .arg(&mirror)
        .arg(&overlay)
        .output()
        .expect("run manifest-render");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    // And the library agrees, on a build that has objects.
    let (objects, _) = build_objects(
        &overlay,
        &Options {
            mirror: Some(mirror),
            ..Default::default()
        },
    )
    .expect("platform builds");
    assert!(objects.len() > 100, "{} objects", objects.len());
    let fs = lint(&objects, &Config::default());
    assert!(fs.is_empty(), "{}", show(&fs));
}
