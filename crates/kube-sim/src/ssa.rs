//! Server-side apply and managedFields bookkeeping.
//!
//! Field sets are kept in their wire form (FieldsV1: `{"f:spec":{"f:replicas":{}}}`,
//! list items as `k:{"name":"x"}`, set members as `v:"x"`, the item itself as
//! `.`), so what is stored is what clients read back.

use crate::registry::GroupResource;
use crate::schema::{ListKind, Schema, key_value, same_key};
use crate::status::{ApiError, ApiResult};
use serde_json::{Map, Value, json};

/// Which part of an object a request may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` when the kind has a status subresource.
    Main { status_subresource: bool },
    /// The `status` subresource: only `status`.
    Status,
}

/// Metadata the server owns; never part of any manager's field set.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The FieldsV1 set of the fields `obj` sets.
pub fn fieldset(obj: &Value, schema: Schema<'_>, part: Part) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        match part {
            Part::Status if k != "status" => continue,
            Part::Main {
                status_subresource: true,
            } if k == "status" => continue,
            _ => {}
        }
        if k == "metadata" {
            let mut meta = v.clone();
            if let Some(mm) = meta.as_object_mut() {
                mm.retain(|mk, _| !SERVER_META.contains(&mk.as_str()));
                if mm.is_empty() {
                    continue;
                }
            }
            out.insert(
                "f:metadata".into(),
                node_set(&meta, "metadata", schema.field("metadata")),
            );
            continue;
        }
        out.insert(format!("f:{k}"), node_set(v, k, schema.field(k)));
    }
    Value::Object(out)
}

fn node_set(v: &Value, field: &str, schema: Schema<'_>) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() && !schema.atomic_map() => {
            let mut out = Map::new();
            for (k, c) in m {
                out.insert(format!("f:{k}"), node_set(c, k, schema.field(k)));
            }
            Value::Object(out)
        }
        Value::Array(items) if !items.is_empty() => match schema.list_kind(field, items) {
            ListKind::Atomic => json!({}),
            ListKind::Set => Value::Object(items.iter().map(|i| (format!("v:{i}"), json!({}))).collect()),
            ListKind::Map(keys) => {
                let mut out = Map::new();
                for item in items {
                    let mut s = match node_set(item, "", schema.items()) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    s.insert(".".into(), json!({}));
                    out.insert(item_key(item, &keys), Value::Object(s));
                }
                Value::Object(out)
            }
        },
        _ => json!({}),
    }
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut ks: Vec<&String> = keys.iter().collect();
    ks.sort();
    let m: Map<String, Value> = ks
        .into_iter()
        .filter_map(|k| key_value(item, k).map(|v| (k.clone(), v)))
        .collect();
    format!("k:{}", Value::Object(m))
}

/// Every leaf path of a field set.
pub fn leaves(set: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, c) in m {
                    path.push(k.clone());
                    walk(c, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    let mut out = Vec::new();
    if set.as_object().is_some_and(|m| !m.is_empty()) {
        walk(set, &mut Vec::new(), &mut out);
    }
    out
}

fn node_at<'a>(set: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(set, |cur, p| cur.get(p))
}

fn has_node(set: &Value, path: &[String]) -> bool {
    node_at(set, path).is_some()
}

fn has_leaf(set: &Value, path: &[String]) -> bool {
    node_at(set, path).is_some_and(|n| n.as_object().is_none_or(Map::is_empty))
}

fn insert_leaf(set: &mut Value, path: &[String]) {
    let mut cur = set;
    for p in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(m) = cur.as_object_mut() else { return };
        cur = m.entry(p.clone()).or_insert_with(|| json!({}));
    }
}

/// Remove a leaf; interior nodes left empty are dropped too.
fn remove_leaf(set: &mut Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(m) = set.as_object_mut() else {
        return false;
    };
    let Some(child) = m.get_mut(first) else {
        return false;
    };
    let was_leaf = child.as_object().is_none_or(Map::is_empty);
    if rest.is_empty() {
        if was_leaf {
            m.remove(first);
            return true;
        }
        return false;
    }
    let removed = remove_leaf(child, rest);
    if removed && child.as_object().is_some_and(Map::is_empty) {
        m.remove(first);
    }
    removed
}

pub fn union(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    for l in leaves(b) {
        insert_leaf(&mut out, &l);
    }
    out
}

pub fn subtract(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    for l in leaves(b) {
        remove_leaf(&mut out, &l);
    }
    out
}

fn is_empty_set(s: &Value) -> bool {
    s.as_object().is_none_or(Map::is_empty)
}

/// One element of a field path, resolved.
enum Step {
    Field(String),
    /// A list-map item: its key fields and their values.
    Item(Vec<String>, Value),
    /// A set member.
    Member(Value),
    Here,
}

fn step(p: &str) -> Option<Step> {
    Some(if let Some(f) = p.strip_prefix("f:") {
        Step::Field(f.to_string())
    } else if let Some(k) = p.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(k).ok()?;
        Step::Item(key.keys().cloned().collect(), Value::Object(key))
    } else if let Some(v) = p.strip_prefix("v:") {
        Step::Member(serde_json::from_str(v).ok()?)
    } else {
        Step::Here
    })
}

impl Step {
    fn picks(&self, item: &Value) -> bool {
        match self {
            Step::Item(keys, probe) => same_key(item, probe, keys),
            Step::Member(v) => item == v,
            _ => false,
        }
    }
}

/// The value a field path points at in an object.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = match step(p)? {
            Step::Field(f) => cur.get(&f)?,
            Step::Here => cur,
            s => cur.as_array()?.iter().find(|i| s.picks(i))?,
        };
    }
    Some(cur)
}

/// `.spec.containers[name="x"].image`, as the API server prints field paths.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Remove the field a leaf path names from an object (for fields an
/// applier stopped applying).
fn remove_value(obj: &mut Value, path: &[String]) {
    let (last, parent_path) = match path.last().map(String::as_str) {
        Some(".") => {
            let item_path = &path[..path.len() - 1];
            match item_path.split_last() {
                Some((item, parent)) => (item.clone(), parent.to_vec()),
                None => return,
            }
        }
        Some(_) => match path.split_last() {
            Some((l, p)) => (l.clone(), p.to_vec()),
            None => return,
        },
        None => return,
    };
    let Some(parent) = value_at_mut(obj, &parent_path) else {
        return;
    };
    match step(&last) {
        Some(Step::Field(f)) => {
            if let Some(m) = parent.as_object_mut() {
                m.remove(&f);
            }
        }
        Some(s @ (Step::Item(..) | Step::Member(_))) => {
            if let Some(a) = parent.as_array_mut() {
                a.retain(|i| !s.picks(i));
            }
        }
        _ => {}
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for p in path {
        cur = match step(p)? {
            Step::Field(f) => cur.get_mut(&f)?,
            Step::Here => cur,
            s => cur.as_array_mut()?.iter_mut().find(|i| s.picks(i))?,
        };
    }
    Some(cur)
}

/// Merge an apply configuration into an object.
fn merge_applied(target: &mut Value, applied: &Value, field: &str, schema: Schema<'_>) {
    match applied {
        Value::Object(am) if !schema.atomic_map() => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(tm) = target.as_object_mut() else { return };
            for (k, v) in am {
                if v.is_null() {
                    tm.remove(k);
                    continue;
                }
                let slot = tm.entry(k.clone()).or_insert(Value::Null);
                merge_applied(slot, v, k, schema.field(k));
            }
        }
        Value::Array(items) => match schema.list_kind(field, items) {
            ListKind::Atomic => *target = applied.clone(),
            ListKind::Set => {
                let Some(list) = target.as_array_mut() else {
                    *target = applied.clone();
                    return;
                };
                for i in items {
                    if !list.contains(i) {
                        list.push(i.clone());
                    }
                }
            }
            ListKind::Map(keys) => {
                let Some(list) = target.as_array_mut() else {
                    *target = applied.clone();
                    return;
                };
                for i in items {
                    match list.iter().position(|x| same_key(x, i, &keys)) {
                        Some(p) => merge_applied(&mut list[p], i, "", schema.items()),
                        None => list.push(i.clone()),
                    }
                }
            }
        },
        other => *target = other.clone(),
    }
}

/// One request's view of the managed-field bookkeeping.
pub struct Context<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub schema: Schema<'a>,
    pub part: Part,
    pub now: &'a str,
}

impl Context<'_> {
    fn subresource(&self) -> Option<&'static str> {
        match self.part {
            Part::Status => Some("status"),
            Part::Main { .. } => None,
        }
    }

    fn is_mine(&self, e: &Value, op: &str) -> bool {
        e.get("manager").and_then(Value::as_str) == Some(self.manager)
            && e.get("operation").and_then(Value::as_str) == Some(op)
            && e.get("subresource").and_then(Value::as_str) == self.subresource()
    }

    fn entry(&self, op: &str, fields: Value) -> Value {
        let mut e = json!({
            "manager": self.manager,
            "operation": op,
            "apiVersion": self.api_version,
            "time": self.now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        });
        if let Some(s) = self.subresource() {
            e["subresource"] = json!(s);
        }
        e
    }
}

fn managed(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_managed(obj: &mut Value, entries: Vec<Value>) {
    let entries: Vec<Value> = entries
        .into_iter()
        .filter(|e| !is_empty_set(e.get("fieldsV1").unwrap_or(&Value::Null)))
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Server-side apply of `applied` onto `live` (None: the object is new).
/// Returns the merged object with its managedFields updated.
pub fn apply(
    ctx: &Context<'_>,
    gr: &GroupResource,
    name: &str,
    live: Option<&Value>,
    applied: &Value,
    force: bool,
) -> ApiResult<Value> {
    let aset = fieldset(applied, ctx.schema, ctx.part);
    let mut entries = live.map(managed).unwrap_or_default();
    let mut conflicts = Vec::new();
    let mut stolen: Vec<(usize, Vec<String>)> = Vec::new();
    let to_merge = applicable(applied, ctx.part);
    if let Some(live) = live {
        // A conflict is a field this apply would change that another manager owns.
        let mut merged = live.clone();
        merge_applied(&mut merged, &to_merge, "", ctx.schema);
        for (i, e) in entries.iter().enumerate() {
            if ctx.is_mine(e, "Apply") {
                continue;
            }
            let eset = e.get("fieldsV1").cloned().unwrap_or(Value::Null);
            for leaf in leaves(&aset) {
                // Only a field both own as a value can conflict; owning a
                // map or list item (".") is shared by nature.
                if leaf.last().map(String::as_str) == Some(".") || !has_leaf(&eset, &leaf) {
                    continue;
                }
                if value_at(live, &leaf) != value_at(&merged, &leaf) {
                    let m = e.get("manager").and_then(Value::as_str).unwrap_or("").to_string();
                    let v = e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    conflicts.push((m, v, path_string(&leaf)));
                    stolen.push((i, leaf));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApiError::apply_conflicts(gr, name, &conflicts));
    }
    for (i, leaf) in &stolen {
        if let Some(f) = entries[*i].get_mut("fieldsV1") {
            remove_leaf(f, leaf);
        }
    }
    let mine = entries.iter().position(|e| ctx.is_mine(e, "Apply"));
    let prev = mine
        .and_then(|i| entries[i].get("fieldsV1").cloned())
        .unwrap_or(json!({}));
    let others = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != mine)
        .fold(json!({}), |acc, (_, e)| {
            union(&acc, e.get("fieldsV1").unwrap_or(&Value::Null))
        });
    let removed = subtract(&subtract(&prev, &aset), &others);

    let mut result = match live {
        Some(l) => l.clone(),
        None => json!({"apiVersion": applied.get("apiVersion"), "kind": applied.get("kind"), "metadata": {}}),
    };
    for leaf in leaves(&removed) {
        // An item another manager still has fields in stays.
        if leaf.last().map(String::as_str) == Some(".") && has_node(&others, &leaf[..leaf.len() - 1]) {
            continue;
        }
        remove_value(&mut result, &leaf);
    }
    merge_applied(&mut result, &to_merge, "", ctx.schema);

    let new_entry = ctx.entry("Apply", aset);
    match mine {
        Some(i) => {
            // Keep the old timestamp when nothing this manager owns changed,
            // so that a no-op apply stays a no-op.
            let unchanged = entries[i].get("fieldsV1") == new_entry.get("fieldsV1")
                && live.is_some_and(|l| strip_managed(l) == strip_managed(&result));
            if !unchanged {
                entries[i] = new_entry;
            }
        }
        None => entries.push(new_entry),
    }
    set_managed(&mut result, entries);
    Ok(result)
}

/// The part of an apply configuration this request may set.
fn applicable(applied: &Value, part: Part) -> Value {
    let mut to_merge = applied.clone();
    if let Some(m) = to_merge.as_object_mut() {
        m.retain(|k, _| match part {
            Part::Status => k == "status" || k == "metadata",
            Part::Main {
                status_subresource: true,
            } => k != "status",
            Part::Main { .. } => true,
        });
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|mk, _| !SERVER_META.contains(&mk.as_str()) || mk == "name" || mk == "namespace");
            if part == Part::Status {
                meta.retain(|mk, _| mk == "name" || mk == "namespace");
            }
        }
    }
    to_merge
}

fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

/// Record an update (create, PUT, non-apply PATCH) by `ctx.manager`: it
/// takes the fields it changed; fields that disappeared leave every set.
pub fn record_update(ctx: &Context<'_>, old: Option<&Value>, new: &mut Value) {
    let nset = fieldset(new, ctx.schema, ctx.part);
    let mut entries = old.map(managed).unwrap_or_default();
    let mut changed = json!({});
    for leaf in leaves(&nset) {
        let before = old.and_then(|o| value_at(o, &leaf));
        if before.is_none()
            || (leaf.last().map(String::as_str) != Some(".") && before != value_at(new, &leaf))
        {
            insert_leaf(&mut changed, &leaf);
        }
    }
    // Drop fields that no longer exist from every manager whose part this is.
    for e in entries.iter_mut() {
        let same_part = e.get("subresource").and_then(Value::as_str) == ctx.subresource();
        if let Some(f) = e.get_mut("fieldsV1") {
            if same_part {
                for leaf in leaves(f) {
                    if !has_node(&nset, &leaf) {
                        remove_leaf(f, &leaf);
                    }
                }
            }
            *f = subtract(f, &changed);
        }
    }
    if !is_empty_set(&changed) {
        match entries.iter().position(|e| ctx.is_mine(e, "Update")) {
            Some(i) => {
                let f = union(entries[i].get("fieldsV1").unwrap_or(&Value::Null), &changed);
                entries[i] = ctx.entry("Update", f);
            }
            None => entries.push(ctx.entry("Update", changed)),
        }
    }
    set_managed(new, entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(m: &'a str) -> Context<'a> {
        Context {
            manager: m,
            api_version: "v1",
            schema: Schema::Builtin,
            part: Part::Main {
                status_subresource: false,
            },
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn gr() -> GroupResource {
        GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    #[test]
    fn apply_owns_removes_and_conflicts() {
        let a1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1"}}, "data": {"a": "1", "b": "2"}});
        let o1 = apply(&ctx("m1"), &gr(), "c", None, &a1, false).unwrap();
        assert_eq!(o1["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            o1["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:data": {"f:a": {}, "f:b": {}}})
        );
        // m1 stops applying b: it is removed.
        let a2 =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let o2 = apply(&ctx("m1"), &gr(), "c", Some(&o1), &a2, false).unwrap();
        assert_eq!(o2["data"], json!({"a": "1"}));
        assert!(o2["metadata"].get("labels").is_none_or(|l| l.get("x").is_none()));
        // m2 applying a different value of a conflicts, then forces.
        let a3 =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "9"}});
        let e = apply(&ctx("m2"), &gr(), "c", Some(&o2), &a3, false).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"m1\" using v1: .data.a"
        );
        let o3 = apply(&ctx("m2"), &gr(), "c", Some(&o2), &a3, true).unwrap();
        assert_eq!(o3["data"]["a"], "9");
        let mf = o3["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1, "m1 lost its only field: {mf:?}");
        assert_eq!(mf[0]["manager"], "m2");
    }

    #[test]
    fn apply_merges_containers_by_name_and_shares_equal_values() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}});
        let mut live2 = live.clone();
        record_update(&ctx("editor"), None, &mut live2);
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let out = apply(&ctx("m"), &gr(), "d", Some(&live2), &applied, false).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(out["metadata"]["managedFields"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn update_takes_changed_fields() {
        let old =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let mut o = old.clone();
        record_update(&ctx("m1"), None, &mut o);
        let mut n = o.clone();
        n["data"]["a"] = json!("2");
        n["data"]["b"] = json!("3");
        record_update(&ctx("m2"), Some(&o), &mut n);
        let mf = n["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0]["manager"], "m2");
        assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
    }
}
