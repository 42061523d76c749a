//! `--diff`: what `kubectl diff --server-side` prints. Like kubectl, the live
//! and the dry-run-merged objects are written as YAML (managedFields dropped,
//! Secret values masked) to two directories, one file per object named
//! `[group.]version.Kind.namespace.name`, and `diff -u -N` compares them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{Error, Result};

/// One object's two sides; None where it does not exist (created or pruned).
#[derive(Debug)]
pub struct Pair {
    pub file: String,
    pub live: Option<Value>,
    pub merged: Option<Value>,
}

/// kubectl's file name for an object.
pub fn file_name(group: &str, version: &str, kind: &str, namespace: &str, name: &str) -> String {
    let group = if group.is_empty() {
        String::new()
    } else {
        format!("{group}.")
    };
    format!("{group}{version}.{kind}.{namespace}.{name}")
}

/// The unified diff of every pair, in kubectl's format; empty when nothing changes.
pub fn render(pairs: Vec<Pair>) -> Result<String> {
    let tmp = tempfile::Builder::new()
        .prefix("kfctl-diff-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?;
    let live_dir = tmp.path().join("LIVE");
    let merged_dir = tmp.path().join("MERGED");
    for d in [&live_dir, &merged_dir] {
        std::fs::create_dir(d).map_err(|source| Error::Io {
            path: d.display().to_string(),
            source,
        })?;
    }
    for Pair {
        file,
        mut live,
        mut merged,
    } in pairs
    {
        if let (Some(l), Some(m)) = (&mut live, &mut merged) {
            mask_secret(l, Some(m));
        } else if let Some(v) = live.as_mut().or(merged.as_mut()) {
            mask_secret(v, None);
        }
        for (dir, side) in [(&live_dir, live), (&merged_dir, merged)] {
            if let Some(v) = side {
                write_yaml(&dir.join(&file), v)?;
            }
        }
    }
    run_diff(&live_dir, &merged_dir)
}

fn write_yaml(path: &Path, mut v: Value) -> Result<()> {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    std::fs::write(path, to_yaml(v)?).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// YAML as kubectl prints it (go-yaml: keys sorted, timestamps and other
/// ambiguous strings quoted, long lines folded), by way of manifest-render's
/// go-yaml emitter.
pub fn to_yaml(v: Value) -> Result<String> {
    let json = serde_json::to_string(&sorted(v)).map_err(|e| Error::Encode(e.to_string()))?;
    let docs = manifest_render::yaml::parse_documents(&json).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(docs
        .first()
        .map(manifest_render::yaml::emit_document)
        .unwrap_or_default())
}

/// Keys in alphabetical order, as kubectl's YAML printer writes them.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// kubectl's masking of Secret values: `***` where both sides agree,
/// `*** (before)` / `*** (after)` where the value changes.
fn mask_secret(live: &mut Value, mut merged: Option<&mut Value>) {
    if live.get("kind").and_then(Value::as_str) != Some("Secret")
        || live.get("apiVersion").and_then(Value::as_str) != Some("v1")
    {
        return;
    }
    for field in ["data", "stringData"] {
        let Some(l) = live.get_mut(field).and_then(Value::as_object_mut) else {
            if let Some(m) = merged
                .as_deref_mut()
                .and_then(|m| m.get_mut(field))
                .and_then(Value::as_object_mut)
            {
                m.values_mut().for_each(|v| *v = "***".into());
            }
            continue;
        };
        let m = merged
            .as_deref_mut()
            .and_then(|m| m.get_mut(field))
            .and_then(Value::as_object_mut);
        match m {
            None => l.values_mut().for_each(|v| *v = "***".into()),
            Some(m) => {
                for (k, lv) in l.iter_mut() {
                    match m.get_mut(k) {
                        Some(mv) if mv == lv => {
                            *lv = "***".into();
                            *mv = "***".into();
                        }
                        Some(mv) => {
                            *lv = "*** (before)".into();
                            *mv = "*** (after)".into();
                        }
                        None => *lv = "***".into(),
                    }
                }
                for (k, mv) in m.iter_mut() {
                    if !l.contains_key(k) {
                        *mv = "***".into();
                    }
                }
            }
        }
    }
}

fn run_diff(live: &Path, merged: &Path) -> Result<String> {
    let out = Command::new("diff")
        .args(["-u", "-N"])
        .arg(live)
        .arg(merged)
        .output()
        .map_err(|source| Error::Io {
            path: "diff (kubectl diff runs it too; install diffutils)".into(),
            source,
        })?;
    // diff: 0 same, 1 different, 2 trouble.
    match out.status.code() {
        Some(0 | 1) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => Err(Error::Invalid(format!(
            "diff -u -N failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_never_show() {
        let mut l = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eA=="}});
        let mut m = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eQ=="}});
        mask_secret(&mut l, Some(&mut m));
        assert_eq!(l["data"], json!({"a": "***", "b": "*** (before)"}));
        assert_eq!(m["data"], json!({"a": "***", "b": "*** (after)"}));
    }

    #[test]
    fn file_names_as_kubectl() {
        assert_eq!(
            file_name("apps", "v1", "Deployment", "ns", "d"),
            "apps.v1.Deployment.ns.d"
        );
        assert_eq!(file_name("", "v1", "ConfigMap", "ns", "c"), "v1.ConfigMap.ns.c");
    }
}
