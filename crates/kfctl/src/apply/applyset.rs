//! The ApplySet (KEP-3659, as kubectl implements it): a parent Secret whose
//! labels and annotations record which GroupKinds and namespaces hold
//! members, and an `applyset.kubernetes.io/part-of` label on every member.
//! kubectl lists and prunes the same objects from the same records.

use std::collections::BTreeSet;

use base64::Engine as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::{Error, Result};

pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const NAMESPACES_ANNOTATION: &str = "applyset.kubernetes.io/additional-namespaces";

/// The parent object: a Secret, as `kubectl apply --applyset=NAME -n NAMESPACE` makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub name: String,
    pub namespace: String,
}

/// What a parent records: member GroupKinds (`Kind.group`) and namespaces
/// other than the parent's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub group_kinds: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
}

impl Record {
    pub fn union(&self, other: &Record) -> Record {
        Record {
            group_kinds: self.group_kinds.union(&other.group_kinds).cloned().collect(),
            namespaces: self.namespaces.union(&other.namespaces).cloned().collect(),
        }
    }

    /// Every namespace members may live in, the parent's included.
    pub fn all_namespaces(&self, parent: &Parent) -> BTreeSet<String> {
        let mut all = self.namespaces.clone();
        all.insert(parent.namespace.clone());
        all
    }
}

/// `kfctl/vX.Y.Z`, as the spec asks (`<tool>/<semver>`).
pub fn tooling() -> String {
    format!("kfctl/v{}", env!("CARGO_PKG_VERSION"))
}

impl Parent {
    /// The set's id: `applyset-<base64url(sha256(name.namespace.Kind.group))>-v1`.
    pub fn id(&self) -> String {
        let hash = sha2::Sha256::digest(format!("{}.{}.Secret.", self.name, self.namespace));
        format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
        )
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &secret_resource())
    }

    /// What the parent records now; None when there is no parent yet. A
    /// parent another tool manages, or with another id, is an error: its
    /// members are not ours to prune.
    pub async fn read(&self, client: &kube::Client) -> Result<Option<Record>> {
        let what = || format!("ApplySet parent Secret {}/{}", self.namespace, self.name);
        let Some(obj) = self
            .api(client)
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("reading {}", what()), e))?
        else {
            return Ok(None);
        };
        let labels = obj.metadata.labels.unwrap_or_default();
        let annotations = obj.metadata.annotations.unwrap_or_default();
        if labels.get(ID_LABEL) != Some(&self.id()) {
            return Err(Error::Invalid(format!(
                "{} exists but is not this ApplySet's parent (label {ID_LABEL} is {:?}, expected {:?}); choose another --applyset name",
                what(),
                labels.get(ID_LABEL),
                self.id()
            )));
        }
        match annotations.get(TOOLING_ANNOTATION) {
            Some(t) if t.starts_with("kfctl/") => {}
            other => {
                return Err(Error::Invalid(format!(
                    "{} is managed by {other:?}, not kfctl; use that tool or another --applyset name",
                    what()
                )));
            }
        }
        let split = |key: &str| -> BTreeSet<String> {
            annotations
                .get(key)
                .map(|v| v.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
                .unwrap_or_default()
        };
        Ok(Some(Record {
            group_kinds: split(GROUP_KINDS_ANNOTATION),
            namespaces: split(NAMESPACES_ANNOTATION),
        }))
    }

    /// The parent Secret with `record`, server-side applied.
    pub fn object(&self, record: &Record) -> Value {
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        let mut namespaces = record.namespaces.clone();
        namespaces.remove(&self.namespace);
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": { ID_LABEL: self.id() },
                "annotations": {
                    TOOLING_ANNOTATION: tooling(),
                    GROUP_KINDS_ANNOTATION: join(&record.group_kinds),
                    NAMESPACES_ANNOTATION: join(&namespaces),
                },
            },
        })
    }

    pub async fn write(&self, client: &kube::Client, record: &Record, params: &PatchParams) -> Result<()> {
        self.api(client)
            .patch(&self.name, params, &Patch::Apply(self.object(record)))
            .await
            .map_err(|e| {
                Error::kube(
                    format!(
                        "writing the ApplySet parent Secret {}/{}",
                        self.namespace, self.name
                    ),
                    e,
                )
            })?;
        Ok(())
    }
}

pub fn secret_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    }
}

/// Adds the member label to an object about to be applied.
pub fn label_member(body: &mut Value, id: &str) {
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[PART_OF_LABEL] = Value::String(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_a_label_value() {
        let id = Parent {
            name: "kflite".into(),
            namespace: "kube-system".into(),
        }
        .id();
        // sha256 is 32 bytes: 43 base64 characters without padding.
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert!(
            id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn parent_records_sorted_lists_without_its_own_namespace() {
        let p = Parent {
            name: "s".into(),
            namespace: "a".into(),
        };
        let r = Record {
            group_kinds: ["Deployment.apps", "ConfigMap"].map(String::from).into(),
            namespaces: ["b", "a"].map(String::from).into(),
        };
        let o = p.object(&r);
        assert_eq!(
            o["metadata"]["annotations"][GROUP_KINDS_ANNOTATION],
            "ConfigMap,Deployment.apps"
        );
        assert_eq!(o["metadata"]["annotations"][NAMESPACES_ANNOTATION], "b");
    }
}
