//! The desired state: a pure function from observed objects to the HTTPRoutes
//! and ReferenceGrant a namespace should have. No I/O here.

use std::collections::BTreeMap;

use kfmodel::Profile;
use kfmodel::gateway::{HttpRoute, ReferenceGrant};
use kfmodel::naming::route_name;
use serde_json::{Value, json};

use crate::config::{Config, UserIdSource};

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kflite-route-controller";
/// Kind of the routed object (`Notebook`, `Tensorboard`, `PVCViewer`).
pub const SOURCE_KIND_LABEL: &str = "routes.kflite.dev/source-kind";
/// Namespace of the routed object (a label: namespaces fit in 63 characters).
pub const SOURCE_NAMESPACE_LABEL: &str = "routes.kflite.dev/source-namespace";
/// Name of the routed object (an annotation: names may exceed a label's 63 characters).
pub const SOURCE_NAME_ANNOTATION: &str = "routes.kflite.dev/source-name";

/// The kinds that get a route, with the route shape each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Notebook,
    Tensorboard,
    PVCViewer,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [
        SourceKind::Notebook,
        SourceKind::Tensorboard,
        SourceKind::PVCViewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Notebook => "Notebook",
            SourceKind::Tensorboard => "Tensorboard",
            SourceKind::PVCViewer => "PVCViewer",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// URL prefix the gateway serves the object under.
    pub fn path_prefix(self, namespace: &str, name: &str) -> String {
        let base = match self {
            SourceKind::Notebook => "notebook",
            SourceKind::Tensorboard => "tensorboard",
            SourceKind::PVCViewer => "pvcviewers",
        };
        format!("/{base}/{namespace}/{name}/")
    }

    /// Jupyter serves at its own base_url; TensorBoard and the PVC viewer at `/`.
    pub fn rewrites_to_root(self) -> bool {
        !matches!(self, SourceKind::Notebook)
    }

    /// The Service the upstream controller makes for the object.
    pub fn service_name(self, name: &str) -> String {
        match self {
            SourceKind::PVCViewer => format!("pvcviewer-{name}"),
            _ => name.to_string(),
        }
    }
}

/// A routed object as the controller observed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub kind: SourceKind,
    pub namespace: String,
    pub name: String,
}

impl Source {
    pub fn route_name(&self) -> String {
        route_name(self.kind.as_str(), &self.namespace, &self.name)
    }
}

/// The user identity the routes of `namespace` send to Kubeflow's apps.
pub fn user_id(profile: Option<&Profile>, config: &Config) -> String {
    match config.user_id_source {
        UserIdSource::Fixed => config.default_user_id.clone(),
        UserIdSource::ProfileOwner => profile
            .and_then(|p| p.spec.owner.as_ref())
            .map(|o| o.name.trim())
            .filter(|n| !n.is_empty())
            .unwrap_or(&config.default_user_id)
            .to_string(),
    }
}

/// The HTTPRoute for `source`. Fields the API server would default (group,
/// kind, weight) are written out, so what we apply equals what we read back.
pub fn route(source: &Source, user_id: &str, config: &Config) -> HttpRoute {
    let mut parent = json!({
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": config.gateway_name,
        "namespace": config.gateway_namespace,
    });
    if let Some(section) = &config.gateway_section_name {
        parent["sectionName"] = json!(section);
    }
    let mut filters = vec![json!({
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"set": [{"name": config.user_id_header, "value": user_id}]},
    })];
    if source.kind.rewrites_to_root() {
        filters.push(json!({
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }));
    }
    let value = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": source.route_name(),
            "namespace": config.route_namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                SOURCE_KIND_LABEL: source.kind.as_str(),
                SOURCE_NAMESPACE_LABEL: source.namespace,
            },
            "annotations": {SOURCE_NAME_ANNOTATION: source.name},
        },
        "spec": {
            "parentRefs": [parent],
            "hostnames": config.hostnames,
            "rules": [{
                "matches": [{"path": {
                    "type": "PathPrefix",
                    "value": source.kind.path_prefix(&source.namespace, &source.name),
                }}],
                "filters": filters,
                "backendRefs": [{
                    "group": "",
                    "kind": "Service",
                    "name": source.kind.service_name(&source.name),
                    "namespace": source.namespace,
                    "port": 80,
                    "weight": 1,
                }],
            }],
        },
    });
    // The JSON above is the whole route; its shape is checked against the
    // Gateway API types by `route_is_a_valid_httproute` in the tests.
    serde_json::from_value(value).expect("route JSON matches the HTTPRoute type")
}

/// The ReferenceGrant that lets routes in the route namespace reach Services in `namespace`.
pub fn reference_grant(namespace: &str, config: &Config) -> ReferenceGrant {
    let value = json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {
            "name": config.reference_grant_name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": config.route_namespace}],
            "to": [{"group": "", "kind": "Service"}],
        },
    });
    serde_json::from_value(value).expect("grant JSON matches the ReferenceGrant type")
}

/// What one namespace needs done.
#[derive(Debug, Default)]
pub struct Plan {
    /// Routes to apply (missing, or differing from what is observed).
    pub apply: Vec<HttpRoute>,
    /// Names of our routes (in the route namespace) whose source is gone.
    pub delete: Vec<String>,
    /// The grant to apply, when it is missing or differs.
    pub apply_grant: Option<ReferenceGrant>,
    /// Delete our grant: nothing routed is left in the namespace.
    pub delete_grant: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.apply.is_empty() && self.delete.is_empty() && self.apply_grant.is_none() && !self.delete_grant
    }
}

/// Compare desired with observed for one namespace.
///
/// `observed_routes` are our routes whose source namespace is `namespace`;
/// `observed_grant` is the grant of that name in `namespace`, if any.
pub fn plan(
    namespace: &str,
    sources: &[Source],
    profile: Option<&Profile>,
    observed_routes: &[&HttpRoute],
    observed_grant: Option<&ReferenceGrant>,
    config: &Config,
) -> Plan {
    let user = user_id(profile, config);
    let observed: BTreeMap<&str, &HttpRoute> = observed_routes
        .iter()
        .filter_map(|r| Some((r.metadata.name.as_deref()?, *r)))
        .collect();
    let mut plan = Plan::default();
    let mut wanted = std::collections::BTreeSet::new();
    for source in sources.iter().filter(|s| s.namespace == namespace) {
        let desired = route(source, &user, config);
        let name = desired.metadata.name.clone().unwrap_or_default();
        if observed.get(name.as_str()).is_none_or(|o| !covers(*o, &desired)) {
            plan.apply.push(desired);
        }
        wanted.insert(name);
    }
    plan.delete = observed
        .keys()
        .filter(|n| !wanted.contains(**n))
        .map(|n| n.to_string())
        .collect();
    let ours = |g: &ReferenceGrant| {
        g.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str)
            == Some(MANAGED_BY)
    };
    if wanted.is_empty() {
        plan.delete_grant = observed_grant.is_some_and(ours);
    } else {
        let desired = reference_grant(namespace, config);
        if observed_grant.is_none_or(|o| !covers(o, &desired)) {
            plan.apply_grant = Some(desired);
        }
    }
    plan
}

/// Whether `observed` already has every field `desired` sets (labels,
/// annotations, spec), allowing fields the API server or others added.
pub fn covers<T: serde::Serialize>(observed: &T, desired: &T) -> bool {
    let (Ok(o), Ok(d)) = (serde_json::to_value(observed), serde_json::to_value(desired)) else {
        return false;
    };
    ["labels", "annotations"]
        .iter()
        .all(|k| contains(&o["metadata"][k], &d["metadata"][k]))
        && contains(&o["spec"], &d["spec"])
}

fn contains(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (_, Value::Null) => true,
        (Value::Object(o), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| contains(o.get(k).unwrap_or(&Value::Null), dv)),
        (Value::Array(o), Value::Array(d)) => {
            o.len() == d.len() && o.iter().zip(d).all(|(o, d)| contains(o, d))
        }
        (o, d) => o == d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(kind: SourceKind, ns: &str, name: &str) -> Source {
        Source {
            kind,
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn rule(route: &HttpRoute) -> Value {
        serde_json::to_value(route).unwrap()["spec"]["rules"][0].clone()
    }

    #[test]
    fn route_table_matches_the_python_controller() {
        let config = Config::example();
        // kind, path prefix, rewrite, backend service
        let table = [
            (SourceKind::Notebook, "/notebook/team-a/nb1/", None, "nb1"),
            (
                SourceKind::Tensorboard,
                "/tensorboard/team-a/nb1/",
                Some("/"),
                "nb1",
            ),
            (
                SourceKind::PVCViewer,
                "/pvcviewers/team-a/nb1/",
                Some("/"),
                "pvcviewer-nb1",
            ),
        ];
        for (kind, prefix, rewrite, backend) in table {
            let r = route(&source(kind, "team-a", "nb1"), "user@example.com", &config);
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["metadata"]["namespace"], "kubeflow");
            assert_eq!(v["spec"]["hostnames"], json!(["kubeflow.madhan.app"]));
            let parent = &v["spec"]["parentRefs"][0];
            assert_eq!(
                (parent["name"].as_str(), parent["namespace"].as_str()),
                (Some("homelab-gateway"), Some("kube-system"))
            );
            let rule = rule(&r);
            assert_eq!(
                rule["matches"][0]["path"],
                json!({"type": "PathPrefix", "value": prefix})
            );
            let filters = rule["filters"].as_array().unwrap();
            assert_eq!(
                filters[0]["requestHeaderModifier"]["set"],
                json!([{"name": "kubeflow-userid", "value": "user@example.com"}])
            );
            let rewrites: Vec<_> = filters.iter().filter(|f| f["type"] == "URLRewrite").collect();
            match rewrite {
                None => assert!(rewrites.is_empty(), "{kind:?} must not rewrite"),
                Some(to) => {
                    assert_eq!(rewrites.len(), 1);
                    assert_eq!(
                        rewrites[0]["urlRewrite"]["path"],
                        json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": to})
                    );
                }
            }
            let b = &rule["backendRefs"][0];
            assert_eq!(
                (b["name"].as_str(), b["namespace"].as_str(), b["port"].as_i64()),
                (Some(backend), Some("team-a"), Some(80))
            );
            assert_eq!(b["kind"], "Service");
        }
    }

    #[test]
    fn section_name_and_hostnames_come_from_config() {
        let mut config = Config::example();
        config.gateway_section_name = Some("https".into());
        config.hostnames = vec!["a.example".into(), "b.example".into()];
        let v = serde_json::to_value(route(&source(SourceKind::Notebook, "ns", "x"), "u", &config)).unwrap();
        assert_eq!(v["spec"]["parentRefs"][0]["sectionName"], "https");
        assert_eq!(v["spec"]["hostnames"], json!(["a.example", "b.example"]));
    }

    #[test]
    fn user_id_from_profile_owner_or_fallback() {
        let mut config = Config::example();
        config.user_id_source = UserIdSource::ProfileOwner;
        let profile = Profile::new(
            "team-a",
            kfmodel::ProfileSpec {
                owner: Some(kfmodel::profile::ProfileOwner::user("alice@corp")),
                ..Default::default()
            },
        );
        assert_eq!(user_id(Some(&profile), &config), "alice@corp");
        assert_eq!(user_id(None, &config), "user@example.com");
        config.user_id_source = UserIdSource::Fixed;
        assert_eq!(user_id(Some(&profile), &config), "user@example.com");
    }

    #[test]
    fn plan_creates_then_is_idempotent_then_prunes() {
        let config = Config::example();
        let sources = vec![
            source(SourceKind::Notebook, "ns", "a"),
            source(SourceKind::Tensorboard, "ns", "b"),
        ];
        let first = plan("ns", &sources, None, &[], None, &config);
        assert_eq!(first.apply.len(), 2);
        assert!(first.apply_grant.is_some());
        assert!(first.delete.is_empty() && !first.delete_grant);

        // Observed == desired (as the API server returns it, with defaults added): nothing to do.
        let mut observed: Vec<HttpRoute> = first.apply.clone();
        for r in &mut observed {
            r.metadata.resource_version = Some("7".into());
            r.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("extra".into(), "by-someone-else".into());
        }
        let grant = first.apply_grant.clone().unwrap();
        let refs: Vec<&HttpRoute> = observed.iter().collect();
        assert!(plan("ns", &sources, None, &refs, Some(&grant), &config).is_empty());

        // A hand edit (backend port) is put back.
        let mut edited = observed.clone();
        edited[0].spec.rules.as_mut().unwrap()[0]
            .backend_refs
            .as_mut()
            .unwrap()[0]
            .port = Some(8080);
        let refs: Vec<&HttpRoute> = edited.iter().collect();
        let p = plan("ns", &sources, None, &refs, Some(&grant), &config);
        assert_eq!(p.apply.len(), 1);

        // Source b deleted: its route goes; a stays; grant stays.
        let refs: Vec<&HttpRoute> = observed.iter().collect();
        let p = plan("ns", &sources[..1], None, &refs, Some(&grant), &config);
        assert_eq!(p.delete, vec![sources[1].route_name()]);
        assert!(p.apply.is_empty() && !p.delete_grant);

        // Everything deleted: routes and our grant go.
        let p = plan("ns", &[], None, &refs, Some(&grant), &config);
        assert_eq!(p.delete.len(), 2);
        assert!(p.delete_grant);
    }

    #[test]
    fn a_grant_we_did_not_make_is_never_deleted() {
        let config = Config::example();
        let mut foreign = reference_grant("ns", &config);
        foreign.metadata.labels = None;
        assert!(!plan("ns", &[], None, &[], Some(&foreign), &config).delete_grant);
    }

    #[test]
    fn profile_owner_change_reapplies_routes() {
        let mut config = Config::example();
        config.user_id_source = UserIdSource::ProfileOwner;
        let sources = vec![source(SourceKind::Notebook, "ns", "a")];
        let first = plan("ns", &sources, None, &[], None, &config);
        let refs: Vec<&HttpRoute> = first.apply.iter().collect();
        let profile = Profile::new(
            "ns",
            kfmodel::ProfileSpec {
                owner: Some(kfmodel::profile::ProfileOwner::user("bob@corp")),
                ..Default::default()
            },
        );
        let p = plan(
            "ns",
            &sources,
            Some(&profile),
            &refs,
            first.apply_grant.as_ref(),
            &config,
        );
        assert_eq!(p.apply.len(), 1);
        assert_eq!(
            rule(&p.apply[0])["filters"][0]["requestHeaderModifier"]["set"][0]["value"],
            "bob@corp"
        );
    }

    #[test]
    fn colliding_pair_gets_two_routes() {
        let config = Config::example();
        let a = route(&source(SourceKind::Notebook, "a-b", "c"), "u", &config);
        let b = route(&source(SourceKind::Notebook, "a", "b-c"), "u", &config);
        assert_ne!(a.metadata.name, b.metadata.name);
    }
}
