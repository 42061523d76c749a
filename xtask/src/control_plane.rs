//! Builds the real control plane the e2e tests run on: kube-apiserver and
//! kube-controller-manager from `k8s.io/kubernetes` and etcd from
//! `go.etcd.io/etcd/server/v3`, at the versions pinned by the Go modules in
//! `xtask/control-plane/` (their go.mod and go.sum), into
//! `target/control-plane/bin`. A stamp of the inputs makes a warm run free.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::tools::Tool;

/// The API server reports this version (kubectl under test is 1.37.1).
const KUBERNETES_VERSION: &str = testsvc::control_plane::KUBERNETES_VERSION;

struct Module {
    dir: &'static str,
    /// (package, binary name): `go build` alone would name etcd's `server`.
    binaries: &'static [(&'static str, &'static str)],
}

const MODULES: &[Module] = &[
    Module {
        dir: "kubernetes",
        binaries: &[
            ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
            (
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "kube-controller-manager",
            ),
        ],
    },
    Module {
        dir: "etcd",
        binaries: &[("go.etcd.io/etcd/server/v3", "etcd")],
    },
];

fn ldflags() -> String {
    // `go build` of a dependency carries no version; stamp the one go.mod pins,
    // as Kubernetes' own build does, so /version and kubectl see v1.37.2.
    let (major, minor) = {
        let mut parts = KUBERNETES_VERSION.trim_start_matches('v').split('.');
        (parts.next().unwrap_or("1"), parts.next().unwrap_or("0"))
    };
    let v = "k8s.io/component-base/version";
    format!(
        "-s -w -X {v}.gitVersion={KUBERNETES_VERSION} -X {v}.gitMajor={major} -X {v}.gitMinor={minor} \
         -X {v}.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES_VERSION}"
    )
}

fn source_dir() -> PathBuf {
    crate::project_root().join("xtask/control-plane")
}

pub fn bin_dir() -> PathBuf {
    testsvc::Binaries::default_dir()
}

/// What the binaries are built from: both modules' go.mod and go.sum, the
/// flags and the Go version.
fn stamp(go: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for m in MODULES {
        for f in ["go.mod", "go.sum"] {
            let path = source_dir().join(m.dir).join(f);
            h.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        }
    }
    h.update(ldflags());
    let version = Command::new(go)
        .arg("version")
        .output()
        .context("running `go version`")?;
    h.update(&version.stdout);
    Ok(format!("{:x}", h.finalize()))
}

fn tools() -> Vec<Tool> {
    let bin = bin_dir();
    vec![
        Tool {
            env: "KFLITE_TOOL_ETCD",
            path: bin.join("etcd"),
        },
        Tool {
            env: "KFLITE_TOOL_KUBE_APISERVER",
            path: bin.join("kube-apiserver"),
        },
        Tool {
            env: "KFLITE_TOOL_KUBE_CONTROLLER_MANAGER",
            path: bin.join("kube-controller-manager"),
        },
    ]
}

/// Builds the binaries unless the stamp says they are current; returns them.
pub fn ensure_built() -> Result<Vec<Tool>> {
    let go = crate::tools::which("go").context("`go` is not on PATH (the polyglot machines have Go 1.26)")?;
    let bin = bin_dir();
    let stamp_file = bin.join("inputs.sha256");
    let wanted = stamp(&go)?;
    let current = std::fs::read_to_string(&stamp_file).unwrap_or_default();
    let all_there = tools().iter().all(|t| t.path.is_file());
    if all_there && current.trim() == wanted {
        return Ok(tools());
    }
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let started = Instant::now();
    for m in MODULES {
        for (package, name) in m.binaries {
            eprintln!("xtask: go build {package} (the first build takes minutes)");
            let out = Command::new(&go)
                .current_dir(source_dir().join(m.dir))
                .args(["build", "-trimpath", "-buildvcs=false", "-mod=readonly"])
                .arg(format!("-ldflags={}", ldflags()))
                .arg("-o")
                .arg(bin.join(name))
                .arg(package)
                // The pinned go.mod decides; never fetch another toolchain.
                .env("GOTOOLCHAIN", "local")
                .output()
                .context("running `go build`")?;
            if !out.status.success() {
                bail!(
                    "go build {package} in xtask/control-plane/{} failed ({}):\n{}",
                    m.dir,
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    std::fs::write(&stamp_file, &wanted).with_context(|| format!("writing {}", stamp_file.display()))?;
    eprintln!(
        "xtask: control plane built in {:.0} s into {}",
        started.elapsed().as_secs_f64(),
        bin.display()
    );
    Ok(tools())
}
