//! Fixture clusters for kfctl's tests: a private cluster (kube-sim or a real
//! control plane, see `kube_sim::on_each_backend!`) primed with what a healthy
//! homelab has, and helpers that break one thing at a time.
#![allow(dead_code)] // each test binary uses a different part

use std::time::{Duration, Instant};

use kfctl::notebook::NotebookRequest;
use kfctl::resources as r;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube_sim::TestCluster;
use route_controller::Config;
use route_controller::desired::{self, Source, SourceKind};
use serde_json::{Value, json};

pub const USER_NS: &str = "kubeflow-user-example-com";
pub const OWNER: &str = "user@example.com";
pub const KF: &str = "kubeflow";
const MANAGER: &str = "kfctl-fixture";

pub struct Cluster {
    pub tc: TestCluster,
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

/// The empty cluster `tc` (a private one: doctor's checks are cluster-wide),
/// or `None` after a loud skip on the real cluster of KFLITE_E2E_KUBECONFIG,
/// which fixtures must never change.
pub async fn empty(tc: TestCluster) -> Option<Cluster> {
    init_tracing();
    if tc.is_real() {
        testkit::skip(
            "kfctl fixture",
            "KFLITE_E2E_KUBECONFIG names a cluster someone runs; fixtures need one of their own",
        );
        return None;
    }
    let client = tc.client().await.expect("client");
    Some(Cluster { tc, client })
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
        "RuntimeClass" => ApiResource {
            group: "node.k8s.io".into(),
            version: "v1".into(),
            api_version: "node.k8s.io/v1".into(),
            kind: "RuntimeClass".into(),
            plural: "runtimeclasses".into(),
        },
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
        // A real API server admits a Pod only once the controller manager has
        // made its namespace's `default` ServiceAccount, shortly after the namespace.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match api
                .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&value))
                .await
            {
                Ok(_) => break,
                Err(e)
                    if e.to_string().contains("serviceaccount \"default\" not found")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("applying {} {name}: {e}", value["kind"]),
            }
        }
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
        let api = api_for(&self.client, &v);
        // No kubelet confirms a Pod's end on the test control plane: delete it at once.
        let params = if kind == "Pod" {
            DeleteParams::default().grace_period(0)
        } else {
            DeleteParams::default()
        };
        api.delete(name, &params)
            .await
            .unwrap_or_else(|e| panic!("deleting {kind} {ns}/{name}: {e}"));
        // Wait until it is gone, doing the finalizers' work (pvc-protection)
        // whose controllers the test control plane does not run.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(obj) = api
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("reading deleted {kind} {ns}/{name}: {e}"))
        {
            if obj.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty()) {
                api.patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await
                .unwrap_or_else(|e| panic!("clearing finalizers of {kind} {ns}/{name}: {e}"));
            }
            assert!(
                Instant::now() < deadline,
                "{kind} {ns}/{name} not gone within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kubeconfig(&self) -> &std::path::Path {
        self.tc.kubeconfig_path()
    }

    /// kube-sim's handle, for fault injection.
    pub fn sim(&self) -> &kube_sim::Handle {
        self.tc.sim().expect("fault injection needs the kube-sim backend")
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

/// CRDs only: what a cluster has before anything is in it (on a real API
/// server the Gateway API's upstream release, with its validation).
pub async fn with_crds(tc: TestCluster) -> Option<Cluster> {
    let c = empty(tc).await?;
    c.tc.install_platform_crds().await.expect("platform CRDs");
    let stubs: Vec<Value> = kfmodel::istio::stub_crds()
        .iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect();
    c.tc.install_crds(&stubs).await.expect("stub Istio CRDs");
    wait_served(&c.client).await;
    Some(c)
}

/// Everything a healthy homelab has.
pub async fn healthy(tc: TestCluster) -> Option<Cluster> {
    let c = with_crds(tc).await?;
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
    // The GPU operator's RuntimeClass: a real API server admits GPU pods only
    // with it (kube-sim does not serve the kind, nor check pods against it).
    if c.tc.sim().is_none() {
        c.apply(json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}))
            .await;
    }
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
    Some(c)
}
