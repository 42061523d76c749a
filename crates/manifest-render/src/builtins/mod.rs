//! kustomize's built-in plugins configured through a kustomization's
//! `generators:`, `transformers:` and `validators:` lists.
//!
//! Each entry is inline YAML (when it parses as objects) or a path (file,
//! directory or remote) loaded like a `resources` entry; kustomize puts all
//! inline configs before all path configs. A config with `apiVersion:
//! builtin` names a built-in plugin by its kind; anything else is an exec,
//! Go or KRM-function plugin, which `kubectl kustomize` refuses to run
//! without alpha flags, and so do we.
//!
//! A config is run by translating it into the kustomization field that
//! configures the same plugin (`NamespaceTransformer` → `namespace:`, …) and
//! running that field's code, with the config's own `fieldSpecs` in place of
//! the built-in ones.

mod config;
mod crds;
mod metadata;
mod origin;
mod valueadd;

use std::path::PathBuf;

use crate::resource::Resource;
use crate::target::{Accumulator, Target, resources_from_text};
use crate::{Error, Result};

pub(crate) use config::Plugin;
pub(crate) use crds::config as crd_config;
pub(crate) use metadata::apply as apply_build_metadata;
pub(crate) use origin::{annotate as annotate_origins, mark_remote};

/// Which list a config came from: it decides which kinds may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Generator,
    Transformer,
    Validator,
}

impl Role {
    fn field(self) -> &'static str {
        match self {
            Role::Generator => "generators",
            Role::Transformer => "transformers",
            Role::Validator => "validators",
        }
    }
}

/// A plugin config object and the file to name in its errors.
struct LoadedConfig {
    file: PathBuf,
    res: Resource,
}

fn load(t: &Target, role: Role) -> Result<Vec<LoadedConfig>> {
    let entries = match role {
        Role::Generator => &t.kust.generators,
        Role::Transformer => &t.kust.transformers,
        Role::Validator => &t.kust.validators,
    };
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut inline = Accumulator::new();
    let mut paths = Vec::new();
    for entry in entries {
        // kustomize tries every entry as objects first; what fails is a path.
        match resources_from_text(entry, &t.file) {
            Ok(rs) => inline.append_all(rs).map_err(|m| Error::invalid(&t.file, m))?,
            Err(_) => paths.push(entry.clone()),
        }
    }
    let ra = t
        .accumulate_paths(inline, &paths)
        .map_err(|e| e.context(&t.file, format!("loading '{}'", role.field())))?;
    Ok(ra
        .resources
        .into_iter()
        .map(|res| LoadedConfig {
            file: if res.origin.is_empty() {
                t.file.clone()
            } else {
                PathBuf::from(&res.origin)
            },
            res,
        })
        .collect())
}

fn configure(t: &Target, role: Role) -> Result<Vec<(PathBuf, Plugin)>> {
    load(t, role)?
        .into_iter()
        .map(|c| {
            let p = Plugin::from_config(&c.res, role)
                .map_err(|m| Error::invalid(&c.file, format!("{}: {m}", role.field())))?;
            Ok((c.file, p))
        })
        .collect()
}

/// Runs the `generators:` configs, after the kustomization's own generators.
pub(crate) fn run_generators(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for (file, p) in configure(t, Role::Generator)? {
        p.run(t, &file, ra)?;
    }
    Ok(())
}

/// Runs the `transformers:` configs, after the kustomization's own fields.
pub(crate) fn run_transformers(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for (file, p) in configure(t, Role::Transformer)? {
        p.run(t, &file, ra)?;
        record_transformation(ra, &file, p.kind(), p.name(), 1);
    }
    Ok(())
}

/// Notes on every object that a transformer configured in `file` ran, `n`
/// times (kustomize records each configured instance).
pub(crate) fn record_transformation(
    ra: &mut Accumulator,
    file: &std::path::Path,
    kind: &str,
    name: &str,
    n: usize,
) {
    if n == 0 {
        return;
    }
    let t = std::sync::Arc::new(crate::resource::Transformation {
        file: file.display().to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
    });
    for r in &mut ra.resources {
        for _ in 0..n {
            r.transformations.push(std::sync::Arc::clone(&t));
        }
    }
}

/// Runs the `validators:` configs; a validator may not change any object.
pub(crate) fn run_validators(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for (file, p) in configure(t, Role::Validator)? {
        let before: Vec<_> = ra.resources.iter().map(|r| r.obj.clone()).collect();
        p.run(t, &file, ra)?;
        let changed =
            before.len() != ra.resources.len() || before.iter().zip(&ra.resources).any(|(b, r)| *b != r.obj);
        if changed {
            return Err(Error::invalid(
                &file,
                format!(
                    "validators: {} modified the objects; a validator shouldn't modify the resource map",
                    p.kind()
                ),
            ));
        }
    }
    Ok(())
}
