//! What must be true before anything is changed: the kinds the render uses
//! but does not define are served, the Gateway the routes attach to exists,
//! the server is new enough. Each problem says what to install or create.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject};
use serde_json::Value;

use super::kinds::{Kinds, Resolved};
use super::objects::{Gvk, Object, group_kind};
use crate::{Error, Result};

/// The oldest Kubernetes minor version (1.x) the platform supports: the
/// overlay's Pod Security Standards component needs 1.33.
pub const MIN_MINOR: u32 = 33;

/// cert-manager's release Kubeflow v1.11.0 pins (common/cert-manager).
pub const CERT_MANAGER_INSTALL: &str = "kubectl apply -f https://github.com/cert-manager/cert-manager/releases/download/v1.16.1/cert-manager.yaml";
/// Gateway API as the owner's cluster runs it (Cilium 1.18: v1.2.1, experimental channel).
pub const GATEWAY_API_INSTALL: &str = "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.2.1/experimental-install.yaml";

/// One reason not to apply, with what fixes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  fix: {}", self.problem, self.fix)
    }
}

/// Every problem found; empty means go.
pub async fn check(client: &kube::Client, kinds: &Kinds, objects: &[Object]) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(p) = server_version(client).await? {
        problems.push(p);
    }
    problems.extend(missing_kinds(kinds, objects));
    problems.extend(gateways(client, kinds, objects).await?);
    Ok(problems)
}

async fn server_version(client: &kube::Client) -> Result<Option<Problem>> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| Error::kube("reading the server version", e))?;
    Ok(judge_version(&info.major, &info.minor, &info.git_version))
}

/// A problem unless the server is 1.MIN_MINOR or newer. Minor versions may
/// carry a suffix ("33+" on some distributions).
fn judge_version(major: &str, minor: &str, git_version: &str) -> Option<Problem> {
    let digits = |s: &str| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    };
    match (digits(major), digits(minor)) {
        (Some(1), Some(m)) if m >= MIN_MINOR => None,
        (Some(major), Some(_)) if major > 1 => None,
        _ => Some(Problem {
            problem: format!(
                "the API server is {git_version} (major {major:?}, minor {minor:?}); the platform needs Kubernetes 1.{MIN_MINOR} or newer"
            ),
            fix: format!("upgrade the cluster to Kubernetes 1.{MIN_MINOR}+"),
        }),
    }
}

/// Kinds the render uses that neither the cluster nor the render's CRDs
/// serve, plus the Gateway API kinds route-controller needs at run time.
fn missing_kinds(kinds: &Kinds, objects: &[Object]) -> Vec<Problem> {
    // (group, kind) → (versions needed, objects that need it)
    let mut missing: BTreeMap<(String, String), (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut need = |gvk: &Gvk, user: String| {
        if matches!(kinds.resolve(gvk), Resolved::Missing) {
            let e = missing.entry((gvk.group.clone(), gvk.kind.clone())).or_default();
            if !e.0.contains(&gvk.version) {
                e.0.push(gvk.version.clone());
            }
            e.1.push(user);
        }
    };
    for o in objects {
        need(&o.gvk, o.id());
    }
    // route-controller (its ConfigMap or an HTTPRoute names a Gateway) needs
    // the Gateway API kinds at run time, at any version their CRDs serve.
    if !named_gateways(objects).is_empty() {
        for crd in kfmodel::gateway::cluster_provided_crds() {
            let spec = &crd.spec;
            let versions: Vec<Gvk> = spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| Gvk {
                    group: spec.group.clone(),
                    version: v.name.clone(),
                    kind: spec.names.kind.clone(),
                })
                .collect();
            if !versions
                .iter()
                .any(|g| !matches!(kinds.resolve(g), Resolved::Missing))
            {
                for gvk in &versions {
                    need(gvk, "route-controller (at run time)".into());
                }
            }
        }
    }
    missing
        .into_iter()
        .map(|((group, kind), (versions, users))| {
            let served = kinds.served_versions(&group, &kind);
            let now = if served.is_empty() {
                "is not installed".to_string()
            } else {
                format!("is served only at {}", served.join(", "))
            };
            let example = users.first().cloned().unwrap_or_default();
            Problem {
                problem: format!(
                    "the CRD of {} ({}) {now}; needed by {} ({} in all)",
                    group_kind(&group, &kind),
                    versions.join(", "),
                    example,
                    users.len()
                ),
                fix: install_command(&group, &kind),
            }
        })
        .collect()
}

fn install_command(group: &str, kind: &str) -> String {
    match group {
        "cert-manager.io" | "acme.cert-manager.io" => format!("install cert-manager: {CERT_MANAGER_INSTALL}"),
        kfmodel::gateway::GROUP => format!(
            "install Gateway API v1.2.1 (experimental channel, as Cilium 1.18): {GATEWAY_API_INSTALL}"
        ),
        _ => format!(
            "install the operator or CRD that serves {}",
            group_kind(group, kind)
        ),
    }
}

/// Gateways the render names: route-controller's ConfigMap
/// (GATEWAY_NAMESPACE/GATEWAY_NAME) and every HTTPRoute's Gateway parentRefs.
pub fn named_gateways(objects: &[Object]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut add = |ns: &str, name: &str, by: String| {
        if !out.iter().any(|(n, m, _)| n == ns && m == name) {
            out.push((ns.to_string(), name.to_string(), by));
        }
    };
    for o in objects {
        match (o.gvk.group.as_str(), o.gvk.kind.as_str()) {
            ("", "ConfigMap") => {
                let d = |k: &str| o.body.pointer(&format!("/data/{k}")).and_then(Value::as_str);
                if let (Some(name), Some(ns)) = (d("GATEWAY_NAME"), d("GATEWAY_NAMESPACE")) {
                    add(ns, name, o.id());
                }
            }
            (kfmodel::gateway::GROUP, "HTTPRoute") => {
                let refs = o.body.pointer("/spec/parentRefs").and_then(Value::as_array);
                for r in refs.into_iter().flatten() {
                    let s = |k: &str| r.get(k).and_then(Value::as_str);
                    let is_gateway = s("group").is_none_or(|g| g == kfmodel::gateway::GROUP)
                        && s("kind").is_none_or(|k| k == "Gateway");
                    if let (true, Some(name)) = (is_gateway, s("name")) {
                        add(s("namespace").unwrap_or(&o.namespace), name, o.id());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

async fn gateways(client: &kube::Client, kinds: &Kinds, objects: &[Object]) -> Result<Vec<Problem>> {
    let named = named_gateways(objects);
    if named.is_empty() {
        return Ok(Vec::new());
    }
    // Without the Gateway kind, the missing CRD is the problem already reported.
    let Some((resource, _)) = kinds.recommended(kfmodel::gateway::GROUP, "Gateway") else {
        return Ok(Vec::new());
    };
    let mut problems = Vec::new();
    for (ns, name, by) in named {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(format!("reading Gateway {ns}/{name}"), e))?;
        if found.is_none() {
            problems.push(Problem {
                problem: format!("Gateway {ns}/{name} does not exist; {by} routes through it"),
                fix: format!(
                    "create it (Cilium: a Gateway {name} in {ns} with gatewayClassName cilium, see docs/kfctl.md), or name your Gateway in route-controller's ConfigMap (GATEWAY_NAME, GATEWAY_NAMESPACE) and the HTTPRoutes' parentRefs"
                ),
            });
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert_eq!(judge_version("1", "33", "v1.33.0"), None);
        assert_eq!(judge_version("1", "37+", "v1.37.1-eks"), None);
        let old = judge_version("1", "30", "v1.30.2").expect("1.30 is too old");
        assert!(
            old.problem.contains("v1.30.2") && old.fix.contains("1.33"),
            "{old}"
        );
        assert!(judge_version("", "", "weird").is_some());
    }

    #[test]
    fn gateways_from_the_route_config_and_parent_refs() {
        let objects = crate::apply::objects::parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: route-controller-config, namespace: kubeflow}\n\
             data: {GATEWAY_NAME: gw, GATEWAY_NAMESPACE: kube-system}\n---\n\
             apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: kubeflow}\n\
             spec:\n  parentRefs:\n  - {name: gw, namespace: kube-system}\n  - {name: local}\n  - {kind: Service, name: not-a-gateway}\n",
            "t.yaml",
        )
        .unwrap();
        let named: Vec<(String, String)> = named_gateways(&objects)
            .into_iter()
            .map(|(ns, name, _)| (ns, name))
            .collect();
        assert_eq!(
            named,
            [
                ("kube-system".into(), "gw".into()),
                ("kubeflow".into(), "local".into())
            ]
        );
    }
}
