//! Which kinds the cluster serves (discovery), and which the render's own
//! CRDs will add.

use std::collections::BTreeMap;

use kube::api::ApiResource;
use kube::discovery::{Discovery, Scope};

use super::objects::{Gvk, Object};
use crate::{Error, Result};

/// A kind the render's own CRDs define: served versions and scope.
#[derive(Clone, Debug)]
pub struct RenderKind {
    pub served: Vec<String>,
    pub namespaced: bool,
}

pub struct Kinds {
    discovery: Discovery,
    /// `(group, kind)` → what a CRD in the render defines.
    render: BTreeMap<(String, String), RenderKind>,
}

/// How an object's kind is served.
#[derive(Clone, Debug)]
pub enum Resolved {
    /// By the cluster now.
    Served {
        resource: ApiResource,
        namespaced: bool,
    },
    /// Once the render's CRDs are applied.
    FromRender {
        namespaced: bool,
    },
    Missing,
}

impl Kinds {
    pub async fn discover(client: &kube::Client, objects: &[Object]) -> Result<Self> {
        // Aggregated discovery: two requests, and an unavailable aggregated
        // API (a metrics-server that is down) does not fail the whole run.
        // Servers before 1.26 lack it: one request per group version then.
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(_) => Discovery::new(client.clone())
                .run()
                .await
                .map_err(|e| Error::kube("discovering the API server's kinds", e))?,
        };
        let render = objects
            .iter()
            .filter_map(Object::crd_defines)
            .map(|(group, kind, served, namespaced)| ((group, kind), RenderKind { served, namespaced }))
            .collect();
        Ok(Kinds { discovery, render })
    }

    pub fn resolve(&self, gvk: &Gvk) -> Resolved {
        let k = kube::api::GroupVersionKind::gvk(&gvk.group, &gvk.version, &gvk.kind);
        if let Some((resource, caps)) = self.discovery.resolve_gvk(&k) {
            return Resolved::Served {
                resource,
                namespaced: caps.scope == Scope::Namespaced,
            };
        }
        match self.render.get(&(gvk.group.clone(), gvk.kind.clone())) {
            Some(r) if r.served.contains(&gvk.version) => Resolved::FromRender {
                namespaced: r.namespaced,
            },
            _ => Resolved::Missing,
        }
    }

    /// Versions of `group`/`kind` the cluster serves (for "serves only v1beta1").
    pub fn served_versions(&self, group: &str, kind: &str) -> Vec<String> {
        let Some(g) = self.discovery.get(group) else {
            return Vec::new();
        };
        g.versions()
            .filter(|v| g.versioned_resources(v).iter().any(|(r, _)| r.kind == kind))
            .map(String::from)
            .collect()
    }

    /// The cluster's preferred resource for a group and kind (pruning lists by GroupKind).
    pub fn recommended(&self, group: &str, kind: &str) -> Option<(ApiResource, bool)> {
        let (r, caps) = self.discovery.get(group)?.recommended_kind(kind)?;
        Some((r, caps.scope == Scope::Namespaced))
    }
}
