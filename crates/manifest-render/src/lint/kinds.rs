//! Rule `unknown-kind`, and what lint knows about kinds: built-in ones
//! (from the OpenAPI schema the renderer carries, plus kinds Kubernetes
//! added since), and the CRDs in the output.

use std::collections::HashMap;

use super::{Context, Finding, Rule, str_at};
use crate::builtin_data::SCHEMA_KINDS;
use crate::resource::{Gvk, Resource};
use crate::yaml::Value;

/// Kinds Kubernetes added after v1.21 (the schema's version), with whether
/// they are namespaced.
const NEWER_BUILTINS: &[(&str, &str, bool)] = &[
    ("resource.k8s.io", "DeviceClass", false),
    ("resource.k8s.io", "ResourceClaim", true),
    ("resource.k8s.io", "ResourceClaimTemplate", true),
    ("resource.k8s.io", "ResourceSlice", false),
    ("resource.k8s.io", "DeviceTaintRule", false),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy", false),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        false,
    ),
    ("storage.k8s.io", "VolumeAttributesClass", false),
    ("networking.k8s.io", "IPAddress", false),
    ("networking.k8s.io", "ServiceCIDR", false),
    ("certificates.k8s.io", "ClusterTrustBundle", false),
    ("coordination.k8s.io", "LeaseCandidate", true),
    ("storagemigration.k8s.io", "StorageVersionMigration", false),
    ("internal.apiserver.k8s.io", "StorageVersion", false),
];

/// API versions of built-in kinds that Kubernetes no longer serves:
/// (group, version, kind or `*`, the release that removed it). Manifests
/// written for old clusters still carry them; the apply fails.
const REMOVED: &[(&str, &str, &str, &str)] = &[
    ("extensions", "v1beta1", "*", "1.22"),
    ("apps", "v1beta1", "*", "1.16"),
    ("apps", "v1beta2", "*", "1.16"),
    ("batch", "v1beta1", "*", "1.25"),
    ("batch", "v2alpha1", "*", "1.21"),
    ("policy", "v1beta1", "*", "1.25"),
    ("policy", "*", "PodSecurityPolicy", "1.25"),
    ("autoscaling", "v2beta1", "*", "1.25"),
    ("autoscaling", "v2beta2", "*", "1.26"),
    ("networking.k8s.io", "v1beta1", "Ingress", "1.22"),
    ("networking.k8s.io", "v1beta1", "IngressClass", "1.22"),
    ("rbac.authorization.k8s.io", "v1beta1", "*", "1.22"),
    ("rbac.authorization.k8s.io", "v1alpha1", "*", "1.22"),
    ("apiextensions.k8s.io", "v1beta1", "*", "1.22"),
    ("apiregistration.k8s.io", "v1beta1", "*", "1.22"),
    (
        "admissionregistration.k8s.io",
        "v1beta1",
        "MutatingWebhookConfiguration",
        "1.22",
    ),
    (
        "admissionregistration.k8s.io",
        "v1beta1",
        "ValidatingWebhookConfiguration",
        "1.22",
    ),
    ("storage.k8s.io", "v1beta1", "CSIDriver", "1.22"),
    ("storage.k8s.io", "v1beta1", "CSINode", "1.22"),
    ("storage.k8s.io", "v1beta1", "StorageClass", "1.22"),
    ("storage.k8s.io", "v1beta1", "VolumeAttachment", "1.22"),
    ("storage.k8s.io", "v1beta1", "CSIStorageCapacity", "1.27"),
    ("scheduling.k8s.io", "v1beta1", "*", "1.22"),
    ("scheduling.k8s.io", "v1alpha1", "*", "1.22"),
    ("coordination.k8s.io", "v1beta1", "Lease", "1.22"),
    (
        "certificates.k8s.io",
        "v1beta1",
        "CertificateSigningRequest",
        "1.22",
    ),
    ("discovery.k8s.io", "v1beta1", "*", "1.25"),
    ("events.k8s.io", "v1beta1", "*", "1.25"),
    ("node.k8s.io", "v1beta1", "*", "1.25"),
    ("flowcontrol.apiserver.k8s.io", "v1beta1", "*", "1.26"),
    ("flowcontrol.apiserver.k8s.io", "v1beta2", "*", "1.29"),
    ("flowcontrol.apiserver.k8s.io", "v1beta3", "*", "1.32"),
];

fn removed_in(gvk: &Gvk) -> Option<&'static str> {
    REMOVED
        .iter()
        .find(|(g, v, k, _)| {
            *g == gvk.group && (*v == "*" || *v == gvk.version) && (*k == "*" || *k == gvk.kind)
        })
        .map(|(_, _, _, release)| *release)
}

/// Groups served by Kubernetes itself (the schema also knows a few others').
fn is_kubernetes_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps" | "batch" | "autoscaling" | "policy" | "extensions"
    ) || group.ends_with(".k8s.io")
}

/// A CRD of the output.
struct Crd {
    name: String,
    namespaced: bool,
    served: Vec<String>,
    /// Accepts any fields and has neither status nor printer columns: a
    /// placeholder that lets watchers start, with nothing acting on objects.
    stub: bool,
}

pub(crate) struct Catalog {
    /// Built-in kinds: whether namespaced.
    builtin: HashMap<(String, String), bool>,
    /// Other kinds whose scope is known: whether namespaced.
    scopes: HashMap<(String, String), bool>,
    crds: HashMap<(String, String), Crd>,
}

impl Catalog {
    pub fn new(objects: &[Resource]) -> Self {
        let mut builtin = HashMap::new();
        let mut scopes = HashMap::new();
        for (g, _, k, _, scope) in SCHEMA_KINDS {
            if *scope != 0 && is_kubernetes_group(g) {
                builtin.insert((g.to_string(), k.to_string()), *scope == 1);
            }
        }
        // Not built in, but their scope is known (for namespace checks).
        for (g, k) in [
            ("cert-manager.io", "ClusterIssuer"),
            ("gateway.networking.k8s.io", "GatewayClass"),
        ] {
            scopes.insert((g.to_string(), k.to_string()), false);
        }
        for (g, k, namespaced) in NEWER_BUILTINS {
            builtin.insert((g.to_string(), k.to_string()), *namespaced);
        }
        let mut crds = HashMap::new();
        for r in objects {
            let gvk = r.gvk();
            if gvk.group == "apiextensions.k8s.io" && gvk.kind == "CustomResourceDefinition" {
                let spec = r.obj.get("spec");
                let group = spec.map_or("", |s| str_at(s, &["group"]));
                let kind = spec.map_or("", |s| str_at(s, &["names", "kind"]));
                if !kind.is_empty() {
                    crds.insert((group.to_string(), kind.to_string()), crd_info(r));
                }
            }
        }
        Catalog {
            builtin,
            scopes,
            crds,
        }
    }

    pub fn is_namespaced(&self, gvk: &Gvk) -> bool {
        let key = (gvk.group.clone(), gvk.kind.clone());
        if let Some(crd) = self.crds.get(&key) {
            return crd.namespaced;
        }
        self.builtin
            .get(&key)
            .or_else(|| self.scopes.get(&key))
            .copied()
            .unwrap_or(true)
    }
}

fn crd_info(r: &Resource) -> Crd {
    let spec = r.obj.get("spec").cloned().unwrap_or(Value::Null);
    let namespaced = str_at(&spec, &["scope"]) != "Cluster";
    let mut served = Vec::new();
    // Every schema must say nothing, and no version may have status or columns.
    let mut stub = true;
    let empty_schema = |s: Option<&Value>| match s.and_then(Value::as_map) {
        None => true,
        Some(m) => {
            m.get("properties")
                .is_none_or(|p| p.as_map().is_none_or(|p| p.is_empty()))
                && m.iter().all(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "type" | "x-kubernetes-preserve-unknown-fields" | "description"
                    )
                })
        }
    };
    for v in spec
        .get("versions")
        .and_then(Value::as_seq)
        .map_or(&[][..], Vec::as_slice)
    {
        if v.get("served").is_none_or(|s| !matches!(s, Value::Bool(false))) {
            served.push(str_at(v, &["name"]).to_string());
        }
        stub &= empty_schema(v.get_path(&["schema", "openAPIV3Schema"]))
            && v.get("subresources").is_none()
            && v.get("additionalPrinterColumns").is_none();
    }
    // apiextensions/v1beta1 spellings.
    if let Some(v) = spec.get("version").and_then(Value::as_str)
        && !served.iter().any(|s| s == v)
    {
        served.push(v.to_string());
    }
    if spec.get("validation").is_some()
        || spec.get("subresources").is_some()
        || spec.get("additionalPrinterColumns").is_some()
    {
        stub &= empty_schema(spec.get_path(&["validation", "openAPIV3Schema"]))
            && spec.get("subresources").is_none()
            && spec.get("additionalPrinterColumns").is_none();
    }
    Crd {
        name: r.name().to_string(),
        namespaced,
        served,
        stub,
    }
}

pub(super) fn check(cx: &Context, r: &Resource, out: &mut Vec<Finding>) {
    let gvk = r.gvk();
    if cx
        .config
        .cluster_provided
        .iter()
        .any(|p| p.matches(&gvk.group, &gvk.kind))
    {
        return;
    }
    let key = (gvk.group.clone(), gvk.kind.clone());
    let message = match cx.kinds.crds.get(&key) {
        Some(crd) if crd.stub => format!(
            "the only definition of {}/{} is the stub CRD {} (any fields, no status, no printer columns): the API server stores the object but nothing in the cluster acts on it; delete the object, or list the kind as cluster-provided if something does serve it",
            gvk.group, gvk.kind, crd.name
        ),
        Some(crd) if !crd.served.contains(&gvk.version) => format!(
            "CRD {} does not serve version {:?} (it serves {})",
            crd.name,
            gvk.version,
            if crd.served.is_empty() {
                "none".to_string()
            } else {
                crd.served.join(", ")
            }
        ),
        Some(_) => return,
        None if cx.kinds.builtin.contains_key(&key) => match removed_in(&gvk) {
            Some(release) => format!(
                "{} {} is no longer served: Kubernetes {release} removed it; use the current version of the kind",
                gvk.api_version(),
                gvk.kind
            ),
            None => return,
        },
        None if is_kubernetes_group(&gvk.group) && gvk.group.is_empty() => {
            format!("{} is not a kind of the core API group", gvk.kind)
        }
        None => format!(
            "no CRD in the output defines {}/{}, it is not a built-in kind, and it is not a cluster-provided kind (--cluster-provided, or clusterProvided in the lint configuration): applying it fails with \"no matches for kind\"",
            gvk.group, gvk.kind
        ),
    };
    out.push(cx.finding(Rule::UnknownKind, r, Some("kind".into()), message));
}
