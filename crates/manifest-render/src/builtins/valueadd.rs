//! ValueAddTransformer: writes one value (by default the name of the
//! kustomization's directory) into fields of selected objects, or into one
//! position of a file path those fields hold (`api/filters/valueadd`).

use std::path::Path;

use crate::patch::{Selector, select};
use crate::resource::Resource;
use crate::yaml::{Map, Value};

#[derive(Debug, Clone)]
pub(crate) struct Target {
    selector: Option<Value>,
    field_path: String,
    /// 1-based position in a file path; 0: replace the whole value.
    position: i64,
}

fn target(v: &Value) -> Result<Target, String> {
    let m = v
        .as_map()
        .ok_or("a ValueAddTransformer target must be a mapping")?;
    let field_path = m
        .get("fieldPath")
        .and_then(Value::scalar_text)
        .unwrap_or_default();
    if field_path.is_empty() {
        return Err("fieldPath cannot be empty".into());
    }
    let position = match m.get("filePathPosition") {
        None | Some(Value::Null | Value::NullText) => 0,
        Some(Value::Int(i)) => *i,
        Some(_) => return Err("filePathPosition must be an integer".into()),
    };
    if position < 0 {
        return Err(format!(
            "value of FilePathPosition ({position}) cannot be negative"
        ));
    }
    Ok(Target {
        selector: m.get("selector").filter(|s| !s.is_null()).cloned(),
        field_path,
        position,
    })
}

/// Reads `targets` (inline, then those of `targetFilePath`'s file, loaded by `load`).
pub(crate) fn targets(
    cfg: &Map,
    load: impl FnOnce(&str) -> Result<Value, String>,
) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    let mut add = |v: Option<&Value>| -> Result<(), String> {
        match v {
            None | Some(Value::Null | Value::NullText) => Ok(()),
            Some(Value::Seq(items)) => {
                for it in items {
                    out.push(target(it)?);
                }
                Ok(())
            }
            Some(_) => Err("targets must be a list".into()),
        }
    };
    add(cfg.get("targets"))?;
    if let Some(path) = cfg
        .get("targetFilePath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        let doc = load(path)?;
        add(doc.get("targets"))?;
    }
    if out.is_empty() {
        return Err("must specify at least one target".into());
    }
    Ok(out)
}

/// filesys.InsertPathPart: `part` becomes component `pos` of `path`.
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let pos = pos.min(parts.len());
    parts.insert(pos, part);
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}

fn set_namespace(r: &mut Resource, value: &str) {
    if !r.gvk().is_cluster_scoped() {
        r.set_namespace(value);
    }
    if matches!(r.kind(), "RoleBinding" | "ClusterRoleBinding")
        && let Some(Value::Seq(subjects)) = r.obj.get_mut("subjects")
    {
        for s in subjects.iter_mut() {
            if let Value::Map(sm) = s
                && sm.get("name").and_then(Value::as_str) == Some("default")
            {
                sm.insert("namespace", Value::Str(value.to_string()));
            }
        }
    }
}

fn set_field(r: &mut Resource, t: &Target, value: &str) -> Result<(), String> {
    let fields = crate::fieldspec::split_path(&t.field_path);
    let mut node = &mut r.obj;
    for (i, f) in fields.iter().enumerate() {
        let last = i + 1 == fields.len();
        if node.is_null() {
            *node = Value::Map(Map::new());
        }
        let Value::Map(m) = node else {
            return Err(format!("{}: '{f}' is not in a mapping", t.field_path));
        };
        let child = m.entry_or_insert_with(f, || {
            if last {
                Value::Str(String::new())
            } else {
                Value::Map(Map::new())
            }
        });
        node = child;
    }
    if matches!(node, Value::Map(_) | Value::Seq(_)) {
        return Err(format!("{}: expected a scalar field", t.field_path));
    }
    let new = if t.position > 0 {
        let cur = node.scalar_text().unwrap_or_default();
        insert_path_part(&cur, (t.position - 1) as usize, value)
    } else {
        value.to_string()
    };
    *node = Value::Str(new);
    Ok(())
}

/// Applies the targets; `dir` names the value when the config gives none.
pub(crate) fn apply(
    value: &str,
    dir: &Path,
    targets: &[Target],
    resources: &mut [Resource],
) -> Result<(), String> {
    let value = if value.is_empty() {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        value.to_string()
    };
    for t in targets {
        let picked: Vec<usize> = match &t.selector {
            None => (0..resources.len()).collect(),
            Some(s) => select(resources, &Selector::from_value(s)?)?,
        };
        for i in picked {
            if t.field_path == "metadata/namespace" {
                set_namespace(&mut resources[i], &value);
            } else {
                set_field(&mut resources[i], t, &value)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_are_inserted_as_kustomize_does() {
        assert_eq!(
            insert_path_part("projects/p/buckets/b", 1, "x"),
            "projects/x/p/buckets/b"
        );
        assert_eq!(insert_path_part("/a/b", 0, "x"), "/x/a/b");
        assert_eq!(insert_path_part("a", 9, "x"), "a/x");
    }
}
