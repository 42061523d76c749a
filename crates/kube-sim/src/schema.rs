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
    Crd { node: Option<&'a Value>, root: bool },
    Builtin,
}

impl<'a> Schema<'a> {
    pub fn crd(root: Option<&'a Value>) -> Self {
        Schema::Crd { node: root, root: true }
    }

    pub fn field(self, name: &str) -> Schema<'a> {
        match self {
            Schema::Builtin => Schema::Builtin,
            // ObjectMeta has the built-in semantics in every kind.
            Schema::Crd { root: true, .. } if name == "metadata" => Schema::Builtin,
            Schema::Crd { node, .. } => {
                let child = node.and_then(|n| {
                    n.get("properties").and_then(|p| p.get(name)).or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
                });
                Schema::Crd { node: child, root: false }
            }
        }
    }

    pub fn items(self) -> Schema<'a> {
        match self {
            Schema::Builtin => Schema::Builtin,
            Schema::Crd { node, .. } => Schema::Crd { node: node.and_then(|n| n.get("items")), root: false },
        }
    }

    /// Whether a map at this node is replaced as a whole.
    pub fn atomic_map(self) -> bool {
        match self {
            Schema::Builtin => false,
            Schema::Crd { node, .. } => {
                node.and_then(|n| n.get("x-kubernetes-map-type")).and_then(Value::as_str) == Some("atomic")
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
                        if keys.is_empty() { ListKind::Atomic } else { ListKind::Map(keys) }
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
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets"
        | "webhooks" | "resourceClaims" | "schedulingGates" => keys(&["name"]),
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
