//! The rendered objects: parsed from the YAML stream, named, and sorted into
//! the phases they are applied in.

use serde::Deserialize as _;
use serde_json::Value;

use crate::{Error, Result};

/// Group, version and kind (manifest-render's, which parses `apiVersion` the same way).
pub use manifest_render::resource::Gvk;

/// `Kind` or `Kind.group`, as Kubernetes prints a GroupKind (and ApplySets record it).
pub fn gvk_group_kind(gvk: &Gvk) -> String {
    group_kind(&gvk.group, &gvk.kind)
}

pub fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// The order objects go in: what defines kinds first, webhooks last so they
/// never block the creation of their own backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// CustomResourceDefinitions and Namespaces.
    Definitions,
    Objects,
    Webhooks,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Definitions, Phase::Objects, Phase::Webhooks];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Definitions => "CRDs and Namespaces",
            Phase::Objects => "objects",
            Phase::Webhooks => "webhook configurations",
        }
    }
}

/// One rendered object.
#[derive(Clone, Debug)]
pub struct Object {
    pub gvk: Gvk,
    /// Empty until [`Object::namespace`] is settled by discovery for a namespaced kind.
    pub namespace: String,
    pub name: String,
    pub body: Value,
}

impl Object {
    pub fn phase(&self) -> Phase {
        match (self.gvk.group.as_str(), self.gvk.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => Phase::Definitions,
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
            ) => Phase::Webhooks,
            _ => Phase::Objects,
        }
    }

    /// `kind.group/name` (kubectl's spelling), with ` -n namespace` when namespaced.
    pub fn id(&self) -> String {
        object_id(&self.gvk.group, &self.gvk.kind, &self.namespace, &self.name)
    }

    /// The kind a CRD in the render defines: `(group, kind, served versions, namespaced)`.
    pub fn crd_defines(&self) -> Option<(String, String, Vec<String>, bool)> {
        if self.gvk.group != "apiextensions.k8s.io" || self.gvk.kind != "CustomResourceDefinition" {
            return None;
        }
        let spec = self.body.get("spec")?;
        let group = spec.get("group")?.as_str()?.to_string();
        let kind = spec.pointer("/names/kind")?.as_str()?.to_string();
        let served = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
                    .filter_map(|v| v.get("name").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        Some((group, kind, served, namespaced))
    }
}

/// `kind.group/name` as kubectl prints it, `kind/name` for the core group,
/// followed by ` (namespace ns)` when namespaced.
pub fn object_id(group: &str, kind: &str, namespace: &str, name: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    let gk = if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    };
    if namespace.is_empty() {
        format!("{gk}/{name}")
    } else {
        format!("{gk}/{name} -n {namespace}")
    }
}

/// Every document of a YAML stream as an [`Object`]; a document without
/// apiVersion, kind or name is an error naming its position.
pub fn parse(yaml: &str, source: &str) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let at = || format!("{source}: document {}", i + 1);
        let body = Value::deserialize(doc).map_err(|e| Error::Invalid(format!("{}: {e}", at())))?;
        if body.is_null() {
            continue;
        }
        let s = |p: &str| {
            body.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: an object needs apiVersion, kind and metadata.name (got apiVersion {api_version:?}, kind {kind:?}, name {name:?})",
                at()
            )));
        }
        let gvk = Gvk::from_api_version(&api_version, &kind);
        let namespace = s("/metadata/namespace");
        // Two documents for one object would race each other's apply.
        let key = (gvk.group.clone(), kind.clone(), namespace.clone(), name.clone());
        if let Some(first) = seen.insert(key, i + 1) {
            return Err(Error::Invalid(format!(
                "{}: {} is already document {first}; an object may appear once",
                at(),
                object_id(&gvk.group, &kind, &namespace, &name)
            )));
        }
        objects.push(Object {
            gvk,
            namespace,
            name,
            body,
        });
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_ids() {
        let objs = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n---\n\
             apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: w}\n",
            "t.yaml",
        )
        .unwrap();
        let phases: Vec<_> = objs.iter().map(Object::phase).collect();
        assert_eq!(phases, [Phase::Definitions, Phase::Objects, Phase::Webhooks]);
        assert_eq!(objs[1].id(), "deployment.apps/d -n a");
        assert_eq!(gvk_group_kind(&objs[1].gvk), "Deployment.apps");
        assert_eq!(gvk_group_kind(&objs[0].gvk), "Namespace");
    }

    #[test]
    fn an_object_twice_is_refused() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n";
        let e = parse(&format!("{doc}---\n{doc}"), "x.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("x.yaml: document 2: configmap/c -n n is already document 1"),
            "{e}"
        );
    }

    #[test]
    fn a_nameless_document_is_named_by_position() {
        let e = parse("apiVersion: v1\nkind: ConfigMap\n---\n", "x.yaml").unwrap_err();
        assert!(e.to_string().contains("x.yaml: document 1"), "{e}");
    }
}
