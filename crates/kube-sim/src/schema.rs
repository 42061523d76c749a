//! Just enough schema knowledge for merging: which lists are merged by key
//! (and on which keys), which are sets, which are atomic.
//!
//! CRD kinds use their `openAPIV3Schema` (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`). Built-in kinds use
//! a table of the list fields whose merge keys Kubernetes declares (the
//! everyday ones: containers, env, ports, volumes, conditions, ...), keyed by
//! field name; any other built-in list is atomic.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

#[derive(Clone, Copy, Debug)]
pub enum Schema<'a> {
    /// A CRD schema node (None: no schema known, or preserve-unknown-fields).
    Crd {
        node: Option<&'a Value>,
        root: bool,
    },
    Builtin,
}

impl<'a> Schema<'a> {
    pub fn crd(root: Option<&'a Value>) -> Self {
        Schema::Crd {
            node: root,
            root: true,
        }
    }

    pub fn field(self, name: &str) -> Schema<'a> {
        match self {
            Schema::Builtin => Schema::Builtin,
            // ObjectMeta has the built-in semantics in every kind.
            Schema::Crd { root: true, .. } if name == "metadata" => Schema::Builtin,
            Schema::Crd { node, .. } => {
                let child = node.and_then(|n| {
                    n.get("properties")
                        .and_then(|p| p.get(name))
                        .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                });
                Schema::Crd {
                    node: child,
                    root: false,
                }
            }
        }
    }

    pub fn items(self) -> Schema<'a> {
        match self {
            Schema::Builtin => Schema::Builtin,
            Schema::Crd { node, .. } => Schema::Crd {
                node: node.and_then(|n| n.get("items")),
                root: false,
            },
        }
    }

    /// Whether a map at this node is replaced as a whole.
    pub fn atomic_map(self) -> bool {
        match self {
            Schema::Builtin => false,
            Schema::Crd { node, .. } => {
                node.and_then(|n| n.get("x-kubernetes-map-type"))
                    .and_then(Value::as_str)
                    == Some("atomic")
            }
        }
    }

    /// How the list held in field `field` (this schema node) merges.
    pub fn list_kind(self, field: &str, items: &[Value]) -> ListKind {
        match self {
            Schema::Crd { node, .. } => {
                let Some(n) = node else { return ListKind::Atomic };
                match n.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => {
                        let keys: Vec<String> = n
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                            .unwrap_or_default();
                        if keys.is_empty() {
                            ListKind::Atomic
                        } else {
                            ListKind::Map(keys)
                        }
                    }
                    _ => ListKind::Atomic,
                }
            }
            Schema::Builtin => builtin_list_kind(field, items),
        }
    }
}

fn builtin_list_kind(field: &str, items: &[Value]) -> ListKind {
    let has = |k: &str| items.iter().any(|i| i.get(k).is_some());
    let keys = |ks: &[&str]| ListKind::Map(ks.iter().map(|s| s.to_string()).collect());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "webhooks"
        | "resourceClaims"
        | "schedulingGates" => keys(&["name"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "ports" if has("containerPort") => keys(&["containerPort", "protocol"]),
        "ports" if has("port") => keys(&["port", "protocol"]),
        "conditions" => keys(&["type"]),
        "ownerReferences" => keys(&["uid"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// The value an item has for a list-map key, with the API server's
/// defaults for keys clients commonly leave out (`protocol: TCP`).
pub fn key_value(item: &Value, key: &str) -> Option<Value> {
    match item.get(key) {
        Some(v) => Some(v.clone()),
        None if key == "protocol" => Some(Value::String("TCP".into())),
        None => None,
    }
}

/// Whether two list items have the same key.
pub fn same_key(a: &Value, b: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

fn preserves(node: &Value) -> bool {
    node.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Structural-schema pruning, as the API server does for custom resources:
/// drop fields the schema does not declare (unless it preserves unknown
/// fields there). Returns the dropped paths (`spec.foo`).
pub fn prune(obj: &mut Value, root_schema: &Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(m) = obj.as_object_mut() {
        let props = root_schema.get("properties");
        let keep_all = preserves(root_schema);
        m.retain(|k, _| {
            let known = matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                || props.is_some_and(|p| p.get(k).is_some());
            if !known && !keep_all {
                dropped.push(k.clone());
            }
            known || keep_all
        });
        for (k, v) in m.iter_mut() {
            if k == "metadata" || k == "apiVersion" || k == "kind" {
                continue;
            }
            if let Some(s) = props.and_then(|p| p.get(k)) {
                prune_node(v, s, k, &mut dropped);
            }
        }
    }
    dropped
}

fn prune_node(v: &mut Value, node: &Value, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let embedded = node
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                let keep_all = preserves(node);
                m.retain(|k, _| {
                    let known = props.contains_key(k)
                        || (embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
                    if !known && !keep_all {
                        dropped.push(format!("{path}.{k}"));
                    }
                    known || keep_all
                });
                for (k, c) in m.iter_mut() {
                    if let Some(s) = props.get(k) {
                        prune_node(c, s, &format!("{path}.{k}"), dropped);
                    }
                }
            } else if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, c) in m.iter_mut() {
                    prune_node(c, ap, &format!("{path}.{k}"), dropped);
                }
            } else if !preserves(node)
                && node.get("type").and_then(Value::as_str) == Some("object")
                && !embedded
            {
                // `type: object` with nothing declared keeps nothing.
                for k in m.keys() {
                    dropped.push(format!("{path}.{k}"));
                }
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(s) = node.get("items") {
                for (i, c) in items.iter_mut().enumerate() {
                    prune_node(c, s, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

/// Fill in schema `default`s for absent properties of objects that exist.
pub fn apply_defaults(v: &mut Value, node: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if !m.contains_key(k)
                        && let Some(d) = s.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, c) in m.iter_mut() {
                    if k == "metadata" {
                        continue;
                    }
                    if let Some(s) = props.get(k) {
                        apply_defaults(c, s);
                    }
                }
            } else if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
                for c in m.values_mut() {
                    apply_defaults(c, ap);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = node.get("items") {
                items.iter_mut().for_each(|c| apply_defaults(c, s));
            }
        }
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// OpenAPI v3 validation of a custom resource, as the API server does it
/// (types, required, enum, lengths, bounds, item counts; not `pattern`,
/// `format` or CEL rules). Returns (field, message) causes.
pub fn validate(obj: &Value, root_schema: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let (Some(m), Some(props)) = (
        obj.as_object(),
        root_schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(s) = props.get(k) {
                validate_node(v, s, k, &mut out);
            }
        }
    }
    out
}

fn validate_node(v: &Value, node: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let nullable = node.get("nullable").and_then(Value::as_bool) == Some(true);
    if v.is_null() && nullable {
        return;
    }
    let int_or_string = node.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let actual = json_type(v);
    if let Some(want) = node.get("type").and_then(Value::as_str) {
        let ok = want == actual || (want == "number" && actual == "integer");
        if !ok {
            out.push((
                path.into(),
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {want}: {}",
                    shown(v)
                ),
            ));
            return;
        }
    } else if int_or_string && !matches!(actual, "integer" | "string") {
        out.push((
            path.into(),
            format!(
                "Invalid value: \"{actual}\": {path} in body must be of type integer,string: {}",
                shown(v)
            ),
        ));
        return;
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        out.push((
            path.into(),
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
        ));
    }
    let num = |k: &str| node.get(k).and_then(Value::as_f64);
    match v {
        Value::String(s) => {
            let n = s.chars().count() as f64;
            if let Some(max) = num("maxLength").filter(|m| n > *m) {
                out.push((path.into(), format!("Too long: may not be more than {max} bytes")));
            }
            if let Some(min) = num("minLength").filter(|m| n < *m) {
                out.push((
                    path.into(),
                    format!(
                        "Invalid value: {}: {path} in body should be at least {min} chars long",
                        shown(v)
                    ),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = num("minimum").filter(|m| x < *m) {
                out.push((
                    path.into(),
                    format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}"),
                ));
            }
            if let Some(max) = num("maximum").filter(|m| x > *m) {
                out.push((
                    path.into(),
                    format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"),
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if let Some(max) = num("maxItems").filter(|m| n > *m) {
                out.push((
                    path.into(),
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(min) = num("minItems").filter(|m| n < *m) {
                out.push((
                    path.into(),
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                ));
            }
            if let Some(s) = node.get("items") {
                for (i, c) in items.iter().enumerate() {
                    validate_node(c, s, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(m) => {
            if let Some(req) = node.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        out.push((format!("{path}.{r}"), "Required value".into()));
                    }
                }
            }
            let props = node.get("properties").and_then(Value::as_object);
            let extra = node.get("additionalProperties").filter(|a| a.is_object());
            for (k, c) in m {
                if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                    validate_node(c, s, &format!("{path}.{k}"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_and_default_follow_the_structural_schema() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "empty": {"type": "object"}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }});
        let mut o = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"}, "extra": 1,
            "spec": {"size": 5, "bogus": true, "free": {"any": {"thing": 1}}, "labels": {"a": "b"},
                     "items": [{"name": "n", "junk": 2}], "empty": {"x": 1}}});
        let dropped = prune(&mut o, &schema);
        assert_eq!(
            dropped,
            vec!["extra", "spec.bogus", "spec.items[0].junk", "spec.empty.x"]
        );
        apply_defaults(&mut o, &schema);
        assert_eq!(
            o["spec"],
            json!({"size": 5, "free": {"any": {"thing": 1}}, "labels": {"a": "b"}, "items": [{"name": "n"}], "empty": {}, "mode": "fast"})
        );
        assert!(validate(&o, &schema).is_empty());
    }

    #[test]
    fn validation_reports_causes_like_the_api_server() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 3},
            "size": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "port": {"x-kubernetes-int-or-string": true},
            "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}}}}}});
        let o = json!({"spec": {"size": "big", "mode": "c", "port": "http", "tags": ["x", 2]}});
        let got = validate(&o, &schema);
        assert_eq!(
            got,
            vec![
                ("spec.name".to_string(), "Required value".to_string()),
                (
                    "spec.size".to_string(),
                    "Invalid value: \"string\": spec.size in body must be of type integer: \"big\""
                        .to_string()
                ),
                (
                    "spec.mode".to_string(),
                    "Unsupported value: \"c\": supported values: \"a\", \"b\"".to_string()
                ),
                (
                    "spec.tags".to_string(),
                    "Too many: 2: must have at most 1 items".to_string()
                ),
                (
                    "spec.tags[1]".to_string(),
                    "Invalid value: \"integer\": spec.tags[1] in body must be of type string: 2".to_string()
                ),
            ]
        );
    }
}
