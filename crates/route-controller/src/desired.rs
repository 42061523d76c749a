//! The desired state: a pure function from observed objects to the HTTPRoutes
//! and ReferenceGrant a namespace should have. No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use kfmodel::Profile;
use kfmodel::gateway::{HttpRoute, ReferenceGrant};
pub use kfmodel::routes::{
    MANAGED_BY, MANAGED_BY_LABEL, SOURCE_KIND_LABEL, SOURCE_NAME_ANNOTATION, SOURCE_NAMESPACE_LABEL, Source,
    SourceKind,
};
use serde_json::Value;

use crate::config::{Config, UserIdSource};

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

/// The HTTPRoute for `source` (see [`kfmodel::routes::http_route`]).
pub fn route(source: &Source, user_id: &str, config: &Config) -> HttpRoute {
    kfmodel::routes::http_route(source, user_id, &config.target())
}

/// What one namespace needs done.
#[derive(Debug, Default)]
pub struct Plan {
    /// Routes to apply (missing, or differing from what is observed).
    pub apply: Vec<HttpRoute>,
    /// Names of our routes (in the route namespace) whose source is gone.
    pub delete: Vec<String>,
    /// Grants to apply, when missing or differing; applied before the routes.
    pub apply_grants: Vec<ReferenceGrant>,
    /// Names of our grants in the namespace that are no longer needed.
    pub delete_grants: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.apply.is_empty()
            && self.delete.is_empty()
            && self.apply_grants.is_empty()
            && self.delete_grants.is_empty()
    }
}

/// What reconcile observed in one namespace.
#[derive(Debug)]
pub struct Observed<'a> {
    pub namespace: &'a str,
    /// Routed objects of the kinds being watched.
    pub sources: &'a [Source],
    pub profile: Option<&'a Profile>,
    /// Our routes whose source namespace is `namespace`.
    pub routes: &'a [&'a HttpRoute],
    /// Our grants in `namespace`.
    pub grants: &'a [&'a ReferenceGrant],
}

/// Compare desired with observed for one namespace.
///
/// `watched(kind)` says whether `kind`'s objects are known (its watch has
/// listed them). Routes of a kind that is not watched — its CRD is absent or
/// not yet listed — are kept as they are, and their Services stay granted:
/// an unknown is never taken for "deleted".
pub fn plan(observed: &Observed<'_>, watched: impl Fn(SourceKind) -> bool, config: &Config) -> Plan {
    let namespace = observed.namespace;
    let user = user_id(observed.profile, config);
    let target = config.target();
    let routes: BTreeMap<&str, &HttpRoute> = observed
        .routes
        .iter()
        .filter_map(|r| Some((r.metadata.name.as_deref()?, *r)))
        .collect();
    let mut plan = Plan::default();
    let mut wanted = BTreeSet::new();
    let mut services = BTreeSet::new();
    for source in observed
        .sources
        .iter()
        .filter(|s| s.namespace == namespace && watched(s.kind))
    {
        let desired = kfmodel::routes::http_route(source, &user, &target);
        let name = desired.metadata.name.clone().unwrap_or_default();
        if routes.get(name.as_str()).is_none_or(|o| !covers(*o, &desired)) {
            plan.apply.push(desired);
        }
        wanted.insert(name);
        services.insert(source.service_name());
    }
    for (name, route) in &routes {
        match Source::of_route(route) {
            Some(kept) if !watched(kept.kind) => {
                services.insert(kept.service_name());
            }
            _ if !wanted.contains(*name) => plan.delete.push(name.to_string()),
            _ => {}
        }
    }
    let services: Vec<String> = services.into_iter().collect();
    let desired = kfmodel::routes::reference_grants(
        &config.reference_grant_name,
        namespace,
        &config.route_namespace,
        &services,
    );
    let ours: BTreeMap<&str, &ReferenceGrant> = observed
        .grants
        .iter()
        .filter(|g| kfmodel::routes::is_ours(&g.metadata))
        .filter_map(|g| Some((g.metadata.name.as_deref()?, *g)))
        .collect();
    for grant in &desired {
        let name = grant.metadata.name.as_deref().unwrap_or_default();
        if ours.get(name).is_none_or(|o| !covers(*o, grant)) {
            plan.apply_grants.push(grant.clone());
        }
    }
    plan.delete_grants = ours
        .keys()
        .filter(|n| !desired.iter().any(|d| d.metadata.name.as_deref() == Some(**n)))
        .map(|n| n.to_string())
        .collect();
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
    use serde_json::json;

    use super::*;

    fn run_plan(
        ns: &str,
        sources: &[Source],
        profile: Option<&Profile>,
        routes: &[&HttpRoute],
        grants: &[&ReferenceGrant],
        config: &Config,
    ) -> Plan {
        let observed = Observed {
            namespace: ns,
            sources,
            profile,
            routes,
            grants,
        };
        plan(&observed, |_| true, config)
    }

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
        let first = run_plan("ns", &sources, None, &[], &[], &config);
        assert_eq!(first.apply.len(), 2);
        assert_eq!(first.apply_grants.len(), 1);
        assert!(first.delete.is_empty() && first.delete_grants.is_empty());

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
        let grant = first.apply_grants[0].clone();
        let refs: Vec<&HttpRoute> = observed.iter().collect();
        assert!(run_plan("ns", &sources, None, &refs, &[&grant], &config).is_empty());

        // A hand edit (backend port) is put back.
        let mut edited = observed.clone();
        edited[0].spec.rules.as_mut().unwrap()[0]
            .backend_refs
            .as_mut()
            .unwrap()[0]
            .port = Some(8080);
        let refs: Vec<&HttpRoute> = edited.iter().collect();
        let p = run_plan("ns", &sources, None, &refs, &[&grant], &config);
        assert_eq!(p.apply.len(), 1);

        // Source b deleted: its route goes; a stays; grant stays.
        let refs: Vec<&HttpRoute> = observed.iter().collect();
        let p = run_plan("ns", &sources[..1], None, &refs, &[&grant], &config);
        assert_eq!(p.delete, vec![sources[1].route_name()]);
        assert!(p.apply.is_empty());
        // The grant now names only a's Service.
        assert_eq!(p.apply_grants.len(), 1);
        assert_eq!(p.apply_grants[0].spec.to.len(), 1);
        assert!(p.delete_grants.is_empty());

        // Everything deleted: routes and our grant go.
        let p = run_plan("ns", &[], None, &refs, &[&grant], &config);
        assert_eq!(p.delete.len(), 2);
        assert_eq!(p.delete_grants, vec![config.reference_grant_name.clone()]);
    }

    #[test]
    fn a_grant_we_did_not_make_is_never_deleted() {
        let config = Config::example();
        let mut foreign =
            kfmodel::routes::reference_grants(&config.reference_grant_name, "ns", "kubeflow", &["s".into()])
                .remove(0);
        foreign.metadata.labels = None;
        assert!(
            run_plan("ns", &[], None, &[], &[&foreign], &config)
                .delete_grants
                .is_empty()
        );
    }

    #[test]
    fn profile_owner_change_reapplies_routes() {
        let mut config = Config::example();
        config.user_id_source = UserIdSource::ProfileOwner;
        let sources = vec![source(SourceKind::Notebook, "ns", "a")];
        let first = run_plan("ns", &sources, None, &[], &[], &config);
        let refs: Vec<&HttpRoute> = first.apply.iter().collect();
        let profile = Profile::new(
            "ns",
            kfmodel::ProfileSpec {
                owner: Some(kfmodel::profile::ProfileOwner::user("bob@corp")),
                ..Default::default()
            },
        );
        let grants: Vec<&ReferenceGrant> = first.apply_grants.iter().collect();
        let p = run_plan("ns", &sources, Some(&profile), &refs, &grants, &config);
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

    #[test]
    fn the_grant_names_exactly_the_routed_services() {
        let config = Config::example();
        let sources = vec![
            source(SourceKind::Notebook, "ns", "a"),
            source(SourceKind::PVCViewer, "ns", "v"),
        ];
        let p = run_plan("ns", &sources, None, &[], &[], &config);
        let to = serde_json::to_value(&p.apply_grants[0].spec.to).unwrap();
        assert_eq!(
            to,
            json!([
                {"group": "", "kind": "Service", "name": "a"},
                {"group": "", "kind": "Service", "name": "pvcviewer-v"},
            ])
        );
    }

    #[test]
    fn routes_of_an_unwatched_kind_are_kept_and_stay_granted() {
        let config = Config::example();
        let nb = source(SourceKind::Notebook, "ns", "a");
        let pv = source(SourceKind::PVCViewer, "ns", "v");
        let all = run_plan("ns", &[nb.clone(), pv], None, &[], &[], &config);
        let refs: Vec<&HttpRoute> = all.apply.iter().collect();
        let grants: Vec<&ReferenceGrant> = all.apply_grants.iter().collect();
        // PVCViewer's CRD went away: its objects are unknown, not deleted.
        let observed = Observed {
            namespace: "ns",
            sources: &[nb],
            profile: None,
            routes: &refs,
            grants: &grants,
        };
        let p = plan(&observed, |k| k != SourceKind::PVCViewer, &config);
        assert!(p.is_empty(), "{p:?}");
    }
}
