//! `replacements`: copy a field of one object (or a literal value) into
//! fields of others, as kustomize's replacement filter does.

use crate::patch::LabelSelector;
use crate::pattern::Anchored;
use crate::resource::{Gvk, ResId, Resource};
use crate::target::{Accumulator, Target, display_id};
use crate::yaml::{Map, Value, parse_documents};
use crate::{Error, Result};

fn s(m: &Map, k: &str) -> String {
    m.get(k).and_then(Value::scalar_text).unwrap_or_default()
}

fn res_id(m: &Map) -> ResId {
    let gvk = Gvk {
        group: s(m, "group"),
        version: s(m, "version"),
        kind: s(m, "kind"),
    };
    ResId {
        gvk,
        name: s(m, "name"),
        namespace: s(m, "namespace"),
    }
}

/// All ids of a node: current, then previous ones.
fn ids(r: &Resource) -> Vec<ResId> {
    let mut v = vec![r.cur_id()];
    v.extend(r.prev_ids());
    v
}

struct SelRe {
    g: Option<Anchored>,
    v: Option<Anchored>,
    k: Option<Anchored>,
    name: Option<Anchored>,
    ns: Option<Anchored>,
    empty_id: bool,
    labels: String,
    annotations: String,
}

impl SelRe {
    fn new(m: &Map) -> std::result::Result<Self, String> {
        let id = res_id(m);
        Ok(SelRe {
            g: Anchored::new(&id.gvk.group)?,
            v: Anchored::new(&id.gvk.version)?,
            k: Anchored::new(&id.gvk.kind)?,
            name: Anchored::new(&id.name)?,
            ns: Anchored::new(&id.namespace)?,
            empty_id: id == ResId::default(),
            labels: s(m, "labelSelector"),
            annotations: s(m, "annotationSelector"),
        })
    }
    fn selects(&self, id: &ResId) -> bool {
        let m = crate::pattern::matches;
        m(&self.g, &id.gvk.group)
            && m(&self.v, &id.gvk.version)
            && m(&self.k, &id.gvk.kind)
            && m(&self.name, &id.name)
            && m(&self.ns, &id.namespace)
    }
    fn labels_match(&self, r: &Resource) -> std::result::Result<bool, String> {
        Ok(LabelSelector::parse(&self.annotations)?.matches(&r.annotations())
            && LabelSelector::parse(&self.labels)?.matches(&r.labels()))
    }
}

/// kyaml's `SmarterPathSplitter` on `.`, keeping `[a.b=c]` whole.
pub(crate) fn split(path: &str) -> Vec<String> {
    let raw: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let e = raw[i];
        if e.starts_with('[') && !e.ends_with(']') {
            let mut parts = vec![e];
            while i + 1 < raw.len() {
                i += 1;
                parts.push(raw[i]);
                if raw[i].ends_with(']') {
                    break;
                }
            }
            let j = parts.join(".");
            out.push(if j.contains('=') {
                j
            } else {
                j.trim_matches(|c| c == '[' || c == ']').to_string()
            });
        } else {
            out.push(e.to_string());
        }
        i += 1;
    }
    out
}

/// kyaml's `Lookup`: fields, `[k=v]` elements, numeric indexes.
pub(crate) fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            Value::Map(m) => m.get(p)?,
            Value::Seq(items) => {
                if let Some(sel) = p.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    let (k, want) = sel.split_once('=')?;
                    if k.is_empty() {
                        items.iter().find(|e| e.scalar_text().as_deref() == Some(want))?
                    } else {
                        items
                            .iter()
                            .find(|e| e.get(k).and_then(Value::scalar_text).as_deref() == Some(want))?
                    }
                } else {
                    items.get(p.parse::<usize>().ok()?)?
                }
            }
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Clone, Copy, PartialEq)]
enum Create {
    No,
    Map,
    Seq,
    Scalar,
}

fn part_kind(next: Option<&String>, create: Create) -> Create {
    match next {
        None => create,
        Some(p) if p.starts_with('[') || p.parse::<usize>().is_ok() => Create::Seq,
        Some(_) => Create::Map,
    }
}

fn fresh(c: Create) -> Value {
    match c {
        Create::Map => Value::Map(Map::new()),
        Create::Seq => Value::Seq(Vec::new()),
        _ => Value::Null,
    }
}

/// kyaml's `PathMatcher`: applies `f` to every node the path matches.
fn path_match(
    node: &mut Value,
    path: &[String],
    create: Create,
    f: &mut dyn FnMut(&mut Value, bool) -> std::result::Result<(), String>,
) -> std::result::Result<usize, String> {
    path_match_in(node, path, create, false, f)
}

/// `created`: `node` was just made by this walk (kyaml gives it no tag, so
/// it takes the value's type).
fn path_match_in(
    node: &mut Value,
    path: &[String],
    create: Create,
    created: bool,
    f: &mut dyn FnMut(&mut Value, bool) -> std::result::Result<(), String>,
) -> std::result::Result<usize, String> {
    let Some(first) = path.first() else {
        f(node, created)?;
        return Ok(1);
    };
    let rest = &path[1..];
    if let Ok(idx) = first.parse::<usize>() {
        let Value::Seq(items) = node else {
            return Err(format!("expected a list at '{first}'"));
        };
        let made = items.len() == idx && create != Create::No;
        if made {
            items.push(fresh(part_kind(rest.first(), create)));
        }
        let len = items.len();
        let el = items
            .get_mut(idx)
            .ok_or_else(|| format!("index {idx} specified but only {len} elements found"))?;
        return path_match_in(el, rest, create, made, f);
    }
    if first == "*" {
        let Value::Seq(items) = node else { return Ok(0) };
        let mut n = 0;
        for it in items.iter_mut() {
            n += path_match_in(it, rest, create, false, f)?;
        }
        return Ok(n);
    }
    if let Some(sel) = first.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let (field, pat) = sel
            .split_once('=')
            .ok_or("list path element must contain fieldName=fieldValue for element to match")?;
        let re = regex::Regex::new(pat).map_err(|e| e.to_string())?;
        let Value::Seq(items) = node else { return Ok(0) };
        let mut n = 0;
        for it in items.iter_mut() {
            let text = if field.is_empty() {
                it.scalar_text()
            } else {
                it.get(field).and_then(Value::scalar_text)
            };
            if text.is_some_and(|t| re.is_match(t.trim())) {
                n += path_match_in(it, rest, create, false, f)?;
            }
        }
        if n == 0 && create != Create::No {
            let el = if field.is_empty() {
                Value::Str(pat.to_string())
            } else {
                let mut m = Map::new();
                m.insert(field, Value::Str(pat.to_string()));
                Value::Map(m)
            };
            items.push(el);
            let last = items.last_mut().expect("just pushed");
            n += path_match_in(last, rest, create, false, f)?;
        }
        return Ok(n);
    }
    let Value::Map(m) = node else {
        return Ok(0);
    };
    let made = !m.contains_key(first);
    if made {
        if create == Create::No {
            return Ok(0);
        }
        m.insert(first.clone(), fresh(part_kind(rest.first(), create)));
    }
    let child = m.get_mut(first).expect("present");
    if child.is_null() && create != Create::No && !rest.is_empty() {
        *child = fresh(part_kind(rest.first(), create));
    }
    path_match_in(child, rest, create, made, f)
}

/// Writes `value` into a target node, keeping a scalar target's type.
fn set_value(
    target: &mut Value,
    value: &Value,
    opts: &Map,
    created: bool,
) -> std::result::Result<(), String> {
    let mut value = value.clone();
    let delim = s(opts, "delimiter");
    if !delim.is_empty() {
        let Some(tv) = target.scalar_text() else {
            return Err("delimiter option can only be used with scalar nodes".into());
        };
        let mut parts: Vec<String> = tv.split(delim.as_str()).map(String::from).collect();
        let v = value.scalar_text().unwrap_or_default();
        let index = match opts.get("index") {
            Some(Value::Int(i)) => *i,
            _ => 0,
        };
        if index < 0 {
            parts.insert(0, v);
        } else if index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[index as usize] = v;
        }
        value = Value::Str(parts.join(&delim));
    }
    match target {
        _ if created => *target = value,
        Value::Map(_) | Value::Seq(_) => *target = value,
        _ => {
            let Some(text) = value.scalar_text() else {
                *target = value;
                return Ok(());
            };
            *target = retype(target, &text)?;
        }
    }
    Ok(())
}

/// The target keeps its YAML tag and takes the new text, as kyaml does.
fn retype(target: &Value, text: &str) -> std::result::Result<Value, String> {
    if matches!(target, Value::Str(_)) {
        return Ok(Value::Str(text.to_string()));
    }
    let parsed = parse_documents(&format!("{text}\n"))
        .ok()
        .and_then(|d| d.into_iter().next());
    let ok = match (target, &parsed) {
        (Value::Int(_) | Value::Uint(_), Some(Value::Int(_) | Value::Uint(_))) => true,
        (Value::Float(_), Some(Value::Float(_))) => true,
        (Value::Float(_), Some(Value::Int(i))) => return Ok(Value::Float(*i as f64)),
        (Value::Bool(_), Some(Value::Bool(_))) => true,
        (Value::Null | Value::NullText, Some(Value::Null | Value::NullText)) => true,
        _ => false,
    };
    if ok {
        return Ok(parsed.unwrap_or(Value::Null));
    }
    Err(format!(
        "cannot decode `{text}` as the type of the replacement target"
    ))
}

fn load_list(t: &Target) -> Result<Vec<Map>> {
    let mut out = Vec::new();
    for r in &t.kust.replacements {
        let m = r
            .as_map()
            .ok_or_else(|| Error::invalid(&t.file, "entries of 'replacements' must be mappings"))?;
        let path = s(m, "path");
        if path.is_empty() {
            out.push(m.clone());
            continue;
        }
        if m.contains_key("source") || m.contains_key("targets") {
            return Err(Error::invalid(
                &t.file,
                "cannot specify both path and inline replacement",
            ));
        }
        let (file, text) = t
            .root
            .load(&path)
            .map_err(|e| e.context(&t.file, format!("replacement '{path}'")))?;
        let docs = parse_documents(&text).map_err(|e| Error::yaml(&file, e))?;
        match docs.into_iter().next() {
            Some(Value::Seq(items)) => {
                for it in items {
                    match it {
                        Value::Map(m) => out.push(m),
                        _ => return Err(Error::invalid(&file, "a replacement must be a mapping")),
                    }
                }
            }
            Some(Value::Map(m)) => out.push(m),
            _ => {
                return Err(Error::invalid(
                    &file,
                    "unsupported replacement type encountered within replacement path",
                ));
            }
        }
    }
    Ok(out)
}

pub fn run(t: &Target, ra: &mut Accumulator) -> Result<()> {
    if t.kust.replacements.is_empty() {
        return Ok(());
    }
    for rep in load_list(t)? {
        apply(ra, &rep).map_err(|m| Error::invalid(&t.file, format!("replacement: {m}")))?;
    }
    Ok(())
}

fn apply(ra: &mut Accumulator, rep: &Map) -> std::result::Result<(), String> {
    let targets = match rep.get("targets") {
        Some(Value::Seq(t)) => t.clone(),
        _ => return Err("replacements must specify a source and at least one target".into()),
    };
    let value = match (rep.get("sourceValue"), rep.get("source")) {
        (Some(_), Some(_)) => return Err("value and resource selectors are mutually exclusive".into()),
        (Some(v), None) => Value::Str(v.scalar_text().unwrap_or_default()),
        (None, Some(Value::Map(src))) => source_value(ra, src)?,
        _ => return Err("replacements must specify a source and at least one target".into()),
    };
    for t in &targets {
        let tm = t.as_map().ok_or("a replacement target must be a mapping")?;
        let select = tm
            .get("select")
            .and_then(Value::as_map)
            .ok_or("target must specify resources to select")?;
        let sel = SelRe::new(select)?;
        let rejects: Vec<SelRe> = match tm.get("reject") {
            Some(Value::Seq(r)) => r
                .iter()
                .filter_map(Value::as_map)
                .map(SelRe::new)
                .collect::<std::result::Result<_, _>>()?,
            _ => Vec::new(),
        };
        let paths: Vec<String> = match tm.get("fieldPaths") {
            Some(Value::Seq(p)) if !p.is_empty() => p.iter().filter_map(Value::scalar_text).collect(),
            _ => vec!["metadata.name".into()],
        };
        let opts = tm
            .get("options")
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default();
        let create = matches!(opts.get("create"), Some(Value::Bool(true)));
        for r in &mut ra.resources {
            if !sel.labels_match(r)? {
                continue;
            }
            let mut rejected = false;
            for rj in &rejects {
                if (!rj.annotations.is_empty() || !rj.labels.is_empty()) && rj.labels_match(r)? {
                    rejected = true;
                }
            }
            let rids = ids(r);
            if rejected
                || rejects
                    .iter()
                    .any(|rj| !rj.empty_id && rids.iter().any(|id| rj.selects(id)))
            {
                continue;
            }
            if !rids.iter().any(|id| sel.selects(id)) {
                continue;
            }
            for fp in &paths {
                let ck = if !create {
                    Create::No
                } else {
                    match value {
                        Value::Map(_) => Create::Map,
                        Value::Seq(_) => Create::Seq,
                        _ => Create::Scalar,
                    }
                };
                let n = path_match(&mut r.obj, &split(fp), ck, &mut |node, created| {
                    set_value(node, &value, &opts, created)
                })?;
                if n == 0 {
                    let what = if create {
                        "unable to find or create field"
                    } else {
                        "unable to find field"
                    };
                    return Err(format!(
                        "{what} {fp:?} in replacement target {}",
                        display_id(&r.cur_id())
                    ));
                }
            }
        }
    }
    Ok(())
}

fn source_value(ra: &Accumulator, src: &Map) -> std::result::Result<Value, String> {
    let want = res_id(src);
    let mut found: Option<&Resource> = None;
    for r in &ra.resources {
        let hit = ids(r).iter().any(|id| {
            (want.name.is_empty() || want.name == id.name)
                && (want.namespace.is_empty() || want.effective_namespace() == id.effective_namespace())
                && id.gvk.is_selected_by(&want.gvk)
        });
        if hit {
            if found.is_some() {
                return Err(format!("multiple matches for selector {}", display_id(&want)));
            }
            found = Some(r);
        }
    }
    let r = found.ok_or_else(|| format!("nothing selected by {}", display_id(&want)))?;
    let mut fp = s(src, "fieldPath");
    if fp.is_empty() {
        fp = "metadata.name".into();
    }
    let v = lookup(&r.obj, &split(&fp))
        .filter(|v| !matches!(v, Value::Null | Value::NullText) && !v.as_map().is_some_and(Map::is_empty))
        .ok_or_else(|| {
            format!(
                "fieldPath `{fp}` is missing for replacement source {}",
                display_id(&want)
            )
        })?;
    let opts = src
        .get("options")
        .and_then(Value::as_map)
        .cloned()
        .unwrap_or_default();
    let delim = s(&opts, "delimiter");
    if delim.is_empty() {
        return Ok(v.clone());
    }
    let text = v
        .scalar_text()
        .ok_or("delimiter option can only be used with scalar nodes")?;
    let parts: Vec<&str> = text.split(delim.as_str()).collect();
    let index = match opts.get("index") {
        Some(Value::Int(i)) => *i,
        _ => 0,
    };
    if index < 0 || index as usize >= parts.len() {
        return Err(format!("options.index {index} is out of bounds for value {text}"));
    }
    Ok(match v {
        Value::Str(_) => Value::Str(parts[index as usize].to_string()),
        other => retype(other, parts[index as usize])
            .unwrap_or_else(|_| Value::Str(parts[index as usize].to_string())),
    })
}
