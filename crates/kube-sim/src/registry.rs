//! Which resources the simulated API server serves: a fixed table of
//! built-in kinds plus whatever applied CustomResourceDefinitions register.

use serde_json::{Value, json};
use std::cmp::Ordering;

/// (group, resource) — the storage identity of a resource, independent of version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    /// `deployments.apps`, or `configmaps` for the core group — how the API server names it in errors.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Where a CRD-served kind takes its schema and printer columns from.
#[derive(Clone, Debug)]
pub struct CrdVersion {
    pub name: String,
    pub schema: Option<Value>,
    pub printer_columns: Vec<Value>,
    pub selectable_fields: Vec<String>,
    pub status_subresource: bool,
    /// The scale subresource's (specReplicasPath, statusReplicasPath, labelSelectorPath).
    pub scale: Option<ScalePaths>,
}

/// JSON paths (`.spec.replicas`) the scale subresource reads and writes.
#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec: String,
    pub status: String,
    pub selector: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, highest priority first.
    pub versions: Vec<String>,
    pub storage_version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// The API server sets and bumps metadata.generation for this kind.
    pub generation: bool,
    /// PUT of a missing object creates it (Lease, Event, Endpoints).
    pub create_on_update: bool,
    /// Set for kinds registered by a CustomResourceDefinition.
    pub crd: Option<Vec<CrdVersion>>,
    /// Create-only review kinds (access reviews, token reviews): answered, never stored.
    pub review: bool,
    /// Served from another resource's storage, converted (events.k8s.io Events are core Events).
    pub view_of: Option<GroupResource>,
}

impl ResourceType {
    pub fn gr(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    /// Where the objects live in the store.
    pub fn store_gr(&self) -> GroupResource {
        self.view_of.clone().unwrap_or_else(|| self.gr())
    }

    /// The apiVersion objects are stored with.
    pub fn stored_api_version(&self) -> String {
        match &self.view_of {
            Some(_) => "v1".into(),
            None => self.api_version(&self.storage_version),
        }
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    pub fn is_crd(&self) -> bool {
        self.crd.is_some()
    }

    pub fn crd_version(&self, version: &str) -> Option<&CrdVersion> {
        self.crd.as_ref()?.iter().find(|v| v.name == version)
    }

    pub fn status_for(&self, version: &str) -> bool {
        match self.crd_version(version) {
            Some(v) => v.status_subresource,
            None => self.status_subresource,
        }
    }

    /// Where the scale subresource reads and writes, for kinds that have one.
    pub fn scale_paths(&self, version: &str) -> Option<ScalePaths> {
        match self.crd_version(version) {
            Some(v) => v.scale.clone(),
            None if self.group == "apps"
                && matches!(self.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") =>
            {
                Some(ScalePaths {
                    spec: ".spec.replicas".into(),
                    status: ".status.replicas".into(),
                    selector: Some(".spec.selector".into()),
                })
            }
            None => None,
        }
    }

    /// Field paths a CRD version declares selectable (`spec.color`).
    pub fn selectable_fields(&self, version: &str) -> Vec<String> {
        self.crd_version(version)
            .map(|v| v.selectable_fields.clone())
            .unwrap_or_default()
    }

    /// The version's openAPIV3Schema, for CRD kinds.
    pub fn schema(&self, version: &str) -> Option<&Value> {
        self.crd_version(version)?.schema.as_ref()
    }
}

/// One built-in kind: (group, version, kind, plural, namespaced, shortNames,
/// status subresource, sets generation, categories).
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
    &'static [&'static str],
);

const ALL: &[&str] = &["all"];
const EXT: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];

/// Built-in kinds: the ones kflite and the Kubeflow manifests touch, and the
/// everyday ones kubectl users expect.
static BUILTINS: &[Builtin] = &[
    (
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        true,
        false,
        NONE,
    ),
    (
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        false,
        false,
        NONE,
    ),
    ("", "v1", "Secret", "secrets", true, &[], false, false, NONE),
    ("", "v1", "Service", "services", true, &["svc"], true, false, ALL),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
        false,
        NONE,
    ),
    ("", "v1", "Pod", "pods", true, &["po"], true, true, ALL),
    ("", "v1", "Event", "events", true, &["ev"], false, false, NONE),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        true,
        false,
        NONE,
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
        true,
        false,
        NONE,
    ),
    ("", "v1", "Node", "nodes", false, &["no"], true, false, NONE),
    (
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        &["ep"],
        false,
        false,
        NONE,
    ),
    (
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
        false,
        false,
        NONE,
    ),
    (
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
        true,
        false,
        NONE,
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        true,
        true,
        ALL,
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        true,
        true,
        ALL,
    ),
    (
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        true,
        true,
        ALL,
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        true,
        true,
        ALL,
    ),
    ("batch", "v1", "Job", "jobs", true, &[], true, true, ALL),
    (
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["cj"],
        true,
        true,
        ALL,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        false,
        true,
        NONE,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        true,
        true,
        NONE,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
        false,
        NONE,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
        true,
        EXT,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        &[],
        false,
        true,
        EXT,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        &[],
        false,
        true,
        EXT,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
        &[],
        true,
        true,
        EXT,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
        &[],
        false,
        true,
        EXT,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
        false,
        false,
        NONE,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        true,
        true,
        NONE,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
        false,
        false,
        NONE,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        true,
        false,
        ALL,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        false,
        false,
        NONE,
    ),
    // A view of core/v1 Events, converted field by field (see store::event_view).
    (
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        false,
        false,
        NONE,
    ),
];

/// Create-only kinds kube-sim answers without storing: (group, kind, plural, namespaced).
static REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
    ),
    (
        "authorization.k8s.io",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
    ),
    ("authentication.k8s.io", "TokenReview", "tokenreviews", false),
    (
        "authentication.k8s.io",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
    ),
];

/// All served resource types.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let types = BUILTINS
            .iter()
            .map(
                |&(group, version, kind, plural, namespaced, short, status, generation, categories)| {
                    ResourceType {
                        group: group.into(),
                        versions: vec![version.into()],
                        storage_version: version.into(),
                        kind: kind.into(),
                        list_kind: format!("{kind}List"),
                        plural: plural.into(),
                        singular: kind.to_ascii_lowercase(),
                        short_names: short.iter().map(|s| s.to_string()).collect(),
                        categories: categories.iter().map(|s| s.to_string()).collect(),
                        namespaced,
                        status_subresource: status,
                        generation,
                        create_on_update: matches!(kind, "Lease" | "Event" | "Endpoints"),
                        crd: None,
                        review: false,
                        view_of: (group == "events.k8s.io").then(|| GroupResource {
                            group: String::new(),
                            resource: "events".into(),
                        }),
                    }
                },
            )
            .chain(
                REVIEWS
                    .iter()
                    .map(|(group, kind, plural, namespaced)| ResourceType {
                        group: (*group).into(),
                        versions: vec!["v1".into()],
                        storage_version: "v1".into(),
                        kind: (*kind).into(),
                        list_kind: format!("{kind}List"),
                        plural: (*plural).into(),
                        singular: kind.to_ascii_lowercase(),
                        short_names: Vec::new(),
                        categories: Vec::new(),
                        namespaced: *namespaced,
                        status_subresource: false,
                        generation: false,
                        create_on_update: false,
                        crd: None,
                        review: true,
                        view_of: None,
                    }),
            )
            .collect();
        Registry { types }
    }

    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at group/version under this plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
    }

    pub fn by_gr(&self, gr: &GroupResource) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == gr.group && t.plural == gr.resource)
    }

    /// Register (or re-register) the kind a CRD defines. Returns an error
    /// message for CRDs the API server would reject.
    pub fn register_crd(&mut self, crd: &Value) -> Result<GroupResource, String> {
        let t = crd_type(crd)?;
        let gr = t.gr();
        if let Some(existing) = self.types.iter().position(|x| x.gr() == gr) {
            if self.types[existing].crd.is_none() {
                return Err(format!("{} is a built-in resource", gr.qualified()));
            }
            self.types[existing] = t;
        } else {
            self.types.push(t);
        }
        Ok(gr)
    }

    pub fn unregister(&mut self, gr: &GroupResource) {
        self.types.retain(|t| !(t.crd.is_some() && &t.gr() == gr));
    }

    /// Groups with their served versions, highest-priority version first;
    /// core group first, then built-ins in table order, then CRD groups sorted.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut crd_groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            let target = if t.is_crd() { &mut crd_groups } else { &mut out };
            match target.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    for v in &t.versions {
                        if !vs.contains(v) {
                            vs.push(v.clone());
                        }
                    }
                }
                None => target.push((t.group.clone(), t.versions.clone())),
            }
        }
        crd_groups.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(crd_groups);
        for (_, vs) in &mut out {
            vs.sort_by(|a, b| compare_versions(a, b));
        }
        out
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Build the served type from a CRD object (apiextensions.k8s.io/v1).
fn crd_type(crd: &Value) -> Result<ResourceType, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural: Required value")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind: Required value")?;
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .ok_or("spec.scope: Required value")?;
    let namespaced = match scope {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions: Required value")?;
    if versions.is_empty() {
        return Err(
            "spec.versions: Invalid value: must have exactly one version marked as storage version".into(),
        );
    }
    let mut served = Vec::new();
    let mut storage = None;
    let mut crd_versions = Vec::new();
    for v in versions {
        let vname = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name: Required value")?;
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            if storage.is_some() {
                return Err(
                    "spec.versions: Invalid value: must have exactly one version marked as storage version"
                        .into(),
                );
            }
            storage = Some(vname.to_string());
        }
        if v.get("served").and_then(Value::as_bool) == Some(true) {
            served.push(vname.to_string());
        }
        crd_versions.push(CrdVersion {
            name: vname.to_string(),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                        .map(|p| p.trim_start_matches('.').to_string())
                        .collect()
                })
                .unwrap_or_default(),
            status_subresource: v.pointer("/subresources/status").is_some(),
            scale: v.pointer("/subresources/scale").map(|sc| ScalePaths {
                spec: sc
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status: sc
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_string(),
                selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
        });
    }
    let storage = storage
        .ok_or("spec.versions: Invalid value: must have exactly one version marked as storage version")?;
    served.sort_by(|a, b| compare_versions(a, b));
    let status_any = crd_versions.iter().any(|v| v.status_subresource);
    Ok(ResourceType {
        group: group.into(),
        versions: served,
        storage_version: storage,
        kind: kind.into(),
        list_kind: names
            .get("listKind")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List")),
        plural: plural.into(),
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_ascii_lowercase()),
        short_names: str_list(names.get("shortNames")),
        categories: str_list(names.get("categories")),
        namespaced,
        status_subresource: status_any,
        generation: true,
        create_on_update: false,
        crd: Some(crd_versions),
        review: false,
        view_of: None,
    })
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first,
/// then non-conforming names alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, level, n.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn verbs(t: &ResourceType) -> Value {
    if t.review {
        return json!(["create"]);
    }
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
}

/// Legacy discovery: the APIResourceList for one group/version.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = reg
        .all()
        .iter()
        .filter(|t| t.group == group && t.serves(version))
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in types {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": verbs(t),
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_for(version) {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if t.scale_paths(version).is_some() {
            resources.push(json!({
                "name": format!("{}/scale", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        "resources": resources,
    }))
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

/// Legacy discovery: /apis.
pub fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy discovery: /apis/<group>.
pub fn group(reg: &Registry, group: &str) -> Option<Value> {
    let groups = reg.groups();
    let (_, vs) = groups.iter().find(|(g, _)| g == group && !g.is_empty())?;
    let mut v = group_json(group, vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// Aggregated discovery (apidiscovery.k8s.io/v2): core group only for
/// `/api`, every named group for `/apis`.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let mut items = Vec::new();
    for (group, versions) in reg.groups() {
        if group.is_empty() != core {
            continue;
        }
        let mut vitems = Vec::new();
        for version in &versions {
            let mut resources = Vec::new();
            for t in reg.all().iter().filter(|t| t.group == group && t.serves(version)) {
                let mut r = json!({
                    "resource": t.plural,
                    "responseKind": {"group": t.group, "version": version, "kind": t.kind},
                    "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": t.singular,
                    "verbs": verbs(t),
                });
                if !t.short_names.is_empty() {
                    r["shortNames"] = json!(t.short_names);
                }
                if !t.categories.is_empty() {
                    r["categories"] = json!(t.categories);
                }
                let mut subs = Vec::new();
                if t.status_for(version) {
                    subs.push(json!({
                        "subresource": "status",
                        "responseKind": {"group": t.group, "version": version, "kind": t.kind},
                        "verbs": ["get", "patch", "update"],
                    }));
                }
                if t.scale_paths(version).is_some() {
                    subs.push(json!({
                        "subresource": "scale",
                        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                        "verbs": ["get", "patch", "update"],
                    }));
                }
                if !subs.is_empty() {
                    r["subresources"] = Value::Array(subs);
                }
                resources.push(r);
            }
            resources.sort_by(|a, b| a["resource"].as_str().cmp(&b["resource"].as_str()));
            vitems.push(json!({"version": version, "resources": resources, "freshness": "Current"}));
        }
        items.push(json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": vitems}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_matches_kubernetes_order() {
        let mut v = vec![
            "v11alpha2",
            "foo1",
            "v10beta3",
            "v2",
            "v1",
            "v12alpha1",
            "v3beta1",
            "foo10",
            "v10",
            "v11beta2",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        // The order given in the CRD versioning documentation.
        assert_eq!(
            v,
            vec![
                "v10",
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v12alpha1",
                "v11alpha2",
                "foo1",
                "foo10"
            ]
        );
    }
}
