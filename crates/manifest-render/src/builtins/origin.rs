//! `buildMetadata: [originAnnotations]`: kustomize's
//! `config.kubernetes.io/origin` annotation, saying where each object came
//! from: its file (relative to the top kustomization), its remote
//! repository, or the generator that made it.

use std::path::Path;

use crate::resource::{Provenance, Resource, Transformation};

const KEY: &str = "config.kubernetes.io/origin";
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";

/// `file` relative to `dir`, lexically (both as the loader resolved them).
fn relative(dir: &Path, file: &Path) -> String {
    if !file.is_absolute() || !dir.is_absolute() {
        return file.display().to_string();
    }
    let common = dir
        .components()
        .zip(file.components())
        .take_while(|(a, b)| a == b)
        .count();
    let up = dir.components().count() - common;
    let rest = file
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    std::iter::repeat_n("..".to_string(), up)
        .chain(rest)
        .collect::<Vec<_>>()
        .join("/")
}

/// The annotation's text: kyaml prints the origin's fields in this order.
fn text(top: &Path, mirror: Option<&Path>, r: &Resource) -> String {
    match &r.provenance {
        Provenance::File => format!("path: {}\n", relative(top, Path::new(&r.origin))),
        Provenance::Remote { repo, git_ref, path } => {
            let mut s = format!("path: {path}\nrepo: {repo}\n");
            if !git_ref.is_empty() {
                s.push_str(&format!("ref: {git_ref}\n"));
            }
            s
        }
        Provenance::Generated { kind, name, file } => {
            let mut s = match mirror.and_then(|m| from_mirror(m, Path::new(file))) {
                Some(Provenance::Remote { repo, git_ref, path }) => {
                    format!("repo: {repo}\nref: {git_ref}\nconfiguredIn: {path}\n")
                }
                _ => format!("configuredIn: {}\n", relative(top, Path::new(file))),
            };
            s.push_str(&format!("configuredBy:\n  apiVersion: builtin\n  kind: {kind}\n"));
            if !name.is_empty() {
                s.push_str(&format!("  name: {name}\n"));
            }
            s
        }
    }
}

/// Objects read from a fetched remote tree: note the repository.
pub(crate) fn mark_remote(root: &crate::loader::Root, file: &Path, rs: &mut [Resource]) {
    let Some(src) = &root.origin else { return };
    let crate::loader::Remote::Git { url, git_ref, .. } = &src.remote else {
        return;
    };
    let Ok(inside) = file.strip_prefix(&src.root) else {
        return;
    };
    for r in rs {
        r.provenance = Provenance::Remote {
            repo: url.clone(),
            git_ref: git_ref.clone(),
            path: inside.display().to_string(),
        };
    }
}

/// A file of the mirror (`<mirror>/git/<host>/<org>/<repo>/<ref>/<path>`)
/// names its repository the way kustomize's origin does.
fn from_mirror(mirror: &Path, file: &Path) -> Option<Provenance> {
    let parts = |under: &str| -> Option<Vec<String>> {
        let inside = file.strip_prefix(mirror.join(under)).ok()?;
        Some(
            inside
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect(),
        )
    };
    // A plain github.com file URL parses as a repository (its first two
    // segments) and a path, without a ref, as kustomize's origin does.
    if let Some(p) = parts("http/github.com") {
        return (p.len() >= 3).then(|| Provenance::Remote {
            repo: format!("https://github.com/{}/{}", p[0], p[1]),
            git_ref: String::new(),
            path: p[2..].join("/"),
        });
    }
    let p = parts("git")?;
    (p.len() >= 5).then(|| Provenance::Remote {
        repo: format!("https://{}/{}/{}", p[0], p[1], p[2]),
        git_ref: p[3].clone(),
        path: p[4..].join("/"),
    })
}

/// One entry of `alpha.config.kubernetes.io/transformations`.
fn transformation(top: &Path, mirror: Option<&Path>, t: &Transformation) -> String {
    let mut s = match mirror.and_then(|m| from_mirror(m, Path::new(&t.file))) {
        Some(Provenance::Remote { repo, git_ref, path }) => {
            let mut s = format!("- repo: {repo}\n");
            if !git_ref.is_empty() {
                s.push_str(&format!("  ref: {git_ref}\n"));
            }
            s.push_str(&format!("  configuredIn: {path}\n"));
            s
        }
        _ => format!("- configuredIn: {}\n", relative(top, Path::new(&t.file))),
    };
    s.push_str(&format!(
        "  configuredBy:\n    apiVersion: builtin\n    kind: {}\n",
        t.kind
    ));
    if !t.name.is_empty() {
        s.push_str(&format!("    name: {}\n", t.name));
    }
    s
}

/// Adds the annotations the top kustomization's `buildMetadata` asks for.
pub(crate) fn annotate(options: &[String], top: &Path, mirror: Option<&Path>, resources: &mut [Resource]) {
    let origins = options.iter().any(|o| o == "originAnnotations");
    let transformations = options.iter().any(|o| o == "transformerAnnotations");
    if !origins && !transformations {
        return;
    }
    let mirror = mirror.and_then(|m| m.canonicalize().ok());
    for r in resources {
        if let (Provenance::File, Some(m)) = (&r.provenance, &mirror)
            && let Some(p) = from_mirror(m, Path::new(&r.origin))
        {
            r.provenance = p;
        }
        let mut annotations = r.annotations();
        annotations.retain(|(k, _)| k != KEY && k != TRANSFORMATIONS);
        if origins {
            annotations.push((KEY.to_string(), text(top, mirror.as_deref(), r)));
        }
        if transformations && !r.transformations.is_empty() {
            let list: String = r
                .transformations
                .iter()
                .map(|t| transformation(top, mirror.as_deref(), t))
                .collect();
            annotations.push((TRANSFORMATIONS.to_string(), list));
        }
        r.set_string_map("annotations", annotations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_of_the_top() {
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/b/c/x.yaml")),
            "x.yaml"
        );
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/_base/x.yaml")),
            "../../_base/x.yaml"
        );
    }
}
