//! Hostile input: every attempt to read a file outside the kustomization
//! root, and every YAML shape that would exhaust memory or the stack, ends
//! with exit 1 and a message naming the file, within 10 s and 256 MiB.
//! Where kustomize answers quickly, `../shared/tools/kustomize-ref` is the
//! oracle that the case is refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_manifest-render");
/// What a file outside the root holds; it must never reach stdout or stderr.
const SECRET: &str = "registry-token-7f3a9c";
const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaked\ndata:\n  k: registry-token-7f3a9c\n";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, t) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, t).expect("write");
    }
}

fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, at).expect("symlink");
}

/// A temporary tree holding, outside any root, the files a case tries to reach.
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        &[
            ("secret.txt", SECRET),
            ("outside.yaml", CM),
            ("outside.env", "K=registry-token-7f3a9c\n"),
            (
                "patch.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: registry-token-7f3a9c\n",
            ),
            ("config.yaml", "namePrefix:\n- path: metadata/name\n"),
            (
                "replacement.yaml",
                "source: {kind: ConfigMap, name: c, fieldPath: data.k}\ntargets: []\n",
            ),
        ],
    );
    tmp
}

/// Runs the binary on `dir` under `/usr/bin/time`; checks exit 1, no stdout,
/// no secret, the bounds; returns stderr.
fn refused(test: &str, dir: &Path, extra: &[&str]) -> Option<String> {
    let time = testkit::require_tool(test, "time")?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let rss_file = tmp.path().join("rss");
    let started = Instant::now();
    let out = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(BIN)
        .arg("build")
        .arg(dir)
        .args(extra)
        .env("KFLITE_CACHE_DIR", tmp.path().join("cache"))
        .env_remove("KFLITE_UPSTREAM_MIRROR")
        .env("CI", "1")
        .output()
        .expect("run manifest-render");
    let elapsed = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{test}: {err}");
    assert!(out.stdout.is_empty(), "{test}: output on stdout");
    assert!(
        !err.contains("panicked") && !err.contains(SECRET),
        "{test}: {err}"
    );
    let rss_kib: u64 = std::fs::read_to_string(&rss_file)
        .expect("time wrote the peak RSS")
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("peak RSS in KiB");
    eprintln!("{test}: exit 1 in {elapsed:.2?}, peak RSS {} MiB", rss_kib / 1024);
    assert!(elapsed < Duration::from_secs(10), "{test}: took {elapsed:?}");
    assert!(rss_kib < 256 * 1024, "{test}: peak RSS {rss_kib} KiB");
    Some(err)
}

/// kustomize refuses `dir` too. These cases name no remote from the
/// mirror, so `kubectl kustomize` itself is the reference (what
/// `../shared/tools/kustomize-ref` runs, without its mirror copy); skipped
/// loudly without kubectl.
fn reference_refuses(test: &str, dir: &Path) {
    let Some(kubectl) = testkit::require_tool(test, "kubectl") else {
        return;
    };
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run kubectl kustomize");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{test}: kustomize accepts it:\n{stdout}");
    assert!(!stdout.contains(SECRET), "{test}: kustomize leaked it");
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// The generator read that retried without the restrictor when an error's
/// text said "not UTF-8" — which the restrictor's own message did, quoting
/// a root whose path holds those words.
#[test]
fn generator_file_outside_root_in_a_dir_named_not_utf8() {
    let tmp = tree();
    let root = tmp.path().join("evil not UTF-8 here");
    write(
        &root,
        &[(
            "kustomization.yaml",
            "secretGenerator:\n- name: s\n  files:\n  - ../secret.txt\n",
        )],
    );
    restrictor_refuses("generator_file_outside_root_in_a_dir_named_not_utf8", &root);
}

/// A `kustomization.yaml` that is a link to a file outside its root.
#[test]
fn symlinked_kustomization_file_outside_root() {
    let tmp = tree();
    write(
        tmp.path(),
        &[(
            "elsewhere/kustomization.yaml",
            "configMapGenerator:\n- name: leaked\n  literals:\n  - k=registry-token-7f3a9c\n",
        )],
    );
    let root = tmp.path().join("build");
    link(
        &tmp.path().join("elsewhere/kustomization.yaml"),
        &root.join("kustomization.yaml"),
    );
    restrictor_refuses("symlinked_kustomization_file_outside_root", &root);
}

/// The load restrictor refuses `root`, naming its kustomization file; so
/// does kustomize.
fn restrictor_refuses(test: &str, root: &Path) {
    if let Some(err) = refused(test, root, &["--offline"]) {
        assert!(
            err.contains("kustomization.yaml") && err.contains("load restrictor"),
            "{err}"
        );
    }
    reference_refuses(test, root);
}

/// A case's name, kustomization and links (`at` → `to`, under the temporary tree).
type Case = (&'static str, String, Vec<(&'static str, &'static str)>);

/// Every field that names a file, each pointing out of the root by an
/// absolute path, `..`, or a symlink.
#[test]
fn escape_attempts_are_refused_as_kustomize_refuses_them() {
    let tmp = tree();
    let out = tmp.path();
    let abs = |f: &str| s(&out.join(f));
    let cases: Vec<Case> = vec![
        (
            "resource_absolute",
            format!("resources:\n- {}\n", abs("outside.yaml")),
            vec![],
        ),
        (
            "resource_dotdot",
            "resources:\n- ../outside.yaml\n".into(),
            vec![],
        ),
        (
            "resource_symlink",
            "resources:\n- link.yaml\n".into(),
            vec![("link.yaml", "outside.yaml")],
        ),
        (
            "patch_path_dotdot",
            "resources:\n- cm.yaml\npatches:\n- path: ../patch.yaml\n".into(),
            vec![],
        ),
        (
            "patch_strategic_merge_symlink",
            "resources:\n- cm.yaml\npatchesStrategicMerge:\n- p.yaml\n".into(),
            vec![("p.yaml", "patch.yaml")],
        ),
        (
            "configurations_dotdot",
            "resources:\n- cm.yaml\nconfigurations:\n- ../config.yaml\n".into(),
            vec![],
        ),
        (
            "replacements_absolute",
            format!(
                "resources:\n- cm.yaml\nreplacements:\n- path: {}\n",
                abs("replacement.yaml")
            ),
            vec![],
        ),
        (
            "configmap_files_symlink",
            "configMapGenerator:\n- name: g\n  files:\n  - key=data\n".into(),
            vec![("data", "secret.txt")],
        ),
        (
            "configmap_envs_dotdot",
            "configMapGenerator:\n- name: g\n  envs:\n  - ../outside.env\n".into(),
            vec![],
        ),
        (
            "secret_files_absolute",
            format!(
                "secretGenerator:\n- name: g\n  files:\n  - {}\n",
                abs("secret.txt")
            ),
            vec![],
        ),
        (
            "symlinked_dir_inside_root",
            "resources:\n- sub/outside.yaml\n".into(),
            vec![("sub", ".")],
        ),
        (
            "component_file_dotdot",
            "resources:\n- cm.yaml\ncomponents:\n- comp\n".into(),
            vec![],
        ),
    ];
    let test = "escape_attempts_are_refused_as_kustomize_refuses_them";
    for (name, kust, links) in cases {
        let root = out.join(name);
        write(
            &root,
            &[
                ("kustomization.yaml", &kust),
                (
                    "cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
                ),
                (
                    "comp/kustomization.yaml",
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nsecretGenerator:\n- name: x\n  files:\n  - ../../secret.txt\n",
                ),
            ],
        );
        for (at, to) in links {
            link(&out.join(to), &root.join(at));
        }
        if let Some(err) = refused(&format!("{test}/{name}"), &root, &["--offline"]) {
            assert!(
                err.contains(&s(&root)),
                "{name}: the message names no file: {err}"
            );
        }
        reference_refuses(&format!("{test}/{name}"), &root);
    }
}

/// A remote base (a real git repository fetched over `file://`) whose tree
/// holds a link to a file of the machine that renders it.
#[test]
fn remote_base_link_out_of_its_clone() {
    let test = "remote_base_link_out_of_its_clone";
    let Some(git) = testkit::require_tool(test, "git") else {
        return;
    };
    let tmp = tree();
    let repo = tmp.path().join("repo");
    write(&repo, &[("base/kustomization.yaml", "resources:\n- cm.yaml\n")]);
    link(&tmp.path().join("outside.yaml"), &repo.join("base/cm.yaml"));
    common::commit_all(&git, &repo, "v1");
    let root = tmp.path().join("build");
    write(
        &root,
        &[(
            "kustomization.yaml",
            &format!("resources:\n- file://{}//base?ref=v1\n", s(&repo)),
        )],
    );
    if let Some(err) = refused(test, &root, &[]) {
        assert!(
            err.contains("cm.yaml") && err.contains("load restrictor"),
            "{err}"
        );
    }
    reference_refuses(test, &root);
}

/// Nine levels of ten aliases: a billion nodes if expanded.
fn alias_bomb() -> String {
    let mut y = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\nlol:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        y.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    y
}

/// Builds a kustomization whose one resource `file` holds `yaml`; checks
/// the refusal names the file (`file:LINE:` where `line`) and says `why`.
/// With `oracle`, kustomize must refuse it too.
fn yaml_refused(test: &str, file: &str, yaml: &str, line: bool, why: &str, oracle: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        &[
            ("kustomization.yaml", &format!("resources:\n- {file}\n")),
            (file, yaml),
        ],
    );
    if let Some(err) = refused(test, tmp.path(), &["--offline"]) {
        let named = if line {
            format!("{file}:")
        } else {
            file.to_string()
        };
        assert!(err.contains(&named) && err.contains(why), "{err}");
    }
    if oracle {
        reference_refuses(test, tmp.path());
    }
}

const HEAD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

/// kustomize expands an alias bomb until memory runs out: no oracle for it.
#[test]
fn alias_bomb_is_refused() {
    yaml_refused(
        "alias_bomb_is_refused",
        "bomb.yaml",
        &alias_bomb(),
        true,
        "aliases",
        false,
    );
}

#[test]
fn long_string_aliased_many_times_is_refused() {
    let long = "x".repeat(1 << 20);
    let refs = vec!["*s"; 200].join(", ");
    let y = format!("{HEAD}x: &s {long}\ny: [{refs}]\n");
    yaml_refused(
        "long_string_aliased_many_times_is_refused",
        "big.yaml",
        &y,
        true,
        "MiB of text",
        false,
    );
}

#[test]
fn deep_flow_nesting_is_refused() {
    let n = 200_000;
    let y = format!("{HEAD}x: {}{}\n", "[".repeat(n), "]".repeat(n));
    yaml_refused(
        "deep_flow_nesting_is_refused",
        "deep.yaml",
        &y,
        true,
        "nested deeper",
        true,
    );
}

#[test]
fn deep_block_nesting_is_refused() {
    let mut y = HEAD.to_string();
    for i in 0..3000 {
        y.push_str(&" ".repeat(i));
        y.push_str("k:\n");
    }
    yaml_refused(
        "deep_block_nesting_is_refused",
        "deep.yaml",
        &y,
        true,
        "nested deeper",
        false,
    );
}

#[test]
fn huge_file_is_refused() {
    let big = "- x\n".repeat(5 << 20);
    yaml_refused("huge_file_is_refused", "huge.yaml", &big, false, "MiB", false);
}

/// Many small nodes under the size cap: the node limit holds memory down.
#[test]
fn many_nodes_are_refused() {
    let y = format!("{HEAD}x: [{}]\n", vec!["a"; 1_000_000].join(","));
    yaml_refused("many_nodes_are_refused", "many.yaml", &y, true, "nodes", false);
}

/// A kustomization file that never ends (a link to /dev/zero), online and
/// offline: the survey of remotes and the build both stop at the size cap.
#[test]
fn endless_kustomization_file_is_refused() {
    if !Path::new("/dev/zero").exists() {
        testkit::skip("endless_kustomization_file_is_refused", "no /dev/zero");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("build");
    write(&root, &[("kustomization.yaml", "resources:\n- sub\n")]);
    link(Path::new("/dev/zero"), &root.join("sub/kustomization.yaml"));
    for extra in [&["--offline"][..], &[][..]] {
        if let Some(err) = refused("endless_kustomization_file_is_refused", &root, extra) {
            assert!(err.contains("kustomization.yaml"), "{err}");
        }
    }
}
