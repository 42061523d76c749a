//! The hook's answers equal upstream sync.py's for the same inputs (sync.py is the oracle).

mod common;

use common::{empty_attachments, observed, run_oracle};
use pipeline_artifacts::desired::{LIFECYCLE_PREFIX, LIFECYCLE_RULE_ID, policy_document, policy_name};
use pipeline_artifacts::hook::respond;
use pipeline_artifacts::secret::Credentials;
use pipeline_artifacts::settings::{Settings, parse_flag, parse_retention_days};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    namespace: &'static str,
    labels: Value,
    /// sync.py's settings, as its environment gives them (strings).
    proxy: &'static str,
    retention: &'static str,
    disable_istio: bool,
    image: &'static str,
    tag: &'static str,
    /// Objects already attached (besides what is listed, nothing).
    attached: fn(&str) -> Vec<Value>,
}

fn nothing(_: &str) -> Vec<Value> {
    Vec::new()
}

fn secret_only(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mlpipeline-minio-artifact", "namespace": ns},
        "data": {"accesskey": "T0xES0VZ", "secretkey": "b2xkc2VjcmV0"}, "type": "Opaque"}),
    ]
}

fn everything(ns: &str) -> Vec<Value> {
    let s = Settings {
        artifacts_proxy_enabled: true,
        ..Settings::default()
    };
    let mut all = secret_only(ns);
    all.extend(pipeline_artifacts::desired::config_objects(ns, &s));
    all
}

fn settings_of(c: &Case) -> Settings {
    Settings {
        frontend_image: c.image.into(),
        frontend_tag: c.tag.into(),
        disable_istio_sidecar: c.disable_istio,
        artifacts_proxy_enabled: parse_flag(c.proxy),
        artifact_retention_days: parse_retention_days(c.retention).expect("valid days"),
        ..Settings::default()
    }
}

const ENABLED: &str = "pipelines.kubeflow.org/enabled";

fn cases() -> Vec<Case> {
    let on = json!({ENABLED: "true"});
    let base = Case {
        name: "",
        namespace: "kubeflow-user-example-com",
        labels: on.clone(),
        proxy: "false",
        retention: "-1",
        disable_istio: false,
        image: "ghcr.io/kubeflow/kfp-frontend",
        tag: "2.5.0",
        attached: nothing,
    };
    vec![
        Case {
            name: "fresh namespace, defaults",
            ..base
        },
        Case {
            name: "artifact proxy on, istio sidecar off, own image",
            namespace: "team-1",
            labels: on.clone(),
            proxy: "True",
            disable_istio: true,
            image: "frontend-image",
            tag: "somehash",
            ..base_with(nothing)
        },
        Case {
            name: "proxy on, istio sidecar left on",
            namespace: "ns-x",
            labels: on.clone(),
            proxy: "true",
            ..base_with(nothing)
        },
        Case {
            name: "existing secret is reused, all attached: ready",
            namespace: "alice",
            labels: on.clone(),
            proxy: "true",
            attached: everything,
            ..base_with(nothing)
        },
        Case {
            name: "existing secret, proxy off but proxy objects attached: not ready",
            namespace: "bob",
            labels: on.clone(),
            attached: everything,
            ..base_with(nothing)
        },
        Case {
            name: "only the secret attached",
            namespace: "carol",
            labels: on.clone(),
            attached: secret_only,
            ..base_with(nothing)
        },
        Case {
            name: "retention 7 days writes the lifecycle rule",
            namespace: "dave",
            labels: on.clone(),
            retention: "7",
            ..base_with(nothing)
        },
        Case {
            name: "retention 0 removes it",
            namespace: "erin",
            labels: on.clone(),
            retention: "0",
            ..base_with(nothing)
        },
        Case {
            name: "not labelled",
            namespace: "plain",
            labels: json!({"other": "true"}),
            ..base_with(nothing)
        },
        Case {
            name: "label not exactly \"true\"",
            namespace: "shouty",
            labels: json!({ENABLED: "True"}),
            ..base_with(nothing)
        },
    ]
}

fn base_with(attached: fn(&str) -> Vec<Value>) -> Case {
    Case {
        name: "",
        namespace: "kubeflow-user-example-com",
        labels: json!({ENABLED: "true"}),
        proxy: "false",
        retention: "-1",
        disable_istio: false,
        image: "ghcr.io/kubeflow/kfp-frontend",
        tag: "2.5.0",
        attached,
    }
}

#[test]
fn desired_objects_equal_sync_py_output() {
    let test = "desired_objects_equal_sync_py_output";
    let cases = cases();
    let key = Credentials::new("KEYID0123456789", "s3cr3t/with+chars=");
    let inputs: Vec<Value> = cases
        .iter()
        .map(|c| {
            let attachments = if (c.attached)(c.namespace).is_empty() { empty_attachments() } else { observed(&(c.attached)(c.namespace)) };
            json!({
                "settings": {
                    "frontend_image": c.image, "frontend_tag": c.tag, "disable_istio_sidecar": c.disable_istio,
                    "artifacts_proxy_enabled": c.proxy, "artifact_retention_days": c.retention,
                },
                "request": {"object": {"metadata": {"name": c.namespace, "labels": c.labels}}, "attachments": attachments},
                "key": {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key.expose()},
            })
        })
        .collect();
    let Some(results) = run_oracle(test, inputs.clone()) else {
        return;
    };
    assert_eq!(results.len(), cases.len());
    for ((case, input), result) in cases.iter().zip(&inputs).zip(&results) {
        let s = settings_of(case);
        let req = &input["request"];
        let ours = respond(&req["object"], &req["attachments"], &s, Some(&key)).expect("respond");
        // Compare without printing secrets: the Secret's data is checked separately.
        if ours != result["response"] {
            let redact = |v: &Value| {
                let mut v = v.clone();
                if let Some(list) = v["attachments"].as_array_mut() {
                    for o in list.iter_mut().filter(|o| o["kind"] == "Secret") {
                        o["data"] = json!("<redacted>");
                    }
                }
                serde_json::to_string_pretty(&v).unwrap_or_default()
            };
            panic!(
                "case {:?}: ours\n{}\nsync.py\n{}",
                case.name,
                redact(&ours),
                redact(&result["response"])
            );
        }
        // The IAM and S3 calls sync.py made, compared with what the store sends.
        let calls = result["calls"].as_array().expect("calls");
        let created = calls.iter().any(|c| c[0] == "create_access_key");
        let issued = ours["attachments"]
            .as_array()
            .is_some_and(|a| a.first().is_some_and(|o| o["kind"] == "Secret"));
        assert_eq!(
            created, issued,
            "case {:?}: key issued iff sync.py created one",
            case.name
        );
        if created {
            let put = calls
                .iter()
                .find(|c| c[0] == "put_user_policy")
                .expect("policy written");
            assert_eq!(put[1]["UserName"], case.namespace);
            assert_eq!(put[1]["PolicyName"], policy_name(case.namespace));
            assert_eq!(
                put[1]["PolicyDocument"],
                policy_document(&s.bucket, case.namespace),
                "case {:?}",
                case.name
            );
            let lifecycle = calls
                .iter()
                .find(|c| c[0] == "put_bucket_lifecycle_configuration");
            if s.artifact_retention_days > 0 {
                let lc = lifecycle.expect("lifecycle written");
                assert_eq!(lc[1]["Bucket"], s.bucket);
                assert_eq!(
                    lc[1]["LifecycleConfiguration"],
                    json!({"Rules": [{"Status": "Enabled", "Filter": {"Prefix": LIFECYCLE_PREFIX},
                        "Expiration": {"Days": s.artifact_retention_days}, "ID": LIFECYCLE_RULE_ID}]})
                );
            } else {
                assert!(
                    lifecycle.is_none(),
                    "case {:?}: no lifecycle rule when days <= 0",
                    case.name
                );
            }
        }
    }
}

#[test]
fn a_configured_label_replaces_the_upstream_one() {
    let s = Settings {
        enabled_label: "example.com/artifacts".into(),
        ..Settings::default()
    };
    let key = Credentials::new("K", "S");
    let custom = json!({"metadata": {"name": "n", "labels": {"example.com/artifacts": "true"}}});
    let upstream = json!({"metadata": {"name": "n", "labels": {ENABLED: "true"}}});
    let on = respond(&custom, &empty_attachments(), &s, Some(&key)).unwrap();
    assert_eq!(
        on["attachments"].as_array().map(Vec::len),
        Some(4),
        "Secret and three ConfigMaps"
    );
    let off = respond(&upstream, &empty_attachments(), &s, Some(&key)).unwrap();
    assert_eq!(off, json!({"status": {}, "attachments": []}));
}
