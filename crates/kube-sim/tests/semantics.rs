//! API-server semantics through kube-rs: errors, optimistic concurrency,
//! server-side apply conflicts, finalizers, namespace deletion, selectors,
//! pagination, the status subresource, CRD schemas. Written to pass on a
//! real cluster too (KFLITE_E2E_KUBECONFIG), in namespaces of their own.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube_sim::TestCluster;
use serde_json::{Value, json};
use std::time::Duration;

fn status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn errors_and_optimistic_concurrency() {
    let tc = TestCluster::start().expect("start");
    let ns = tc.namespace("errors").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(tc.client().await.expect("client"), &ns);
    let pp = PostParams::default();
    let created = api
        .create(&pp, &obj(json!({"metadata": {"name": "x"}, "data": {"a": "1"}})))
        .await
        .expect("create");

    let s = status(
        api.create(&pp, &obj(json!({"metadata": {"name": "x"}})))
            .await
            .expect_err("duplicate"),
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (409, "AlreadyExists", "configmaps \"x\" already exists")
    );

    let s = status(api.get("nope").await.expect_err("missing"));
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "configmaps \"nope\" not found")
    );

    let s = status(
        api.create(&pp, &obj(json!({"metadata": {"name": "Bad_Name"}})))
            .await
            .expect_err("invalid"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        s.message
    );

    // An update from a stale copy loses.
    let mut fresh = api.get("x").await.expect("get");
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    api.replace("x", &pp, &fresh).await.expect("update");
    let mut stale = created;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let s = status(api.replace("x", &pp, &stale).await.expect_err("stale"));
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // generateName.
    let g = api
        .create(&pp, &obj(json!({"metadata": {"generateName": "gen-"}})))
        .await
        .expect("generateName");
    let name = g.metadata.name.expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn server_side_apply_conflicts_force_and_ownership() {
    let tc = TestCluster::start().expect("start");
    let ns = tc.namespace("ssa").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(tc.client().await.expect("client"), &ns);
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    api.patch(
        "c",
        &PatchParams::apply("alice"),
        &Patch::Apply(cm(json!({"k": "1", "mine": "a"}))),
    )
    .await
    .expect("alice applies");

    let s = status(
        api.patch(
            "c",
            &PatchParams::apply("bob"),
            &Patch::Apply(cm(json!({"k": "2"}))),
        )
        .await
        .expect_err("conflict"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"alice\" using v1: .data.k"
    );
    // The same value is no conflict: both own it.
    api.patch(
        "c",
        &PatchParams::apply("carol"),
        &Patch::Apply(cm(json!({"mine": "a"}))),
    )
    .await
    .expect("shared ownership");

    let forced = api
        .patch(
            "c",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cm(json!({"k": "2"}))),
        )
        .await
        .expect("force");
    assert_eq!(
        forced.data.as_ref().and_then(|d| d.get("k")).map(String::as_str),
        Some("2")
    );
    let owners: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        owners.contains(&"bob".to_string()) && owners.contains(&"alice".to_string()),
        "{owners:?}"
    );

    // alice stops applying k (bob owns it now: it stays) and mine (carol co-owns it: it stays).
    let after = api
        .patch("c", &PatchParams::apply("alice"), &Patch::Apply(cm(json!({}))))
        .await
        .expect("alice re-applies");
    let data = after.data.unwrap_or_default();
    assert_eq!(data.get("k").map(String::as_str), Some("2"));
    assert_eq!(data.get("mine").map(String::as_str), Some("a"));
    // bob drops k: nobody else owns it, so it goes.
    let after = api
        .patch("c", &PatchParams::apply("bob"), &Patch::Apply(cm(json!({}))))
        .await
        .expect("bob re-applies");
    assert!(!after.data.unwrap_or_default().contains_key("k"));

    // Apply without a field manager is refused.
    let s = status(
        api.patch("c", &PatchParams::default(), &Patch::Apply(cm(json!({}))))
            .await
            .expect_err("no manager"),
    );
    assert_eq!(s.code, 422);
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_by_name() {
    let tc = TestCluster::start().expect("start");
    let ns = tc.namespace("smp").await.expect("namespace");
    let api: Api<Deployment> = Api::namespaced(tc.client().await.expect("client"), &ns);
    let d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}});
    let created = api.create(&PostParams::default(), &obj(d)).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    // The API server's defaults, as controllers comparing specs will see them.
    let cs = created.spec.as_ref().expect("spec");
    assert_eq!(
        (
            cs.replicas,
            cs.revision_history_limit,
            cs.progress_deadline_seconds
        ),
        (Some(1), Some(10), Some(600))
    );
    assert_eq!(
        cs.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("RollingUpdate")
    );
    let pod = cs.template.spec.as_ref().expect("pod spec");
    assert_eq!(
        (
            pod.restart_policy.as_deref(),
            pod.dns_policy.as_deref(),
            pod.termination_grace_period_seconds
        ),
        (Some("Always"), Some("ClusterFirst"), Some(30))
    );
    assert_eq!(
        pod.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        pod.containers[0].termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}, {"name": "side", "image": "busybox"}]}}}});
    let p = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("strategic merge");
    let spec = p.spec.and_then(|s| s.template.spec).expect("pod spec");
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "side"]);
    let env: Vec<&str> = spec.containers[0]
        .env
        .as_ref()
        .expect("env")
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["A", "B"]);
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:2"));
    assert_eq!(p.metadata.generation, Some(2), "a spec change bumps generation");
    let relabeled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        relabeled.metadata.generation,
        Some(2),
        "a metadata change does not"
    );

    // The scale subresource.
    let sc = api.get_scale("web").await.expect("get scale");
    assert_eq!(sc.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(sc.status.and_then(|s| s.selector).as_deref(), Some("app=web"));
    let sc = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert_eq!(sc.spec.and_then(|s| s.replicas), Some(3));
    let scaled = api.get("web").await.expect("get");
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(scaled.metadata.generation, Some(3));
}

#[tokio::test]
async fn finalizers_hold_deletion_and_namespaces_cascade() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("fin").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    api.create(
        &pp,
        &obj(json!({"metadata": {"name": "held", "finalizers": ["kflite.test/hold"]}})),
    )
    .await
    .expect("create");
    api.create(&pp, &obj(json!({"metadata": {"name": "free"}})))
        .await
        .expect("create");

    api.delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let held = api.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    let s = status(
        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["kflite.test/hold", "kflite.test/new"]}})),
        )
        .await
        .expect_err("no new finalizers"),
    );
    assert_eq!(s.code, 422);
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    eventually("the released object to go", || async {
        api.get_opt("held").await.expect("get").is_none()
    })
    .await;

    // Deleting the namespace: Terminating, no new content, contents deleted, then gone.
    api.create(
        &pp,
        &obj(json!({"metadata": {"name": "held2", "finalizers": ["kflite.test/hold"]}})),
    )
    .await
    .expect("create");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    let n = nss.get(&ns).await.expect("terminating namespace");
    assert_eq!(n.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    let s = status(
        api.create(&pp, &obj(json!({"metadata": {"name": "late"}})))
            .await
            .expect_err("terminating"),
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    eventually("free to be deleted", || async {
        api.get_opt("free").await.expect("get").is_none()
    })
    .await;
    api.patch(
        "held2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    eventually("the namespace to go", || async {
        nss.get_opt(&ns).await.expect("get").is_none()
    })
    .await;
}

#[tokio::test]
async fn a_namespace_held_by_a_metadata_finalizer_waits_for_its_owner() {
    // A controller's finalizer on the Namespace itself (pipeline-artifacts
    // puts one there): the delete returns, the namespace stays Terminating
    // until the finalizer is removed, then goes.
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let nss: Api<Namespace> = Api::all(client.clone());
    let name = format!("{}-held", tc.namespace("nsfin").await.expect("namespace"));
    nss.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name, "finalizers": ["kflite.test/cleanup"]}})),
    )
    .await
    .expect("create");
    let deleted = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        nss.delete(&name, &DeleteParams::default()),
    )
    .await
    .expect("delete answers");
    deleted.expect("delete");
    let n = nss.get(&name).await.expect("still there");
    assert!(n.metadata.deletion_timestamp.is_some());
    assert_eq!(n.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    nss.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    eventually("the namespace to go", || async {
        nss.get_opt(&name).await.expect("get").is_none()
    })
    .await;
}

#[tokio::test]
async fn selectors_and_pagination() {
    let tc = TestCluster::start().expect("start");
    let ns = tc.namespace("sel").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(tc.client().await.expect("client"), &ns);
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        api.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("c{i}"), "labels": {"tier": tier, "set": "s"}}})),
        )
        .await
        .expect("create");
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(api.list(&lp("tier=even")).await.expect("list")),
        ["c0", "c2", "c4"]
    );
    assert_eq!(
        names(api.list(&lp("tier in (odd),set")).await.expect("list")),
        ["c1", "c3"]
    );
    assert_eq!(
        names(api.list(&lp("tier!=even,set")).await.expect("list")),
        ["c1", "c3"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c3"))
                .await
                .expect("list")
        ),
        ["c3"]
    );
    let s = status(
        api.list(&ListParams::default().fields("data.a=b"))
            .await
            .expect_err("unsupported field"),
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    let mut all = Vec::new();
    let mut rvs = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut p = ListParams::default().labels("set=s").limit(2);
        if let Some(t) = &token {
            p = p.continue_token(t);
        }
        let page = api.list(&p).await.expect("page");
        pages += 1;
        token = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        rvs.push(page.metadata.resource_version.clone().unwrap_or_default());
        all.extend(names(page));
        if pages == 1 {
            // Changes after the first page do not show in the later ones: a paginated list is one snapshot.
            api.create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "c15", "labels": {"set": "s"}}})),
            )
            .await
            .expect("create");
            api.delete("c3", &DeleteParams::default()).await.expect("delete");
        }
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        (pages, all),
        (
            3,
            vec!["c0", "c1", "c2", "c3", "c4"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        )
    );
    assert!(
        rvs.iter().all(|rv| *rv == rvs[0]),
        "every page reports the first page's resourceVersion: {rvs:?}"
    );
    // A fresh list shows the changes.
    let n = names(
        api.list(&ListParams::default().labels("set=s"))
            .await
            .expect("list"),
    );
    assert_eq!(n, ["c0", "c1", "c15", "c2", "c4"]);
}

fn gadget_crd() -> CustomResourceDefinition {
    obj(json!({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.test.kflite.io"},
    "spec": {"group": "test.kflite.io", "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
        "versions": [
            {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
             "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
             "selectableFields": [{"jsonPath": ".spec.size"}],
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "default": 1},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}}},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}},
            {"name": "v1beta1", "served": true, "storage": false, "subresources": {"status": {}},
             "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
        ]}}))
}

#[tokio::test]
async fn custom_resources_status_generation_schema_and_versions() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "gadgets.test.kflite.io",
        &PatchParams::apply("kflite-test").force(),
        &Patch::Apply(gadget_crd()),
    )
    .await
    .expect("apply CRD");
    eventually("the CRD to be Established", || async {
        let c = crds.get("gadgets.test.kflite.io").await.expect("get CRD");
        c.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    })
    .await;
    let ns = tc.namespace("cr").await.expect("namespace");
    let ar = ApiResource {
        group: "test.kflite.io".into(),
        version: "v1".into(),
        api_version: "test.kflite.io/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    // Discovery serves the new kind (kube-rs' own discovery client).
    let disc = kube::discovery::Discovery::new(client.clone())
        .filter(&["test.kflite.io"])
        .run()
        .await
        .expect("discovery");
    assert!(
        disc.groups()
            .any(|g| g.name() == "test.kflite.io" && g.versions().any(|v| v == "v1beta1")),
        "both served versions are discovered"
    );

    let g = json!({"apiVersion": "test.kflite.io/v1", "kind": "Gadget", "metadata": {"name": "g"},
                   "spec": {"ports": [{"name": "http", "port": 80}]}, "status": {"ready": true}});
    let created = api.create(&PostParams::default(), &obj(g)).await.expect("create");
    assert_eq!(created.data["spec"]["size"], 1, "schema default applied");
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create with a status subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));

    // Values are validated against the schema.
    let invalid = json!({"apiVersion": "test.kflite.io/v1", "kind": "Gadget", "metadata": {"name": "bad"}, "spec": {"size": "big"}});
    let s = status(
        api.create(&PostParams::default(), &obj(invalid))
            .await
            .expect_err("invalid"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        s.message,
        "Gadget.test.kflite.io \"bad\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"big\""
    );

    // Strict validation refuses undeclared fields; Ignore prunes them.
    let bad = json!({"apiVersion": "test.kflite.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"bogus": 1}});
    let s = status(
        api.patch(
            "g",
            &PatchParams::apply("m").validation_strict(),
            &Patch::Apply(bad.clone()),
        )
        .await
        .expect_err("strict"),
    );
    assert_eq!(s.code, 400);
    assert!(s.message.contains(".spec.bogus"), "{}", s.message);
    let pruned = api
        .patch(
            "g",
            &PatchParams::apply("m").validation_ignore(),
            &Patch::Apply(bad),
        )
        .await
        .expect("ignore");
    assert!(pruned.data["spec"].get("bogus").is_none());

    // Status through the subresource only; spec changes bump generation.
    let st = api
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 50}})),
        )
        .await
        .expect("status");
    assert_eq!(st.data["status"]["ready"], true);
    assert_eq!(st.data["spec"]["size"], 1, "status writes ignore spec");
    assert_eq!(st.metadata.generation, Some(1));
    let sp = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}, "status": {"ready": false}})),
        )
        .await
        .expect("spec");
    assert_eq!(
        sp.data["status"]["ready"], true,
        "main-resource writes ignore status"
    );
    assert_eq!(sp.metadata.generation, Some(2));
    // selectableFields make a field usable in field selectors.
    assert_eq!(
        api.list(&ListParams::default().fields("spec.size=3"))
            .await
            .expect("selectable field")
            .items
            .len(),
        1
    );
    assert_eq!(
        api.list(&ListParams::default().fields("spec.size=4"))
            .await
            .expect("selectable field")
            .items
            .len(),
        0
    );
    // Server-side apply of status goes through the subresource, with its own managedFields entry.
    let sa = json!({"apiVersion": "test.kflite.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "status": {"ready": false}});
    let applied = api
        .patch_status(
            "g",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(sa),
        )
        .await
        .expect("apply status");
    assert_eq!(applied.data["status"]["ready"], false);
    assert_eq!(applied.data["spec"]["size"], 3);
    let entry = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("status-writer"))
        .expect("status manager");
    assert_eq!(
        (entry.operation.as_deref(), entry.subresource.as_deref()),
        (Some("Apply"), Some("status"))
    );

    // Server-side apply merges x-kubernetes-list-type=map lists by key.
    let a = json!({"apiVersion": "test.kflite.io/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"ports": [{"name": "metrics", "port": 9090}]}});
    let merged = api
        .patch("g", &PatchParams::apply("other"), &Patch::Apply(a))
        .await
        .expect("apply ports");
    let ports: Vec<&str> = merged.data["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(ports, ["http", "metrics"]);

    // The same object through the other served version.
    let ar_b = ApiResource {
        version: "v1beta1".into(),
        api_version: "test.kflite.io/v1beta1".into(),
        ..ar.clone()
    };
    let beta: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar_b);
    let b = beta.get("g").await.expect("v1beta1 get");
    assert_eq!(
        b.types.map(|t| t.api_version).as_deref(),
        Some("test.kflite.io/v1beta1")
    );

    if tc.is_real() {
        crds.delete("gadgets.test.kflite.io", &DeleteParams::default())
            .await
            .expect("delete CRD");
    } else {
        // Deleting the CRD deletes its objects and stops serving the kind.
        crds.delete("gadgets.test.kflite.io", &DeleteParams::default())
            .await
            .expect("delete CRD");
        eventually("the CRD to go", || async {
            crds.get_opt("gadgets.test.kflite.io")
                .await
                .expect("get")
                .is_none()
        })
        .await;
        let s = status(api.get("g").await.expect_err("kind gone"));
        assert_eq!(s.code, 404);
    }
}

#[tokio::test]
async fn gateway_api_httproute_round_trips() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    if tc.is_real() {
        return testkit::skip(
            "gateway_api_httproute_round_trips",
            "uses the cluster's own Gateway API CRDs; kube-sim only",
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kfmodel::gateway::cluster_provided_crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(&name, &PatchParams::apply("kflite-test"), &Patch::Apply(crd))
            .await
            .expect("apply Gateway API CRD");
    }
    let ns = tc.namespace("gw").await.expect("namespace");
    let routes: Api<kfmodel::gateway::HttpRoute> = Api::namespaced(client, &ns);
    let spec = json!({
        "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "kube-system"}],
        "hostnames": ["kubeflow.example.com"],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/notebook/ns/nb/"}}],
                   "backendRefs": [{"name": "nb", "port": 80}]}]});
    let route: kfmodel::gateway::HttpRoute = obj(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": spec}));
    let pp = PatchParams::apply("kflite-test").validation_strict();
    let created = routes
        .patch("r", &pp, &Patch::Apply(route))
        .await
        .expect("apply HTTPRoute");
    let v = serde_json::to_value(&created).expect("json");
    assert_eq!(
        v["spec"], spec,
        "every field the route sets is declared by the CRD schema and kept"
    );
}

#[tokio::test]
async fn secrets_reviews_and_namespace_defaults() {
    use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("sec").await.expect("namespace");

    // stringData is folded into data, base64-encoded; type defaults to Opaque.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let s = secrets
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "s"}, "stringData": {"user": "minio"}})),
        )
        .await
        .expect("create");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert!(s.string_data.is_none());
    assert_eq!(s.data.expect("data")["user"].0, b"minio".to_vec());

    // The controllers put a default ServiceAccount and the root CA ConfigMap in every namespace.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    eventually("the default ServiceAccount", || async {
        sas.get_opt("default").await.expect("get").is_some()
    })
    .await;
    eventually("kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt").await.expect("get").is_some()
    })
    .await;

    // Access reviews are answered (kube-sim allows everything; a test user on a real cluster may be refused).
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let r = reviews
        .create(&PostParams::default(), &obj(json!({"spec": {"resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": ns}}})))
        .await
        .expect("review");
    assert!(r.status.is_some());
    if !tc.is_real() {
        assert!(r.status.map(|s| s.allowed).unwrap_or(false));
    }
}

#[tokio::test]
async fn immutable_fields_are_refused() {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("immutable").await.expect("namespace");
    let pp = PostParams::default();
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    rbs.create(&pp, &obj(json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}))).await.expect("create");
    let s = status(
        rbs.patch(
            "rb",
            &PatchParams::default(),
            &Patch::Merge(json!({"roleRef": {"name": "edit"}})),
        )
        .await
        .expect_err("roleRef change"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.contains("roleRef: Invalid value") && s.message.contains("cannot change roleRef"),
        "{}",
        s.message
    );
    rbs.patch(
        "rb",
        &PatchParams::default(),
        &Patch::Merge(json!({"subjects": []})),
    )
    .await
    .expect("subjects may change");

    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deps.create(&pp, &obj(json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d", "v": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))).await.expect("create");
    let s = status(
        deps.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"matchLabels": {"v": "1"}}}})),
        )
        .await
        .expect_err("selector"),
    );
    assert_eq!(s.code, 422);
    assert!(s.message.contains("spec.selector"), "{}", s.message);

    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    cms.create(
        &pp,
        &obj(json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"a": "1"}})),
    )
    .await
    .expect("create");
    let s = status(
        cms.patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .expect_err("frozen"),
    );
    assert_eq!(s.code, 422);
    cms.patch(
        "frozen",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"ok": "yes"}}})),
    )
    .await
    .expect("metadata may change");
}

#[tokio::test]
async fn garbage_collection_background_and_foreground() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("gc").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let pp = PostParams::default();
    let owned = |name: &str, owner: &ConfigMap, finalizers: Value| -> ConfigMap {
        obj(
            json!({"metadata": {"name": name, "finalizers": finalizers, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": true}]}}),
        )
    };

    // Background: the owner goes at once, its dependents after it.
    let owner = api
        .create(&pp, &obj(json!({"metadata": {"name": "bg-owner"}})))
        .await
        .expect("owner");
    api.create(&pp, &owned("bg-dep", &owner, json!([])))
        .await
        .expect("dependent");
    api.delete("bg-owner", &DeleteParams::background())
        .await
        .expect("delete");
    eventually("background dependents to be collected", || async {
        api.get_opt("bg-dep").await.expect("get").is_none()
    })
    .await;

    // Foreground: the owner waits (foregroundDeletion) until its dependents are gone.
    let owner = api
        .create(&pp, &obj(json!({"metadata": {"name": "fg-owner"}})))
        .await
        .expect("owner");
    api.create(&pp, &owned("fg-dep", &owner, json!(["kflite.test/hold"])))
        .await
        .expect("dependent");
    api.delete("fg-owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    eventually("the dependent to be deleting", || async {
        api.get_opt("fg-dep")
            .await
            .expect("get")
            .is_some_and(|d| d.metadata.deletion_timestamp.is_some())
    })
    .await;
    let o = api.get("fg-owner").await.expect("owner is held");
    assert!(o.metadata.deletion_timestamp.is_some());
    assert!(
        o.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    api.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    eventually("the owner to go after its dependent", || async {
        api.get_opt("fg-owner").await.expect("get").is_none()
    })
    .await;

    // Orphan: dependents stay, without the ownerReference.
    let owner = api
        .create(&pp, &obj(json!({"metadata": {"name": "or-owner"}})))
        .await
        .expect("owner");
    api.create(&pp, &owned("or-dep", &owner, json!([])))
        .await
        .expect("dependent");
    api.delete("or-owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    eventually("the orphan to lose its ownerReference", || async {
        api.get_opt("or-dep")
            .await
            .expect("get")
            .is_some_and(|d| d.metadata.owner_references.unwrap_or_default().is_empty())
    })
    .await;
}

#[tokio::test]
async fn namespace_finalize_subresource_releases_a_stuck_namespace() {
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("stuck").await.expect("namespace");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let nss: Api<Namespace> = Api::all(client.clone());
    if tc.is_real() {
        // Force-finalizing strands objects in etcd; not something to do to a real cluster.
        return testkit::skip(
            "namespace_finalize_subresource_releases_a_stuck_namespace",
            "kube-sim only",
        );
    }
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "held", "finalizers": ["kflite.test/hold"]}})),
    )
    .await
    .expect("create");
    nss.delete(&ns, &DeleteParams::default()).await.expect("delete");
    let stuck = nss.get(&ns).await.expect("stuck namespace");
    assert_eq!(
        stuck.spec.as_ref().and_then(|s| s.finalizers.clone()),
        Some(vec!["kubernetes".to_string()])
    );
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": []}});
    let req = http::Request::put(format!("/api/v1/namespaces/{ns}/finalize"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).expect("json"))
        .expect("request");
    client.request_text(req).await.expect("finalize");
    assert!(
        nss.get_opt(&ns).await.expect("get").is_none(),
        "an emptied finalizer list releases the namespace"
    );
}

#[tokio::test]
async fn events_are_one_store_seen_through_two_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    let tc = TestCluster::start().expect("start");
    let client = tc.client().await.expect("client");
    let ns = tc.namespace("ev").await.expect("namespace");
    let new_api: Api<NewEvent> = Api::namespaced(client.clone(), &ns);
    let core_api: Api<CoreEvent> = Api::namespaced(client.clone(), &ns);
    let ev = json!({"metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "kflite.io/test",
        "reportingInstance": "test-1", "action": "Reconcile", "reason": "Synced", "type": "Normal", "note": "all good",
        "regarding": {"kind": "ConfigMap", "name": "x", "namespace": ns, "apiVersion": "v1"}});
    new_api
        .create(&PostParams::default(), &obj(ev))
        .await
        .expect("create via events.k8s.io");
    // Recorders write events.k8s.io; kubectl get events reads core/v1.
    let core = core_api.get("e1").await.expect("read via core/v1");
    assert_eq!(core.message.as_deref(), Some("all good"));
    assert_eq!(core.involved_object.name.as_deref(), Some("x"));
    assert_eq!(core.reason.as_deref(), Some("Synced"));
    let back = new_api.get("e1").await.expect("read back");
    assert_eq!(back.note.as_deref(), Some("all good"));
    assert_eq!(back.regarding.and_then(|r| r.name).as_deref(), Some("x"));
    let patched = new_api
        .patch(
            "e1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "changed"})),
        )
        .await
        .expect("patch");
    assert_eq!(patched.note.as_deref(), Some("changed"));
    assert_eq!(
        core_api.get("e1").await.expect("core").message.as_deref(),
        Some("changed")
    );
    assert_eq!(
        core_api
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
}
