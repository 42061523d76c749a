//! `cargo xtask release VERSION`: build and push the images, render the
//! overlay with every kflite image pinned by digest, publish the branch.
//!
//! Pinning goes through the renderer's own `images:` transformer: a
//! throw-away kustomization wraps the overlay and names each kflite image
//! with `newName`, `newTag` and `digest`, so every container field kustomize
//! knows about is covered. Afterwards each reference to a kflite image must
//! read `<registry>/<name>:<version>@sha256:…` or the release stops.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use manifest_render::yaml::{self, Value};

use crate::images::{self, Built};
use crate::publish::{self, AppArgs};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The version to release (`0.2.0` or `v0.2.0`); must be the workspace's version.
    pub version: String,
    /// Build everything and show what would be published; push nothing, move no branch.
    #[arg(long)]
    pub dry_run: bool,
    /// Where images are pushed (`host[:port]/path`).
    #[arg(long, env = "KFLITE_REGISTRY", default_value = "ghcr.io/kflite")]
    pub registry: String,
    /// Talk plain HTTP to the registry (loopback registries always do).
    #[arg(long)]
    pub insecure: bool,
    /// The branch ArgoCD follows.
    #[arg(long, default_value = "manifests")]
    pub branch: String,
    /// The git repository holding the branch [default: this checkout].
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Push the branch to this git remote.
    #[arg(long, value_name = "REMOTE")]
    pub push_branch: Option<String>,
    /// The kustomization to render [default: overlays/homelab].
    #[arg(long)]
    pub overlay: Option<PathBuf>,
    /// Mirror of remote bases [default: ../shared/upstream when present].
    #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
    pub mirror: Option<PathBuf>,
    /// Directory for image archives and the pinned render [default: <target>/kflite-release/VERSION].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Release only these images (repeatable) [default: all].
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,
    /// CA bundle for the images [default: the pinned roots, see `cargo xtask images --help`].
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// Package the release binaries already built instead of running cargo (tests).
    #[arg(long)]
    pub no_build: bool,
    #[command(flatten)]
    pub app: AppArgs,
}

pub fn run(args: Args) -> Result<()> {
    let version = args
        .version
        .strip_prefix('v')
        .unwrap_or(&args.version)
        .to_string();
    let ws = crate::buildinfo::workspace()?;
    let names: Vec<String> = if args.images.is_empty() {
        images::IMAGES.iter().map(|s| s.to_string()).collect()
    } else {
        args.images.clone()
    };
    for n in &names {
        let have = ws.packages.get(n).map(|p| p.version.as_str());
        if have != Some(version.as_str()) {
            bail!(
                "releasing {version} but {n} is version {} — set [workspace.package] version first",
                have.unwrap_or("(no such package)")
            );
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| ws.target_dir.join("kflite-release").join(&version));
    let overlay = args
        .overlay
        .clone()
        .unwrap_or_else(|| ws.root.join("overlays/homelab"));
    let overlay = overlay
        .canonicalize()
        .with_context(|| format!("overlay {}", overlay.display()))?;

    let mut built = images::build(&images::Args {
        out: Some(out.join("images")),
        push: None,
        tag: Some(version.clone()),
        images: names,
        insecure: args.insecure,
        ca_bundle: args.ca_bundle.clone(),
        no_build: args.no_build,
    })?;
    if !args.dry_run {
        images::push(&mut built, &args.registry, args.insecure)?;
    }

    let pinned = render_pinned(
        &overlay,
        args.mirror.clone(),
        &built,
        &args.registry,
        &version,
        &out,
    )?;
    std::fs::write(out.join("rendered.yaml"), &pinned)?;
    let publish_args = publish::Args {
        branch: args.branch.clone(),
        repo: args.repo.clone(),
        overlay: Some(overlay.clone()),
        mirror: args.mirror.clone(),
        app: AppArgs {
            application: args
                .app
                .application
                .clone()
                .or_else(|| Some(out.join("application.yaml"))),
            ..args.app.clone()
        },
        push: args.push_branch.clone(),
        dry_run: args.dry_run,
    };
    let outcome = publish::publish(&pinned, &publish_args, &format!("release {version}"))?;
    for b in &built {
        println!(
            "{:<20} {}  {:.2} MB  {}",
            b.name,
            b.image.digest(),
            b.image.compressed_size() as f64 / 1e6,
            b.pushed.as_deref().unwrap_or("(not pushed: dry run)")
        );
    }
    println!("pinned render: {}", out.join("rendered.yaml").display());
    publish::report(&args.branch, &outcome, args.dry_run);
    Ok(())
}

/// The image name without tag or digest (`ghcr.io/o/x:1@sha256:…` → `ghcr.io/o/x`).
pub fn image_name(reference: &str) -> &str {
    let no_digest = reference.split_once('@').map_or(reference, |(n, _)| n);
    match no_digest.rfind(':') {
        Some(i) if i > no_digest.rfind('/').unwrap_or(0) => &no_digest[..i],
        _ => no_digest,
    }
}

/// Every container image reference in a rendered stream.
pub fn image_references(stream: &str) -> Result<Vec<String>> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Map(m) => {
                for (k, child) in m.iter() {
                    if matches!(
                        k.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) && let Some(list) = child.as_seq()
                    {
                        out.extend(
                            list.iter()
                                .filter_map(|c| c.as_map()?.get("image")?.as_str().map(str::to_string)),
                        );
                    }
                    walk(child, out);
                }
            }
            Value::Seq(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let docs = yaml::parse_documents(stream).map_err(|e| anyhow::anyhow!("rendered YAML: {e:?}"))?;
    let mut out = Vec::new();
    docs.iter().for_each(|d| walk(d, &mut out));
    Ok(out)
}

/// Whether `reference` names the kflite image `name` (by its last path segment).
fn is_kflite_image(reference: &str, name: &str) -> bool {
    image_name(reference).rsplit('/').next() == Some(name)
}

/// Renders `overlay` with each built image pinned to its digest.
pub fn render_pinned(
    overlay: &std::path::Path,
    mirror: Option<PathBuf>,
    built: &[Built],
    registry: &str,
    version: &str,
    scratch_parent: &std::path::Path,
) -> Result<String> {
    let plain = publish::render(overlay, mirror.clone())?;
    let registry = registry.trim_end_matches('/');
    let mut rules = String::new();
    let mut seen = BTreeSet::new();
    for reference in image_references(&plain)? {
        let Some(b) = built.iter().find(|b| is_kflite_image(&reference, &b.name)) else {
            continue;
        };
        if seen.insert(image_name(&reference).to_string()) {
            rules.push_str(&format!(
                "- name: {}\n  newName: {registry}/{}\n  newTag: \"{version}\"\n  digest: {}\n",
                image_name(&reference),
                b.name,
                b.image.digest()
            ));
        }
    }
    if rules.is_empty() {
        eprintln!(
            "note: {} references no kflite image; nothing to pin",
            overlay.display()
        );
        return Ok(plain);
    }
    std::fs::create_dir_all(scratch_parent)?;
    let scratch = tempfile::Builder::new()
        .prefix("pin-")
        .tempdir_in(scratch_parent)?;
    let base = crate::buildinfo::relative_path(scratch.path(), overlay);
    std::fs::write(
        scratch.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}\nimages:\n{rules}",
            base.display()
        ),
    )?;
    // The scratch kustomization reads the overlay's remotes: the overlay's lock holds.
    let pinned = publish::render_locked(scratch.path(), mirror, &overlay.join("kflite.lock"))?;
    for reference in image_references(&pinned)? {
        if let Some(b) = built.iter().find(|b| is_kflite_image(&reference, &b.name)) {
            let want = format!("{registry}/{}:{version}@{}", b.name, b.image.digest());
            if reference != want {
                bail!("image {reference} was not pinned (want {want})");
            }
        } else if images::IMAGES.iter().any(|n| is_kflite_image(&reference, n)) {
            bail!("the overlay uses {reference}, but that image is not part of this release");
        }
    }
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(
            image_name("ghcr.io/kflite/route-controller:0.1.0"),
            "ghcr.io/kflite/route-controller"
        );
        assert_eq!(image_name("127.0.0.1:5000/x@sha256:ab"), "127.0.0.1:5000/x");
        assert_eq!(image_name("127.0.0.1:5000/x:1@sha256:ab"), "127.0.0.1:5000/x");
        assert_eq!(image_name("busybox"), "busybox");
        assert!(is_kflite_image(
            "ghcr.io/o/route-controller:1",
            "route-controller"
        ));
        assert!(!is_kflite_image(
            "ghcr.io/o/route-controller-x:1",
            "route-controller"
        ));
    }

    #[test]
    fn references_from_pods_and_templates() {
        let s = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers:\n      - image: a:1\n        name: a\n      initContainers:\n      - image: b\n        name: b\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: c@sha256:00\n    name: c\n";
        assert_eq!(image_references(s).unwrap(), ["a:1", "b", "c@sha256:00"]);
    }
}
