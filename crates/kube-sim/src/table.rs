//! Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for.
//! CRD kinds use their additionalPrinterColumns; built-in kinds get Name and Age.

use crate::registry::ResourceType;
use serde_json::{Value, json};
use std::sync::Arc;

fn column(name: &str, ty: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

/// `5m`, `3h12m`, `2d` — kubectl's human durations.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: Option<&str>) -> Value {
    let Some(ts) = ts else { return json!("<unknown>") };
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => json!(human_duration(jiff::Timestamp::now().as_second() - t.as_second())),
        Err(_) => json!("<invalid>"),
    }
}

/// Evaluate the JSONPath subset printer columns use: `.a.b`, `[n]`, `[*]`,
/// and `[?(@.field=="value")]` filters. Returns every match.
pub fn jsonpath<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur: Vec<&Value> = vec![root];
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return Vec::new() };
            let sel = &r[..end];
            rest = &r[end + 1..];
            cur = if sel == "*" {
                cur.into_iter()
                    .flat_map(|v| {
                        v.as_array()
                            .map(|a| a.iter().collect::<Vec<_>>())
                            .unwrap_or_default()
                    })
                    .collect()
            } else if let Ok(i) = sel.parse::<usize>() {
                cur.into_iter().filter_map(|v| v.get(i)).collect()
            } else if let Some(f) = sel.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, want)) = f.split_once("==") else {
                    return Vec::new();
                };
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                let field = field.trim();
                cur.into_iter()
                    .flat_map(|v| {
                        v.as_array()
                            .map(|a| a.iter().collect::<Vec<_>>())
                            .unwrap_or_default()
                    })
                    .filter(|item| {
                        jsonpath(item, &format!(".{field}"))
                            .first()
                            .is_some_and(|x| match x {
                                Value::String(s) => s == want,
                                other => *other == want,
                            })
                    })
                    .collect()
            } else {
                return Vec::new();
            };
        } else {
            return Vec::new();
        }
    }
    cur
}

fn cell(v: Option<&Value>, ty: &str) -> Value {
    match (v, ty) {
        (None, _) | (Some(Value::Null), _) => Value::Null,
        (Some(Value::String(s)), "date") => age(Some(s)),
        (Some(Value::String(s)), _) => json!(s),
        (Some(x @ (Value::Number(_) | Value::Bool(_))), _) => x.clone(),
        (Some(other), _) => json!(other.to_string()),
    }
}

type Cell = fn(&Value) -> Value;

fn len_of(o: &Value, ptr: &str) -> Value {
    json!(
        o.pointer(ptr)
            .map(|v| v
                .as_object()
                .map(|m| m.len())
                .or_else(|| v.as_array().map(Vec::len))
                .unwrap_or(0))
            .unwrap_or(0)
    )
}

fn str_at(o: &Value, ptr: &str, none: &str) -> Value {
    json!(o.pointer(ptr).and_then(Value::as_str).unwrap_or(none))
}

fn int_at(o: &Value, ptr: &str) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn ready_of(o: &Value) -> Value {
    let want = o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    json!(format!("{}/{want}", int_at(o, "/status/readyReplicas")))
}

fn pod_ready(o: &Value) -> Value {
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let ready = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count()
        })
        .unwrap_or(0);
    json!(format!("{ready}/{total}"))
}

fn pod_restarts(o: &Value) -> Value {
    let n: i64 = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum()
        })
        .unwrap_or(0);
    json!(n)
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let port = p.get("port").map(|v| v.to_string()).unwrap_or_default();
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort") {
                        Some(n) => format!("{port}:{n}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!(if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    })
}

fn role_ref(o: &Value) -> Value {
    let kind = o.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or("");
    let name = o.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or("");
    json!(format!("{kind}/{name}"))
}

/// Kinds the API server prints with `CREATED AT` (a timestamp) instead of `AGE`.
fn created_at(t: &ResourceType) -> bool {
    matches!(
        t.kind.as_str(),
        "CustomResourceDefinition" | "Role" | "ClusterRole"
    ) && !t.is_crd()
}

/// The extra columns `kubectl get` shows for common built-in kinds (after Name).
fn builtin_columns(t: &ResourceType) -> Vec<(&'static str, Cell)> {
    if t.is_crd() {
        return Vec::new();
    }
    match (t.group.as_str(), t.kind.as_str()) {
        ("", "Namespace") => vec![("Status", |o| str_at(o, "/status/phase", ""))],
        ("", "ConfigMap") => vec![("Data", |o| {
            json!(len_of(o, "/data").as_u64().unwrap_or(0) + len_of(o, "/binaryData").as_u64().unwrap_or(0))
        })],
        ("", "Secret") => vec![
            ("Type", |o| str_at(o, "/type", "Opaque")),
            ("Data", |o| len_of(o, "/data")),
        ],
        ("", "ServiceAccount") => vec![("Secrets", |o| len_of(o, "/secrets"))],
        ("", "Service") => vec![
            ("Type", |o| str_at(o, "/spec/type", "ClusterIP")),
            ("Cluster-IP", |o| str_at(o, "/spec/clusterIP", "<none>")),
            ("External-IP", |o| {
                str_at(o, "/status/loadBalancer/ingress/0/ip", "<none>")
            }),
            ("Port(s)", service_ports),
        ],
        ("", "Pod") => vec![
            ("Ready", pod_ready),
            ("Status", |o| str_at(o, "/status/phase", "Pending")),
            ("Restarts", pod_restarts),
        ],
        ("", "PersistentVolumeClaim") => vec![
            ("Status", |o| str_at(o, "/status/phase", "Pending")),
            ("Volume", |o| str_at(o, "/spec/volumeName", "")),
            ("Capacity", |o| str_at(o, "/status/capacity/storage", "")),
            ("Access Modes", |o| {
                json!(
                    o.pointer("/spec/accessModes")
                        .and_then(Value::as_array)
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|m| match m {
                                "ReadWriteOnce" => "RWO",
                                "ReadOnlyMany" => "ROX",
                                "ReadWriteMany" => "RWX",
                                "ReadWriteOncePod" => "RWOP",
                                other => other,
                            })
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                )
            }),
            ("StorageClass", |o| str_at(o, "/spec/storageClassName", "<unset>")),
        ],
        ("apps", "Deployment") => vec![
            ("Ready", ready_of),
            ("Up-to-date", |o| json!(int_at(o, "/status/updatedReplicas"))),
            ("Available", |o| json!(int_at(o, "/status/availableReplicas"))),
        ],
        ("apps", "StatefulSet") | ("apps", "ReplicaSet") => vec![("Ready", ready_of)],
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => vec![("Role", role_ref)],
        ("rbac.authorization.k8s.io", "Role")
        | ("rbac.authorization.k8s.io", "ClusterRole")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![("Created At", |o| str_at(o, "/metadata/creationTimestamp", ""))]
        }
        ("coordination.k8s.io", "Lease") => vec![("Holder", |o| str_at(o, "/spec/holderIdentity", ""))],
        _ => Vec::new(),
    }
}

/// A Table of `items` as the API server would print them.
pub fn table(
    t: &ResourceType,
    version: &str,
    items: &[Arc<Value>],
    list_meta: Option<Value>,
    include: Option<&str>,
) -> Value {
    let name_col = column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let mut cols = vec![name_col];
    let printer: Vec<Value> = t
        .crd_version(version)
        .map(|v| v.printer_columns.clone())
        .unwrap_or_default();
    let custom = t.is_crd() && !printer.is_empty();
    if custom {
        for c in &printer {
            cols.push(column(
                c.get("name").and_then(Value::as_str).unwrap_or(""),
                c.get("type").and_then(Value::as_str).unwrap_or("string"),
                c.get("format").and_then(Value::as_str).unwrap_or(""),
                c.get("description").and_then(Value::as_str).unwrap_or(""),
                c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            ));
        }
    } else {
        for (name, _) in builtin_columns(t) {
            cols.push(column(name, "string", "", "", 0));
        }
        if !created_at(t) {
            cols.push(column(
                "Age",
                "date",
                "",
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
                0,
            ));
        }
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            if custom {
                for c in &printer {
                    let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                    let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
                    cells.push(cell(jsonpath(o, path).first().copied(), ty));
                }
            } else {
                for (_, f) in builtin_columns(t) {
                    cells.push(f(o));
                }
                if !created_at(t) {
                    cells.push(age(o.pointer("/metadata/creationTimestamp").and_then(Value::as_str)));
                }
            }
            let object = match include.unwrap_or("Metadata") {
                "None" => Value::Null,
                "Object" => crate::store::with_version(o, t, version),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.unwrap_or(json!({})),
        "columnDefinitions": cols,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"n": 3, "l": ["x", "y"]}});
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert_eq!(jsonpath(&o, ".spec.n"), vec![&json!(3)]);
        assert_eq!(jsonpath(&o, ".spec.l[1]"), vec![&json!("y")]);
        assert_eq!(jsonpath(&o, ".spec.l[*]").len(), 2);
        assert!(jsonpath(&o, ".spec.missing").is_empty());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
