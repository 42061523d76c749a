//! `cargo xtask images`, checked with tools that did not build the images:
//! skopeo reads the archives, Debian's docker-registry stores the pushes,
//! GNU tar unpacks the layers and chroot runs the binary.
//!
//! The release build happens once per target dir; later runs reuse it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const MAX_COMPRESSED: u64 = 25 * 1000 * 1000;

#[test]
fn images_are_reproducible_readable_small_and_run() {
    let test = "images_are_reproducible_readable_small_and_run";
    let Some(skopeo) = testkit::require_tool(test, "skopeo") else {
        return;
    };
    let names = buildable_images(test);
    let tmp = tempdir();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut args_a = vec!["images", "--out", path_str(&a)];
    for n in &names {
        args_a.extend(["--image", n]);
    }
    args_a.extend(build_flag());
    let out_a = xtask_ok(&args_a);
    // The second run packs the same binaries again: what must not differ is
    // everything images adds (a fresh compile would also race with edits to
    // the controllers' sources in a shared checkout).
    let mut args_b = args_a.clone();
    args_b[2] = path_str(&b);
    if build_flag().is_none() {
        args_b.push("--no-build");
    }
    let out_b = xtask_ok(&args_b);
    let version = workspace_version();
    let revision = git(&testkit::workspace_root(), &["rev-parse", "HEAD"]);

    for name in &names {
        let archive = a.join(format!("{name}.oci.tar"));
        // Two builds: byte-identical archives, one digest.
        let digest = printed_digest(&out_a, name);
        assert_eq!(
            digest,
            printed_digest(&out_b, name),
            "{name}: two builds, two digests"
        );
        assert_eq!(
            std::fs::read(&archive).unwrap(),
            std::fs::read(b.join(format!("{name}.oci.tar"))).unwrap(),
            "{name}: archives differ"
        );

        // skopeo reads it and agrees on the digest.
        let reference = format!("oci-archive:{}", archive.display());
        let info = skopeo_inspect(&skopeo, &reference, &[]);
        assert_eq!(info["Digest"], digest.as_str(), "{name}: skopeo's digest");
        assert_eq!(info["Os"], "linux");
        let labels = &info["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], version.as_str());
        assert_eq!(labels["org.opencontainers.image.revision"], revision.as_str());
        assert_eq!(labels["org.opencontainers.image.title"], *name);
        assert!(
            labels["org.opencontainers.image.source"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let config = skopeo_inspect(&skopeo, &reference, &["--config"]);
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], format!("/{name}"));

        // Compressed size: what a pull transfers.
        let raw = skopeo_inspect(&skopeo, &reference, &["--raw"]);
        let size: u64 = raw["config"]["size"].as_u64().unwrap()
            + raw["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["size"].as_u64().unwrap())
                .sum::<u64>();
        eprintln!("{name}: {digest}, {:.2} MB compressed", size as f64 / 1e6);
        assert!(size < MAX_COMPRESSED, "{name} is {size} bytes compressed");

        // The binary runs from the unpacked root filesystem, as uid 65532.
        let rootfs = tmp.path().join(format!("{name}-rootfs"));
        unpack(&skopeo, &archive, &rootfs);
        check_rootfs(
            &rootfs,
            labels["dev.kflite.ca-roots"].as_str().unwrap_or_default(),
        );
        match run_in_rootfs(&rootfs, name) {
            None => testkit::skip(
                test,
                "neither root nor unprivileged user namespaces: the binary was not run",
            ),
            Some(run) => {
                assert!(
                    run.status.success(),
                    "{name} --version in the image: {}",
                    String::from_utf8_lossy(&run.stderr)
                );
                assert_eq!(
                    String::from_utf8_lossy(&run.stdout).trim(),
                    format!("{name} {version}")
                );
            }
        }
    }
}

/// The unpacked image: users, and the CA roots its label names (pinned
/// crate and the bundle's sha256), not the build host's.
fn check_rootfs(rootfs: &Path, ca_label: &str) {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
    let certs = std::fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let sha: String = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &certs))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        ca_label.starts_with("webpki-root-certs ") && ca_label.ends_with(&format!(", sha256:{sha}")),
        "label {ca_label:?} names the pinned roots and this bundle (sha256 {sha})"
    );
    assert!(
        String::from_utf8_lossy(&certs)
            .matches("-----BEGIN CERTIFICATE-----")
            .count()
            > 100
    );
    // Nothing else: no shell, no libc.
    let top: Vec<String> = std::fs::read_dir(rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["etc", "tmp"].contains(&n.as_str()))
        .collect();
    assert_eq!(top.len(), 1, "one binary at the root, found {top:?}");
}

#[test]
fn pushed_image_pulls_back_with_the_same_digest() {
    let test = "pushed_image_pulls_back_with_the_same_digest";
    let Some((skopeo, registry)) = skopeo_and_registry(test) else {
        return;
    };
    let names = buildable_images(test);
    let tmp = tempdir();
    let target = format!("{}/kflite", registry.addr);
    let mut args = vec!["images", "--out", path_str(tmp.path()), "--push", &target];
    for n in &names {
        args.extend(["--image", n]);
    }
    args.extend(build_flag());
    let first = xtask_ok(&args);
    // A second push finds every blob there and stores the same manifest.
    let second = xtask_ok(&args);
    let version = workspace_version();
    for name in &names {
        let digest = printed_digest(&first, name);
        assert_eq!(digest, printed_digest(&second, name));
        assert!(
            first.contains(&format!("{target}/{name}:{version}@{digest}")),
            "{first}"
        );
        let remote = format!("docker://{target}/{name}:{version}");
        let info = skopeo_inspect(&skopeo, &remote, &["--tls-verify=false"]);
        assert_eq!(info["Digest"], digest.as_str(), "{name}: registry's digest");
        // Pull it back into an archive: same manifest digest.
        let pulled = tmp.path().join(format!("{name}.pulled.tar"));
        run(std::process::Command::new(&skopeo)
            .args(["copy", "--quiet", "--src-tls-verify=false", &remote])
            .arg(format!("oci-archive:{}", pulled.display())));
        let back = skopeo_inspect(&skopeo, &format!("oci-archive:{}", pulled.display()), &[]);
        assert_eq!(back["Digest"], digest.as_str(), "{name}: pulled-back digest");
    }
}

#[test]
fn unknown_image_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["images", "--image", "kfctl", "--out", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no image named 'kfctl'"), "{err}");
}

/// The same commit, cloned into two directories of different depth, builds
/// the same image digest: nothing of the checkout's path, the build host's
/// CA store or an unlocked dependency reaches the image. Both builds share
/// this workspace's target directory (dependencies compile once, with the
/// same flags); each clone recompiles only its own crates.
#[test]
fn images_from_two_clones_have_one_digest() {
    let test = "images_from_two_clones_have_one_digest";
    if build_flag().is_some() {
        testkit::skip(test, "KFLITE_IMAGES_PREBUILT=1: this test must build");
        return;
    }
    let Some(name) = buildable_images(test).into_iter().next() else {
        return;
    };
    let root = testkit::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let tmp = tempdir();
    // Both clones first, at one commit (the checkout may move meanwhile).
    let head = git(&root, &["rev-parse", "HEAD"]);
    let dirs = ["one/kflite", "two/deeper/checkout"];
    for dir in dirs {
        let clone = tmp.path().join(dir);
        std::fs::create_dir_all(clone.parent().unwrap()).unwrap();
        git(
            tmp.path(),
            &["clone", "-q", "--no-checkout", path_str(&root), path_str(&clone)],
        );
        git(&clone, &["checkout", "-q", &head]);
    }
    let mut digests = Vec::new();
    for dir in dirs {
        let clone = tmp.path().join(dir);
        // Newer sources than any build output: cargo recompiles this
        // clone's crates instead of reusing the other clone's (it keys them
        // by their path relative to the workspace, so it would).
        touch_sources(&clone.join("crates"));
        let out_dir = clone.join("images-out");
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["images", "--image", name, "--out", path_str(&out_dir)])
            .env("KFLITE_PROJECT_ROOT", &clone)
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&clone)
            .stderr(Stdio::inherit())
            .output()
            .expect("xtask images");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{dir}: xtask images failed: {stdout}");
        eprintln!("{test}: {dir} built in {:.0?}", started.elapsed());
        digests.push(printed_digest(&stdout, name));
    }
    assert_eq!(digests[0], digests[1], "{name}: two clones, two digests");
}

/// Sets every file's modification time below `dir` to now.
fn touch_sources(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            touch_sources(&p);
        } else {
            let f = std::fs::File::options().append(true).open(&p).unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
        }
    }
}
