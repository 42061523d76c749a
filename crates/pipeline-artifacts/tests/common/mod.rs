//! Shared by the integration tests: the sync.py oracle and a real SeaweedFS.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use testsvc::seaweedfs::SeaweedFs;

/// Upstream's hook directory in ../shared.
pub fn sync_dir(test: &str) -> Option<PathBuf> {
    let shared = testkit::require_shared(test)?;
    let dir = shared.join(
        "upstream/git/github.com/kubeflow/manifests/v1.11.0/applications/pipeline/upstream/base/installs/multi-user/pipelines-profile-controller",
    );
    if !dir.join("sync.py").is_file() {
        testkit::skip(test, &format!("{} has no sync.py", dir.display()));
        return None;
    }
    Some(dir)
}

/// Runs sync.py (with its IAM/S3 calls recorded by a fake) on `cases`; see tests/oracle/sync_oracle.py.
pub fn run_oracle(test: &str, cases: Vec<Value>) -> Option<Vec<Value>> {
    let dir = sync_dir(test)?;
    let python = python(test)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/sync_oracle.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let input = json!({"sync_dir": dir, "cases": cases});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("python runs");
    // sync.py prints the request and desired objects to stderr (never the Secret); shown only on failure.
    assert!(
        out.status.success(),
        "sync.py oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("oracle prints JSON");
    Some(parsed["results"].as_array().expect("results").clone())
}

pub mod cluster;

/// `KFLITE_TOOL_PYTHON` or `python` on PATH, else `python3` (only the standard library is needed).
pub fn python(test: &str) -> Option<PathBuf> {
    testkit::find_tool("python")
        .or_else(|| testkit::find_tool("python3"))
        .or_else(|| testkit::require_tool(test, "python"))
}

pub fn seaweed(test: &str) -> Option<SeaweedFs> {
    let weed = testkit::require_tool(test, "weed")?;
    Some(SeaweedFs::start(&weed).expect("start SeaweedFS"))
}

/// Attachment groups the upstream DecoratorController declares, all empty.
pub fn empty_attachments() -> Value {
    json!({
        "Secret.v1": {}, "ConfigMap.v1": {}, "Deployment.apps/v1": {}, "Service.v1": {},
        "DestinationRule.networking.istio.io/v1alpha3": {},
        "AuthorizationPolicy.security.istio.io/v1beta1": {},
    })
}

/// A path-style group key for attachments: `Kind.apiVersion`.
pub fn group_key(obj: &Value) -> String {
    format!(
        "{}.{}",
        obj["kind"].as_str().unwrap_or(""),
        obj["apiVersion"].as_str().unwrap_or("")
    )
}

/// Attachments as metacontroller would observe them after creating `objects`.
pub fn observed(objects: &[Value]) -> Value {
    let mut att = empty_attachments();
    for (i, o) in objects.iter().enumerate() {
        let mut o = o.clone();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_owned();
        o["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-{i:012}"));
        o["metadata"]["resourceVersion"] = json!(format!("{}", 3000 + i));
        let group = group_key(&o);
        att[group][format!("{ns}/{name}")] = o;
    }
    att
}

/// GET `path` from 127.0.0.1:`port`: (status, body), or None while nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_owned()))
}

/// A cluster holding the sync request's parent Namespace (its labels), with
/// the request's uid made the cluster's: the hook checks every request against it.
pub async fn hook_cluster(request: &mut Value) -> (kube_sim::TestCluster, kube::Client) {
    let tc = kube_sim::TestCluster::start().expect("start the test cluster");
    hook_cluster_on(tc, request).await
}

/// [`hook_cluster`] on a given cluster (either backend).
pub async fn hook_cluster_on(
    tc: kube_sim::TestCluster,
    request: &mut Value,
) -> (kube_sim::TestCluster, kube::Client) {
    use k8s_openapi::api::core::v1::Namespace;
    let client = tc.client().await.expect("client");
    let meta = &request["object"]["metadata"];
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": meta["name"], "labels": meta["labels"]}}))
            .expect("namespace");
    let created = kube::Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("create the parent namespace");
    request["object"]["metadata"]["uid"] = json!(created.metadata.uid);
    (tc, client)
}

/// Stores `secret` (a hook answer's Secret) in the cluster, as metacontroller would.
pub async fn store_secret(client: &kube::Client, secret: &Value) {
    use k8s_openapi::api::core::v1::Secret;
    let ns = secret["metadata"]["namespace"].as_str().expect("namespaced");
    let s: Secret = serde_json::from_value(secret.clone()).expect("a Secret");
    kube::Api::<Secret>::namespaced(client.clone(), ns)
        .create(&Default::default(), &s)
        .await
        .expect("create the Secret");
}
