//! `cargo xtask images`: release-builds kflite's controllers as static
//! binaries and packs each into a reproducible OCI image, no Docker needed.
//!
//! The binaries are linked statically against glibc (`-C
//! target-feature=+crt-static`): the musl target cannot be installed here
//! (rustup has no network), and glibc 2.34+ carries its `files` and `dns`
//! name services inside libc, so a static glibc binary resolves names with
//! no shared library at all. The image is therefore only: the binary, CA
//! certificates, passwd/group with uid/gid 65532 "nonroot", nsswitch.conf and
//! /tmp. A binary that still comes out dynamically linked is refused.
//!
//! Nothing comes from the build host: `cargo build --locked`, the CA roots
//! from a pinned crate ([`crate::ca_roots`], named in a label), and no
//! path of the checkout in the build flags, so two clones in different
//! directories build the same digests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::buildinfo::{self, Workspace};
use crate::oci::{self, Entry, Image, NONROOT_UID};
use crate::registry::Registry;

/// The images kflite ships: package = binary = image name. kfctl runs on the
/// operator's machine, not in the cluster; gpu-probe dlopens the NVIDIA
/// driver libraries the container toolkit injects, which a static binary
/// cannot do — neither gets an image.
pub const IMAGES: &[&str] = &["route-controller", "pipeline-artifacts"];

/// Where the image keeps its CA bundle.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The most a pull of one image may transfer.
pub const MAX_COMPRESSED: u64 = 25 * 1000 * 1000;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory for the `<name>.oci.tar` archives [default: <target>/images].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Push to REGISTRY (`host[:port]/path`, e.g. `ghcr.io/owner`) as REGISTRY/<name>:<tag>.
    #[arg(long, value_name = "REGISTRY")]
    pub push: Option<String>,
    /// Image tag and version label [default: the package version].
    #[arg(long)]
    pub tag: Option<String>,
    /// Build only this image (repeatable) [default: all of them].
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// Talk plain HTTP to the registry (loopback registries always do).
    #[arg(long)]
    pub insecure: bool,
    /// CA bundle to ship as /etc/ssl/certs/ca-certificates.crt [default:
    /// Mozilla's roots from the pinned webpki-root-certs crate]. The
    /// image's `dev.kflite.ca-roots` label names it and its sha256.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Package the binaries the last build left in the target dir; do not run cargo.
    #[arg(long)]
    pub no_build: bool,
}

/// One image, built and written as an oci-archive.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub image: Image,
    pub archive: PathBuf,
    /// `REGISTRY/name:tag@sha256:…` once pushed.
    pub pushed: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let mut built = build(&args)?;
    if let Some(registry) = &args.push {
        push(&mut built, registry, args.insecure)?;
    }
    for b in &built {
        println!(
            "{:<20} {}  {:>6.2} MB  {}{}",
            b.name,
            b.image.digest(),
            b.image.compressed_size() as f64 / 1e6,
            b.archive.display(),
            b.pushed
                .as_deref()
                .map(|r| format!("  pushed {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Pushes every image to `registry`, recording the pinned reference.
pub fn push(built: &mut [Built], registry: &str, insecure: bool) -> Result<()> {
    let mut reg = Registry::new(registry, insecure)?;
    for b in built.iter_mut() {
        b.pushed = Some(
            reg.push(&b.name, &b.image)
                .with_context(|| format!("pushing {}", b.name))?,
        );
    }
    Ok(())
}

/// Builds the binaries and assembles the images under `args.out`.
pub fn build(args: &Args) -> Result<Vec<Built>> {
    let ws = buildinfo::workspace()?;
    let names: Vec<String> = if args.images.is_empty() {
        IMAGES.iter().map(|s| s.to_string()).collect()
    } else {
        args.images.clone()
    };
    for name in &names {
        if !IMAGES.contains(&name.as_str()) {
            bail!("no image named '{name}' (images: {})", IMAGES.join(", "));
        }
        let has_bin = ws.packages.get(name).is_some_and(|p| p.bins.contains(name));
        if !has_bin {
            bail!("package '{name}' has no binary target '{name}' to put in its image");
        }
    }
    let out = args.out.clone().unwrap_or_else(|| ws.target_dir.join("images"));
    let triple = buildinfo::host_triple()?;
    let binaries = if args.no_build {
        let paths: Vec<PathBuf> = names
            .iter()
            .map(|n| static_binary_path(&ws, &triple, n))
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
            bail!(
                "--no-build: {} is not there; run without --no-build first",
                missing.display()
            );
        }
        paths
    } else {
        cargo_build_static(&ws, &triple, &names)?
    };

    let created = oci::rfc3339(buildinfo::source_date_epoch(&ws.root)?);
    let revision = buildinfo::revision(&ws.root);
    let architecture = match triple.split('-').next() {
        Some("x86_64") => "amd64",
        Some("aarch64") => "arm64",
        _ => bail!("no OCI architecture known for host {triple}"),
    };
    let roots = match &args.ca_bundle {
        None => crate::ca_roots::pinned(),
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("reading the CA bundle {}", path.display()))?;
            crate::ca_roots::described(pem, &format!("file {}", path.display()))
        }
    };
    let base = base_layer(&roots)?;

    let mut built = Vec::new();
    for (name, binary) in names.iter().zip(binaries) {
        let pkg = &ws.packages[name];
        let tag = args.tag.clone().unwrap_or_else(|| pkg.version.clone());
        let data = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
        check_static(&data).with_context(|| format!("{}", binary.display()))?;
        let app = oci::layer(
            vec![Entry::file(name, 0o755, data)],
            &format!("/{name} (cargo build --release, {triple}, crt-static)"),
        )?;
        let labels: BTreeMap<String, String> = [
            ("org.opencontainers.image.title", name.as_str()),
            ("org.opencontainers.image.description", &pkg.description),
            ("org.opencontainers.image.source", &pkg.repository),
            ("org.opencontainers.image.revision", &revision),
            ("org.opencontainers.image.version", &tag),
            ("org.opencontainers.image.created", &created),
            ("org.opencontainers.image.licenses", &pkg.license),
            (crate::ca_roots::LABEL, &roots.label),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let spec = oci::ImageSpec {
            architecture: architecture.into(),
            entrypoint: vec![format!("/{name}")],
            env: vec![format!("SSL_CERT_FILE={CA_BUNDLE}")],
            labels,
            created: created.clone(),
            tag: tag.clone(),
        };
        let image = oci::image(&spec, vec![base.clone(), app])?;
        if image.compressed_size() > MAX_COMPRESSED {
            bail!(
                "image {name} is {} bytes compressed, over the {MAX_COMPRESSED}-byte budget",
                image.compressed_size()
            );
        }
        let archive = out.join(format!("{name}.oci.tar"));
        image.write_oci_archive(&archive)?;
        built.push(Built {
            name: name.clone(),
            image,
            archive,
            pushed: None,
        });
    }
    Ok(built)
}

/// `cargo build --release` of `names`, statically linked, with build paths
/// remapped so the binary does not depend on where the checkout lives.
fn cargo_build_static(ws: &Workspace, triple: &str, names: &[String]) -> Result<Vec<PathBuf>> {
    // Workspace sources reach rustc as paths relative to the workspace root,
    // so the checkout's own directory needs no remapping (and must not be in
    // the flags: they key every dependency's build, and a second clone would
    // rebuild them all); registry sources are absolute under CARGO_HOME.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    // With --target these flags reach only the target's crates, not build
    // scripts or proc macros; CARGO_ENCODED_RUSTFLAGS outranks RUSTFLAGS.
    let flags = [
        "-Ctarget-feature=+crt-static".to_string(),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ]
    .join("\x1f");
    let mut cmd = buildinfo::cargo();
    cmd.current_dir(&ws.root)
        .args(["build", "--release", "--locked", "--target", triple])
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .env_remove("RUSTFLAGS");
    for n in names {
        cmd.args(["-p", n, "--bin", n]);
    }
    eprintln!("building {} (release, static) ...", names.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release of {} failed ({status})", names.join(", "));
    }
    Ok(names.iter().map(|n| static_binary_path(ws, triple, n)).collect())
}

fn static_binary_path(ws: &Workspace, triple: &str, name: &str) -> PathBuf {
    ws.target_dir.join(triple).join("release").join(name)
}

/// The layer every image shares: users, CA certificates, name service
/// order, /tmp.
pub fn base_layer(roots: &crate::ca_roots::CaRoots) -> Result<oci::Layer> {
    let certs = roots.pem.clone();
    if !String::from_utf8_lossy(&certs).contains("-----BEGIN CERTIFICATE-----") {
        bail!("the CA bundle ({}) holds no PEM certificate", roots.label);
    }
    let u = NONROOT_UID;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{u}:{u}:nonroot:/nonexistent:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{u}:\n");
    oci::layer(
        vec![
            Entry::dir("etc", 0o755),
            Entry::file("etc/passwd", 0o644, passwd.into_bytes()),
            Entry::file("etc/group", 0o644, group.into_bytes()),
            // /etc/hosts first (Kubernetes writes hostAliases there), then DNS.
            Entry::file("etc/nsswitch.conf", 0o644, b"hosts: files dns\n".to_vec()),
            Entry::dir("etc/ssl", 0o755),
            Entry::dir("etc/ssl/certs", 0o755),
            Entry::file("etc/ssl/certs/ca-certificates.crt", 0o644, certs),
            Entry::dir("tmp", 0o1777),
        ],
        &format!(
            "passwd/group (nonroot {u}), nsswitch.conf, /tmp, CA roots: {}",
            roots.label
        ),
    )
}

/// Refuses an ELF executable that asks for a program interpreter: the
/// image has no dynamic loader and no libc to give it.
pub fn check_static(elf: &[u8]) -> Result<()> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        bail!("not an ELF executable");
    }
    if elf[4] != 2 || elf[5] != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(ph) = elf.get(at..at + 4) else {
            bail!("truncated program header table")
        };
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(ph.try_into().unwrap_or_default()) == PT_INTERP {
            bail!("dynamically linked (has a program interpreter); the image carries no libc");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_are_refused() {
        // The test binary itself is a normal, dynamically linked executable.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_static(&me).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
        assert!(check_static(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn base_layer_needs_a_pem_bundle() {
        let bogus = crate::ca_roots::described(b"nothing".to_vec(), "file bundle");
        let err = base_layer(&bogus).unwrap_err().to_string();
        assert!(
            err.contains("no PEM certificate") && err.contains("file bundle"),
            "{err}"
        );
        assert!(base_layer(&crate::ca_roots::pinned()).is_ok());
    }
}
