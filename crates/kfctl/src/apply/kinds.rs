//! Which kinds the cluster serves (discovery), and which the render's own
//! CRDs will add.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, ApiResource};
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

pub async fn wait_established(client: &kube::Client, names: &[String], wait: Duration) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + wait;
    let mut pending: Vec<&String> = names.iter().collect();
    loop {
        let mut still = Vec::new();
        for name in pending {
            let crd = api
                .get_opt(name)
                .await
                .map_err(|e| Error::kube(format!("reading CRD {name}"), e))?;
            let established = crd
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if !established {
                still.push(name);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<&str> = still.iter().map(|s| s.as_str()).collect();
            return Err(Error::Invalid(format!(
                "CRDs not Established after {}s: {}",
                wait.as_secs(),
                names.join(", ")
            )));
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Discovery again until every kind the render's CRDs define is served
/// (an API server publishes a new CRD's kind shortly after Established).
pub async fn rediscover(client: &kube::Client, objects: &[Object], wait: Duration) -> Result<Kinds> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let kinds = Kinds::discover(client, objects).await?;
        let pending = objects
            .iter()
            .any(|o| matches!(kinds.resolve(&o.gvk), Resolved::FromRender { .. }));
        if !pending || tokio::time::Instant::now() >= deadline {
            return Ok(kinds);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
