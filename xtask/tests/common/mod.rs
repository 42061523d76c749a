//! Shared by the images/publish/release tests: run the xtask binary, a
//! throw-away registry (Debian's `docker-registry`), skopeo, git.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cargo xtask ARGS` (the built binary) in the workspace root.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(testkit::workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .expect("running xtask")
}

/// `--no-build` when `KFLITE_IMAGES_PREBUILT=1`: package the release
/// binaries already in the target dir instead of building them (for a
/// shared checkout whose controller sources change under a running test; CI
/// leaves it unset and builds).
pub fn build_flag() -> Option<&'static str> {
    (std::env::var("KFLITE_IMAGES_PREBUILT").as_deref() == Ok("1")).then_some("--no-build")
}

/// [`xtask`] that must succeed; returns stdout.
pub fn xtask_ok(args: &[&str]) -> String {
    let out = xtask(args);
    assert!(
        out.status.success(),
        "xtask {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    run(Command::new("git").arg("-C").arg(dir).args(args))
        .trim_end()
        .to_string()
}

/// The digest `xtask images` printed for `name` (`name  sha256:…  …`).
pub fn printed_digest(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name))
                .then(|| f.next().map(str::to_string))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"))
}

/// `skopeo inspect` of a transport reference, as JSON.
pub fn skopeo_inspect(skopeo: &Path, reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = run(Command::new(skopeo).arg("inspect").args(extra).arg(reference));
    serde_json::from_str(&out).expect("skopeo inspect JSON")
}

/// The workspace version (what `--version` prints and images are tagged with).
pub fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(testkit::workspace_root().join("Cargo.toml")).unwrap();
    let mut in_pkg = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_pkg = line == "[workspace.package]";
        } else if in_pkg && let Some(v) = line.strip_prefix("version = ") {
            return v.trim_matches('"').to_string();
        }
    }
    panic!("no [workspace.package] version");
}

/// Which of kflite's images can be built in this checkout (package with a
/// binary of the same name); the others are skipped loudly.
pub fn buildable_images(test: &str) -> Vec<&'static str> {
    let out = run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .current_dir(testkit::workspace_root()),
    );
    let meta: serde_json::Value = serde_json::from_str(&out).unwrap();
    ["route-controller", "pipeline-artifacts"]
        .into_iter()
        .filter(|name| {
            let has = meta["packages"].as_array().unwrap().iter().any(|p| {
                p["name"] == *name
                    && p["targets"].as_array().unwrap().iter().any(|t| {
                        t["name"] == *name && t["kind"].as_array().unwrap().iter().any(|k| k == "bin")
                    })
            });
            if !has {
                testkit::skip(
                    test,
                    &format!("package {name} has no binary yet; its image is not checked"),
                );
            }
            has
        })
        .collect()
}

/// A `docker-registry` (distribution) on 127.0.0.1 with its storage in a temp dir.
pub struct LocalRegistry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

/// skopeo and a running throw-away registry, or a recorded skip.
pub fn skopeo_and_registry(test: &str) -> Option<(std::path::PathBuf, LocalRegistry)> {
    let skopeo = testkit::require_tool(test, "skopeo")?;
    let registry = testkit::require_tool(test, "docker-registry")?;
    Some((skopeo, LocalRegistry::start(&registry)))
}

impl LocalRegistry {
    pub fn start(binary: &Path) -> LocalRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting docker-registry");
        let reg = LocalRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reg.get("/v2/").starts_with("HTTP/1.1 200") {
                return reg;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not answer on {}", reg.addr);
    }

    /// A raw GET; returns the response head and body.
    pub fn get(&self, path: &str) -> String {
        let Ok(mut s) = TcpStream::connect(&self.addr) else {
            return String::new();
        };
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unpacks an image into a root filesystem with skopeo (to a `dir:`
/// layout) and GNU tar — tools independent of the code that built it.
pub fn unpack(skopeo: &Path, archive: &Path, rootfs: &Path) {
    let layout = rootfs.with_extension("layout");
    run(Command::new(skopeo)
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("dir:{}", layout.display())));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("manifest.json")).unwrap()).unwrap();
    std::fs::create_dir_all(rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let hex = layer["digest"].as_str().unwrap().trim_start_matches("sha256:");
        run(Command::new("tar")
            .arg("-xzf")
            .arg(layout.join(hex))
            .arg("-C")
            .arg(rootfs)
            .arg("--no-same-owner"));
    }
}

/// Runs `/<name> --version` inside `rootfs` as the image's uid 65532: plain
/// chroot as root, else `sudo -n chroot` (CI runners), else `unshare -r
/// chroot` (an unprivileged user namespace; then as mapped root). `None`
/// when none of them is allowed here.
pub fn run_in_rootfs(rootfs: &Path, name: &str) -> Option<Output> {
    let is_root = run(Command::new("id").arg("-u")).trim() == "0";
    let sudo = !is_root
        && Command::new("sudo")
            .args(["-n", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
    // Absolute paths: the child's environment is cleared below, PATH included.
    let program = |name: &str| testkit::find_tool(name).unwrap_or_else(|| std::path::PathBuf::from(name));
    let mut cmd = if is_root || sudo {
        let mut c = if sudo {
            let mut c = Command::new(program("sudo"));
            c.args(["-n", "chroot"]);
            c
        } else {
            Command::new(program("chroot"))
        };
        c.arg("--userspec=65532:65532").arg(rootfs);
        c
    } else {
        let mut c = Command::new(program("unshare"));
        c.args(["-r", "chroot"]).arg(rootfs);
        c
    };
    let out = cmd
        .arg(format!("/{name}"))
        .arg("--version")
        .env_clear()
        .output()
        .ok()?;
    if !is_root && !sudo && !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unshare")
    {
        return None;
    }
    Some(out)
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
