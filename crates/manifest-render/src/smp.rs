//! Strategic merge as kyaml's `merge2` does it for kustomize: the patch is
//! walked against the object with the OpenAPI schema deciding which lists
//! merge by key; list merges put the patch's elements first (kustomize's
//! "prepend" direction); `$patch: delete|replace|merge` directives apply to
//! maps and lists; a null in the patch deletes the field.

use crate::schema::{self, FieldSchema};
use crate::yaml::{Map, Value};

/// Where in the schema a node sits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sch {
    /// The definition of a map node (or of a list's elements).
    pub def: Option<&'static str>,
    pub strategy: &'static str,
    pub keys: &'static str,
    /// True when the schema describes this node even if our compact table
    /// has nothing for it (kyaml would not look for apiVersion/kind then).
    pub known: bool,
}

impl Sch {
    fn from_field(f: Option<FieldSchema>, parent_known: bool) -> Sch {
        match f {
            Some(f) => Sch {
                def: f.def,
                strategy: f.strategy,
                keys: f.keys,
                known: true,
            },
            None => Sch {
                known: parent_known,
                ..Sch::default()
            },
        }
    }
    fn field(&self, key: &str) -> Sch {
        match self.def {
            Some(d) => Sch::from_field(schema::field(d, key), true),
            None => Sch {
                known: self.known,
                ..Sch::default()
            },
        }
    }
    fn elements(&self) -> Sch {
        Sch {
            def: self.def,
            strategy: "",
            keys: "",
            known: self.known,
        }
    }
    fn is_merge_list(&self) -> bool {
        self.strategy.split(',').any(|s| s == "merge")
    }
}

/// The schema of a whole object.
pub(crate) fn schema_for(obj: &Value) -> Sch {
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if av.is_empty() || kind.is_empty() {
        return Sch::default();
    }
    let gvk = crate::resource::Gvk::from_api_version(av, kind);
    match schema::def_for_kind(&gvk.group, &gvk.version, &gvk.kind) {
        Some(def) => Sch {
            def: Some(def),
            known: true,
            ..Sch::default()
        },
        None => Sch {
            known: schema::namespace_scope(&gvk.group, &gvk.version, &gvk.kind).is_some(),
            ..Sch::default()
        },
    }
}

/// Merges `patch` into `obj`; `None` means the object was deleted.
pub(crate) fn merge(obj: Value, patch: Value) -> Result<Option<Value>, String> {
    walk(Some(obj), Some(patch), Sch::default())
}

#[derive(PartialEq)]
enum Kind {
    Map,
    Seq,
    Scalar,
    None,
}

fn kind(v: &Option<Value>) -> Kind {
    match v {
        None | Some(Value::Null | Value::NullText) => Kind::None,
        Some(Value::Map(_)) => Kind::Map,
        Some(Value::Seq(_)) => Kind::Seq,
        Some(_) => Kind::Scalar,
    }
}

fn missing_or_null(v: &Option<Value>) -> bool {
    matches!(v, None | Some(Value::Null | Value::NullText))
}

fn walk(dest: Option<Value>, origin: Option<Value>, mut sch: Sch) -> Result<Option<Value>, String> {
    if sch.def.is_none() && !sch.known {
        // kyaml looks for apiVersion/kind on the nodes when it has no schema.
        for v in [&dest, &origin].into_iter().flatten() {
            if v.as_map().is_some() {
                let s = schema_for(v);
                if s.def.is_some() {
                    sch = s;
                    break;
                }
            }
        }
    }
    let k = match kind(&dest) {
        Kind::None => kind(&origin),
        k => k,
    };
    let ko = kind(&origin);
    if k != Kind::None && ko != Kind::None && ko != k {
        return Err(format!(
            "wrong node kind: the patch has a {} where the object has a {}",
            kind_name(&ko),
            kind_name(&k)
        ));
    }
    match k {
        Kind::Map | Kind::None => walk_map(dest, origin, sch),
        Kind::Seq => {
            if sch.def.is_some() || sch.strategy.is_empty() {
                // fallthrough below
            }
            if sch.is_merge_list() {
                walk_assoc(dest, origin, sch)
            } else {
                Ok(visit_replace(dest, origin))
            }
        }
        Kind::Scalar => Ok(visit_replace(dest, origin)),
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Map => "mapping",
        Kind::Seq => "list",
        Kind::Scalar => "scalar",
        Kind::None => "null",
    }
}

/// Scalars and non-merging lists: the patch wins; a null in it deletes.
fn visit_replace(dest: Option<Value>, origin: Option<Value>) -> Option<Value> {
    match origin {
        Some(Value::Null | Value::NullText) => None,
        Some(o) => Some(o),
        None => dest,
    }
}

#[derive(PartialEq)]
enum Directive {
    Merge,
    Delete,
    Replace,
}

fn map_directive(m: &mut Map) -> Result<Directive, String> {
    let Some(v) = m.get("$patch") else {
        return Ok(Directive::Merge);
    };
    let d = match v.scalar_text().as_deref() {
        Some("delete") => Directive::Delete,
        Some("replace") => Directive::Replace,
        Some("merge") => Directive::Merge,
        other => return Err(format!("unknown patch strategy '{}'", other.unwrap_or_default())),
    };
    m.remove("$patch");
    Ok(d)
}

fn seq_directive(s: &mut Vec<Value>) -> Result<Directive, String> {
    let Some(pos) = s
        .iter()
        .position(|e| e.as_map().is_some_and(|m| m.contains_key("$patch")))
    else {
        return Ok(Directive::Merge);
    };
    let el = s[pos].as_map().expect("checked map");
    if el.len() > 1 {
        return Ok(Directive::Merge);
    }
    let text = el.get("$patch").and_then(Value::scalar_text).unwrap_or_default();
    let d = match text.as_str() {
        "delete" => Directive::Delete,
        "replace" => Directive::Replace,
        "merge" => Directive::Merge,
        other => return Err(format!("unknown patch strategy '{other}'")),
    };
    s.retain(|e| {
        e.as_map()
            .and_then(|m| m.get("$patch"))
            .and_then(Value::scalar_text)
            .as_deref()
            != Some(text.as_str())
    });
    Ok(d)
}

fn walk_map(dest: Option<Value>, origin: Option<Value>, sch: Sch) -> Result<Option<Value>, String> {
    let mut origin = origin;
    let (mut d, o): (Map, Option<Map>) = if missing_or_null(&dest) {
        let directive = match &mut origin {
            Some(Value::Map(m)) => map_directive(m)?,
            _ => Directive::Merge,
        };
        if directive == Directive::Delete {
            return Ok(None);
        }
        match origin {
            // A dest null survives only when it was written as a word.
            None => return Ok(dest.filter(|d| matches!(d, Value::NullText))),
            Some(Value::Map(m)) => (m.clone(), Some(m)),
            Some(_) => return Ok(None),
        }
    } else {
        let Some(Value::Map(dm)) = dest else {
            return Err("expected a mapping".into());
        };
        match origin {
            Some(Value::Null | Value::NullText) => return Ok(None),
            Some(Value::Map(mut om)) => match map_directive(&mut om)? {
                Directive::Delete => return Ok(None),
                Directive::Replace => (om.clone(), Some(om)),
                Directive::Merge => (dm, Some(om)),
            },
            None => (dm, None),
            Some(_) => return Err("expected a mapping in the patch".into()),
        }
    };
    let mut keys: Vec<String> = d.keys().cloned().collect();
    if let Some(o) = &o {
        keys.extend(o.keys().cloned());
    }
    keys.sort();
    keys.dedup();
    let mut o = o;
    for key in keys {
        let fd = d.get(&key).cloned();
        let fo = o.as_mut().and_then(|o| o.remove(&key));
        if fd.is_none() && fo.is_none() {
            continue;
        }
        match walk(fd, fo, sch.field(&key))? {
            None => {
                d.remove(&key);
            }
            Some(v) => {
                d.insert(key, v);
            }
        }
    }
    Ok(Some(Value::Map(d)))
}

/// The text of `key` in an element (kyaml's `ElementValuesList`).
fn key_text(elem: &Value, key: &str) -> String {
    if key.is_empty() {
        return elem.scalar_text().unwrap_or_default();
    }
    match elem.get(key) {
        None | Some(Value::Null | Value::NullText) => String::new(),
        Some(Value::Map(m)) if m.is_empty() => String::new(),
        Some(v) => v.scalar_text().unwrap_or_default(),
    }
}

fn matches(elem: &Value, keys: &[String], values: &[String]) -> bool {
    keys.iter().zip(values).all(|(k, v)| {
        if k.is_empty() {
            return elem.scalar_text().as_deref() == Some(v.as_str())
                && !matches!(elem, Value::Map(_) | Value::Seq(_));
        }
        elem.get(k).and_then(Value::scalar_text).as_deref() == Some(v.as_str())
    })
}

fn is_empty_elem(v: &Value) -> bool {
    match v {
        Value::Null | Value::NullText => true,
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

/// kyaml's `ElementSetter`: drops empty elements, replaces (or with `None`
/// removes) every element matching keys/values, appends when none matched.
fn element_setter(list: &mut Vec<Value>, element: Option<Value>, keys: &[String], values: &[String]) {
    let mapping_setter = keys.first().is_some_and(|k| !k.is_empty());
    let mut out = Vec::with_capacity(list.len() + 1);
    let mut found = false;
    for e in list.drain(..) {
        if is_empty_elem(&e) {
            continue;
        }
        if mapping_setter && e.as_map().is_none() {
            out.push(e);
            continue;
        }
        if !matches(&e, keys, values) {
            if !values.is_empty() {
                out.push(e);
            }
            continue;
        }
        found = true;
        if let Some(el) = &element {
            out.push(el.clone());
        }
    }
    *list = out;
    if let Some(el) = element
        && !is_empty_elem(&el)
        && !found
    {
        list.push(el);
    }
}

fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut valid: Vec<&String> = Vec::new();
    for vals in values_list {
        for (i, v) in vals.iter().enumerate() {
            if !v.is_empty() && !valid.contains(&&keys[i]) {
                valid.push(&keys[i]);
            }
        }
    }
    if valid.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let vk: Vec<String> = keys.iter().filter(|k| valid.contains(k)).cloned().collect();
    let vv: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || valid.contains(&&keys[*i]))
        .map(|(_, v)| v.clone())
        .collect();
    (vk, vv)
}

fn merge_values(mut list: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let n = list.len();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (&list[i], &list[j]);
            if a.len() != b.len() {
                continue;
            }
            let mut common = false;
            let mut res = Vec::new();
            let mut ok = true;
            for k in 0..a.len() {
                if a[k] == b[k] {
                    common = true;
                    res.push(a[k].clone());
                } else if !a[k].is_empty() && !b[k].is_empty() {
                    ok = false;
                    break;
                } else if !a[k].is_empty() {
                    res.push(a[k].clone());
                } else {
                    res.push(b[k].clone());
                }
            }
            if ok && common {
                list[i] = res.clone();
                list[j] = res;
            }
        }
    }
    list
}

fn walk_assoc(dest: Option<Value>, origin: Option<Value>, sch: Sch) -> Result<Option<Value>, String> {
    let mut origin = origin;
    let d: Vec<Value> = if missing_or_null(&dest) {
        match &origin {
            Some(Value::Seq(s)) => s.clone(),
            _ => return Ok(None),
        }
    } else {
        match &mut origin {
            Some(Value::Null | Value::NullText) => return Ok(None),
            Some(Value::Seq(os)) => match seq_directive(os)? {
                Directive::Delete => return Ok(None),
                Directive::Replace => os.clone(),
                Directive::Merge => dest
                    .and_then(|d| if let Value::Seq(s) = d { Some(s) } else { None })
                    .unwrap_or_default(),
            },
            _ => dest
                .and_then(|d| if let Value::Seq(s) = d { Some(s) } else { None })
                .unwrap_or_default(),
        }
    };
    let origin_list: Vec<Value> = match origin {
        Some(Value::Seq(s)) => s,
        _ => Vec::new(),
    };
    let keys: Vec<String> = if sch.keys.is_empty() {
        Vec::new()
    } else {
        sch.keys.split(',').map(String::from).collect()
    };
    let elem_sch = sch.elements();
    // Element key values, patch first (kustomize's prepend direction).
    let mut values_list: Vec<Vec<String>> = Vec::new();
    let (keys, primitive) = if keys.is_empty() {
        (vec![String::new()], true)
    } else {
        (keys, false)
    };
    for src in [&origin_list, &d] {
        for e in src {
            let row: Vec<String> = keys
                .iter()
                .map(|k| {
                    if primitive {
                        e.scalar_text().unwrap_or_default()
                    } else {
                        key_text(e, k)
                    }
                })
                .collect();
            if primitive && matches!(e, Value::Map(_) | Value::Seq(_)) {
                continue;
            }
            if !values_list.contains(&row) {
                values_list.push(row);
            }
        }
    }
    let mut d = d;
    if keys.len() > 1 {
        values_list = merge_values(values_list);
    }
    let mut items: Vec<Value> = Vec::new();
    let mut last_keys = keys.clone();
    for values in &values_list {
        if values.is_empty() {
            continue;
        }
        let (vk, vv) = validate_keys(&values_list, values, &keys);
        last_keys = vk.clone();
        let (ek, ev) = validate_keys(std::slice::from_ref(values), values, &keys);
        let de = d.iter().find(|e| matches(e, &ek, &ev)).cloned();
        let oe = origin_list.iter().find(|e| matches(e, &ek, &ev)).cloned();
        let val = walk(de, oe, elem_sch)?;
        let val = match val {
            None => {
                element_setter(&mut d, None, &vk, &vv);
                continue;
            }
            Some(v) if is_empty_elem(&v) => {
                element_setter(&mut d, None, &vk, &vv);
                continue;
            }
            Some(mut v) => {
                if let Value::Map(m) = &mut v {
                    for (i, k) in vk.iter().enumerate() {
                        if !m.contains_key(k) && !vv[i].is_empty() {
                            m.insert(k.clone(), Value::Str(vv[i].clone()));
                        }
                    }
                }
                v
            }
        };
        element_setter(&mut items, Some(val), &vk, &vv);
    }
    if !values_list.is_empty() {
        // appendListNode(items, dest): dest elements replace their merged
        // twins (same content) or are appended.
        for e in d {
            if !primitive && last_keys.iter().any(|k| e.get(k).is_none_or(Value::is_null)) {
                items.push(e);
                continue;
            }
            let vals: Vec<String> = last_keys
                .iter()
                .map(|k| {
                    if primitive {
                        e.scalar_text().unwrap_or_default()
                    } else {
                        key_text(&e, k)
                    }
                })
                .collect();
            if last_keys.len() > 1 {
                // With several keys kyaml removes the element's merged twin
                // and appends it again: merged elements follow dest's order.
                let twin = items.iter().position(|x| matches(x, &last_keys, &vals));
                let el = twin.map_or(e, |i| items.remove(i));
                element_setter(&mut items, None, &last_keys, &vals);
                element_setter(&mut items, Some(el), &last_keys, &vals);
                continue;
            }
            if !items.iter().any(|x| matches(x, &last_keys, &vals)) {
                element_setter(&mut items, Some(e), &last_keys, &vals);
            } else {
                // Keep the merged element; drop empty ones as ElementSetter does.
                items.retain(|x| !is_empty_elem(x));
            }
        }
        return Ok(Some(Value::Seq(items)));
    }
    Ok(Some(Value::Seq(d)))
}
