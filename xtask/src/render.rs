//! `cargo xtask render [OVERLAY]`: the README's main command. Prints the
//! platform (default `overlays/homelab`) as kustomize would, for
//! `kubectl apply --server-side -f -` or a branch ArgoCD syncs.

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The overlay to render (relative to the project root).
    #[arg(default_value = "overlays/homelab")]
    overlay: PathBuf,
    /// Offline mirror of remote bases (`../shared/upstream` layout), looked
    /// up before fetching; defaults to KFLITE_UPSTREAM_MIRROR, then
    /// ../shared/upstream when present.
    #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
    mirror: Option<PathBuf>,
    /// Never fetch remote bases: mirror and cache only.
    #[arg(long)]
    offline: bool,
    /// Fail unless OVERLAY/kflite.lock exists and matches the build exactly.
    #[arg(long, conflicts_with = "update_lock")]
    locked: bool,
    /// Resolve every remote ref afresh and rewrite OVERLAY/kflite.lock.
    #[arg(long)]
    update_lock: bool,
    /// Write here instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Fail on any lint finding instead of printing it as a warning.
    #[arg(long)]
    strict: bool,
}

pub fn run(args: Args) -> Result<()> {
    let dir = overlay_dir(&args.overlay);
    let request = kfctl::overlay::RenderRequest {
        dir: dir.clone(),
        mirror: args.mirror.or_else(default_mirror),
        offline: args.offline,
        lock: kfctl::overlay::RenderRequest::lock_mode(args.locked, args.update_lock),
        strict: args.strict,
    };
    let rendered = request
        .render()
        .with_context(|| format!("rendering {}", dir.display()))?;
    for warning in &rendered.warnings {
        eprintln!("{warning}");
    }
    let built = rendered.built;
    match args.output {
        Some(path) => std::fs::File::create(&path)
            .and_then(|f| built.write_to(&mut std::io::BufWriter::new(f)))
            .with_context(|| format!("writing {}", path.display())),
        None => built
            .write_to(&mut std::io::stdout().lock())
            .context("writing stdout"),
    }
}

pub fn overlay_dir(overlay: &std::path::Path) -> PathBuf {
    if overlay.is_absolute() {
        overlay.to_path_buf()
    } else {
        crate::project_root().join(overlay)
    }
}

/// The default mirror: `../shared/upstream` beside the checkout, when present.
pub fn default_mirror() -> Option<PathBuf> {
    crate::shared_dir()
        .map(|s| s.join("upstream"))
        .filter(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(overlay: &std::path::Path, mirror: Option<PathBuf>) -> Result<manifest_render::Rendered> {
        let dir = overlay_dir(overlay);
        let options = manifest_render::Options {
            mirror: mirror.or_else(default_mirror),
            ..Default::default()
        };
        manifest_render::render(&dir, &options).with_context(|| format!("rendering {}", dir.display()))
    }

    /// The platform renders with kflite's controllers and without what they replace.
    #[test]
    fn homelab_has_kflite_and_not_what_it_replaces() {
        let Some(mirror) = default_mirror() else {
            testkit::skip(
                "xtask::render::homelab_has_kflite_and_not_what_it_replaces",
                "../shared is absent",
            );
            return;
        };
        let rendered = render(std::path::Path::new("overlays/homelab"), Some(mirror)).unwrap();
        let docs: Vec<serde_json::Value> = {
            use serde::Deserialize;
            serde_yaml_ng::Deserializer::from_str(&rendered.yaml)
                .map(|d| serde_json::Value::deserialize(d).unwrap())
                .collect()
        };
        assert_eq!(docs.len(), rendered.objects);
        let has = |kind: &str, name: &str| {
            docs.iter()
                .any(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        };
        assert!(has("Deployment", "route-controller"));
        assert!(has("HTTPRoute", "kubeflow-dashboard"));
        for stub in kfmodel::istio::stub_crds() {
            assert!(has(
                "CustomResourceDefinition",
                stub.metadata.name.as_deref().unwrap()
            ));
        }
        for d in &docs {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let kind = d["kind"].as_str().unwrap_or_default();
            assert!(
                !name.contains("metacontroller")
                    && !name.starts_with("kubeflow-pipelines-profile-controller"),
                "{kind} {name} should be replaced by kflite"
            );
            assert_ne!(kind, "DecoratorController");
            let api = d["apiVersion"].as_str().unwrap_or_default();
            assert!(!api.contains("istio.io"), "Istio object {kind} {name}");
        }
    }
}
