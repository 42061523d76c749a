//! The routes kflite makes, as typed Gateway API values: which kinds get a
//! route, the labels that mark and locate our objects, the route table (path
//! prefix, rewrite, backend Service per kind), and the HTTPRoute and
//! ReferenceGrant built from it. route-controller writes these; kfctl reads
//! them back to check a cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::gateway::httproutes::{
    HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestHeaderModifier, HttpRouteRulesFiltersRequestHeaderModifierSet,
    HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePath,
    HttpRouteRulesFiltersUrlRewritePathType, HttpRouteRulesMatches, HttpRouteRulesMatchesPath,
    HttpRouteRulesMatchesPathType,
};
use crate::gateway::{
    GROUP, HttpRoute, HttpRouteSpec, ReferenceGrant, ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo,
};
use crate::naming::route_name;

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kflite-route-controller";
/// Kind of the routed object (`Notebook`, `Tensorboard`, `PVCViewer`).
pub const SOURCE_KIND_LABEL: &str = "routes.kflite.dev/source-kind";
/// Namespace of the routed object (a label: namespaces fit in 63 characters).
pub const SOURCE_NAMESPACE_LABEL: &str = "routes.kflite.dev/source-namespace";
/// Name of the routed object (an annotation: names may exceed a label's 63 characters).
pub const SOURCE_NAME_ANNOTATION: &str = "routes.kflite.dev/source-name";
/// Most `to` entries one ReferenceGrant may hold (the Gateway API CRD's maxItems).
pub const MAX_GRANT_TARGETS: usize = 16;

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

/// A routed object.
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

    pub fn service_name(&self) -> String {
        self.kind.service_name(&self.name)
    }

    /// The source a route of ours was made for, from its labels and annotation.
    pub fn of_route(route: &HttpRoute) -> Option<Source> {
        let meta = &route.metadata;
        let label = |k: &str| meta.labels.as_ref()?.get(k).cloned();
        Some(Source {
            kind: SourceKind::parse(&label(SOURCE_KIND_LABEL)?)?,
            namespace: label(SOURCE_NAMESPACE_LABEL)?,
            name: meta.annotations.as_ref()?.get(SOURCE_NAME_ANNOTATION)?.clone(),
        })
    }
}

/// Where routes attach and what they carry: the settings every route shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    /// Namespace the HTTPRoutes live in.
    pub route_namespace: String,
    pub gateway_name: String,
    pub gateway_namespace: String,
    pub gateway_section_name: Option<String>,
    pub hostnames: Vec<String>,
    /// Request header that carries the user identity.
    pub user_id_header: String,
}

/// The HTTPRoute for `source`. Fields the API server would default (group,
/// kind, weight) are written out, so what we apply equals what we read back.
pub fn http_route(source: &Source, user_id: &str, target: &RouteTarget) -> HttpRoute {
    let mut filters = vec![HttpRouteRulesFilters {
        r#type: HttpRouteRulesFiltersType::RequestHeaderModifier,
        request_header_modifier: Some(HttpRouteRulesFiltersRequestHeaderModifier {
            set: Some(vec![HttpRouteRulesFiltersRequestHeaderModifierSet {
                name: target.user_id_header.clone(),
                value: user_id.to_string(),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if source.kind.rewrites_to_root() {
        filters.push(HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::UrlRewrite,
            url_rewrite: Some(HttpRouteRulesFiltersUrlRewrite {
                path: Some(HttpRouteRulesFiltersUrlRewritePath {
                    r#type: HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch,
                    replace_prefix_match: Some("/".into()),
                    replace_full_path: None,
                }),
                hostname: None,
            }),
            ..Default::default()
        });
    }
    let rule = HttpRouteRules {
        matches: Some(vec![HttpRouteRulesMatches {
            path: Some(HttpRouteRulesMatchesPath {
                r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
                value: Some(source.kind.path_prefix(&source.namespace, &source.name)),
            }),
            ..Default::default()
        }]),
        filters: Some(filters),
        backend_refs: Some(vec![HttpRouteRulesBackendRefs {
            group: Some(String::new()),
            kind: Some("Service".into()),
            name: source.service_name(),
            namespace: Some(source.namespace.clone()),
            port: Some(80),
            weight: Some(1),
            filters: None,
        }]),
        ..Default::default()
    };
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (SOURCE_KIND_LABEL.to_string(), source.kind.as_str().to_string()),
        (SOURCE_NAMESPACE_LABEL.to_string(), source.namespace.clone()),
    ]);
    HttpRoute {
        metadata: ObjectMeta {
            name: Some(source.route_name()),
            namespace: Some(target.route_namespace.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                SOURCE_NAME_ANNOTATION.to_string(),
                source.name.clone(),
            )])),
            ..Default::default()
        },
        spec: HttpRouteSpec {
            parent_refs: Some(vec![HttpRouteParentRefs {
                group: Some(GROUP.into()),
                kind: Some("Gateway".into()),
                name: target.gateway_name.clone(),
                namespace: Some(target.gateway_namespace.clone()),
                section_name: target.gateway_section_name.clone(),
                port: None,
            }]),
            hostnames: Some(target.hostnames.clone()),
            rules: Some(vec![rule]),
        },
        status: None,
    }
}

/// Name of the `index`th grant of a namespace: `base`, then `base-1`, `base-2`, …
pub fn grant_name(base: &str, index: usize) -> String {
    match index {
        0 => base.to_string(),
        i => format!("{base}-{i}"),
    }
}

/// The ReferenceGrants that let HTTPRoutes in `route_namespace` reach exactly
/// `services` (sorted, unique) in `namespace` and nothing else there: one
/// `to` entry per Service, at most [`MAX_GRANT_TARGETS`] per grant.
pub fn reference_grants(
    base_name: &str,
    namespace: &str,
    route_namespace: &str,
    services: &[String],
) -> Vec<ReferenceGrant> {
    services
        .chunks(MAX_GRANT_TARGETS)
        .enumerate()
        .map(|(i, chunk)| ReferenceGrant {
            metadata: ObjectMeta {
                name: Some(grant_name(base_name, i)),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY_LABEL.to_string(),
                    MANAGED_BY.to_string(),
                )])),
                ..Default::default()
            },
            spec: ReferenceGrantSpec {
                from: vec![ReferenceGrantFrom {
                    group: GROUP.into(),
                    kind: "HTTPRoute".into(),
                    namespace: route_namespace.to_string(),
                }],
                to: chunk
                    .iter()
                    .map(|name| ReferenceGrantTo {
                        group: String::new(),
                        kind: "Service".into(),
                        name: Some(name.clone()),
                    })
                    .collect(),
            },
        })
        .collect()
}

/// Whether `meta` carries our managed-by label.
pub fn is_ours(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> RouteTarget {
        RouteTarget {
            route_namespace: "kubeflow".into(),
            gateway_name: "gw".into(),
            gateway_namespace: "kube-system".into(),
            gateway_section_name: None,
            hostnames: vec!["k.example".into()],
            user_id_header: "kubeflow-userid".into(),
        }
    }

    #[test]
    fn a_route_names_its_source() {
        let source = Source {
            kind: SourceKind::PVCViewer,
            namespace: "team".into(),
            name: "v".into(),
        };
        let route = http_route(&source, "u", &target());
        assert_eq!(Source::of_route(&route), Some(source));
    }

    #[test]
    fn grants_split_at_the_crd_limit_and_name_each_service() {
        let services: Vec<String> = (0..MAX_GRANT_TARGETS + 1).map(|i| format!("s{i:02}")).collect();
        let grants = reference_grants("allow", "team", "kubeflow", &services);
        let names: Vec<_> = grants.iter().map(|g| g.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["allow", "allow-1"]);
        assert_eq!(grants[0].spec.to.len(), MAX_GRANT_TARGETS);
        assert_eq!(grants[1].spec.to[0].name.as_deref(), Some("s16"));
        assert!(
            grants
                .iter()
                .flat_map(|g| &g.spec.to)
                .all(|t| t.kind == "Service" && t.group.is_empty())
        );
        assert!(reference_grants("allow", "team", "kubeflow", &[]).is_empty());
    }
}
