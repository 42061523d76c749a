//! `cargo xtask publish`: renders an overlay into one file per object on a
//! git branch that ArgoCD follows, and writes the ArgoCD Application.
//!
//! Files are named `<Kind>.<name>.k8s.yaml`, as the owner's branch has them.
//! Objects that would share a file name (same kind and name in two
//! namespaces, or two API groups with one kind) are each named
//! `<Kind>.<namespace>.<name>.k8s.yaml`, and also get the API group
//! (`<Kind>.<group>.<namespace>.<name>.k8s.yaml`) if that is not enough;
//! a name that still collides is an error — no object is ever dropped.
//!
//! The branch is written with git plumbing only (hash-object, mktree,
//! commit-tree, update-ref): the user's checkout and index are never
//! touched, and a commit is made only when the tree differs from the tip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use manifest_render::yaml::{self, Value};

use crate::buildinfo;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The branch to commit the rendered objects to.
    #[arg(long)]
    pub branch: String,
    /// The git repository holding the branch (bare or not) [default: this checkout].
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The kustomization to render [default: overlays/homelab].
    #[arg(long)]
    pub overlay: Option<PathBuf>,
    /// Mirror of remote bases [default: ../shared/upstream when present].
    #[arg(long, env = "KFLITE_UPSTREAM_MIRROR")]
    pub mirror: Option<PathBuf>,
    #[command(flatten)]
    pub app: AppArgs,
    /// Push the branch to this git remote after committing.
    #[arg(long, value_name = "REMOTE")]
    pub push: Option<String>,
    /// Show what would change; update no branch, push nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// How the ArgoCD Application is written.
#[derive(clap::Args, Debug, Clone)]
pub struct AppArgs {
    /// Where to write the Application manifest [default: <target>/publish/<branch>.application.yaml].
    #[arg(long)]
    pub application: Option<PathBuf>,
    /// The repository URL ArgoCD clones [default: the repo's `origin` remote, else the workspace's repository].
    #[arg(long)]
    pub repo_url: Option<String>,
    /// The Application's name.
    #[arg(long, default_value = "kflite")]
    pub app_name: String,
    /// The namespace ArgoCD runs in.
    #[arg(long, default_value = "argocd")]
    pub argocd_namespace: String,
}

/// One object of the rendered stream, ready to be a file.
#[derive(Debug, Clone)]
pub struct ObjectFile {
    pub file_name: String,
    /// The object exactly as the renderer printed it.
    pub text: String,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub files: usize,
    pub tree: String,
    /// The new commit, when the tree changed.
    pub commit: Option<String>,
    pub application: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let overlay = args
        .overlay
        .clone()
        .unwrap_or_else(|| crate::project_root().join("overlays/homelab"));
    let yaml = render(&overlay, args.mirror.clone())?;
    let shown = overlay.strip_prefix(crate::project_root()).unwrap_or(&overlay);
    let outcome = publish(&yaml, &args, &format!("render {}", shown.display()))?;
    report(&args.branch, &outcome, args.dry_run);
    Ok(())
}

pub fn report(branch: &str, o: &Outcome, dry_run: bool) {
    match (&o.commit, dry_run) {
        (Some(c), false) => println!("{branch}: committed {c} ({} objects)", o.files),
        (Some(_), true) => println!("{branch}: would commit tree {} ({} objects)", o.tree, o.files),
        (None, _) => println!("{branch}: unchanged ({} objects)", o.files),
    }
    println!("ArgoCD Application: {}", o.application.display());
}

/// Renders `overlay` with manifest-render, `--locked` against
/// `OVERLAY/kflite.lock`; the mirror defaults to `../shared/upstream`.
pub fn render(overlay: &Path, mirror: Option<PathBuf>) -> Result<String> {
    render_locked(overlay, mirror, &overlay.join("kflite.lock"))
}

/// Renders `dir` `--locked` against `lockfile`: what is published is what
/// the lock pins, or nothing (a missing lock, a new remote, a changed byte
/// in a cached or mirrored file all fail, naming the URL and both hashes).
pub fn render_locked(dir: &Path, mirror: Option<PathBuf>, lockfile: &Path) -> Result<String> {
    use manifest_render::remote::{LockMode, RemoteOptions, Session};
    let mirror = mirror.or_else(|| crate::shared_dir().map(|d| d.join("upstream")));
    let session = Session::new(
        dir,
        mirror.clone(),
        RemoteOptions {
            cache_dir: std::env::var_os("KFLITE_CACHE_DIR").map(PathBuf::from),
            offline: false,
            lock: LockMode::Locked,
            lockfile: Some(lockfile.to_path_buf()),
            progress: true,
        },
    )?;
    let rendered = manifest_render::render(
        dir,
        &manifest_render::Options {
            mirror,
            session: Some(session.clone()),
        },
    )
    .with_context(|| format!("rendering {}", dir.display()))?;
    for warning in session
        .finish()
        .with_context(|| format!("rendering {} --locked; refusing to publish", dir.display()))?
    {
        eprintln!("{warning}");
    }
    Ok(rendered.yaml)
}

/// Splits a rendered stream into one file per object, in stream order.
pub fn split_objects(stream: &str) -> Result<Vec<ObjectFile>> {
    let docs = yaml::parse_documents(stream).map_err(|e| anyhow::anyhow!("rendered YAML: {e:?}"))?;
    struct Obj {
        kind: String,
        group: String,
        namespace: String,
        name: String,
        text: String,
    }
    let mut objs = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let Value::Map(map) = doc else {
            if matches!(doc, Value::Null) {
                continue;
            }
            bail!("rendered document {} is not a mapping", i + 1);
        };
        let field = |m: &manifest_render::yaml::Map, k: &str| match m.get(k) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let meta = match map.get("metadata") {
            Some(Value::Map(m)) => m.clone(),
            _ => Default::default(),
        };
        let (kind, name) = (field(map, "kind"), field(&meta, "name"));
        if kind.is_empty() || name.is_empty() {
            bail!("rendered document {} has no kind or metadata.name", i + 1);
        }
        for part in [&kind, &name] {
            if part.contains('/') || part.chars().any(char::is_control) || part == "." || part == ".." {
                bail!("{kind} '{name}' cannot be a file name");
            }
        }
        let api_version = field(map, "apiVersion");
        let group = api_version
            .rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default();
        objs.push(Obj {
            kind,
            group,
            namespace: field(&meta, "namespace"),
            name,
            text: yaml::emit_document(doc),
        });
    }
    let plain = |o: &Obj| format!("{}.{}.k8s.yaml", o.kind, o.name);
    let with_ns = |o: &Obj| format!("{}.{}.{}.k8s.yaml", o.kind, o.namespace, o.name);
    let with_group = |o: &Obj| {
        let group = if o.group.is_empty() { "core" } else { &o.group };
        format!("{}.{group}.{}.{}.k8s.yaml", o.kind, o.namespace, o.name)
    };
    let count = |names: &[String]| {
        let mut c = BTreeMap::<&str, usize>::new();
        for n in names {
            *c.entry(n).or_default() += 1;
        }
        names.iter().map(|n| c[n.as_str()]).collect::<Vec<_>>()
    };
    let mut names: Vec<String> = objs.iter().map(plain).collect();
    for qualify in [&with_ns as &dyn Fn(&Obj) -> String, &with_group] {
        let counts = count(&names);
        for (i, o) in objs.iter().enumerate() {
            if counts[i] > 1 {
                names[i] = qualify(o);
            }
        }
    }
    let counts = count(&names);
    if let Some(i) = counts.iter().position(|&c| c > 1) {
        bail!(
            "two rendered objects both want the file name {}; rename one",
            names[i]
        );
    }
    Ok(objs
        .into_iter()
        .zip(names)
        .map(|(o, file_name)| ObjectFile {
            file_name,
            text: o.text,
        })
        .collect())
}

/// Writes `yaml`'s objects to `args.branch` of the repository and the Application manifest.
pub fn publish(yaml: &str, args: &Args, what: &str) -> Result<Outcome> {
    let files = split_objects(yaml)?;
    let root = crate::project_root();
    let repo = args.repo.clone().unwrap_or_else(|| root.clone());
    let branch_ref = format!("refs/heads/{}", args.branch);
    buildinfo::git(&repo, &["check-ref-format", &branch_ref])
        .with_context(|| format!("'{}' is not a valid branch name", args.branch))?;
    let bare = buildinfo::git(&repo, &["rev-parse", "--is-bare-repository"])? == "true";
    if !bare
        && buildinfo::git(&repo, &["symbolic-ref", "-q", "HEAD"])
            .ok()
            .as_deref()
            == Some(branch_ref.as_str())
    {
        bail!(
            "{} has branch {} checked out; publish writes only branches nobody works on",
            repo.display(),
            args.branch
        );
    }

    // Blobs: write the files to a scratch dir and hash them in one git call.
    let scratch = tempfile::tempdir()?;
    let mut paths = String::new();
    for f in &files {
        let p = scratch.path().join(&f.file_name);
        std::fs::write(&p, &f.text).with_context(|| format!("writing {}", p.display()))?;
        paths.push_str(&format!("{}\n", p.display()));
    }
    let hashes = buildinfo::git_with(
        &repo,
        &["hash-object", "-w", "--no-filters", "--stdin-paths"],
        &[],
        Some(paths.as_bytes()),
    )?;
    let mut tree_input = Vec::new();
    for (f, hash) in files.iter().zip(hashes.lines()) {
        tree_input.extend_from_slice(format!("100644 blob {hash}\t{}", f.file_name).as_bytes());
        tree_input.push(0);
    }
    let tree = buildinfo::git_with(&repo, &["mktree", "-z"], &[], Some(&tree_input))?;
    let parent = buildinfo::git(
        &repo,
        &["rev-parse", "--verify", "-q", &format!("{branch_ref}^{{commit}}")],
    )
    .ok();
    let parent_tree = match &parent {
        Some(p) => Some(buildinfo::git(&repo, &["rev-parse", &format!("{p}^{{tree}}")])?),
        None => None,
    };

    let application = write_application(args, &repo)?;
    let mut commit = None;
    if parent_tree.as_deref() != Some(tree.as_str()) {
        if args.dry_run {
            commit = Some(String::new());
        } else {
            let message = format!("{what} at {}\n", buildinfo::revision(&root));
            let mut cargs = vec!["commit-tree", tree.as_str()];
            if let Some(p) = &parent {
                cargs.extend(["-p", p.as_str()]);
            }
            let identity = identity(&repo);
            let env: Vec<(&str, &str)> = identity.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let c = buildinfo::git_with(&repo, &cargs, &env, Some(message.as_bytes()))?;
            // Compare-and-swap: fails if someone moved the branch meanwhile.
            let old = parent.clone().unwrap_or_else(|| "0".repeat(40));
            buildinfo::git(
                &repo,
                &["update-ref", "-m", "kflite publish", &branch_ref, &c, &old],
            )?;
            commit = Some(c);
        }
    }
    if let (Some(remote), false) = (&args.push, args.dry_run) {
        buildinfo::git(&repo, &["push", remote, &format!("{branch_ref}:{branch_ref}")])?;
    }
    Ok(Outcome {
        files: files.len(),
        tree,
        commit,
        application,
    })
}

/// Author and committer for publish commits: git's own settings win; where
/// none are set (CI), a fixed identity instead of a failing commit.
fn identity(repo: &Path) -> Vec<(&'static str, String)> {
    let configured = |k: &str| {
        buildinfo::git(repo, &["config", k])
            .ok()
            .filter(|v| !v.is_empty())
    };
    let mut env = Vec::new();
    if std::env::var_os("GIT_AUTHOR_NAME").is_none() && configured("user.name").is_none() {
        env.extend([
            ("GIT_AUTHOR_NAME", "kflite publish".to_string()),
            ("GIT_COMMITTER_NAME", "kflite publish".to_string()),
        ]);
    }
    if std::env::var_os("GIT_AUTHOR_EMAIL").is_none() && configured("user.email").is_none() {
        env.extend([
            ("GIT_AUTHOR_EMAIL", "kflite@localhost".to_string()),
            ("GIT_COMMITTER_EMAIL", "kflite@localhost".to_string()),
        ]);
    }
    env
}

/// The ArgoCD Application that syncs the branch, written outside the branch
/// (inside it, ArgoCD would manage — and could prune — its own Application).
fn write_application(args: &Args, repo: &Path) -> Result<PathBuf> {
    let repo_url = match &args.app.repo_url {
        Some(u) => u.clone(),
        None => buildinfo::git(repo, &["remote", "get-url", "origin"])
            .ok()
            .filter(|u| !u.is_empty())
            .map_or_else(
                || buildinfo::workspace().map(|w| w.packages["xtask"].repository.clone()),
                Ok,
            )?,
    };
    let app = application(&args.app, &repo_url, &args.branch);
    let path = match &args.app.application {
        Some(p) => p.clone(),
        None => buildinfo::workspace()?
            .target_dir
            .join("publish")
            .join(format!("{}.application.yaml", args.branch.replace('/', "_"))),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_yaml_ng::to_string(&app)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn application(app: &AppArgs, repo_url: &str, branch: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": app.app_name,
            "namespace": app.argocd_namespace,
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": repo_url,
                "targetRevision": branch,
                "path": ".",
            },
            "destination": { "server": "https://kubernetes.default.svc" },
            "syncPolicy": {
                "automated": { "prune": true, "selfHeal": true },
                "syncOptions": ["ServerSideApply=true"],
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_NAMESPACES: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: q\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: x\n";

    #[test]
    fn collisions_get_the_namespace_and_nothing_is_dropped() {
        let files = split_objects(TWO_NAMESPACES).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ConfigMap.x.a.k8s.yaml",
                "ConfigMap.q.a.k8s.yaml",
                "ConfigMap.b.k8s.yaml"
            ]
        );
        let joined: Vec<_> = files.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(joined.join("---\n"), TWO_NAMESPACES);
    }

    #[test]
    fn same_kind_in_two_groups_gets_the_group() {
        let s = "apiVersion: a.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: n\n---\napiVersion: b.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: n\n";
        let names: Vec<_> = split_objects(s)
            .unwrap()
            .into_iter()
            .map(|f| f.file_name)
            .collect();
        assert_eq!(names, ["Gateway.a.io.n.g.k8s.yaml", "Gateway.b.io.n.g.k8s.yaml"]);
    }

    #[test]
    fn duplicates_and_bad_names_are_errors() {
        let one = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n";
        let err = split_objects(&format!("{one}---\n{one}")).unwrap_err();
        assert!(err.to_string().contains("ConfigMap.core.x.a.k8s.yaml"), "{err}");
        let err = split_objects("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a/b\n").unwrap_err();
        assert!(err.to_string().contains("cannot be a file name"), "{err}");
        assert!(split_objects("kind: ConfigMap\n").is_err());
    }

    #[test]
    fn qualified_names_stay_distinct() {
        // "kflite.a" cluster-wide and "a" in namespace kflite first meet at ConfigMap.kflite.a.
        let s = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kflite.a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: kflite\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: other\n";
        let names: Vec<_> = split_objects(s)
            .unwrap()
            .into_iter()
            .map(|f| f.file_name)
            .collect();
        assert_eq!(
            names,
            [
                "ConfigMap.core..kflite.a.k8s.yaml",
                "ConfigMap.core.kflite.a.k8s.yaml",
                "ConfigMap.other.a.k8s.yaml"
            ]
        );
    }

    #[test]
    fn application_syncs_the_branch_with_server_side_apply() {
        let app = AppArgs {
            application: None,
            repo_url: None,
            app_name: "kflite".into(),
            argocd_namespace: "argocd".into(),
        };
        let a = application(&app, "https://example.com/r.git", "rendered");
        assert_eq!(a["spec"]["source"]["targetRevision"], "rendered");
        assert_eq!(a["spec"]["syncPolicy"]["automated"]["prune"], true);
        assert_eq!(a["spec"]["syncPolicy"]["syncOptions"][0], "ServerSideApply=true");
    }
}
