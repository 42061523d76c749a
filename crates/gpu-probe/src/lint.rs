//! Check 6, `gpu-probe lint-pod`: a workload that asks for `nvidia.com/gpu`
//! must run under the NVIDIA runtime, on a GPU node, with equal GPU
//! requests and limits.

use serde_yaml_ng::Value;

use crate::report::{Check, Status};

/// The extended resource the NVIDIA device plugin advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Node label set by GPU feature discovery on GPU nodes.
pub const GPU_NODE_LABEL: &str = "nvidia.com/gpu.present";

/// One problem (or the all-clear) for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `FILE:LINE` of the document the object starts in.
    pub location: String,
    /// `Kind namespace/name`.
    pub object: String,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn to_check(&self) -> Check {
        let reason = format!("{} {}: {}", self.location, self.object, self.message);
        let mut c = Check::new("lint", self.status, reason);
        c.fix = self.fix.clone();
        c
    }
}

/// Input that is not YAML, or not Kubernetes objects.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LintError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Split a YAML stream into documents, with the 1-based line each starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs
}

/// Lint every object in `text` (a YAML stream; `List` objects are opened).
/// `file` names the input in findings.
pub fn lint_yaml(file: &str, text: &str) -> Result<Vec<Finding>, LintError> {
    let mut findings = Vec::new();
    for (line, doc) in documents(text) {
        let value: Value = serde_yaml_ng::from_str(&doc).map_err(|e| LintError {
            file: file.to_string(),
            line: e.location().map(|l| line + l.line() - 1).unwrap_or(line),
            message: format!("not valid YAML: {e}"),
        })?;
        if value.is_null() {
            continue;
        }
        let location = format!("{file}:{line}");
        lint_value(&location, &value, &mut findings)?;
    }
    Ok(findings)
}

fn lint_value(location: &str, value: &Value, findings: &mut Vec<Finding>) -> Result<(), LintError> {
    let bad = |message: String| {
        let (file, line) = location.rsplit_once(':').unwrap_or((location, "0"));
        LintError {
            file: file.to_string(),
            line: line.parse().unwrap_or(0),
            message,
        }
    };
    if !value.is_mapping() {
        return Err(bad(
            "expected a Kubernetes object (a mapping with kind and metadata)".into(),
        ));
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("object has no kind".into()))?;
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        for item in value
            .get("items")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            lint_value(location, item, findings)?;
        }
        return Ok(());
    }
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let object = match meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let Some((spec_path, spec)) = pod_spec(kind, value) else {
        return Ok(()); // not a workload: nothing to check
    };
    let before = findings.len();
    let mut push = |status, message: String, fix: Option<&str>| {
        findings.push(Finding {
            location: location.to_string(),
            object: object.clone(),
            status,
            message,
            fix: fix.map(str::to_string),
        })
    };
    let Some(spec) = spec else {
        push(
            Status::Fail,
            format!("{spec_path} is missing"),
            Some("give the workload a pod template"),
        );
        return Ok(());
    };
    let mut asks_gpu = false;
    let mut sets_visible = false;
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
            let at = format!("{spec_path}.{list}[{i}] ({cname})");
            let res = c.get("resources");
            let req = res
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get(GPU_RESOURCE));
            let lim = res
                .and_then(|r| r.get("limits"))
                .and_then(|r| r.get(GPU_RESOURCE));
            let env_visible = c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .any(|e| e.get("name").and_then(Value::as_str) == Some("NVIDIA_VISIBLE_DEVICES"));
            sets_visible |= env_visible;
            if req.is_none() && lim.is_none() {
                continue;
            }
            asks_gpu = true;
            let (rq, lm) = (req.map(gpu_count), lim.map(gpu_count));
            for (what, v) in [("requests", &rq), ("limits", &lm)] {
                if let Some(Err(raw)) = v {
                    push(
                        Status::Fail,
                        format!("{at}: resources.{what}.{GPU_RESOURCE} is {raw}, not a whole number of GPUs"),
                        Some("GPUs are whole devices: use 1 (time-slicing already gives each pod a share)"),
                    );
                }
            }
            match (rq, lm) {
                (Some(Ok(r)), None) => push(
                    Status::Fail,
                    format!("{at}: requests {GPU_RESOURCE}: {r} without a limit (the API server rejects it)"),
                    Some("set resources.limits nvidia.com/gpu to the same number as the request"),
                ),
                (Some(Ok(r)), Some(Ok(l))) if r != l => push(
                    Status::Fail,
                    format!("{at}: {GPU_RESOURCE} requests {r} but limits {l}; they must be equal"),
                    Some("make resources.requests and resources.limits of nvidia.com/gpu the same number"),
                ),
                _ => {}
            }
        }
    }
    if !asks_gpu {
        if sets_visible {
            push(
                Status::Warn,
                "sets NVIDIA_VISIBLE_DEVICES but requests no nvidia.com/gpu: it bypasses the device plugin and shares the GPU unaccounted".into(),
                Some("request resources.limits nvidia.com/gpu: 1 instead of setting NVIDIA_VISIBLE_DEVICES"),
            );
        }
        return Ok(());
    }
    match spec.get("runtimeClassName").and_then(Value::as_str) {
        Some("nvidia") => {}
        other => push(
            Status::Fail,
            format!(
                "{spec_path}.runtimeClassName is {}, must be nvidia: without it the pod sees NVIDIA_VISIBLE_DEVICES but no driver (\"Found no NVIDIA driver on your system\")",
                other.map(|o| format!("{o:?}")).unwrap_or_else(|| "unset".into())
            ),
            Some("set runtimeClassName: nvidia in the pod spec"),
        ),
    }
    let selector = spec.get("nodeSelector").and_then(|s| s.get(GPU_NODE_LABEL));
    match selector {
        Some(Value::String(s)) if s == "true" => {}
        Some(Value::Bool(true)) => push(
            Status::Fail,
            format!(
                "{spec_path}.nodeSelector.{GPU_NODE_LABEL} is the YAML boolean true; label values are strings"
            ),
            Some("quote it: nvidia.com/gpu.present: \"true\""),
        ),
        _ if affinity_requires_gpu_node(spec) => {}
        other => push(
            Status::Fail,
            format!(
                "{spec_path}.nodeSelector.{GPU_NODE_LABEL} is {}, must be \"true\" so the pod lands on a GPU node",
                other.map(|v| format!("{v:?}")).unwrap_or_else(|| "unset".into())
            ),
            Some("add nodeSelector: {nvidia.com/gpu.present: \"true\"} to the pod spec"),
        ),
    }
    if findings.len() == before {
        findings.push(Finding {
            location: location.to_string(),
            object,
            status: Status::Ok,
            message: "asks for nvidia.com/gpu with runtimeClassName nvidia, the GPU node selector and equal requests/limits".into(),
            fix: None,
        });
    }
    Ok(())
}

/// The pod spec of a workload: (field path, spec if present). `None` for kinds
/// that are not workloads.
fn pod_spec<'a>(kind: &str, v: &'a Value) -> Option<(&'static str, Option<&'a Value>)> {
    let at = |path: &[&str]| path.iter().try_fold(v, |cur, key| cur.get(*key));
    Some(match kind {
        "Pod" => ("spec", at(&["spec"])),
        // Kubeflow Notebook (kubeflow.org/v1, v1beta1) and the apps/batch workloads.
        "Notebook" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            ("spec.template.spec", at(&["spec", "template", "spec"]))
        }
        "CronJob" => (
            "spec.jobTemplate.spec.template.spec",
            at(&["spec", "jobTemplate", "spec", "template", "spec"]),
        ),
        _ => return None,
    })
}

/// A GPU count from a quantity: integers, or strings holding one.
fn gpu_count(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| n.to_string()),
        Value::String(s) => s.trim().parse().map_err(|_| format!("{s:?}")),
        other => Err(format!("{other:?}")),
    }
}

/// Required node affinity with `nvidia.com/gpu.present In ["true"]`, the
/// long spelling of the node selector.
fn affinity_requires_gpu_node(spec: &Value) -> bool {
    let terms = [
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
    ]
    .iter()
    .try_fold(spec, |cur, k| cur.get(*k))
    .and_then(Value::as_sequence);
    let Some(terms) = terms else { return false };
    // Terms are ORed, so every term must require the label.
    !terms.is_empty()
        && terms.iter().all(|t| {
            t.get("matchExpressions")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .any(|e| {
                    e.get("key").and_then(Value::as_str) == Some(GPU_NODE_LABEL)
                        && e.get("operator").and_then(Value::as_str) == Some("In")
                        && e.get("values").and_then(Value::as_sequence).is_some_and(|vals| {
                            !vals.is_empty() && vals.iter().all(|x| x.as_str() == Some("true"))
                        })
                })
        })
}
