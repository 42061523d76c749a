//! `kfctl urls`: every URL the gateway routes to Kubeflow.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::{self as r, items, name};
use crate::{Error, Result};

/// `https://HOST/PREFIX` for every hostname × PathPrefix match of `route`.
pub fn route_urls(route: &Value) -> Vec<String> {
    let hosts: Vec<&str> = items(route, "/spec/hostnames")
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    for rule in items(route, "/spec/rules") {
        for m in items(rule, "/matches") {
            let Some(path) = m.get("path") else { continue };
            if path.get("type").and_then(Value::as_str).unwrap_or("PathPrefix") != "PathPrefix" {
                continue;
            }
            let prefix = path.get("value").and_then(Value::as_str).unwrap_or("/");
            for host in &hosts {
                // A wildcard hostname has no single URL; show it as written.
                out.push(format!("https://{host}{prefix}"));
            }
        }
    }
    out
}

/// One row of `kfctl urls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRow {
    pub url: String,
    /// The HTTPRoute that serves it.
    pub route: String,
    /// `namespace/service:port` of the first backend of the matching rule.
    pub backend: String,
}

fn backend(rule: &Value, route_ns: &str) -> String {
    items(rule, "/backendRefs")
        .next()
        .map(|b| {
            let ns = b.get("namespace").and_then(Value::as_str).unwrap_or(route_ns);
            let svc = b.get("name").and_then(Value::as_str).unwrap_or("?");
            match b.get("port").and_then(Value::as_i64) {
                Some(p) => format!("{ns}/{svc}:{p}"),
                None => format!("{ns}/{svc}"),
            }
        })
        .unwrap_or_else(|| "-".into())
}

/// Every routed URL in the route namespace, sorted by URL.
pub async fn list(client: &kube::Client, route_namespace: &str) -> Result<Vec<UrlRow>> {
    let routes = r::list_in(client, &r::httproute(), route_namespace)
        .await?
        .ok_or_else(|| Error::Invalid("HTTPRoute is not served: install the Gateway API CRDs".into()))?;
    let mut rows = Vec::new();
    for route in &routes {
        for rule in items(route, "/spec/rules") {
            let one_rule = serde_json::json!({
                "spec": {"hostnames": route.pointer("/spec/hostnames"), "rules": [rule]}
            });
            for url in route_urls(&one_rule) {
                rows.push(UrlRow {
                    url,
                    route: name(route).to_string(),
                    backend: backend(rule, route_namespace),
                });
            }
        }
    }
    rows.sort_by(|a, b| (&a.url, &a.route).cmp(&(&b.url, &b.route)));
    Ok(rows)
}
