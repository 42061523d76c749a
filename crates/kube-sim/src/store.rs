//! The object store: every object by (group, resource, namespace, name),
//! one global resourceVersion counter, a bounded event history for watches,
//! and the few controllers whose effects clients rely on (namespace
//! deletion, CRD establishment and cleanup, finalizers, owner-reference
//! garbage collection).

use crate::patch;
use crate::registry::{GroupResource, Registry, ResourceType};
use crate::schema::{self, Schema};
use crate::select::{FieldSelector, LabelSelector};
use crate::ssa::{self, Context, Part};
use crate::status::{ApiError, ApiResult};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

pub type Key = (String, String);
pub type EventReceiver = broadcast::Receiver<Arc<Event>>;
/// One resource's objects by (namespace, name), in etcd key order.
type Objects = BTreeMap<Key, Arc<Value>>;

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub namespace: String,
    pub etype: &'static str,
    pub object: Arc<Value>,
    /// The object before a MODIFIED event (for selector transitions).
    pub old: Option<Arc<Value>>,
}

pub struct Store {
    pub reg: Registry,
    pub rv: u64,
    objects: BTreeMap<GroupResource, Objects>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Watches and continue tokens from a resourceVersion below this are expired.
    pub floor: u64,
    pub tx: broadcast::Sender<Arc<Event>>,
    uid_counter: u64,
    name_counter: u64,
    ip_counter: u32,
    /// Act as the service-account and root-CA controllers in new namespaces.
    namespace_defaults: bool,
}

/// How a request changes an object.
pub enum Change<'a> {
    Replace(Value),
    MergePatch(&'a Value),
    JsonPatch(&'a Value),
    StrategicMerge(&'a Value),
    Apply { body: &'a Value, force: bool },
}

/// What to do with fields a custom resource's schema does not declare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

#[derive(Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub manager: String,
    pub validation: FieldValidation,
    /// Warnings for the response's `Warning` headers.
    pub warnings: std::cell::RefCell<Vec<String>>,
}

#[derive(Default)]
pub struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

pub struct ListResult {
    pub items: Vec<Arc<Value>>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

#[derive(Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub propagation: Option<String>,
}

/// What kube-sim publishes as `kube-root-ca.crt`: a placeholder, not a
/// parseable certificate (kube-sim serves no TLS).
const KUBE_SIM_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrdWJlLXNp\nbS1zZXJ2ZXItY2EtcGxhY2Vob2xkZXIwHhcNMjYwMTAxMDAwMDAwWhcNMzYwMTAx\n-----END CERTIFICATE-----\n";

/// The finalizer that holds an owner during foreground deletion.
const FOREGROUND: &str = "foregroundDeletion";

pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable_meta(),
    }
}

#[allow(clippy::panic)]
fn unreachable_meta() -> ! {
    // metadata was set to an object on the line before.
    panic!("metadata is an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
    let mut f: Vec<String> = meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    // Namespaces are held by spec.finalizers as well.
    if obj.get("kind").and_then(Value::as_str) == Some("Namespace")
        && let Some(a) = obj.pointer("/spec/finalizers").and_then(Value::as_array)
    {
        f.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)));
    }
    f
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn validate_name(t: &ResourceType, name: &str) -> Option<String> {
    if t.kind == "Namespace" {
        return (!is_dns_label(name)).then(|| format!("Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
    }
    if t.group == "rbac.authorization.k8s.io" {
        // RBAC names are path segments (`system:controller:x` is valid).
        let bad = name == "." || name == ".." || name.contains('/') || name.contains('%');
        return bad.then(|| {
            format!("Invalid value: \"{name}\": may not contain '/' or '%' and may not be '.' or '..'")
        });
    }
    (!is_dns_subdomain(name)).then(|| format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
}

fn validate_labels(obj: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(labels) = meta(obj).and_then(|m| m.get("labels")) else {
        return out;
    };
    let Some(labels) = labels.as_object() else {
        out.push((
            "metadata.labels".into(),
            "Invalid value: must be a map of strings".into(),
        ));
        return out;
    };
    for (k, v) in labels {
        let Some(v) = v.as_str() else {
            out.push((
                format!("metadata.labels: Invalid value: \"{k}\""),
                "must be a string".into(),
            ));
            continue;
        };
        let ok = v.len() <= 63
            && (v.is_empty()
                || (v
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                    && v.as_bytes()[0].is_ascii_alphanumeric()
                    && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric()));
        if !ok {
            out.push(("metadata.labels".into(), format!("Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")));
        }
    }
    out
}

/// Everything but metadata and status: what bumps metadata.generation.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

impl Store {
    pub fn new(history_limit: usize, namespace_defaults: bool) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = Store {
            reg: Registry::with_builtins(),
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 0,
            tx,
            uid_counter: 0,
            name_counter: 0,
            ip_counter: 0,
            namespace_defaults,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let t = s.reg.lookup("", "v1", "namespaces").cloned();
            if let Some(t) = t {
                let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let opts = WriteOpts {
                    manager: "kube-apiserver".into(),
                    ..Default::default()
                };
                if let Err(e) = s.create(&t, "v1", "", body, &opts) {
                    tracing::error!("creating namespace {ns}: {e}");
                }
            }
        }
        s
    }

    fn uid(&mut self) -> String {
        self.uid_counter += 1;
        let mut h = Sha256::new();
        h.update(self.uid_counter.to_le_bytes());
        h.update(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes());
        let d = h.finalize();
        let x: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &x[0..8],
            &x[8..12],
            &x[13..16],
            &x[17..20],
            &x[20..32]
        )
    }

    fn generated_suffix(&mut self) -> String {
        // The API server's alphabet for generateName suffixes.
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.name_counter += 1;
        let mut h = Sha256::new();
        h.update(self.name_counter.to_le_bytes());
        h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
        h.finalize()
            .iter()
            .take(5)
            .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
            .collect()
    }

    pub fn get_obj(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects.get(gr)?.get(&(ns.to_string(), name.to_string()))
    }

    pub fn get(&self, t: &ResourceType, ns: &str, name: &str) -> ApiResult<Arc<Value>> {
        self.get_obj(&t.store_gr(), ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.gr(), name))
    }

    /// Every stored object (for tests and the admin endpoint).
    pub fn all_objects(&self) -> Vec<Arc<Value>> {
        self.objects.values().flat_map(|m| m.values().cloned()).collect()
    }

    fn emit(
        &mut self,
        gr: &GroupResource,
        ns: &str,
        etype: &'static str,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            gr: gr.clone(),
            namespace: ns.to_string(),
            etype,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.floor = self.floor.max(old.rv);
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Expire every resourceVersion handed out so far: watches and continue
    /// tokens from them get 410 Gone; a fresh list works.
    pub fn expire(&mut self) {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
    }

    /// Events after `rv` for a watch, or 410 when they are no longer kept.
    pub fn events_since(&self, rv: u64) -> ApiResult<(Vec<Arc<Event>>, EventReceiver)> {
        if rv < self.floor {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                self.floor + 1
            )));
        }
        let backlog = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((backlog, self.tx.subscribe()))
    }

    fn check_namespace(&self, t: &ResourceType, ns: &str) -> ApiResult<()> {
        if !t.namespaced {
            return Ok(());
        }
        let nsgr = GroupResource {
            group: String::new(),
            resource: "namespaces".into(),
        };
        match self.get_obj(&nsgr, "", ns) {
            None => Err(ApiError::not_found(&nsgr, ns)),
            Some(n) if meta(n).is_some_and(|m| m.contains_key("deletionTimestamp")) => {
                let mut e = ApiError::forbidden(format!("{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", t.gr().qualified(), "")).clone();
                e.details = Some(
                    json!({"causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                );
                Err(e)
            }
            Some(_) => Ok(()),
        }
    }

    fn schema_for<'a>(t: &'a ResourceType, version: &str) -> Schema<'a> {
        if t.is_crd() {
            Schema::crd(t.schema(version))
        } else {
            Schema::Builtin
        }
    }

    /// Set the parts of a new object the server owns.
    fn prepare_new(&mut self, t: &ResourceType, ns: &str, obj: &mut Value) {
        let uid = self.uid();
        let m = meta_mut(obj);
        if t.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if t.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        // Status is the controllers' to write; only kubelets register Nodes with theirs.
        let keeps_status = t.group.is_empty() && t.kind == "Node";
        if t.status_subresource
            && !keeps_status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        defaults(t, obj);
        if t.group.is_empty() && t.kind == "Service" {
            self.allocate_cluster_ip(obj);
        }
    }

    pub fn create(
        &mut self,
        t: &ResourceType,
        version: &str,
        ns: &str,
        mut body: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        self.check_kind(t, version, &body)?;
        if t.view_of.is_some() {
            body = event_from_view(body);
        }
        let body_ns = meta_str(&body, "namespace").unwrap_or("");
        if t.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&body, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&body, "generateName") {
                Some(g) if !g.is_empty() => {
                    name = format!("{g}{}", self.generated_suffix());
                    meta_mut(&mut body).insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &t.group,
                        &t.kind,
                        "",
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            }
        }
        self.prune_custom(t, version, &mut body, opts, false)?;
        self.validate(t, &name, &body)?;
        self.check_namespace(t, ns)?;
        let gr = t.store_gr();
        if self.get_obj(&gr, ns, &name).is_some() {
            return Err(ApiError::already_exists(&gr, &name));
        }
        self.prepare_new(t, ns, &mut body);
        if let Some(sch) = t.schema(version) {
            schema::apply_defaults(&mut body, sch);
        }
        let ctx = Context {
            manager: &opts.manager,
            api_version: &t.api_version(version),
            schema: Self::schema_for(t, version),
            part: Part::Main {
                status_subresource: t.status_for(version),
            },
            now: &now(),
        };
        ssa::record_update(&ctx, None, &mut body);
        self.finish_create(t, version, ns, &name, body, opts.dry_run)
    }

    fn validate_custom(t: &ResourceType, version: &str, name: &str, obj: &Value) -> ApiResult<()> {
        let Some(sch) = t.schema(version) else {
            return Ok(());
        };
        let causes = schema::validate(obj, sch);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&t.group, &t.kind, name, &causes))
        }
    }

    fn finish_create(
        &mut self,
        t: &ResourceType,
        version: &str,
        ns: &str,
        name: &str,
        mut body: Value,
        dry_run: bool,
    ) -> ApiResult<Arc<Value>> {
        Self::validate_custom(t, version, name, &body)?;
        body["apiVersion"] = json!(t.stored_api_version());
        body["kind"] = json!(t.kind);
        if t.kind == "CustomResourceDefinition" {
            self.establish_crd(&mut body, dry_run)?;
        }
        if dry_run {
            return Ok(Arc::new(with_version(&body, t, version)));
        }
        self.rv += 1;
        meta_mut(&mut body).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let obj = Arc::new(body);
        let gr = t.store_gr();
        self.objects
            .entry(gr.clone())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        self.emit(&gr, ns, "ADDED", obj.clone(), None);
        if t.kind == "Namespace" && t.group.is_empty() && self.namespace_defaults {
            self.populate_namespace(name);
        }
        Ok(obj)
    }

    /// What kube-controller-manager puts in every namespace: the `default`
    /// ServiceAccount and the `kube-root-ca.crt` ConfigMap.
    fn populate_namespace(&mut self, ns: &str) {
        let opts = WriteOpts {
            manager: "kube-controller-manager".into(),
            ..Default::default()
        };
        let items = [
            (
                "serviceaccounts",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            ),
            (
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}}, "data": {"ca.crt": KUBE_SIM_CA}}),
            ),
        ];
        for (plural, body) in items {
            if let Some(t) = self.reg.lookup("", "v1", plural).cloned()
                && let Err(e) = self.create(&t, "v1", ns, body, &opts)
            {
                tracing::debug!("populating namespace {ns}: {e}");
            }
        }
    }

    /// A ClusterIP from 10.96.0.0/12, as the service IP allocator hands them out.
    fn allocate_cluster_ip(&mut self, svc: &mut Value) {
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName") || spec.contains_key("clusterIP")
        {
            if let Some(ip) = spec.get("clusterIP").cloned() {
                spec.entry("clusterIPs").or_insert(json!([ip]));
            }
            return;
        }
        self.ip_counter += 1;
        let n = self.ip_counter + 1;
        let ip = format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff);
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
    }

    /// Prune what a CR's schema does not declare; Strict rejects it, Warn reports it.
    fn prune_custom(
        &self,
        t: &ResourceType,
        version: &str,
        obj: &mut Value,
        opts: &WriteOpts,
        apply: bool,
    ) -> ApiResult<()> {
        let Some(sch) = t.schema(version) else {
            return Ok(());
        };
        let dropped = schema::prune(obj, sch);
        if dropped.is_empty() {
            return Ok(());
        }
        match opts.validation {
            FieldValidation::Strict if apply => Err(ApiError::bad_request(format!(
                ".{}: field not declared in schema",
                dropped[0]
            ))),
            FieldValidation::Strict => {
                let list: Vec<String> = dropped.iter().map(|d| format!("unknown field \"{d}\"")).collect();
                Err(ApiError::bad_request(format!(
                    "{k} in version \"{version}\" cannot be handled as a {k}: strict decoding error: {}",
                    list.join(", "),
                    k = t.kind
                )))
            }
            FieldValidation::Warn => {
                opts.warnings
                    .borrow_mut()
                    .extend(dropped.iter().map(|d| format!("unknown field \"{d}\"")));
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }

    fn check_kind(&self, t: &ResourceType, version: &str, body: &Value) -> ApiResult<()> {
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && k != t.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the body ({k}) does not match the kind of the resource ({})",
                t.kind
            )));
        }
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str) {
            let (g, v) = crate::registry::split_api_version(av);
            if g != t.group || !t.serves(v) {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    t.api_version(version)
                )));
            }
        }
        Ok(())
    }

    fn validate(&self, t: &ResourceType, name: &str, body: &Value) -> ApiResult<()> {
        let mut causes = Vec::new();
        if let Some(msg) = validate_name(t, name) {
            causes.push(("metadata.name".to_string(), msg));
        }
        causes.extend(validate_labels(body));
        if t.kind == "CustomResourceDefinition"
            && let Err(msg) = Registry::default().register_crd(body)
        {
            let (f, m) = msg
                .split_once(": ")
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or(("spec".into(), msg));
            causes.push((f, m));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&t.group, &t.kind, name, &causes))
        }
    }

    /// What the CRD controllers do: accept names, mark Established, serve the kind.
    fn establish_crd(&mut self, crd: &mut Value, dry_run: bool) -> ApiResult<()> {
        if meta(crd).is_some_and(|m| m.contains_key("deletionTimestamp")) {
            return Ok(());
        }
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let mut accepted = names.clone();
        if accepted.get("singular").is_none() {
            let k = accepted
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            accepted["singular"] = json!(k);
        }
        if accepted.get("listKind").is_none() {
            let k = accepted
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            accepted["listKind"] = json!(format!("{k}List"));
        }
        let storage: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let t = now();
        let mut stored = crd
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for s in storage {
            if !stored.contains(&s) {
                stored.push(s);
            }
        }
        // Conditions that already hold keep their lastTransitionTime.
        let conditions = match crd.pointer("/status/conditions").and_then(Value::as_array) {
            Some(c) if !c.is_empty() => Value::Array(c.clone()),
            _ => json!([
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ]),
        };
        crd["status"] = json!({
            "acceptedNames": accepted,
            "conditions": conditions,
            "storedVersions": stored,
        });
        let m = meta_mut(crd);
        let fins = m.entry("finalizers").or_insert(json!([]));
        if let Some(a) = fins.as_array_mut() {
            let f = json!("customresourcecleanup.apiextensions.k8s.io");
            if !a.contains(&f) {
                a.push(f);
            }
        }
        if !dry_run {
            self.reg.register_crd(crd).map_err(|e| {
                ApiError::invalid(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    meta_str(crd, "name").unwrap_or(""),
                    &[("spec".into(), e)],
                )
            })?;
        }
        Ok(())
    }

    /// Update, patch or apply an object (or its status).
    #[allow(clippy::too_many_arguments)]
    pub fn modify(
        &mut self,
        t: &ResourceType,
        version: &str,
        ns: &str,
        name: &str,
        change: Change<'_>,
        status: bool,
        opts: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let gr = t.store_gr();
        let old = self.get_obj(&gr, ns, name).cloned();
        let schema = Self::schema_for(t, version);
        let part = if status {
            Part::Status
        } else {
            Part::Main {
                status_subresource: t.status_for(version),
            }
        };
        let api_version = t.api_version(version);
        let ts = now();
        let ctx = Context {
            manager: &opts.manager,
            api_version: &api_version,
            schema,
            part,
            now: &ts,
        };
        let Some(old) = old else {
            // Only apply (and PUT for a few kinds) creates.
            return match change {
                Change::Apply { body, .. } if !status => {
                    let mut body = body.clone();
                    self.prune_custom(t, version, &mut body, opts, true)?;
                    let body = &body;
                    self.check_kind(t, version, body)?;
                    self.check_body_name(body, name, ns, t)?;
                    self.validate(t, name, body)?;
                    self.check_namespace(t, ns)?;
                    let mut obj = ssa::apply(&ctx, &gr, name, None, body, true)?;
                    if t.view_of.is_some() {
                        obj = event_from_view(obj);
                    }
                    let m = meta_mut(&mut obj);
                    m.insert("name".into(), json!(name));
                    self.prepare_new(t, ns, &mut obj);
                    if let Some(sch) = t.schema(version) {
                        schema::apply_defaults(&mut obj, sch);
                    }
                    self.finish_create(t, version, ns, name, obj, opts.dry_run)
                }
                Change::Replace(body) if t.create_on_update && !status => {
                    self.create(t, version, ns, body, opts)
                }
                _ => Err(ApiError::not_found(&gr, name)),
            };
        };
        let old_v = with_version(&old, t, version);
        let mut new = match change {
            Change::Replace(mut body) => {
                self.prune_custom(t, version, &mut body, opts, false)?;
                self.check_kind(t, version, &body)?;
                self.check_body_name(&body, name, ns, t)?;
                let rv = meta_str(&body, "resourceVersion").unwrap_or("");
                if rv.is_empty() && t.is_crd() {
                    return Err(ApiError::invalid(
                        &t.group,
                        &t.kind,
                        name,
                        &[(
                            "metadata.resourceVersion".into(),
                            "Invalid value: 0x0: must be specified for an update".into(),
                        )],
                    ));
                }
                let mut b = body;
                ssa::record_update(&ctx, Some(&old_v), &mut b);
                b
            }
            Change::MergePatch(p) => {
                let mut b = old_v.clone();
                patch::merge_patch(&mut b, p)?;
                ssa::record_update(&ctx, Some(&old_v), &mut b);
                b
            }
            Change::JsonPatch(p) => {
                let mut b = old_v.clone();
                patch::json_patch(&mut b, p)?;
                ssa::record_update(&ctx, Some(&old_v), &mut b);
                b
            }
            Change::StrategicMerge(p) => {
                let mut b = old_v.clone();
                patch::strategic_merge(&mut b, p, schema)?;
                ssa::record_update(&ctx, Some(&old_v), &mut b);
                b
            }
            Change::Apply { body, force } => {
                let mut body = body.clone();
                self.prune_custom(t, version, &mut body, opts, true)?;
                let body = &body;
                self.check_kind(t, version, body)?;
                self.check_body_name(body, name, ns, t)?;
                ssa::apply(&ctx, &gr, name, Some(&old_v), body, force)?
            }
        };
        if t.view_of.is_some() {
            new = event_from_view(new);
        }
        // Patches may add undeclared fields too.
        self.prune_custom(t, version, &mut new, opts, false)?;
        // Optimistic concurrency: a resourceVersion in the request must be current.
        let new_rv = meta_str(&new, "resourceVersion").unwrap_or("");
        if !new_rv.is_empty() && Some(new_rv) != meta_str(&old, "resourceVersion") {
            return Err(ApiError::modified(&gr, name));
        }
        self.validate(t, name, &new)?;
        if t.group.is_empty() && t.kind == "Service" {
            // An update that leaves out the allocated IPs keeps them.
            for k in ["clusterIP", "clusterIPs"] {
                let ptr = format!("/spec/{k}");
                if new.pointer(&ptr).is_none()
                    && let (Some(v), Some(spec)) = (
                        old.pointer(&ptr).cloned(),
                        new.get_mut("spec").and_then(Value::as_object_mut),
                    )
                {
                    spec.insert(k.into(), v);
                }
            }
        }
        if !status {
            let causes = immutable_changes(t, &old_v, &new);
            if !causes.is_empty() {
                return Err(ApiError::invalid(&t.group, &t.kind, name, &causes));
            }
        }
        // Fields the server owns come from the stored object.
        let keep: &[&str] = &[
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ];
        {
            let om = meta(&old).cloned().unwrap_or_default();
            let nm = meta_mut(&mut new);
            nm.insert("name".into(), json!(name));
            if t.namespaced {
                nm.insert("namespace".into(), json!(ns));
            }
            for k in keep {
                match om.get(*k) {
                    Some(v) => nm.insert((*k).into(), v.clone()),
                    None => nm.remove(*k),
                };
            }
        }
        if status {
            // The status subresource changes status only (and its managedFields).
            let mut s = (*old).clone();
            match new.get("status") {
                Some(st) => s["status"] = st.clone(),
                None => {
                    if let Some(o) = s.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            if let Some(mf) = meta(&new).and_then(|m| m.get("managedFields")) {
                meta_mut(&mut s).insert("managedFields".into(), mf.clone());
            }
            new = s;
        } else if t.status_for(version) {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        // No new finalizers on an object being deleted.
        if meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
            let before = finalizers(&old);
            if finalizers(&new).iter().any(|f| !before.contains(f)) {
                return Err(ApiError::invalid(
                    &t.group,
                    &t.kind,
                    name,
                    &[(
                        "metadata.finalizers".into(),
                        "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                    )],
                ));
            }
        }
        // Defaults first: an apply that omits defaulted fields changes no spec.
        defaults(t, &mut new);
        if let Some(sch) = t.schema(version) {
            schema::apply_defaults(&mut new, sch);
        }
        if t.generation && spec_part(&new) != spec_part(&old_v) {
            let g = meta(&old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        new["apiVersion"] = json!(t.stored_api_version());
        new["kind"] = json!(t.kind);
        if t.kind == "CustomResourceDefinition" && !status {
            if let Some(st) = old.get("status") {
                new["status"] = st.clone();
            }
            self.establish_crd(&mut new, opts.dry_run)?;
        }
        Self::validate_custom(t, version, name, &new)?;
        // No-op writes (managedFields timestamps aside) do not bump the resourceVersion.
        if without_times(&new) == without_times(&old) {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(with_version(&new, t, version)));
        }
        let obj = self.commit_update(&gr, ns, name, new, old);
        self.reconcile();
        Ok(self.get_obj(&gr, ns, name).cloned().unwrap_or(obj))
    }

    fn check_body_name(&self, body: &Value, name: &str, ns: &str, t: &ResourceType) -> ApiResult<()> {
        if let Some(n) = meta_str(body, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if t.namespaced
            && let Some(n) = meta_str(body, "namespace")
            && !n.is_empty()
            && n != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    fn commit_update(
        &mut self,
        gr: &GroupResource,
        ns: &str,
        name: &str,
        mut new: Value,
        old: Arc<Value>,
    ) -> Arc<Value> {
        // A deleting object whose last finalizer went away is removed.
        if meta(&new).is_some_and(|m| m.contains_key("deletionTimestamp")) && finalizers(&new).is_empty() {
            return self.remove(gr, ns, name, new);
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let obj = Arc::new(new);
        self.objects
            .entry(gr.clone())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        self.emit(gr, ns, "MODIFIED", obj.clone(), Some(old));
        obj
    }

    fn remove(&mut self, gr: &GroupResource, ns: &str, name: &str, mut last: Value) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let before = self
            .objects
            .get_mut(gr)
            .and_then(|m| m.remove(&(ns.to_string(), name.to_string())));
        let obj = Arc::new(last);
        self.emit(gr, ns, "DELETED", obj.clone(), before);
        if gr.group == "apiextensions.k8s.io"
            && gr.resource == "customresourcedefinitions"
            && let Some(cgr) = crd_gr(&obj)
        {
            self.reg.unregister(&cgr);
            self.objects.remove(&cgr);
        }
        self.collect_garbage(&obj);
        obj
    }

    /// Delete an object: mark it when finalizers hold it, remove it otherwise.
    pub fn delete(
        &mut self,
        t: &ResourceType,
        version: &str,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> ApiResult<(Arc<Value>, bool)> {
        let gr = t.store_gr();
        let old = self
            .get_obj(&gr, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&gr, name))?;
        if let Some(uid) = &opts.uid
            && meta_str(&old, "uid") != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && meta_str(&old, "resourceVersion") != Some(rv.as_str())
        {
            return Err(ApiError::conflict(
                &gr,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or("")
                ),
            ));
        }
        if t.kind == "Namespace" && matches!(name, "default" | "kube-system" | "kube-public") {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if opts.dry_run {
            return Ok((Arc::new(with_version(&old, t, version)), false));
        }
        if opts.propagation.as_deref() == Some("Orphan") {
            self.orphan_dependents(meta_str(&old, "uid").unwrap_or(""));
        }
        let mut new = (*old).clone();
        let uid = meta_str(&old, "uid").unwrap_or("").to_string();
        // Foreground: the owner waits, held by foregroundDeletion, until its dependents are gone.
        let foreground = opts.propagation.as_deref() == Some("Foreground")
            && !meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp"))
            && !self.dependents(&uid).is_empty();
        if foreground
            && let Some(f) = meta_mut(&mut new)
                .entry("finalizers")
                .or_insert(json!([]))
                .as_array_mut()
        {
            f.push(json!(FOREGROUND));
        }
        let holds = !finalizers(&new).is_empty() || t.kind == "CustomResourceDefinition";
        if holds {
            if meta(&old).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return Ok((Arc::new(with_version(&old, t, version)), false));
            }
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if t.generation {
                let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                m.insert("generation".into(), json!(g + 1));
            }
            if t.kind == "Namespace" {
                new["status"] = json!({"phase": "Terminating"});
            }
            self.commit_update(&gr, ns, name, new, old);
            if foreground {
                for (dgr, dns, dname) in self.dependents(&uid) {
                    if let Some(dt) = self.reg.by_gr(&dgr).cloned() {
                        let v = dt.storage_version.clone();
                        let fg = DeleteOpts {
                            propagation: Some("Foreground".into()),
                            ..Default::default()
                        };
                        if let Err(e) = self.delete(&dt, &v, &dns, &dname, &fg) {
                            tracing::debug!("foreground deletion of {}/{dns}/{dname}: {e}", dgr.qualified());
                        }
                    }
                }
            }
            self.reconcile();
            let after = self.get_obj(&gr, ns, name).cloned();
            return Ok(match after {
                Some(o) => (Arc::new(with_version(&o, t, version)), false),
                None => (
                    Arc::new(with_version(&self.last_deleted(&gr, ns, name), t, version)),
                    true,
                ),
            });
        }
        let gone = self.remove(&gr, ns, name, new);
        self.reconcile();
        Ok((Arc::new(with_version(&gone, t, version)), true))
    }

    fn last_deleted(&self, gr: &GroupResource, ns: &str, name: &str) -> Value {
        self.history
            .iter()
            .rev()
            .find(|e| {
                e.etype == "DELETED"
                    && &e.gr == gr
                    && e.namespace == ns
                    && meta_str(&e.object, "name") == Some(name)
            })
            .map(|e| (*e.object).clone())
            .unwrap_or(json!({}))
    }

    /// Owner-reference garbage collection (background): dependents whose
    /// owners are all gone are deleted.
    fn collect_garbage(&mut self, gone: &Value) {
        let Some(uid) = meta_str(gone, "uid").map(str::to_string) else {
            return;
        };
        let live_uids: std::collections::HashSet<String> = self
            .all_objects()
            .iter()
            .filter_map(|o| meta_str(o, "uid").map(str::to_string))
            .collect();
        let mut doomed = Vec::new();
        for (gr, objs) in &self.objects {
            for ((ns, name), o) in objs {
                let refs = meta(o)
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array);
                let Some(refs) = refs else { continue };
                let owned = refs
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()));
                let all_gone = refs.iter().all(|r| {
                    r.get("uid")
                        .and_then(Value::as_str)
                        .is_none_or(|u| !live_uids.contains(u))
                });
                if owned && all_gone {
                    doomed.push((gr.clone(), ns.clone(), name.clone()));
                }
            }
        }
        for (gr, ns, name) in doomed {
            if let Some(t) = self.reg.by_gr(&gr).cloned() {
                let v = t.storage_version.clone();
                if let Err(e) = self.delete(&t, &v, &ns, &name, &DeleteOpts::default()) {
                    tracing::debug!("garbage collecting {}/{ns}/{name}: {e}", gr.qualified());
                }
            }
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (gr, ns, name) in self.dependents(uid) {
            let Some(o) = self.get_obj(&gr, &ns, &name).cloned() else {
                continue;
            };
            let mut n = (*o).clone();
            if let Some(refs) = meta_mut(&mut n)
                .get_mut("ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|x| x.get("uid").and_then(Value::as_str) != Some(uid));
            }
            self.commit_update(&gr, &ns, &name, n, o);
        }
    }

    /// Objects with an ownerReference to `uid`.
    fn dependents(&self, uid: &str) -> Vec<(GroupResource, String, String)> {
        let mut out = Vec::new();
        if uid.is_empty() {
            return out;
        }
        for (gr, objs) in &self.objects {
            for ((ns, name), o) in objs {
                let refs = meta(o)
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array);
                if refs.is_some_and(|r| {
                    r.iter()
                        .any(|x| x.get("uid").and_then(Value::as_str) == Some(uid))
                }) {
                    out.push((gr.clone(), ns.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// The garbage collector's half of foreground deletion: release owners
    /// whose dependents are all gone.
    fn release_foreground(&mut self) -> bool {
        let mut held = Vec::new();
        for (gr, objs) in &self.objects {
            for ((ns, name), o) in objs {
                if finalizers(o).iter().any(|f| f == FOREGROUND) {
                    held.push((gr.clone(), ns.clone(), name.clone(), o.clone()));
                }
            }
        }
        let mut progressed = false;
        for (gr, ns, name, o) in held {
            if self.dependents(meta_str(&o, "uid").unwrap_or("")).is_empty() {
                let mut n = (*o).clone();
                if let Some(f) = meta_mut(&mut n)
                    .get_mut("finalizers")
                    .and_then(Value::as_array_mut)
                {
                    f.retain(|x| x.as_str() != Some(FOREGROUND));
                }
                self.commit_update(&gr, &ns, &name, n, o);
                progressed = true;
            }
        }
        progressed
    }

    /// The controllers: finish terminating namespaces and deleted CRDs,
    /// release foreground deletions.
    fn reconcile(&mut self) {
        loop {
            let mut progressed = self.release_foreground();
            let nsgr = GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            };
            let terminating: Vec<String> = self
                .objects
                .get(&nsgr)
                .map(|m| {
                    m.iter()
                        .filter(|(_, o)| meta(o).is_some_and(|m| m.contains_key("deletionTimestamp")))
                        .map(|((_, n), _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            for ns in terminating {
                progressed |= self.drain_namespace(&ns);
            }
            let crdgr = GroupResource {
                group: "apiextensions.k8s.io".into(),
                resource: "customresourcedefinitions".into(),
            };
            let deleting: Vec<(String, Arc<Value>)> = self
                .objects
                .get(&crdgr)
                .map(|m| {
                    m.iter()
                        .filter(|(_, o)| meta(o).is_some_and(|m| m.contains_key("deletionTimestamp")))
                        .map(|((_, n), o)| (n.clone(), o.clone()))
                        .collect()
                })
                .unwrap_or_default();
            for (name, crd) in deleting {
                progressed |= self.cleanup_crd(&name, crd);
            }
            if !progressed {
                break;
            }
        }
    }

    fn drain_namespace(&mut self, ns: &str) -> bool {
        let mut victims = Vec::new();
        let mut remaining = 0;
        for (gr, objs) in &self.objects {
            for ((ons, name), o) in objs {
                if ons == ns {
                    remaining += 1;
                    if !meta(o).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                        victims.push((gr.clone(), name.clone()));
                    }
                }
            }
        }
        let mut progressed = false;
        for (gr, name) in victims {
            if let Some(t) = self.reg.by_gr(&gr).cloned() {
                let v = t.storage_version.clone();
                if self.delete(&t, &v, ns, &name, &DeleteOpts::default()).is_ok() {
                    progressed = true;
                }
            }
        }
        if remaining == 0 {
            let nsgr = GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            };
            // Only the `kubernetes` spec finalizer is ours to clear; once it is
            // gone, a namespace held by metadata.finalizers waits for their owners.
            let spec_finalizers = |o: &Value| {
                o.pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty())
            };
            if let Some(o) = self
                .get_obj(&nsgr, "", ns)
                .cloned()
                .filter(|o| spec_finalizers(o))
            {
                let mut n = (*o).clone();
                if let Some(spec) = n.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("finalizers".into(), json!([]));
                }
                self.commit_update(&nsgr, "", ns, n, o);
                progressed = true;
            }
        }
        progressed
    }

    fn cleanup_crd(&mut self, name: &str, crd: Arc<Value>) -> bool {
        const CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";
        let crdgr = GroupResource {
            group: "apiextensions.k8s.io".into(),
            resource: "customresourcedefinitions".into(),
        };
        if !finalizers(&crd).iter().any(|f| f == CLEANUP) {
            if finalizers(&crd).is_empty() {
                self.remove(&crdgr, "", name, (*crd).clone());
                return true;
            }
            return false;
        }
        if let Some(cgr) = crd_gr(&crd) {
            let keys: Vec<Key> = self
                .objects
                .get(&cgr)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let mut held = false;
            for (ns, n) in keys {
                if let Some(t) = self.reg.by_gr(&cgr).cloned() {
                    let v = t.storage_version.clone();
                    match self.delete(&t, &v, &ns, &n, &DeleteOpts::default()) {
                        Ok((_, true)) => {}
                        _ => held = true,
                    }
                }
            }
            if held {
                return false;
            }
        }
        let mut n = (*crd).clone();
        if let Some(f) = meta_mut(&mut n)
            .get_mut("finalizers")
            .and_then(Value::as_array_mut)
        {
            f.retain(|x| x.as_str() != Some(CLEANUP));
        }
        self.commit_update(&crdgr, "", name, n, crd);
        true
    }

    pub fn list(&self, t: &ResourceType, ns: Option<&str>, opts: &ListOpts) -> ApiResult<ListResult> {
        let gr = t.store_gr();
        // A continued list reads the state at its first page's resourceVersion.
        let (start, list_rv, snapshot): (Option<Key>, u64, Option<Objects>) = match &opts.continue_token {
            Some(tok) => {
                let (rv, key) = decode_continue(tok)?;
                if rv < self.floor {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (Some(key), rv, Some(self.objects_at(&gr, rv)))
            }
            None => (None, self.rv, None),
        };
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        if let Some(objs) = snapshot.as_ref().or_else(|| self.objects.get(&gr)) {
            let iter = objs
                .iter()
                .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s));
            let matching: Vec<(&Key, &Arc<Value>)> = iter
                .filter(|(_, o)| opts.labels.matches(o) && opts.fields.matches(o))
                .collect();
            for (i, (k, o)) in matching.iter().enumerate() {
                if opts.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                    let last = &matching[i - 1].0;
                    continue_token = Some(encode_continue(list_rv, last));
                    remaining = Some(matching.len() - i);
                    break;
                }
                let _ = k;
                items.push((*o).clone());
            }
        }
        Ok(ListResult {
            items,
            rv: list_rv,
            continue_token,
            remaining,
        })
    }

    /// The objects of one resource as they were at `rv`, undoing the kept
    /// events after it (callers check `rv >= floor`).
    fn objects_at(&self, gr: &GroupResource, rv: u64) -> Objects {
        let mut m = self.objects.get(gr).cloned().unwrap_or_default();
        for ev in self
            .history
            .iter()
            .rev()
            .take_while(|e| e.rv > rv)
            .filter(|e| &e.gr == gr)
        {
            let key = (
                ev.namespace.clone(),
                meta_str(&ev.object, "name").unwrap_or("").to_string(),
            );
            match (ev.etype, &ev.old) {
                ("ADDED", _) => {
                    m.remove(&key);
                }
                (_, Some(old)) => {
                    m.insert(key, old.clone());
                }
                _ => {}
            }
        }
        m
    }

    /// Delete every object a list would return.
    pub fn delete_collection(
        &mut self,
        t: &ResourceType,
        version: &str,
        ns: Option<&str>,
        opts: &ListOpts,
        dopts: &DeleteOpts,
    ) -> ApiResult<Vec<Arc<Value>>> {
        let items = self
            .list(
                t,
                ns,
                &ListOpts {
                    labels: opts.labels.clone(),
                    fields: opts.fields.clone(),
                    limit: None,
                    continue_token: None,
                },
            )?
            .items;
        let mut out = Vec::new();
        for o in items {
            let n = meta_str(&o, "name").unwrap_or("").to_string();
            let ons = meta_str(&o, "namespace").unwrap_or("").to_string();
            if let Ok((d, _)) = self.delete(t, version, &ons, &n, dopts) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// Updates the API server refuses: fields that are immutable once set.
fn immutable_changes(t: &ResourceType, old: &Value, new: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let differs = |ptr: &str| old.pointer(ptr) != new.pointer(ptr);
    let immutable = |out: &mut Vec<(String, String)>, field: &str, ptr: &str| {
        if old.pointer(ptr) != new.pointer(ptr) {
            let v = new
                .pointer(ptr)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "null".into());
            out.push((
                field.to_string(),
                format!("Invalid value: {v}: field is immutable"),
            ));
        }
    };
    match (t.group.as_str(), t.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            immutable(&mut out, "spec.selector", "/spec/selector")
        }
        ("apps", "StatefulSet") => {
            let allowed = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            let strip = |v: &Value| -> Value {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(m) = s.as_object_mut() {
                    m.retain(|k, _| !allowed.contains(&k.as_str()));
                }
                s
            };
            if strip(old) != strip(new) {
                out.push(("spec".into(), "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into()));
            }
        }
        ("batch", "Job") => {
            immutable(&mut out, "spec.selector", "/spec/selector");
            immutable(&mut out, "spec.template", "/spec/template");
        }
        ("", "Service")
            if old
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty())
                && new.pointer("/spec/clusterIP").is_some() =>
        {
            immutable(&mut out, "spec.clusterIP", "/spec/clusterIP");
        }
        ("", "ConfigMap" | "Secret") => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                if differs("/data") || differs("/binaryData") {
                    out.push((
                        "data".into(),
                        "Forbidden: field is immutable when `immutable` is set".into(),
                    ));
                }
                if differs("/immutable") {
                    out.push((
                        "immutable".into(),
                        "Forbidden: field is immutable when `immutable` is set".into(),
                    ));
                }
            }
            if t.kind == "Secret" {
                immutable(&mut out, "type", "/type");
            }
        }
        ("", "PersistentVolumeClaim") => {
            let strip = |v: &Value| -> Value {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(m) = s.as_object_mut() {
                    m.remove("resources");
                    m.remove("volumeAttributesClassName");
                    // Set by binding, not by users.
                    m.remove("volumeName");
                }
                s
            };
            if strip(old) != strip(new) {
                out.push(("spec".into(), "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into()));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") if differs("/roleRef") => {
            let v = new
                .get("roleRef")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "null".into());
            out.push((
                "roleRef".into(),
                format!("Invalid value: {v}: cannot change roleRef"),
            ));
        }
        _ => {}
    }
    out
}

fn without_times(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(mf) = o
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for e in mf.iter_mut().filter_map(Value::as_object_mut) {
            e.remove("time");
        }
    }
    o
}

fn crd_gr(crd: &Value) -> Option<GroupResource> {
    Some(GroupResource {
        group: crd.pointer("/spec/group")?.as_str()?.to_string(),
        resource: crd.pointer("/spec/names/plural")?.as_str()?.to_string(),
    })
}

fn encode_continue(rv: u64, key: &Key) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}", key.0, key.1)});
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

fn decode_continue(tok: &str) -> ApiResult<(u64, Key)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(tok)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// The object as served at `version` (CRD conversion strategy None: only apiVersion changes).
pub fn with_version(obj: &Value, t: &ResourceType, version: &str) -> Value {
    let mut o = obj.clone();
    if t.view_of.is_some() {
        o = event_to_view(o);
    }
    if o.is_object() {
        o["apiVersion"] = json!(t.api_version(version));
    }
    o
}

/// core/v1 Event field ↔ events.k8s.io/v1 Event field (the API server's conversion).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename_fields(mut o: Value, to_view: bool) -> Value {
    if let Some(m) = o.as_object_mut() {
        for (core, view) in EVENT_FIELDS {
            let (from, to) = if to_view { (core, view) } else { (view, core) };
            if let Some(v) = m.remove(*from) {
                m.insert((*to).to_string(), v);
            }
        }
    }
    o
}

/// A stored core/v1 Event as events.k8s.io/v1 shows it.
fn event_to_view(o: Value) -> Value {
    rename_fields(o, true)
}

/// An events.k8s.io/v1 Event as core/v1 stores it.
fn event_from_view(o: Value) -> Value {
    let mut o = rename_fields(o, false);
    if o.is_object() {
        o["apiVersion"] = json!("v1");
    }
    o
}

/// The API server's defaulting, for the fields clients commonly read back.
fn defaults(t: &ResourceType, obj: &mut Value) {
    match (t.group.as_str(), t.kind.as_str()) {
        ("", "Namespace") => {
            if obj.pointer("/spec/finalizers").is_none()
                && !meta(obj).is_some_and(|m| m.contains_key("deletionTimestamp"))
            {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        ("", "Secret") => {
            // stringData is write-only: it lands in data, base64-encoded.
            if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
                let data = obj.as_object_mut().map(|o| o.entry("data").or_insert(json!({})));
                if let Some(Value::Object(d)) = data {
                    for (k, v) in sd {
                        let raw = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                        d.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(raw)));
                    }
                }
            }
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("volumeMode").or_insert(json!("Filesystem"));
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        ("", "Pod") if obj.pointer("/status/phase").is_none() => {
            // No scheduler or kubelet: a pod stays Pending.
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("", "Service") => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            spec.entry("type").or_insert(json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if let Some(pm) = p.as_object_mut() {
                        pm.entry("protocol").or_insert(json!("TCP"));
                        if let Some(port) = pm.get("port").cloned() {
                            pm.entry("targetPort").or_insert(port);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if t.is_crd() {
        return;
    }
    let (pod_spec, restart) = match (t.group.as_str(), t.kind.as_str()) {
        ("", "Pod") => ("/spec", true),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => ("/spec/template/spec", true),
        ("batch", "Job") => ("/spec/template/spec", false),
        ("batch", "CronJob") => ("/spec/jobTemplate/spec/template/spec", false),
        _ => return,
    };
    if let Some(spec) = obj.pointer_mut(pod_spec).and_then(Value::as_object_mut) {
        pod_spec_defaults(spec, restart);
    }
    let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
    let Some(spec) = spec else { return };
    let mut set = |k: &str, v: Value| {
        spec.entry(k).or_insert(v);
    };
    match (t.group.as_str(), t.kind.as_str()) {
        ("apps", "Deployment") => {
            set("replicas", json!(1));
            set("revisionHistoryLimit", json!(10));
            set("progressDeadlineSeconds", json!(600));
            set("strategy", json!({"type": "RollingUpdate"}));
            if let Some(st) = spec.get_mut("strategy").and_then(Value::as_object_mut)
                && st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            {
                st.entry("rollingUpdate")
                    .or_insert(json!({"maxUnavailable": "25%", "maxSurge": "25%"}));
            }
        }
        ("apps", "StatefulSet") => {
            set("replicas", json!(1));
            set("revisionHistoryLimit", json!(10));
            set("podManagementPolicy", json!("OrderedReady"));
            set(
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set(
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        ("apps", "DaemonSet") => {
            set("revisionHistoryLimit", json!(10));
            set(
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
        }
        ("apps", "ReplicaSet") => set("replicas", json!(1)),
        ("batch", "Job") => {
            set("parallelism", json!(1));
            set("completions", json!(1));
            set("backoffLimit", json!(6));
            set("completionMode", json!("NonIndexed"));
            set("suspend", json!(false));
            set("podReplacementPolicy", json!("TerminatingOrFailed"));
        }
        ("batch", "CronJob") => {
            set("concurrencyPolicy", json!("Allow"));
            set("suspend", json!(false));
            set("successfulJobsHistoryLimit", json!(3));
            set("failedJobsHistoryLimit", json!(1));
        }
        _ => {}
    }
}

/// The API server's PodSpec defaults (SetDefaults_PodSpec / _Container).
fn pod_spec_defaults(spec: &mut Map<String, Value>, restart: bool) {
    if restart {
        spec.entry("restartPolicy").or_insert(json!("Always"));
    }
    spec.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("securityContext").or_insert(json!({}));
    spec.entry("schedulerName").or_insert(json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(cs)) = spec.get_mut(list) else {
            continue;
        };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            // `:latest` or no tag (and no digest) means Always.
            let last = image.rsplit('/').next().unwrap_or(image);
            let latest = !image.contains('@') && last.split_once(':').is_none_or(|(_, tag)| tag == "latest");
            c.entry("imagePullPolicy")
                .or_insert(json!(if latest { "Always" } else { "IfNotPresent" }));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            if let Some(Value::Array(ps)) = c.get_mut("ports") {
                for p in ps.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert(json!("TCP"));
                }
            }
        }
    }
}
