//! `vars`: declared in kustomizations, bound to the object they name, and
//! substituted as `$(NAME)` into the varReference fields at the end.

use crate::fieldspec::{self, CreateKind};
use crate::resource::{Gvk, ResId};
use crate::target::Accumulator;
use crate::yaml::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub objref: ResId,
    pub field_path: String,
}

pub fn parse_vars(vals: &[Value]) -> Result<Vec<Var>, String> {
    let mut out = Vec::new();
    for v in vals {
        let m = v.as_map().ok_or("entries of 'vars' must be mappings")?;
        let name = m.get_ci("name").and_then(Value::scalar_text).unwrap_or_default();
        let o = m
            .get_ci("objref")
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default();
        let s = |k: &str| o.get_ci(k).and_then(Value::scalar_text).unwrap_or_default();
        let gvk = if !s("apiVersion").is_empty() {
            Gvk::from_api_version(&s("apiVersion"), &s("kind"))
        } else {
            Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            }
        };
        let field_path = m
            .get_ci("fieldref")
            .and_then(Value::as_map)
            .and_then(|f| f.get_ci("fieldPath"))
            .and_then(Value::scalar_text)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "metadata.name".into());
        out.push(Var {
            name,
            objref: ResId {
                gvk,
                name: s("name"),
                namespace: s("namespace"),
            },
            field_path,
        });
    }
    Ok(out)
}

/// `VarSet.MergeSet`: names must be unique.
pub fn merge_set(set: &mut Vec<Var>, incoming: Vec<Var>) -> Result<(), String> {
    for v in incoming {
        if set.iter().any(|x| x.name == v.name) {
            return Err(format!("var '{}' already encountered", v.name));
        }
        set.push(v);
    }
    Ok(())
}

/// `ResAccumulator.MergeVars`: binds each var to the object it names.
pub fn merge_vars(ra: &mut Accumulator, incoming: Vec<Var>) -> Result<(), String> {
    for v in &incoming {
        let target = &v.objref;
        let strict = !target.namespace.is_empty() || target.gvk.is_cluster_scoped();
        let hits: Vec<usize> = ra
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                !r.is_empty()
                    && r.any_id(|id| {
                        if strict {
                            target.equals(id)
                        } else {
                            target.gvkn_equals(id)
                        }
                    })
            })
            .map(|(i, _)| i)
            .collect();
        if hits.len() > 1 {
            return Err(format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                hits.len(),
                v.name
            ));
        }
        if let Some(&i) = hits.first() {
            ra.resources[i].ref_var_names.push(v.name.clone());
        }
    }
    merge_set(&mut ra.vars, incoming)
}

/// Splits `a.b[0].c` / `a.[k=v].b` into lookup steps (kyaml's
/// `SmarterPathSplitter`, then `ports[0]` becomes `ports`, `0`).
fn split_field_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in crate::replacements::split(path) {
        if let Some(open) = p.rfind('[')
            && p.ends_with(']')
            && open + 1 < p.len() - 1
            && p[open + 1..p.len() - 1].chars().all(|c| c.is_ascii_digit())
        {
            if open > 0 {
                out.push(p[..open].to_string());
            }
            out.push(p[open + 1..p.len() - 1].to_string());
            continue;
        }
        out.push(p);
    }
    out
}

/// kyaml's `GetFieldValue` lookup along a dotted field path.
pub(crate) fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    crate::replacements::lookup(v, &split_field_path(path))
}

fn go_v(v: &Value) -> String {
    match v {
        Value::Float(f) => {
            // fmt's %v for float64 is %g with the shortest digits.
            let t = crate::yaml::go_json_float(*f);
            match t.parse::<f64>() {
                Ok(_) if !t.contains('e') && t.len() > 21 => format!("{f:e}"),
                _ => t,
            }
        }
        other => other.scalar_text().unwrap_or_default(),
    }
}

/// `DoReplacements`: `$(NAME)` substitution with `$$` as an escaped `$`.
fn do_replacements(input: &str, vars: &[(String, Value)], counts: &mut [usize]) -> Value {
    let b = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let (read, is_var, advance) = match rest.as_bytes()[0] {
                b'$' => ("$".to_string(), false, 1),
                b'(' => match rest[1..].find(')') {
                    Some(end) => (rest[1..1 + end].to_string(), true, end + 2),
                    None => ("$(".to_string(), false, 1),
                },
                _ => {
                    let ch = rest.chars().next().unwrap_or_default();
                    (format!("${ch}"), false, ch.len_utf8())
                }
            };
            if is_var {
                let mapped = match vars.iter().position(|(n, _)| *n == read) {
                    Some(i)
                        if !matches!(
                            vars[i].1,
                            Value::Map(_) | Value::Seq(_) | Value::Null | Value::NullText
                        ) =>
                    {
                        counts[i] += 1;
                        vars[i].1.clone()
                    }
                    _ => Value::Str(format!("$({read})")),
                };
                if input == format!("$({read})") {
                    return mapped;
                }
                out.push_str(&go_v(&mapped));
            } else {
                out.push_str(&read);
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(input.get(checkpoint..).unwrap_or(""));
    Value::Str(out)
}

fn replace_in(node: &mut Value, vars: &[(String, Value)], counts: &mut [usize]) -> Result<(), String> {
    match node {
        Value::Null | Value::NullText => Ok(()),
        Value::Str(s) => {
            let s = s.clone();
            *node = do_replacements(&s, vars, counts);
            Ok(())
        }
        Value::Map(m) => {
            for (_, v) in m.iter_mut() {
                if let Value::Str(s) = v {
                    let s = s.clone();
                    *v = do_replacements(&s, vars, counts);
                }
            }
            Ok(())
        }
        Value::Seq(items) => {
            for it in items.iter_mut() {
                match it {
                    Value::Str(s) => {
                        let s = s.clone();
                        *it = do_replacements(&s, vars, counts);
                    }
                    _ => return Err("invalid value type expect a string".into()),
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Resolves vars and substitutes them; warns about vars never used.
pub fn resolve(ra: &mut Accumulator) -> Result<(), String> {
    if ra.vars.is_empty() {
        return Ok(());
    }
    let mut vars: Vec<Var> = ra.vars.clone();
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    let mut values = Vec::new();
    for v in &vars {
        let holder = ra
            .resources
            .iter()
            .find(|r| r.ref_var_names.contains(&v.name))
            .ok_or_else(|| {
                format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    v.name
                )
            })?;
        let val = lookup(&holder.obj, &v.field_path).ok_or_else(|| {
            format!(
                "field specified in var '{}' not found in corresponding resource",
                v.name
            )
        })?;
        values.push((v.name.clone(), val.clone()));
    }
    let mut counts = vec![0usize; values.len()];
    let cfg = std::sync::Arc::clone(&ra.config);
    let specs = &cfg.var_reference;
    for r in &mut ra.resources {
        let gvk = r.gvk();
        for fs in specs {
            fieldspec::apply(&mut r.obj, &gvk, fs, CreateKind::None, &mut |node| {
                replace_in(node, &values, &mut counts)
            })?;
        }
    }
    let unused: Vec<String> = values
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c == 0)
        .map(|((n, _), _)| n.clone())
        .collect();
    if !unused.is_empty() {
        ra.warnings.push(format!(
            "well-defined vars that were never replaced: {}",
            unused.join(",")
        ));
    }
    Ok(())
}
