//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch for built-in kinds.

use crate::schema::{ListKind, Schema, same_key};
use crate::status::{ApiError, ApiResult};
use serde_json::{Map, Value};

pub fn merge_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    if !patch.is_object() {
        let what = if patch.is_array() { "array" } else { "value" };
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
        )));
    }
    json_patch::merge(target, patch);
    Ok(())
}

pub fn json_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: invalid JSON patch: {e}"
        ))
    })?;
    json_patch::patch(target, &ops).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

fn without_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !is_directive(k))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

/// Apply a strategic merge patch (built-in kinds only).
pub fn strategic_merge(target: &mut Value, patch: &Value, schema: Schema<'_>) -> ApiResult<()> {
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "strategic merge patch must be a JSON object",
        ));
    }
    merge_object(target, patch, schema);
    Ok(())
}

fn merge_object(target: &mut Value, patch: &Value, schema: Schema<'_>) {
    let Some(pm) = patch.as_object() else { return };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = without_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(tm) = target.as_object_mut() else { return };
    if let Some(keep) = pm.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        tm.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in pm {
        if is_directive(k) {
            continue;
        }
        let child = schema.field(k);
        match pv {
            Value::Null => {
                tm.remove(k);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                tm.remove(k);
            }
            Value::Object(_) => {
                let slot = tm.entry(k.clone()).or_insert(Value::Null);
                merge_object(slot, pv, child);
            }
            Value::Array(items) => {
                let kind = child.list_kind(k, items);
                let slot = tm.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(slot, items, kind, child.items());
            }
            scalar => {
                tm.insert(k.clone(), scalar.clone());
            }
        }
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(list)), Some(del)) = (tm.get_mut(field), pv.as_array())
        {
            list.retain(|x| !del.contains(x));
        }
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(list)), Some(order)) = (tm.get_mut(field), pv.as_array())
        {
            let kind = schema.field(field).list_kind(field, list);
            reorder(list, order, &kind);
        }
    }
}

fn merge_list(target: &mut Value, items: &[Value], kind: ListKind, item_schema: Schema<'_>) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(without_directives)
                .collect(),
        );
        return;
    }
    if !target.is_array() {
        *target = Value::Array(Vec::new());
    }
    let Some(list) = target.as_array_mut() else { return };
    match kind {
        ListKind::Atomic => *list = items.iter().map(without_directives).collect(),
        ListKind::Set => {
            for i in items {
                if !list.contains(i) {
                    list.push(i.clone());
                }
            }
        }
        ListKind::Map(keys) => {
            // Strategic merge patch merges on the first (patchMergeKey) key only.
            let keys = &keys[..1];
            for i in items {
                let pos = list.iter().position(|x| same_key(x, i, keys));
                let delete = i.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(p), true) => {
                        list.remove(p);
                    }
                    (None, true) => {}
                    (Some(p), false) => merge_object(&mut list[p], i, item_schema),
                    (None, false) => list.push(without_directives(i)),
                }
            }
        }
    }
}

fn reorder(list: &mut [Value], order: &[Value], kind: &ListKind) {
    let rank = |x: &Value| {
        order.iter().position(|o| match kind {
            ListKind::Map(keys) => same_key(x, o, &keys[..1]),
            _ => x == o,
        })
    };
    list.sort_by_key(|x| rank(x).unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"}
        ]}}}});
        strategic_merge(&mut d, &p, Schema::Builtin).unwrap();
        assert_eq!(
            d,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
            ]}}}})
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let mut d = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}, "data": {"k": "v"}});
        let p = json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"x": null}}, "data": {"$patch": "replace", "n": "m"}});
        strategic_merge(&mut d, &p, Schema::Builtin).unwrap();
        assert_eq!(
            d,
            json!({"metadata": {"finalizers": ["b", "c"], "labels": {"y": "2"}}, "data": {"n": "m"}})
        );
    }

    #[test]
    fn json_patch_test_failure_is_invalid() {
        let mut d = json!({"a": 1});
        let e = json_patch(&mut d, &json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert_eq!(e.code, 422);
        json_patch(&mut d, &json!([{"op": "replace", "path": "/a", "value": 3}])).unwrap();
        assert_eq!(d, json!({"a": 3}));
    }
}
