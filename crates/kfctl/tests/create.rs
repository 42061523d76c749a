//! `kfctl profile add` and `kfctl notebook create` make objects the other
//! components accept: route-controller (run in-process, as in its own e2e
//! tests) routes the notebook with the profile owner as the user, and
//! gpu-probe's lint passes the notebook as the API server stores it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kfctl::notebook::{self, NotebookRequest};
use kfctl::profile;
use kflite_runtime::Health;
use kfmodel::Profile;
use kfmodel::gateway::HttpRoute;
use kube::api::Api;
use kube_sim::TestCluster;
use route_controller::metrics::Metrics;
use route_controller::{Config, RunOptions, UserIdSource};
use serde_json::{Value, json};

// Each test changes cluster-wide objects: a cluster of its own.
kube_sim::on_each_backend!(
    private:
    created_gpu_notebook_is_routed_and_passes_the_gpu_lint,
);

async fn wait_route(client: &kube::Client, name: &str) -> HttpRoute {
    let api: Api<HttpRoute> = Api::namespaced(client.clone(), KF);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(r)) = api.get_opt(name).await {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "route-controller made no route {name} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn created_gpu_notebook_is_routed_and_passes_the_gpu_lint(tc: TestCluster) {
    let Some(c) = with_crds(tc).await else {
        return;
    };
    c.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KF}}))
        .await;

    // kfctl profile add: the namespace derived from the e-mail, the owner set.
    let email = "jane.doe@example.com";
    let created = profile::add(&c.client, &profile::profile_object(email, None).unwrap())
        .await
        .expect("profile add");
    let ns = created.metadata.name.clone().unwrap();
    assert_eq!(ns, "kubeflow-jane-doe-example-com");
    let stored: Profile = Api::<Profile>::all(c.client.clone()).get(&ns).await.unwrap();
    assert_eq!(stored.spec.owner.as_ref().unwrap().name, email);
    // The profile controller would make the namespace; kube-sim has none.
    c.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .await;

    // A second add of the same profile names the owner it has.
    let again = profile::add(&c.client, &profile::profile_object(email, None).unwrap()).await;
    let err = again.unwrap_err().to_string();
    assert!(err.contains("already exists") && err.contains(email), "{err}");

    // route-controller, with the user header taken from the Profile's owner.
    let mut config = Config::example();
    config.user_id_source = UserIdSource::ProfileOwner;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = c.client.clone();
    let controller = tokio::spawn(async move {
        let shutdown = kflite_runtime::shutdown::on(async {
            let _ = stop_rx.await;
        });
        let options = RunOptions {
            identity: "kfctl-test".into(),
            leader: None,
        };
        route_controller::run(
            client,
            config,
            options,
            Metrics::new(),
            Health::default(),
            shutdown,
        )
        .await
    });

    // kfctl notebook create NAME --gpu --workspace 5Gi --storage-class longhorn
    let request = NotebookRequest {
        name: "train".into(),
        namespace: ns.clone(),
        image: Some("ghcr.io/example/jupyter-pytorch-cu128:2.7.1".into()),
        gpu: true,
        cpu: "1".into(),
        memory: "4Gi".into(),
        workspace: Some("5Gi".into()),
        storage_class: Some("longhorn".into()),
    };
    assert!(request.warnings().is_empty());
    notebook::create(&c.client, &request)
        .await
        .expect("notebook create");
    let pvc = kfctl::resources::get(&c.client, &kfctl::resources::pvc(), Some(&ns), "train-workspace")
        .await
        .unwrap()
        .expect("workspace PVC");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert_eq!(pvc["spec"]["storageClassName"], "longhorn");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));

    let route = wait_route(&c.client, &format!("notebook.{ns}.train")).await;
    let v = serde_json::to_value(&route).unwrap();
    let rule = &v["spec"]["rules"][0];
    assert_eq!(
        rule["matches"][0]["path"]["value"],
        format!("/notebook/{ns}/train/")
    );
    assert_eq!(rule["backendRefs"][0]["name"], "train");
    assert_eq!(
        rule["filters"][0]["requestHeaderModifier"]["set"][0]["value"],
        email
    );

    // gpu-probe's lint on the Notebook as the API server returns it.
    let stored = kfctl::resources::get(&c.client, &kfctl::resources::notebook(), Some(&ns), "train")
        .await
        .unwrap()
        .expect("stored notebook");
    let yaml = serde_yaml_ng::to_string(&stored).unwrap();
    let findings = gpu_probe::lint::lint_yaml("train", &yaml).expect("lint runs");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].status, gpu_probe::Status::Ok, "{findings:?}");

    // kfctl notebook list shows its URL from the route.
    let rows = notebook::list(&c.client, Some(&ns), KF).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].url.as_deref(),
        Some(format!("https://kubeflow.madhan.app/notebook/{ns}/train/").as_str())
    );
    assert_eq!(rows[0].gpus, 1);

    // The pod spec mounts the workspace where jupyter-web-app does.
    assert_eq!(
        stored["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "train-workspace"
    );
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/home/jovyan"
    );

    // Creating it again is refused, not overwritten.
    let err = notebook::create(&c.client, &request)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");

    let _ = stop_tx.send(());
    let result = tokio::time::timeout(Duration::from_secs(10), controller).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "controller stopped badly: {result:?}"
    );
}

#[test]
fn default_gpu_image_warns_with_the_fix() {
    let request = NotebookRequest {
        name: "x".into(),
        namespace: "ns".into(),
        image: None,
        gpu: true,
        cpu: "1".into(),
        memory: "1Gi".into(),
        workspace: None,
        storage_class: None,
    };
    let warnings = request.warnings();
    assert_eq!(
        warnings.len(),
        1,
        "Kubeflow v1.11.0's default GPU image ships PyTorch < 2.7"
    );
    assert!(warnings[0].contains("sm_120"));
    // Without --gpu the default is a CPU image: nothing to warn about.
    let cpu = NotebookRequest {
        gpu: false,
        ..request
    };
    assert!(cpu.warnings().is_empty());
    let object: Value = cpu.object().unwrap();
    assert!(object.pointer("/spec/template/spec/runtimeClassName").is_none());
}
