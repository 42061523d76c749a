//! `cargo xtask gpu-check`: the prepared check for a machine with a GPU,
//! PyTorch and CUDA's `cuobjdump` (no network needed once built).
//!
//! It builds gpu-probe, runs `gpu-probe --json` (driver, devices, kernels
//! of PyTorch's libraries, the launch test, fatbin containers handed to the
//! driver), launches a real PyTorch kernel, lists `libtorch_cuda.so` with
//! `cuobjdump`, and prints one verdict per claim:
//! - the driver and the launch test pass;
//! - every fatbin container gpu-probe handed to the driver loaded exactly
//!   when gpu-probe's verdict said it would;
//! - gpu-probe's verdict for `libtorch_cuda.so` (native/PTX vs none) agrees
//!   with whether PyTorch's kernels really launch;
//! - the SASS and PTX arch lists gpu-probe reads from `libtorch_cuda.so`
//!   equal `cuobjdump --list-elf` / `--list-ptx`;
//! - `torch.cuda.get_arch_list()` is covered by what gpu-probe read.
//!
//! Raw outputs go to `--out` (default `target/gpu-check/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// Use this gpu-probe binary instead of building one.
    #[arg(long)]
    gpu_probe: Option<PathBuf>,
    /// Build with `cargo build --offline` (the GPU machine has no network).
    #[arg(long)]
    offline: bool,
    /// Python that has PyTorch.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// cuobjdump to compare with (default: PATH, then /usr/local/cuda/bin).
    #[arg(long)]
    cuobjdump: Option<PathBuf>,
    /// Fatbin containers per library that gpu-probe hands to the driver.
    #[arg(long, default_value_t = 12)]
    load_images: usize,
    /// Where to write the raw outputs.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One claim and whether it held (`None`: could not be checked here).
struct Verdict {
    name: &'static str,
    held: Option<bool>,
    detail: String,
}

const TORCH_PROBE: &str = r#"
import json, os
r = {}
try:
    import torch
    r["torch_dir"] = os.path.dirname(torch.__file__)
    r["version"] = torch.__version__
    r["cuda"] = torch.version.cuda
    r["arch_list"] = torch.cuda.get_arch_list()
    r["available"] = torch.cuda.is_available()
    if r["available"]:
        r["device"] = torch.cuda.get_device_name(0)
        r["capability"] = list(torch.cuda.get_device_capability(0))
    try:
        x = torch.arange(1024, device="cuda", dtype=torch.float32)
        s = float((x * 2 + 1).sum().item())
        a = torch.ones(256, 256, device="cuda")
        m = float((a @ a)[0, 0].item())
        torch.cuda.synchronize()
        r["launch_ok"] = (s == 1024.0 * 1024.0) and (m == 256.0)
        r["launch_result"] = [s, m]
    except Exception as e:
        r["launch_ok"] = False
        r["launch_error"] = (str(e).strip().splitlines() or [repr(e)])[0]
except Exception as e:
    r["import_error"] = repr(e)
print(json.dumps(r))
"#;

pub fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let out = args.out.clone().unwrap_or_else(|| root.join("target/gpu-check"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();

    let probe_bin = match &args.gpu_probe {
        Some(p) => p.clone(),
        None => build(&root, args.offline)?,
    };
    eprintln!("gpu-check: gpu-probe is {}", probe_bin.display());

    // PyTorch: where it is, what it was built for, and whether its kernels run.
    let torch = python_json(&args.python, TORCH_PROBE)
        .unwrap_or_else(|e| serde_json::json!({ "import_error": format!("{e:#}") }));
    write(&out.join("torch.json"), &serde_json::to_string_pretty(&torch)?)?;
    eprintln!("gpu-check: torch: {torch}");
    let torch_dir = torch["torch_dir"].as_str().map(PathBuf::from);

    // gpu-probe, table for the log and JSON for the verdicts.
    let mut probe = Command::new(&probe_bin);
    probe
        .arg("--load-images")
        .arg(args.load_images.to_string())
        .arg("--python")
        .arg(&args.python);
    if let Some(site) = torch_dir.as_deref().and_then(Path::parent) {
        probe.arg("--site-packages").arg(site);
    }
    // Eager loading: an image the driver cannot use fails at load, where gpu-probe looks.
    probe.env("CUDA_MODULE_LOADING", "EAGER");
    let table = probe.output().context("running gpu-probe")?;
    println!("{}", String::from_utf8_lossy(&table.stdout));
    let json_run = probe
        .arg("--json")
        .stderr(Stdio::inherit())
        .output()
        .context("running gpu-probe --json")?;
    write(
        &out.join("gpu-probe.json"),
        &String::from_utf8_lossy(&json_run.stdout),
    )?;
    let report: Value = serde_json::from_slice(&json_run.stdout).with_context(|| {
        format!(
            "gpu-probe --json printed no JSON (exit {:?})",
            json_run.status.code()
        )
    })?;

    let mut verdicts = Vec::new();
    for id in ["driver", "launch"] {
        let check = report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id));
        let status = check.and_then(|c| c["status"].as_str()).unwrap_or("missing");
        verdicts.push(Verdict {
            name: if id == "driver" {
                "driver check"
            } else {
                "launch test (embedded PTX)"
            },
            held: Some(status == "ok"),
            detail: format!(
                "{status}: {}",
                check.and_then(|c| c["reason"].as_str()).unwrap_or_default()
            ),
        });
    }
    verdicts.push(images_verdict(&report));

    let torch_cuda = torch_dir.as_ref().map(|d| d.join("lib/libtorch_cuda.so"));
    let lib = report["libraries"].as_array().and_then(|libs| {
        libs.iter().find(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/libtorch_cuda.so"))
        })
    });
    verdicts.push(torch_launch_verdict(&torch, lib));
    match (&torch_cuda, lib) {
        (Some(path), Some(lib)) => {
            let cuobjdump = args.cuobjdump.clone().or_else(find_cuobjdump);
            verdicts.extend(cuobjdump_verdicts(cuobjdump.as_deref(), path, lib, &out));
            verdicts.push(torch_arch_list_verdict(&torch, lib));
        }
        _ => verdicts.push(Verdict {
            name: "arch list = cuobjdump",
            held: None,
            detail: "no libtorch_cuda.so found (is PyTorch with CUDA installed for --python?)".into(),
        }),
    }

    println!("{:<38}  {:<6}  DETAIL", "VERDICT", "RESULT");
    for v in &verdicts {
        let result = match v.held {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "N/A",
        };
        println!("{:<38}  {result:<6}  {}", v.name, v.detail);
    }
    let summary: Vec<Value> = verdicts
        .iter()
        .map(|v| serde_json::json!({ "verdict": v.name, "held": v.held, "detail": v.detail }))
        .collect();
    write(
        &out.join("verdicts.json"),
        &serde_json::to_string_pretty(&summary)?,
    )?;
    println!(
        "gpu-check: {:.1} s; outputs in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.held == Some(false))
        .map(|v| v.name)
        .collect();
    if !failed.is_empty() {
        bail!("gpu-check: failed: {}", failed.join(", "));
    }
    Ok(())
}

fn build(root: &Path, offline: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--package", "gpu-probe", "--bin", "gpu-probe"]);
    if offline {
        cmd.arg("--offline");
    }
    eprintln!(
        "gpu-check: cargo build -p gpu-probe{}",
        if offline { " --offline" } else { "" }
    );
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!(
            "cargo build -p gpu-probe failed ({status}); without network, build with --offline from a vendored or pre-fetched state, or pass --gpu-probe PATH"
        );
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug/gpu-probe"))
}

fn python_json(python: &Path, script: &str) -> Result<Value> {
    let out = Command::new(python)
        .args(["-c", script])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    serde_json::from_slice(&out.stdout).with_context(|| format!("{} printed no JSON", python.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn find_cuobjdump() -> Option<PathBuf> {
    crate::tools::which("cuobjdump").or_else(|| {
        let p = PathBuf::from("/usr/local/cuda/bin/cuobjdump");
        p.is_file().then_some(p)
    })
}

/// Every container handed to the driver loaded exactly when predicted.
fn images_verdict(report: &Value) -> Verdict {
    let images = report["launch"]["images"].as_array().cloned().unwrap_or_default();
    if images.is_empty() {
        return Verdict {
            name: "fatbin verdict = driver load",
            held: None,
            detail: "no container was loaded (launch failed or no libraries)".into(),
        };
    }
    let disagree: Vec<String> = images
        .iter()
        .filter(|i| i["agrees"] != true)
        .map(|i| {
            format!(
                "{} @{}: predicted {}, loaded {}, {}",
                i["library"], i["container_offset"], i["predicted"], i["loaded"], i["error"]
            )
        })
        .collect();
    let loaded = images.iter().filter(|i| i["loaded"] == true).count();
    Verdict {
        name: "fatbin verdict = driver load",
        held: Some(disagree.is_empty()),
        detail: if disagree.is_empty() {
            format!(
                "{} containers: {loaded} loaded, {} refused, all as predicted",
                images.len(),
                images.len() - loaded
            )
        } else {
            disagree.join("; ")
        },
    }
}

/// gpu-probe's verdict on libtorch_cuda.so against a real PyTorch launch.
fn torch_launch_verdict(torch: &Value, lib: Option<&Value>) -> Verdict {
    let name = "libtorch_cuda verdict = torch launch";
    let Some(lib) = lib else {
        return Verdict {
            name,
            held: None,
            detail: format!("gpu-probe did not scan libtorch_cuda.so; torch: {torch}"),
        };
    };
    let Some(coverage) = lib["verdict"]["coverage"].as_str() else {
        return Verdict {
            name,
            held: None,
            detail: format!(
                "gpu-probe gave no verdict for libtorch_cuda.so: {}",
                lib["verdict"]
            ),
        };
    };
    let Some(launched) = torch["launch_ok"].as_bool() else {
        return Verdict {
            name,
            held: None,
            detail: format!("PyTorch did not run: {}", torch["import_error"]),
        };
    };
    let predicted = matches!(coverage, "native" | "ptx");
    Verdict {
        name,
        held: Some(predicted == launched),
        detail: format!(
            "gpu-probe: {coverage} for {}; torch {} launch {}{}",
            lib["verdict"]["device"],
            torch["version"],
            if launched { "ok" } else { "failed" },
            torch["launch_error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
    }
}

/// Counts per arch from `cuobjdump --list-elf|--list-ptx` output lines like
/// `ELF file    1: libtorch_cuda.1.sm_90.cubin`.
fn cuobjdump_counts(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some((_, name)) = line.split_once(": ") else {
            continue;
        };
        if let Some(arch) = name.rsplit('.').nth(1).filter(|a| a.starts_with("sm_")) {
            *counts.entry(arch.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// gpu-probe's per-arch counts, named as cuobjdump names them (it prints
/// `sm_90a` but drops the family suffix: `sm_100f` is listed as `sm_100`).
fn probe_counts(map: &Value) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (arch, n) in map.as_object().into_iter().flatten() {
        let name = arch.strip_suffix('f').unwrap_or(arch).to_string();
        *counts.entry(name).or_insert(0) += n.as_u64().unwrap_or(0);
    }
    counts
}

fn cuobjdump_verdicts(tool: Option<&Path>, path: &Path, lib: &Value, out: &Path) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for (flag, key, name) in [
        ("--list-elf", "sass", "SASS archs = cuobjdump --list-elf"),
        ("--list-ptx", "ptx", "PTX archs = cuobjdump --list-ptx"),
    ] {
        let Some(tool) = tool else {
            verdicts.push(Verdict {
                name,
                held: None,
                detail: "cuobjdump not found (pass --cuobjdump)".into(),
            });
            continue;
        };
        let started = Instant::now();
        let run = Command::new(tool).arg(flag).arg(path).output();
        let text = match run {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => {
                verdicts.push(Verdict {
                    name,
                    held: None,
                    detail: format!("running {}: {e}", tool.display()),
                });
                continue;
            }
        };
        let _ = write(&out.join(format!("cuobjdump{flag}.txt")), &text);
        let theirs = cuobjdump_counts(&text);
        let ours = probe_counts(&lib["summary"][key]);
        let detail = if theirs == ours {
            format!(
                "{} entries over {} archs agree ({:.1} s for cuobjdump): {:?}",
                ours.values().sum::<u64>(),
                ours.len(),
                started.elapsed().as_secs_f64(),
                ours
            )
        } else {
            format!("gpu-probe {ours:?} vs cuobjdump {theirs:?}")
        };
        verdicts.push(Verdict {
            name,
            held: Some(theirs == ours),
            detail,
        });
    }
    verdicts
}

/// `torch.cuda.get_arch_list()` (sm_XX: SASS, compute_XX: PTX) against what
/// gpu-probe read from the library.
fn torch_arch_list_verdict(torch: &Value, lib: &Value) -> Verdict {
    let name = "torch arch list within gpu-probe's";
    let Some(list) = torch["arch_list"].as_array() else {
        return Verdict {
            name,
            held: None,
            detail: "torch.cuda.get_arch_list() unavailable".into(),
        };
    };
    let sass = probe_counts(&lib["summary"]["sass"]);
    let ptx = probe_counts(&lib["summary"]["ptx"]);
    let missing: Vec<&str> = list
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| match a.strip_prefix("compute_") {
            Some(n) => !ptx.contains_key(&format!("sm_{n}")),
            None => !sass.contains_key(*a),
        })
        .collect();
    Verdict {
        name,
        held: Some(missing.is_empty()),
        detail: if missing.is_empty() {
            format!("{list:?}")
        } else {
            format!("torch lists {missing:?}, not found in libtorch_cuda.so")
        },
    }
}
