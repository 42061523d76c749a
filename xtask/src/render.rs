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

    /// A mirror with one small git remote, and an overlay naming it.
    fn mirror_and_overlay(tmp: &std::path::Path) -> (PathBuf, PathBuf) {
        let mirror = tmp.join("mirror");
        let base = mirror.join("git/github.com/o/r/v1/base");
        let overlay = tmp.join("overlay");
        for d in [&base, &overlay] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(base.join("kustomization.yaml"), "resources:\n- cm.yaml\n").unwrap();
        std::fs::write(
            base.join("cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
        )
        .unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            "resources:\n- github.com/o/r//base?ref=v1\n",
        )
        .unwrap();
        (mirror, overlay)
    }

    fn xtask_render(
        overlay: &std::path::Path,
        mirror: &std::path::Path,
        out: &std::path::Path,
    ) -> Result<()> {
        run(Args {
            overlay: overlay.to_path_buf(),
            mirror: Some(mirror.to_path_buf()),
            offline: true,
            locked: false,
            update_lock: false,
            output: Some(out.to_path_buf()),
            strict: false,
        })
    }

    /// One changed byte in a mirrored file the lock covers fails `render`,
    /// `publish` and `release` in their default modes, naming the URL and
    /// both hashes; `publish` refuses an overlay without a lock.
    #[test]
    fn changed_mirror_byte_fails_render_publish_and_release() {
        let tmp = tempfile::tempdir().unwrap();
        let (mirror, overlay) = mirror_and_overlay(tmp.path());
        let out = tmp.path().join("out.yaml");
        let no_lock = crate::publish::render(&overlay, Some(mirror.clone())).unwrap_err();
        assert!(
            format!("{no_lock:#}").contains("lockfile does not exist"),
            "{no_lock:#}"
        );
        xtask_render(&overlay, &mirror, &out).unwrap();
        let lock = std::fs::read_to_string(overlay.join("kflite.lock")).expect("render writes the lock");
        let old_sha = lock
            .lines()
            .find_map(|l| l.trim().strip_prefix("sha256: "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        crate::publish::render(&overlay, Some(mirror.clone())).expect("publish renders --locked");

        let cm = mirror.join("git/github.com/o/r/v1/base/cm.yaml");
        let text = std::fs::read_to_string(&cm).unwrap();
        std::fs::write(&cm, text.replace("k: v", "k: w")).unwrap();
        let url = "https://github.com/o/r";
        let check = |what: &str, e: anyhow::Error| {
            let e = format!("{e:#}");
            let found = e.split("found sha256 ").nth(1).unwrap_or_default();
            assert!(
                e.contains(url) && e.contains(&old_sha) && found.len() >= 64 && !found.starts_with(&old_sha),
                "{what}: {e}"
            );
        };
        check("render", xtask_render(&overlay, &mirror, &out).unwrap_err());
        check(
            "publish",
            crate::publish::render(&overlay, Some(mirror.clone())).unwrap_err(),
        );
        check(
            "release",
            crate::release::render_pinned(&overlay, Some(mirror.clone()), &[], "r.example", "v0", tmp.path())
                .unwrap_err(),
        );
        assert_eq!(
            std::fs::read_to_string(overlay.join("kflite.lock")).unwrap(),
            lock,
            "the lock is never rewritten by a mismatch"
        );
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
