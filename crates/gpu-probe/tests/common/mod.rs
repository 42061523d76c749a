//! Test support for gpu-probe: where the CUDA wheels the tests read live,
//! the NVIDIA tools used as oracles, and synthetic ELF files.
#![allow(dead_code)] // each test crate uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;

use gpu_probe::SmArch;
use gpu_probe::fatbin::FatbinWriter;

/// site-packages holding the test wheels (`nvidia-nvjpeg-cu12`,
/// `nvidia-cuda-cuobjdump`, `nvidia-cuda-nvcc-cu12`): `KFLITE_CUDA_WHEEL_DIR`,
/// else the purelib of `KFLITE_TOOL_PYTHON`, else of the workspace venv.
pub fn site_packages() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KFLITE_CUDA_WHEEL_DIR") {
        return Some(PathBuf::from(dir));
    }
    let python = std::env::var_os("KFLITE_TOOL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::workspace_root().join("target/kflite-venv/bin/python"));
    let out = Command::new(&python)
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A file from the test wheels, or a loud skip. Under `KFLITE_REQUIRE=1`
/// with `KFLITE_CUDA_WHEEL_DIR` set, a missing file is a broken pipeline.
pub fn wheel_file(test: &str, rel: &str, package: &str) -> Option<PathBuf> {
    let found = site_packages().map(|d| d.join(rel)).filter(|p| p.is_file());
    if found.is_none() {
        if std::env::var("KFLITE_REQUIRE").as_deref() == Ok("1")
            && std::env::var_os("KFLITE_CUDA_WHEEL_DIR").is_some()
        {
            panic!("{test}: KFLITE_CUDA_WHEEL_DIR is set but {rel} (pip package {package}) is not there");
        }
        testkit::skip(
            test,
            &format!("{rel} not found: pip install {package} (cargo xtask test installs it)"),
        );
    }
    found
}

/// `cuobjdump`: `KFLITE_TOOL_CUOBJDUMP`/PATH, else the `nvidia-cuda-cuobjdump` wheel.
pub fn cuobjdump(test: &str) -> Option<PathBuf> {
    testkit::find_tool("cuobjdump").or_else(|| {
        wheel_file(
            test,
            "nvidia/cu13/bin/cuobjdump",
            "nvidia-cuda-cuobjdump==13.5.37",
        )
    })
}

/// `ptxas`: `KFLITE_TOOL_PTXAS`/PATH, else the `nvidia-cuda-nvcc-cu12` wheel.
pub fn ptxas(test: &str) -> Option<PathBuf> {
    testkit::find_tool("ptxas").or_else(|| {
        wheel_file(
            test,
            "nvidia/cuda_nvcc/bin/ptxas",
            "nvidia-cuda-nvcc-cu12==12.9.86",
        )
    })
}

/// Architectures `cuobjdump --list-elf` (or `--list-ptx`) names, counted.
pub fn cuobjdump_list(tool: &Path, flag: &str, file: &Path) -> std::collections::BTreeMap<String, usize> {
    let out = Command::new(tool)
        .arg(flag)
        .arg(file)
        .output()
        .expect("run cuobjdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || text.is_empty(),
        "cuobjdump {flag} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        // "ELF file    1: libnvjpeg.so.1.sm_100.cubin"
        let Some((_, name)) = line.split_once(": ") else {
            continue;
        };
        let arch = name.rsplit('.').nth(1).unwrap_or_default();
        assert!(arch.starts_with("sm_"), "unexpected cuobjdump line {line:?}");
        *counts.entry(arch.to_string()).or_insert(0) += 1;
    }
    counts
}

pub fn sm(s: &str) -> SmArch {
    s.parse().expect("arch")
}

/// A fake cubin payload: an ELF magic and some bytes (never loaded).
pub const FAKE_CUBIN: &[u8] = b"\x7fELF\x02\x01\x01\x33fake cubin for tests";
pub const FAKE_PTX: &[u8] = b".version 8.5\n.target sm_90\n.address_size 64\n\0";

/// One container holding `entries` of (kind, arch, (major, minor)).
pub fn container(entries: &[(u16, &str, (u16, u16))]) -> Vec<u8> {
    let mut w = FatbinWriter::new();
    for &(kind, arch, version) in entries {
        let payload = if kind == gpu_probe::fatbin::KIND_PTX {
            FAKE_PTX
        } else {
            FAKE_CUBIN
        };
        w = w.entry(kind, sm(arch), version, 0, payload);
    }
    w.finish()
}

/// Write an x86-64 ELF object to `path`, with `.nv_fatbin` holding the
/// concatenated `containers` (8-byte aligned), or without that section.
pub fn write_elf(path: &Path, containers: Option<&[Vec<u8>]>) {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3], 1); // ret: host code of some sort
    if let Some(containers) = containers {
        let mut region = Vec::new();
        for c in containers {
            region.extend_from_slice(c);
            region.resize(region.len().next_multiple_of(8), 0);
        }
        let sec = obj.add_section(Vec::new(), b".nv_fatbin".to_vec(), SectionKind::ReadOnlyData);
        obj.append_section_data(sec, &region, 8);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, obj.write().expect("write ELF")).expect("write file");
}

/// A real cubin (or PTX text) for `arch`, assembled by `ptxas` from the launch
/// check's kernel: cuobjdump validates payloads, so fakes will not do.
pub fn real_code(ptxas: &Path, arch: &str) -> (Vec<u8>, Vec<u8>) {
    let ptx = gpu_probe::launch::ADD_ONE_PTX
        .replace(".version 6.0", ".version 8.8")
        .replace(".target sm_50", &format!(".target {arch}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("k.ptx");
    let out = dir.path().join("k.cubin");
    std::fs::write(&src, &ptx).expect("write ptx");
    let run = Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run ptxas");
    assert!(
        run.status.success(),
        "ptxas -arch={arch}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut ptx = ptx.into_bytes();
    ptx.push(0);
    (std::fs::read(&out).expect("read cubin"), ptx)
}

/// gpu-probe's SASS and PTX entry counts per arch, keyed by the names cuobjdump gives
/// them, so they compare directly with [`cuobjdump_list`].
#[allow(dead_code)] // not every test binary that includes `common` uses it
pub fn counts_by_cuobjdump_name(
    summary: &gpu_probe::fatbin::FatbinSummary,
) -> (
    std::collections::BTreeMap<String, usize>,
    std::collections::BTreeMap<String, usize>,
) {
    let by_name = |m: &std::collections::BTreeMap<SmArch, usize>| {
        m.iter().map(|(a, n)| (a.cuobjdump_name(), *n)).collect()
    };
    (by_name(&summary.sass), by_name(&summary.ptx))
}
