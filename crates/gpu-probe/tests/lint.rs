//! Check 6, `gpu-probe lint-pod`, on good and bad Pod, Notebook and
//! Deployment specs, from files and from standard input.

use std::io::Write;
use std::process::{Command, Stdio};

use gpu_probe::Status;
use gpu_probe::lint::lint_yaml;

const GOOD_NOTEBOOK: &str = r#"apiVersion: kubeflow.org/v1
kind: Notebook
metadata:
  name: torch
  namespace: kubeflow-user
spec:
  template:
    spec:
      runtimeClassName: nvidia
      nodeSelector:
        nvidia.com/gpu.present: "true"
      containers:
        - name: torch
          image: kubeflownotebookswg/jupyter-pytorch-cuda-full:v1.10.0
          resources:
            requests: {cpu: "1", nvidia.com/gpu: "1"}
            limits: {nvidia.com/gpu: 1}
"#;

const BAD_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: flux
spec:
  nodeSelector:
    nvidia.com/gpu.present: true
  containers:
    - name: main
      image: flux
      resources:
        requests: {nvidia.com/gpu: 1}
        limits: {nvidia.com/gpu: 2}
    - name: sidecar
      image: helper
      resources:
        requests: {nvidia.com/gpu: "0.5"}
"#;

const DEPLOYMENTS: &str = r#"# two workloads and a service
apiVersion: apps/v1
kind: Deployment
metadata: {name: ollama, namespace: ai}
spec:
  template:
    spec:
      runtimeClassName: nvidia
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - {key: nvidia.com/gpu.present, operator: In, values: ["true"]}
      containers:
        - name: ollama
          resources:
            limits: {nvidia.com/gpu: 1}
---
apiVersion: v1
kind: Service
metadata: {name: ollama}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sneaky}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - {name: NVIDIA_VISIBLE_DEVICES, value: all}
"#;

#[test]
fn good_notebook_passes() {
    let findings = lint_yaml("nb.yaml", GOOD_NOTEBOOK).expect("lint");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].status, Status::Ok);
    assert_eq!(findings[0].object, "Notebook kubeflow-user/torch");
    assert_eq!(findings[0].location, "nb.yaml:1");
}

#[test]
fn bad_pod_gets_one_finding_per_problem() {
    let findings = lint_yaml("pod.yaml", BAD_POD).expect("lint");
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        findings
            .iter()
            .all(|f| f.status == Status::Fail && f.object == "Pod flux"),
        "{findings:#?}"
    );
    let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
    assert!(
        has("spec.containers[0] (main): nvidia.com/gpu requests 1 but limits 2"),
        "{messages:#?}"
    );
    assert!(
        has("spec.containers[1] (sidecar): resources.requests.nvidia.com/gpu is \"0.5\", not a whole number"),
        "{messages:#?}"
    );
    assert!(
        has("spec.runtimeClassName is unset, must be nvidia"),
        "{messages:#?}"
    );
    assert!(
        has("nodeSelector.nvidia.com/gpu.present is the YAML boolean true"),
        "{messages:#?}"
    );
    assert_eq!(findings.len(), 4, "{messages:#?}");
    assert!(findings.iter().all(|f| f.fix.is_some()));
}

#[test]
fn multi_document_files_name_each_object_and_its_line() {
    let findings = lint_yaml("apps.yaml", DEPLOYMENTS).expect("lint");
    assert_eq!(findings.len(), 2, "{findings:#?}");
    // Required node affinity on the GPU label counts as the node selector.
    assert_eq!(
        (findings[0].object.as_str(), findings[0].status),
        ("Deployment ai/ollama", Status::Ok)
    );
    assert_eq!(findings[0].location, "apps.yaml:1");
    assert_eq!(
        (findings[1].object.as_str(), findings[1].status),
        ("StatefulSet sneaky", Status::Warn)
    );
    assert_eq!(findings[1].location, "apps.yaml:25");
    assert!(findings[1].message.contains("NVIDIA_VISIBLE_DEVICES"));
}

#[test]
fn lists_and_request_without_limit() {
    let list = r#"apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a}
    spec:
      runtimeClassName: runc
      nodeSelector: {nvidia.com/gpu.present: "true"}
      containers:
        - name: c
          resources: {requests: {nvidia.com/gpu: 1}}
"#;
    let findings = lint_yaml("list.yaml", list).expect("lint");
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(findings.len(), 2, "{messages:#?}");
    assert!(
        messages[0].contains("requests nvidia.com/gpu: 1 without a limit"),
        "{messages:#?}"
    );
    assert!(
        messages[1].contains("runtimeClassName is \"runc\", must be nvidia"),
        "{messages:#?}"
    );
}

#[test]
fn bad_yaml_is_an_error_with_file_and_line() {
    let err = lint_yaml(
        "broken.yaml",
        "kind: Pod\nmetadata: {name: x}\n---\nkind: Pod\nspec: [oops\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("broken.yaml:"), "{text}");
    assert!(err.line >= 4, "{text}");
    let err = lint_yaml("x.yaml", "- 1\n- 2\n").unwrap_err();
    assert!(err.to_string().contains("expected a Kubernetes object"), "{err}");
    let err = lint_yaml("x.yaml", "metadata: {name: a}\n").unwrap_err();
    assert!(err.to_string().contains("object has no kind"), "{err}");
}

fn lint_cli(args: &[&str], stdin: &str) -> (Option<i32>, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpu-probe"))
        .arg("lint-pod")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gpu-probe");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json)
}

#[test]
fn cli_exit_codes_follow_the_worst_finding() {
    let (code, json) = lint_cli(&["-", "--json"], GOOD_NOTEBOOK);
    assert_eq!(code, Some(0));
    assert_eq!(json["status"], "ok");
    assert!(
        json["checks"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("<stdin>:1 Notebook"),
        "{json}"
    );

    let (code, json) = lint_cli(&["-", "--json"], BAD_POD);
    assert_eq!(code, Some(1));
    assert_eq!(json["status"], "fail");

    // A warning passes, unless --strict.
    let (code, _) = lint_cli(&["-", "--json"], DEPLOYMENTS);
    assert_eq!(code, Some(0));
    let (code, json) = lint_cli(&["-", "--json", "--strict"], DEPLOYMENTS);
    assert_eq!(code, Some(2));
    assert_eq!(json["status"], "warn");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, BAD_POD).expect("write");
    let (code, json) = lint_cli(&[file.to_str().expect("utf-8 path"), "--json"], "");
    assert_eq!(code, Some(1));
    assert!(
        json["checks"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("pod.yaml:1 Pod flux"),
        "{json}"
    );

    let (code, _) = lint_cli(&["/nonexistent/pod.yaml"], "");
    assert_eq!(code, Some(1));
}
