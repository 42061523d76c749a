//! Fixture clusters for kfctl's tests: kube-sim primed with what a healthy
//! homelab has, and helpers that break one thing at a time.
#![allow(dead_code)] // each test binary uses a different part

use std::time::{Duration, Instant};

use kfctl::notebook::NotebookRequest;
use kfctl::resources as r;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use route_controller::Config;
use route_controller::desired::{self, Source, SourceKind};
use serde_json::{Value, json};

pub const USER_NS: &str = "kubeflow-user-example-com";
pub const OWNER: &str = "user@example.com";
pub const KF: &str = "kubeflow";
const MANAGER: &str = "kfctl-fixture";

pub struct Cluster {
    pub sim: kube_sim::Handle,
    pub client: kube::Client,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A fresh, empty kube-sim. Doctor's checks are cluster-wide, so fixtures
/// always get a cluster of their own (never the real one of KFLITE_E2E_KUBECONFIG).
pub async fn empty() -> Cluster {
    init_tracing();
    let sim = kube_sim::Server::start(kube_sim::Config::default()).expect("kube-sim starts");
    let client = kube::Client::try_from(sim.kube_config()).expect("client");
    Cluster { sim, client }
}

fn ar_of(value: &Value) -> ApiResource {
    let kind = value["kind"].as_str().expect("kind");
    match kind {
        "Namespace" => r::namespace(),
        "Service" => r::service(),
        "Pod" => r::pod(),
        "PersistentVolumeClaim" => r::pvc(),
        "Deployment" => r::deployment(),
        "Lease" => r::lease(),
        "NetworkPolicy" => r::networkpolicy(),
        "CustomResourceDefinition" => r::crd(),
        "ConfigMap" => r::configmap(),
        "Secret" => r::secret(),
        "HTTPRoute" => r::httproute(),
        "ReferenceGrant" => r::referencegrant(),
        "Notebook" => r::notebook(),
        "Tensorboard" => r::tensorboard(),
        "PVCViewer" => r::pvcviewer(),
        "Profile" => r::profile(),
        other => kfmodel::istio::STUB_KINDS
            .iter()
            .find(|k| k.kind == other)
            .map(r::istio)
            .unwrap_or_else(|| panic!("fixture has no resource for kind {other}")),
    }
}

fn api_for(client: &kube::Client, value: &Value) -> Api<DynamicObject> {
    let ar = ar_of(value);
    match value.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

impl Cluster {
    /// Server-side apply `value` (its `status`, if any, through the status subresource).
    pub async fn apply(&self, value: Value) {
        let mut value = value;
        let status = value.as_object_mut().and_then(|o| o.remove("status"));
        let name = r::name(&value).to_string();
        let api = api_for(&self.client, &value);
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&value))
            .await
            .unwrap_or_else(|e| panic!("applying {} {name}: {e}", value["kind"]));
        if let Some(status) = status {
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("status of {} {name}: {e}", value["kind"]));
        }
    }

    pub async fn merge(&self, value: Value) {
        let name = r::name(&value).to_string();
        let api = api_for(&self.client, &value);
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&value))
            .await
            .unwrap_or_else(|e| panic!("patching {} {name}: {e}", value["kind"]));
    }

    pub async fn merge_status(&self, value: Value) {
        let name = r::name(&value).to_string();
        let api = api_for(&self.client, &value);
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&value))
            .await
            .unwrap_or_else(|e| panic!("patching status of {} {name}: {e}", value["kind"]));
    }

    /// Delete `kind` `ns/name` (`ns` empty for cluster-scoped).
    pub async fn delete(&self, kind: &str, ns: &str, name: &str) {
        let mut v = json!({"kind": kind, "metadata": {"name": name}});
        if !ns.is_empty() {
            v["metadata"]["namespace"] = json!(ns);
        }
        api_for(&self.client, &v)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting {kind} {ns}/{name}: {e}"));
    }

    pub fn kubeconfig(&self) -> &std::path::Path {
        self.sim.kubeconfig_path()
    }

    /// Add a Notebook with the route and grant route-controller would make.
    pub async fn add_notebook(&self, notebook: Value) {
        let ns = r::namespace_of(&notebook).to_string();
        let name = r::name(&notebook).to_string();
        self.apply(notebook).await;
        self.apply_route(SourceKind::Notebook, &ns, &name).await;
    }

    /// The route and grant route-controller makes for a source (its own code).
    pub async fn apply_route(&self, kind: SourceKind, ns: &str, name: &str) {
        let config = Config::example();
        let source = Source {
            kind,
            namespace: ns.into(),
            name: name.into(),
        };
        let user = desired::user_id(None, &config);
        let mut route = serde_json::to_value(desired::route(&source, &user, &config)).unwrap();
        route["status"] = accepted();
        self.apply(route).await;
        let services = [source.service_name()];
        for grant in kfmodel::routes::reference_grants(&config.reference_grant_name, ns, KF, &services) {
            self.apply(serde_json::to_value(grant).unwrap()).await;
        }
    }
}

/// The dashboard route as kflite's manifests define it.
pub fn dashboard_route() -> Value {
    let rewrite = json!({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}});
    let header = json!({"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "kubeflow-userid", "value": OWNER}]}});
    let rule = |prefix: &str, svc: &str, rewrites: bool| {
        let mut filters = vec![header.clone()];
        if rewrites {
            filters.push(rewrite.clone());
        }
        json!({
            "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
            "filters": filters,
            "backendRefs": [{"group": "", "kind": "Service", "name": svc, "port": 80, "weight": 1}],
        })
    };
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "kubeflow-dashboard", "namespace": KF},
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "homelab-gateway", "namespace": "kube-system"}],
            "hostnames": ["kubeflow.madhan.app"],
            "rules": [
                rule("/jupyter/", "jupyter-web-app-service", true),
                rule("/volumes/", "volumes-web-app-service", true),
                rule("/tensorboards/", "tensorboards-web-app-service", true),
                rule("/katib/", "katib-ui", false),
                rule("/pipeline/", "ml-pipeline-ui", true),
                rule("/", "centraldashboard", false),
            ],
        },
    })
}

/// The status Cilium's Gateway controller writes on a route it accepted.
pub fn accepted() -> Value {
    route_status("True", "Accepted", "True", "ResolvedRefs", "")
}

pub fn route_status(
    accepted: &str,
    accepted_reason: &str,
    resolved: &str,
    resolved_reason: &str,
    message: &str,
) -> Value {
    let cond = |kind: &str, status: &str, reason: &str| json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-11-01T00:00:00Z", "observedGeneration": 1});
    json!({"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "homelab-gateway", "namespace": "kube-system"},
        "controllerName": "io.cilium/gateway-controller",
        "conditions": [cond("Accepted", accepted, accepted_reason), cond("ResolvedRefs", resolved, resolved_reason)],
    }]})
}

pub const DASHBOARD_SERVICES: [&str; 6] = [
    "centraldashboard",
    "jupyter-web-app-service",
    "volumes-web-app-service",
    "tensorboards-web-app-service",
    "katib-ui",
    "ml-pipeline-ui",
];

pub fn deployment(ns: &str, name: &str, available: bool) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": format!("ghcr.io/kflite/{name}:0.1.0")}]}},
        },
        "status": deployment_status(available),
    })
}

/// route-controller's Lease, last renewed at `renewed` (Unix seconds).
pub fn lease(renewed: i64) -> Value {
    let at = k8s_openapi::jiff::Timestamp::from_second(renewed).expect("a valid time");
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kflite-route-controller", "namespace": KF},
        "spec": {
            "holderIdentity": "route-controller-7d4b9c-x2x9p",
            "leaseDurationSeconds": 15,
            "renewTime": format!("{}", at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
        },
    })
}

pub fn deployment_status(available: bool) -> Value {
    let n = if available { 2 } else { 0 };
    json!({
        "replicas": 2, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": 2,
        "conditions": [{"type": "Available", "status": if available { "True" } else { "False" }, "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}],
    })
}

pub fn gpu_notebook(ns: &str, name: &str) -> Value {
    NotebookRequest {
        name: name.into(),
        namespace: ns.into(),
        image: Some("ghcr.io/example/jupyter-pytorch-cu128:2.7.1".into()),
        gpu: true,
        cpu: "1".into(),
        memory: "4Gi".into(),
        workspace: None,
        storage_class: None,
    }
    .object()
    .expect("notebook")
}

/// A running (or stuck) pod of a notebook or viewer that mounts `claim`.
pub fn pod(ns: &str, name: &str, labels: Value, spec: Value, claim: &str, node: &str, stuck: bool) -> Value {
    let mut spec = spec;
    spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    spec["nodeName"] = json!(node);
    let status = if stuck {
        json!({"phase": "Pending", "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "image": "x", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    } else {
        json!({"phase": "Running"})
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec,
        "status": status,
    })
}

/// The viewer's pod (on `node`, stuck or running).
pub fn viewer_pod(node: &str, stuck: bool) -> Value {
    pod(
        USER_NS,
        "pvcviewer-viewer-5d9f7c-abcde",
        json!({"app.kubernetes.io/name": "pvcviewer", "app.kubernetes.io/instance": "viewer"}),
        json!({"containers": [{"name": "main", "image": "filebrowser/filebrowser:v2.25.0"}]}),
        "gpu-nb-workspace",
        node,
        stuck,
    )
}

async fn wait_served(client: &kube::Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        for ar in [
            r::httproute(),
            r::referencegrant(),
            r::notebook(),
            r::tensorboard(),
            r::pvcviewer(),
            r::profile(),
        ] {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            all &= api.list(&ListParams::default().limit(1)).await.is_ok();
        }
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "CRDs not served within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// CRDs only: what a cluster has before anything is in it.
pub async fn with_crds() -> Cluster {
    let c = empty().await;
    let mut crds = kfmodel::crd::all();
    crds.extend(kfmodel::gateway::cluster_provided_crds());
    crds.extend(kfmodel::istio::stub_crds());
    for crd in crds {
        c.apply(serde_json::to_value(crd).unwrap()).await;
    }
    wait_served(&c.client).await;
    c
}

/// Everything a healthy homelab has.
pub async fn healthy() -> Cluster {
    let c = with_crds().await;
    for (ns, labels) in [
        (KF, json!({})),
        (USER_NS, json!({"pipelines.kubeflow.org/enabled": "true"})),
        ("team-b", json!({})),
    ] {
        c.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}))
            .await;
    }
    c.apply(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Profile",
        "metadata": {"name": USER_NS},
        "spec": {"owner": {"kind": "User", "name": OWNER, "apiGroup": "rbac.authorization.k8s.io"}},
    }))
    .await;
    for svc in DASHBOARD_SERVICES {
        c.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc, "namespace": KF},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], "selector": {"app": svc}},
        }))
        .await;
    }
    let mut dashboard = dashboard_route();
    dashboard["status"] = accepted();
    c.apply(dashboard).await;
    c.apply(deployment(KF, "route-controller", true)).await;
    c.apply(deployment(KF, "pipeline-artifacts", true)).await;
    c.apply(lease(kfctl::doctor::snapshot::unix_now())).await;

    // A CPU and a GPU notebook, a Tensorboard and a PVC viewer, all routed.
    let cpu = NotebookRequest {
        name: "cpu-nb".into(),
        namespace: USER_NS.into(),
        image: None,
        gpu: false,
        cpu: "0.5".into(),
        memory: "1Gi".into(),
        workspace: None,
        storage_class: None,
    }
    .object()
    .unwrap();
    c.add_notebook(cpu).await;
    let gpu = gpu_notebook(USER_NS, "gpu-nb");
    let gpu_spec = gpu.pointer("/spec/template/spec").unwrap().clone();
    c.add_notebook(gpu).await;
    c.apply(json!({
        "apiVersion": "tensorboard.kubeflow.org/v1alpha1", "kind": "Tensorboard",
        "metadata": {"name": "tb", "namespace": USER_NS},
        "spec": {"logspath": "pvc://gpu-nb-workspace/logs"},
    }))
    .await;
    c.apply_route(SourceKind::Tensorboard, USER_NS, "tb").await;
    c.apply(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "gpu-nb-workspace", "namespace": USER_NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "longhorn", "resources": {"requests": {"storage": "10Gi"}}},
    }))
    .await;
    c.apply(json!({
        "apiVersion": "kubeflow.org/v1alpha1", "kind": "PVCViewer",
        "metadata": {"name": "viewer", "namespace": USER_NS},
        "spec": {"pvc": "gpu-nb-workspace"},
    }))
    .await;
    c.apply_route(SourceKind::PVCViewer, USER_NS, "viewer").await;
    c.apply(pod(
        USER_NS,
        "gpu-nb-0",
        json!({"notebook-name": "gpu-nb", "statefulset": "gpu-nb"}),
        gpu_spec,
        "gpu-nb-workspace",
        "node-a",
        false,
    ))
    .await;
    // The viewer shares the notebook's node, so the RWO volume attaches to both.
    c.apply(viewer_pod("node-a", false)).await;

    // Pipelines: the artifact Secret and the three KFP ConfigMaps.
    c.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mlpipeline-minio-artifact", "namespace": USER_NS},
        "stringData": {"accesskey": "fixture-access", "secretkey": "fixture-secret"},
    }))
    .await;
    for cm in ["kfp-launcher", "metadata-grpc-configmap", "artifact-repositories"] {
        c.apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cm, "namespace": USER_NS},
            "data": {"fixture": "true"},
        }))
        .await;
    }
    // An unrelated NetworkPolicy: only seaweedfs and centraldashboard matter.
    c.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-same-namespace", "namespace": USER_NS},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
    }))
    .await;
    c
}
