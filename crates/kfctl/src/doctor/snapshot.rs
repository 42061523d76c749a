//! Everything doctor's checks look at, read from the cluster once.

use std::collections::{BTreeMap, BTreeSet};

use kfmodel::istio::STUB_KINDS;
use serde_json::Value;

use super::DoctorConfig;
use crate::Result;
use crate::resources::{self as r, label, name};

// Shared with pipeline-artifacts, which creates what doctor checks.
pub use kfmodel::pipelines::{ARTIFACT_SECRET, ENABLED_LABEL as PIPELINES_ENABLED_LABEL, KFP_CONFIGMAPS};

/// What one pipelines-enabled namespace has.
#[derive(Clone, Debug, Default)]
pub struct PipelinesNamespace {
    pub has_secret: bool,
    pub configmaps: BTreeSet<String>,
}

/// One Istio kind: whether its (stub) CRD exists, and the objects of it.
#[derive(Clone, Debug)]
pub struct IstioState {
    pub kind: &'static kfmodel::istio::IstioKind,
    pub crd_exists: bool,
    /// `ns/name` of each object.
    pub objects: Vec<String>,
}

/// `None` fields: the kind is not served (its CRD is missing).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub routes: Option<Vec<Value>>,
    pub grants: Option<Vec<Value>>,
    pub services: Vec<Value>,
    pub notebooks: Option<Vec<Value>>,
    pub tensorboards: Option<Vec<Value>>,
    pub pvcviewers: Option<Vec<Value>>,
    pub profiles: Option<Vec<Value>>,
    pub namespaces: Vec<Value>,
    pub pods: Vec<Value>,
    pub pvcs: Vec<Value>,
    pub network_policies: Vec<Value>,
    pub route_controller: Option<Value>,
    pub route_controller_lease: Option<Value>,
    /// When the snapshot was taken (Unix seconds), to judge the Lease's age.
    pub now: i64,
    pub artifact_controller: Option<Value>,
    /// Keyed by namespace name.
    pub pipelines: BTreeMap<String, PipelinesNamespace>,
    pub istio: Vec<IstioState>,
    /// Resources (plural names) kfctl may not read (401/403), with the error:
    /// the checks that need them fail with "cannot read" instead of judging
    /// an empty list.
    pub unreadable: BTreeMap<String, String>,
}

/// `result`, or the default value when the API server refused access (which
/// is recorded in `unreadable` under `resource`).
fn lenient<T: Default>(
    result: Result<T>,
    resource: &str,
    unreadable: &mut BTreeMap<String, String>,
) -> Result<T> {
    match result {
        Err(crate::Error::Kube { what, source }) if matches!(&*source, kube::Error::Api(s) if s.code == 401 || s.code == 403) =>
        {
            unreadable
                .entry(resource.to_string())
                .or_insert(format!("{what}: {source}"));
            Ok(T::default())
        }
        other => other,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn split(qualified: &str) -> (&str, &str) {
    qualified.split_once('/').unwrap_or(("kubeflow", qualified))
}

impl Snapshot {
    pub async fn fetch(client: &kube::Client, config: &DoctorConfig) -> Result<Self> {
        let c = client;
        let (rc_ns, rc_name) = split(&config.route_controller);
        let (ac_ns, ac_name) = split(&config.artifact_controller);
        let mut u = BTreeMap::new();
        let mut s = Snapshot {
            routes: lenient(
                r::list_in(c, &r::httproute(), &config.route_namespace).await,
                "httproutes",
                &mut u,
            )?,
            grants: lenient(
                r::list_all(c, &r::referencegrant()).await,
                "referencegrants",
                &mut u,
            )?,
            services: lenient(r::list_all(c, &r::service()).await, "services", &mut u)?.unwrap_or_default(),
            notebooks: lenient(r::list_all(c, &r::notebook()).await, "notebooks", &mut u)?,
            tensorboards: lenient(r::list_all(c, &r::tensorboard()).await, "tensorboards", &mut u)?,
            pvcviewers: lenient(r::list_all(c, &r::pvcviewer()).await, "pvcviewers", &mut u)?,
            profiles: lenient(r::list_all(c, &r::profile()).await, "profiles", &mut u)?,
            namespaces: lenient(r::list_all(c, &r::namespace()).await, "namespaces", &mut u)?
                .unwrap_or_default(),
            pods: lenient(r::list_all(c, &r::pod()).await, "pods", &mut u)?.unwrap_or_default(),
            pvcs: lenient(r::list_all(c, &r::pvc()).await, "persistentvolumeclaims", &mut u)?
                .unwrap_or_default(),
            network_policies: lenient(
                r::list_all(c, &r::networkpolicy()).await,
                "networkpolicies",
                &mut u,
            )?
            .unwrap_or_default(),
            route_controller: lenient(
                r::get(c, &r::deployment(), Some(rc_ns), rc_name).await,
                "deployments",
                &mut u,
            )?,
            route_controller_lease: lenient(
                r::get(c, &r::lease(), Some(rc_ns), &config.route_controller_lease).await,
                "leases",
                &mut u,
            )?,
            now: unix_now(),
            artifact_controller: lenient(
                r::get(c, &r::deployment(), Some(ac_ns), ac_name).await,
                "deployments",
                &mut u,
            )?,
            ..Default::default()
        };
        let enabled: Vec<String> = s
            .namespaces
            .iter()
            .filter(|n| label(n, PIPELINES_ENABLED_LABEL) == Some("true"))
            .map(|n| name(n).to_string())
            .collect();
        for ns in enabled {
            // Only whether the Secret exists is kept; its data never leaves this call.
            let has_secret = lenient(
                r::get(c, &r::secret(), Some(&ns), ARTIFACT_SECRET).await,
                "secrets",
                &mut u,
            )?
            .is_some();
            let configmaps = lenient(r::list_in(c, &r::configmap(), &ns).await, "configmaps", &mut u)?
                .unwrap_or_default()
                .iter()
                .map(|cm| name(cm).to_string())
                .collect();
            s.pipelines.insert(
                ns,
                PipelinesNamespace {
                    has_secret,
                    configmaps,
                },
            );
        }
        for kind in STUB_KINDS {
            let crd_exists = lenient(
                r::get(c, &r::crd(), None, &kind.crd_name()).await,
                "customresourcedefinitions",
                &mut u,
            )?
            .is_some();
            let objects = if crd_exists {
                lenient(r::list_all(c, &r::istio(kind)).await, kind.plural, &mut u)?
                    .unwrap_or_default()
                    .iter()
                    .map(r::qualified)
                    .collect()
            } else {
                Vec::new()
            };
            s.istio.push(IstioState {
                kind,
                crd_exists,
                objects,
            });
        }
        s.unreadable = u;
        Ok(s)
    }
}

/// `(group, kind)` of an object (`""` for the core group).
fn group_kind(v: &Value) -> (&str, &str) {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (group, v.get("kind").and_then(Value::as_str).unwrap_or(""))
}

impl Snapshot {
    /// The snapshot a cluster would give right after `objects` (rendered
    /// manifests) are applied, before any controller acts: judges an overlay
    /// before it reaches the cluster. Status-dependent checks (Deployments
    /// available, pods) see no status and fail or pass accordingly.
    pub fn from_objects(objects: &[Value], config: &DoctorConfig) -> Snapshot {
        let mut s = Snapshot {
            now: unix_now(),
            routes: Some(Vec::new()),
            grants: Some(Vec::new()),
            notebooks: Some(Vec::new()),
            tensorboards: Some(Vec::new()),
            pvcviewers: Some(Vec::new()),
            profiles: Some(Vec::new()),
            ..Default::default()
        };
        let (rc_ns, rc_name) = split(&config.route_controller);
        let (ac_ns, ac_name) = split(&config.artifact_controller);
        let mut secrets = BTreeSet::new();
        let mut configmaps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut crds = BTreeSet::new();
        let mut istio_objects: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let push =
            |list: &mut Option<Vec<Value>>, v: &Value| list.get_or_insert_with(Vec::new).push(v.clone());
        for v in objects {
            let ns = r::namespace_of(v);
            match group_kind(v) {
                ("gateway.networking.k8s.io", "HTTPRoute") if ns == config.route_namespace => {
                    push(&mut s.routes, v)
                }
                ("gateway.networking.k8s.io", "ReferenceGrant") => push(&mut s.grants, v),
                ("kubeflow.org", "Notebook") => push(&mut s.notebooks, v),
                ("tensorboard.kubeflow.org", "Tensorboard") => push(&mut s.tensorboards, v),
                ("kubeflow.org", "PVCViewer") => push(&mut s.pvcviewers, v),
                ("kubeflow.org", "Profile") => push(&mut s.profiles, v),
                ("", "Service") => s.services.push(v.clone()),
                ("", "Namespace") => s.namespaces.push(v.clone()),
                ("", "Pod") => s.pods.push(v.clone()),
                ("", "PersistentVolumeClaim") => s.pvcs.push(v.clone()),
                ("", "Secret") if name(v) == ARTIFACT_SECRET => {
                    secrets.insert(ns.to_string());
                }
                ("", "ConfigMap") => {
                    configmaps
                        .entry(ns.to_string())
                        .or_default()
                        .insert(name(v).to_string());
                }
                ("networking.k8s.io", "NetworkPolicy") => s.network_policies.push(v.clone()),
                ("apps", "Deployment") if (ns, name(v)) == (rc_ns, rc_name) => {
                    s.route_controller = Some(v.clone())
                }
                ("apps", "Deployment") if (ns, name(v)) == (ac_ns, ac_name) => {
                    s.artifact_controller = Some(v.clone())
                }
                ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                    crds.insert(name(v).to_string());
                }
                (group, kind) => {
                    if let Some(k) = STUB_KINDS.iter().find(|k| k.group == group && k.kind == kind) {
                        istio_objects.entry(k.kind).or_default().push(r::qualified(v));
                    }
                }
            }
        }
        for n in &s.namespaces {
            if label(n, PIPELINES_ENABLED_LABEL) == Some("true") {
                let ns = name(n).to_string();
                s.pipelines.insert(
                    ns.clone(),
                    PipelinesNamespace {
                        has_secret: secrets.contains(&ns),
                        configmaps: configmaps.remove(&ns).unwrap_or_default(),
                    },
                );
            }
        }
        for kind in STUB_KINDS {
            s.istio.push(IstioState {
                kind,
                crd_exists: crds.contains(&kind.crd_name()),
                objects: istio_objects.remove(kind.kind).unwrap_or_default(),
            });
        }
        s
    }
}
