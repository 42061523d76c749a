//! Rule `gateway-blocked`: NetworkPolicies that keep a hostNetwork gateway
//! (Cilium's Envoy) from the pods behind a Service.
//!
//! A gateway in the host network connects from the node's address, which no
//! `podSelector` or `namespaceSelector` peer matches. So pods behind a
//! Service are unreachable for it when some policy isolates their ingress
//! and no policy selecting them admits a peer the gateway could be: a rule
//! without `from` (any source) or with an `ipBlock` (which may hold the node
//! addresses; lint cannot know them). Policies add up, so one admitting
//! policy clears the others.

use std::collections::BTreeMap;

use super::{Context, Finding, Rule, effective_namespace};
use crate::resource::Resource;
use crate::yaml::{Map, Value};

type Labels = BTreeMap<String, String>;

fn string_map(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.scalar_text()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `metav1.LabelSelector` semantics; an absent or empty selector matches all.
fn selects(selector: Option<&Value>, labels: &Labels) -> bool {
    let Some(sel) = selector.and_then(Value::as_map) else {
        return true;
    };
    let match_labels = string_map(sel.get("matchLabels"));
    if !match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_seq)
        .map_or(&[][..], Vec::as_slice);
    exprs.iter().all(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<String> = e
            .get("values")
            .and_then(Value::as_seq)
            .map(|vs| vs.iter().filter_map(Value::scalar_text).collect())
            .unwrap_or_default();
        let have = labels.get(key);
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

/// The labels of the pods an object makes, when it makes pods.
fn pod_labels(r: &Resource) -> Option<Labels> {
    let gvk = r.gvk();
    if gvk.group.is_empty() && gvk.kind == "Pod" {
        return Some(string_map(r.obj.get_path(&["metadata", "labels"])));
    }
    let template = if gvk.kind == "CronJob" {
        r.obj.get_path(&["spec", "jobTemplate", "spec", "template"])
    } else {
        r.obj.get_path(&["spec", "template"])
    };
    template
        .and_then(|t| t.get("metadata"))
        .map(|m| string_map(m.get("labels")))
}

struct Policy<'a> {
    resource: &'a Resource,
    spec: &'a Map,
}

impl Policy<'_> {
    /// All policies isolate ingress unless `policyTypes` lists only Egress.
    fn isolates_ingress(&self) -> bool {
        match self.spec.get("policyTypes").and_then(Value::as_seq) {
            Some(types) => types.iter().any(|t| t.as_str() == Some("Ingress")),
            None => true,
        }
    }

    /// Whether some ingress rule admits a source outside the pod network.
    fn admits_host(&self) -> bool {
        let rules = self
            .spec
            .get("ingress")
            .and_then(Value::as_seq)
            .map_or(&[][..], Vec::as_slice);
        rules.iter().any(|rule| match rule.get("from") {
            None | Some(Value::Null | Value::NullText) => true,
            Some(Value::Seq(peers)) => peers.is_empty() || peers.iter().any(|p| p.get("ipBlock").is_some()),
            Some(_) => false,
        })
    }
}

pub(super) fn check(cx: &Context, out: &mut Vec<Finding>) {
    let policies: Vec<Policy> = cx
        .objects
        .iter()
        .filter(|r| r.kind() == "NetworkPolicy" && r.gvk().group == "networking.k8s.io")
        .filter_map(|r| {
            Some(Policy {
                resource: r,
                spec: r.obj.get("spec")?.as_map()?,
            })
        })
        .filter(Policy::isolates_ingress)
        .collect();
    if policies.is_empty() {
        return;
    }
    let workloads: Vec<(&str, Labels)> = cx
        .objects
        .iter()
        .filter_map(|r| Some((effective_namespace(cx, r), pod_labels(r)?)))
        .collect();
    // Policy index → Services it blocks, in output order.
    let mut blocked: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for svc in cx
        .objects
        .iter()
        .filter(|r| r.kind() == "Service" && r.gvk().group.is_empty())
    {
        if r_str(svc, &["spec", "type"]) == "ExternalName" {
            continue;
        }
        let selector = string_map(svc.obj.get_path(&["spec", "selector"]));
        if selector.is_empty() {
            continue;
        }
        let ns = effective_namespace(cx, svc);
        let mut pods: Vec<&Labels> = workloads
            .iter()
            .filter(|(wns, labels)| *wns == ns && selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .map(|(_, l)| l)
            .collect();
        // Pods made by controllers (Notebooks…) carry at least the selector.
        if pods.is_empty() {
            pods.push(&selector);
        }
        for labels in pods {
            let selecting: Vec<usize> = policies
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    effective_namespace(cx, p.resource) == ns && selects(p.spec.get("podSelector"), labels)
                })
                .map(|(i, _)| i)
                .collect();
            if selecting.is_empty() || selecting.iter().any(|i| policies[*i].admits_host()) {
                continue;
            }
            let name = format!("{ns}/{}", svc.name());
            for i in selecting {
                let list = blocked.entry(i).or_default();
                if !list.contains(&name) {
                    list.push(name.clone());
                }
            }
        }
    }
    for (i, services) in blocked {
        let noun = if services.len() == 1 {
            "Service"
        } else {
            "Services"
        };
        let shown = if services.len() > 5 {
            format!("{} and {} more", services[..5].join(", "), services.len() - 5)
        } else {
            services.join(", ")
        };
        out.push(cx.finding(
            Rule::GatewayBlocked,
            policies[i].resource,
            Some("spec.ingress".into()),
            format!(
                "admits only podSelector/namespaceSelector peers to the pods of {noun} {shown}, and no policy selecting those pods admits an ipBlock or any source: a hostNetwork gateway (Cilium's Envoy connects from the node's address) cannot reach them"
            ),
        ));
    }
}

fn r_str<'a>(r: &'a Resource, path: &[&str]) -> &'a str {
    super::str_at(&r.obj, path)
}
