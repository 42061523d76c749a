//! `manifest-render lint`: the traps of a rendered platform, found before
//! they reach the cluster.
//!
//! The rules work on the built objects (with the file each came from):
//! [`lint_dir`] builds a kustomization, [`lint_yaml`] reads rendered output,
//! [`lint`] takes objects directly. Which rule finds what, and why, is in
//! `docs/manifest-render.md` ("Lint").

mod config;
mod kinds;
mod netpol;
mod vars;

use std::collections::{HashMap, HashSet};
use std::path::Path;

pub use config::{Config, Ignore, KindPattern};

use crate::resource::Resource;
use crate::yaml::Value;

/// The configuration file `manifest-render` reads from a kustomization
/// directory when `--config` is not given.
pub const CONFIG_FILE: &str = "kflite-lint.yaml";

/// The lint rules, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// kustomize variable text `$(…)` where Kubernetes never expands it.
    UnexpandedVar,
    /// A kind no CRD in the output (or only a stub CRD) defines, not built-in
    /// and not provided by the cluster; or a version its CRD does not serve.
    UnknownKind,
    /// A NetworkPolicy that keeps a hostNetwork gateway from a Service's pods.
    GatewayBlocked,
    /// Two objects with the same group/kind/namespace/name.
    DuplicateId,
    /// An object in a namespace nothing creates.
    MissingNamespace,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::UnexpandedVar,
        Rule::UnknownKind,
        Rule::GatewayBlocked,
        Rule::DuplicateId,
        Rule::MissingNamespace,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::UnexpandedVar => "unexpanded-var",
            Rule::UnknownKind => "unknown-kind",
            Rule::GatewayBlocked => "gateway-blocked",
            Rule::DuplicateId => "duplicate-id",
            Rule::MissingNamespace => "missing-namespace",
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// How bad a finding is without `--strict` (which makes every finding an error).
    pub fn severity(self) -> Severity {
        match self {
            // Depends on the CNI and on which Services the gateway routes to.
            Rule::GatewayBlocked => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    fn of(r: &Resource) -> Self {
        ObjectRef {
            api_version: r.api_version().to_string(),
            kind: r.kind().to_string(),
            namespace: r.namespace().to_string(),
            name: r.name().to_string(),
        }
    }
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ", self.api_version, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub object: ObjectRef,
    /// The file the object was read from, when known.
    pub origin: Option<String>,
    /// The field concerned (`metadata.name`, `spec.ingress`), when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]: {}", self.severity, self.rule, self.object)?;
        if let Some(o) = &self.origin {
            write!(f, " (from {o})")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Builds the kustomization in `dir` and lints its objects.
pub fn lint_dir(dir: &Path, options: &crate::Options, config: &Config) -> crate::Result<Vec<Finding>> {
    let (mut objects, _) = crate::build_objects(dir, options)?;
    shorten_origins(&mut objects, options.mirror.as_deref());
    Ok(lint(&objects, config))
}

/// Mirror paths are long and alike; name them from the mirror's root.
pub(crate) fn shorten_origins(objects: &mut [Resource], mirror: Option<&Path>) {
    let Some(mirror) = mirror else { return };
    let mirror = std::fs::canonicalize(mirror).unwrap_or_else(|_| mirror.to_path_buf());
    for r in objects {
        if let Ok(rest) = Path::new(&r.origin).strip_prefix(&mirror) {
            r.origin = format!("<mirror>/{}", rest.display());
        }
    }
}

/// Lints a rendered YAML stream (`file` names it in findings and errors).
pub fn lint_yaml(text: &str, file: &Path, config: &Config) -> crate::Result<Vec<Finding>> {
    let objects = crate::target::resources_from_text(text, file)?;
    Ok(lint(&objects, config))
}

/// Everything the rules need to know about the whole output.
pub(crate) struct Context<'a> {
    pub objects: &'a [Resource],
    pub config: &'a Config,
    pub kinds: kinds::Catalog,
}

impl Context<'_> {
    /// Whether objects of this kind live in a namespace (unknown: assume so).
    pub fn is_namespaced(&self, r: &Resource) -> bool {
        self.kinds.is_namespaced(&r.gvk())
    }

    pub fn finding(&self, rule: Rule, r: &Resource, field: Option<String>, message: String) -> Finding {
        Finding {
            rule,
            severity: rule.severity(),
            object: ObjectRef::of(r),
            origin: (!r.origin.is_empty()).then(|| r.origin.clone()),
            field,
            message,
        }
    }
}

/// Runs every enabled rule over `objects`; findings come rule by rule, each
/// in object order.
pub fn lint(objects: &[Resource], config: &Config) -> Vec<Finding> {
    let cx = Context {
        objects,
        config,
        kinds: kinds::Catalog::new(objects),
    };
    let mut out = Vec::new();
    let on = |r: Rule| !config.disabled.contains(&r);
    if on(Rule::UnexpandedVar) {
        for r in objects {
            vars::check(&cx, r, &mut out);
        }
    }
    if on(Rule::UnknownKind) {
        for r in objects {
            kinds::check(&cx, r, &mut out);
        }
    }
    if on(Rule::DuplicateId) {
        duplicate_ids(&cx, &mut out);
    }
    if on(Rule::MissingNamespace) {
        missing_namespaces(&cx, &mut out);
    }
    if on(Rule::GatewayBlocked) {
        netpol::check(&cx, &mut out);
    }
    out.retain(|f| !config.ignore.iter().any(|i| i.matches(f)));
    out
}

/// The namespace an object lands in; empty for cluster-scoped objects.
fn effective_namespace<'a>(cx: &Context, r: &'a Resource) -> &'a str {
    if !cx.is_namespaced(r) {
        ""
    } else if r.namespace().is_empty() {
        "default"
    } else {
        r.namespace()
    }
}

/// Rule `duplicate-id`: the API server keys objects by group, kind,
/// namespace and name, not version, so `autoscaling/v1` and `autoscaling/v2`
/// objects of one name are one object and the later one wins.
fn duplicate_ids(cx: &Context, out: &mut Vec<Finding>) {
    let mut first: HashMap<(String, String, String, String), &Resource> = HashMap::new();
    for r in cx.objects {
        let gvk = r.gvk();
        let key = (
            gvk.group,
            gvk.kind,
            effective_namespace(cx, r).to_string(),
            r.name().to_string(),
        );
        match first.get(&key) {
            None => {
                first.insert(key, r);
            }
            Some(earlier) => {
                let from = if earlier.origin.is_empty() {
                    String::new()
                } else {
                    format!(" (from {})", earlier.origin)
                };
                out.push(cx.finding(
                    Rule::DuplicateId,
                    r,
                    None,
                    format!(
                        "the same object as {}{from}: only one of them ends up in the cluster",
                        ObjectRef::of(earlier)
                    ),
                ));
            }
        }
    }
}

/// Kubernetes' own namespaces, present in every cluster.
pub const WELL_KNOWN_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Rule `missing-namespace`: a namespaced object whose namespace is neither
/// in the output (a Namespace, or a Kubeflow Profile, whose controller
/// creates the namespace of the Profile's name), nor well known, nor listed
/// in the configuration. Applying it fails with "namespace not found".
fn missing_namespaces(cx: &Context, out: &mut Vec<Finding>) {
    let mut known: HashSet<&str> = WELL_KNOWN_NAMESPACES.iter().copied().collect();
    known.extend(cx.config.namespaces.iter().map(String::as_str));
    for r in cx.objects {
        let gvk = r.gvk();
        let creates = (gvk.group.is_empty() && gvk.kind == "Namespace")
            || (gvk.group == "kubeflow.org" && gvk.kind == "Profile");
        if creates {
            known.insert(r.name());
        }
    }
    for r in cx.objects {
        let ns = r.namespace();
        if !ns.is_empty() && cx.is_namespaced(r) && !known.contains(ns) {
            out.push(cx.finding(
                Rule::MissingNamespace,
                r,
                Some("metadata.namespace".into()),
                format!(
                    "namespace {ns:?} is not created by the output (no Namespace or Profile of that name), is not one of {} and is not listed in the lint configuration's `namespaces`",
                    WELL_KNOWN_NAMESPACES.join(", ")
                ),
            ));
        }
    }
}

/// A value's text when it is a string.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    v.get_path(path).and_then(Value::as_str).unwrap_or("")
}
