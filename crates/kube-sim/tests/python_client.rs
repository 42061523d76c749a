//! Acceptance 3: the Python `kubernetes` client (pip) creates a CRD, then
//! lists, watches and patches (merge and JSON patch, status too) custom objects.

use kube_sim::TestCluster;
use std::process::Command;

const SCRIPT: &str = r#"
import json, sys, threading, time
from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
ns = sys.argv[2]
G, V, P = "example.kflite.io", "v1", "widgets"
ext = client.ApiextensionsV1Api()
crd = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.kflite.io"},
    "spec": {"group": G, "scope": "Namespaced",
             "names": {"plural": P, "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": V, "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
created_crd = False
try:
    ext.create_custom_resource_definition(crd)
    created_crd = True
except client.exceptions.ApiException as e:
    if e.status != 409:
        raise
for _ in range(100):
    c = ext.read_custom_resource_definition("widgets.example.kflite.io")
    if any(x.type == "Established" and x.status == "True" for x in (c.status.conditions or [])):
        break
    time.sleep(0.1)

co = client.CustomObjectsApi()
def widget(name, size, app):
    return {"apiVersion": G + "/" + V, "kind": "Widget",
            "metadata": {"name": name, "labels": {"app": app}}, "spec": {"size": size}}
co.create_namespaced_custom_object(G, V, ns, P, widget("w1", 1, "a"))
co.create_namespaced_custom_object(G, V, ns, P, widget("other", 1, "b"))
lst = co.list_namespaced_custom_object(G, V, ns, P, label_selector="app=a")
rv = lst["metadata"]["resourceVersion"]

events = []
def watcher():
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, G, V, ns, P,
                       label_selector="app=a", resource_version=rv, timeout_seconds=10):
        o = ev["object"]
        events.append([ev["type"], o["metadata"]["name"], o.get("spec", {}).get("size")])
        if len(events) >= 5:
            w.stop()
t = threading.Thread(target=watcher)
t.start()
time.sleep(0.5)
co.patch_namespaced_custom_object(G, V, ns, P, "w1", {"spec": {"size": 2}})
co.patch_namespaced_custom_object(G, V, ns, P, "w1", [{"op": "replace", "path": "/spec/size", "value": 3}],
                                  _content_type="application/json-patch+json")
co.create_namespaced_custom_object(G, V, ns, P, widget("w2", 7, "a"))
st = co.patch_namespaced_custom_object_status(G, V, ns, P, "w1", {"status": {"ready": True}, "spec": {"size": 99}})
co.delete_namespaced_custom_object(G, V, ns, P, "w2")
t.join(15)
w1 = co.get_namespaced_custom_object(G, V, ns, P, "w1")
missing = None
try:
    co.get_namespaced_custom_object(G, V, ns, P, "nope")
except client.exceptions.ApiException as e:
    missing = {"status": e.status, "body": json.loads(e.body)}
out = {"listed": [i["metadata"]["name"] for i in lst["items"]], "events": events,
       "w1": w1, "status_patch_spec": st["spec"], "missing": missing}
if created_crd and len(sys.argv) > 3 and sys.argv[3] == "cleanup":
    ext.delete_custom_resource_definition("widgets.example.kflite.io")
print(json.dumps(out))
"#;

#[test]
fn python_client_lists_watches_and_patches_custom_objects() {
    const TEST: &str = "python_client_lists_watches_and_patches_custom_objects";
    let Some(python) = testkit::require_tool(TEST, "python") else {
        return;
    };
    let has_client = Command::new(&python)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_client {
        assert!(
            std::env::var_os("KFLITE_TOOL_PYTHON").is_none(),
            "KFLITE_TOOL_PYTHON={} lacks the kubernetes package",
            python.display()
        );
        return testkit::skip(
            TEST,
            "the Python `kubernetes` package is not installed (cargo xtask test installs it)",
        );
    }
    let tc = TestCluster::start().expect("start");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ns = rt.block_on(tc.namespace("py")).expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("client.py");
    std::fs::write(&script, SCRIPT).expect("write script");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(tc.kubeconfig_path()).arg(&ns);
    if tc.is_real() {
        cmd.arg("cleanup");
    }
    let out = cmd.output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("script prints JSON");

    assert_eq!(got["listed"], serde_json::json!(["w1"]), "label selector on list");
    assert_eq!(
        got["events"],
        serde_json::json!([
            ["MODIFIED", "w1", 2],
            ["MODIFIED", "w1", 3],
            ["ADDED", "w2", 7],
            ["MODIFIED", "w1", 3],
            ["DELETED", "w2", 7]
        ]),
        "watch from the list's resourceVersion, selector applied"
    );
    assert_eq!(
        got["w1"]["spec"]["size"], 3,
        "the status subresource ignores spec"
    );
    assert_eq!(got["status_patch_spec"]["size"], 3);
    assert_eq!(got["w1"]["status"]["ready"], true);
    assert_eq!(
        got["w1"]["metadata"]["generation"], 3,
        "spec changes bump generation, status changes do not"
    );
    assert_eq!(got["missing"]["status"], 404);
    assert_eq!(got["missing"]["body"]["reason"], "NotFound");
    assert_eq!(
        got["missing"]["body"]["message"],
        "widgets.example.kflite.io \"nope\" not found"
    );
}
