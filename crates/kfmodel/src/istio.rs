//! Stub Istio CRDs.
//!
//! Kubeflow v1.11.0's controllers watch or own Istio kinds unconditionally; on
//! a cluster without Istio their informers never sync and they crash-loop. A
//! stub CRD per kind (any fields accepted, nothing ever created) lets them
//! start. Each kind below names the upstream RBAC that proves it is needed;
//! `tests/istio_stubs.rs` re-derives the list from the mirror's RBAC.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// One Istio kind a Kubeflow controller needs a CRD for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IstioKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Which upstream components watch or own it (from their RBAC).
    pub needed_by: &'static [&'static str],
}

/// Every Istio kind watched or owned by notebook-controller, profiles,
/// tensorboard-controller, pvcviewer-controller, katib and pipelines in
/// Kubeflow v1.11.0. Katib's controller needs none (its VirtualService and
/// AuthorizationPolicy are static manifests, not watched).
pub const STUB_KINDS: &[IstioKind] = &[
    IstioKind {
        group: "security.istio.io",
        version: "v1beta1",
        kind: "AuthorizationPolicy",
        plural: "authorizationpolicies",
        needed_by: &[
            "profiles (kfam)",
            "pipelines (metacontroller, profile-controller)",
        ],
    },
    IstioKind {
        group: "networking.istio.io",
        version: "v1alpha3",
        kind: "DestinationRule",
        plural: "destinationrules",
        needed_by: &["pipelines (metacontroller, profile-controller)"],
    },
    IstioKind {
        group: "networking.istio.io",
        version: "v1alpha3",
        kind: "VirtualService",
        plural: "virtualservices",
        needed_by: &[
            "notebook-controller",
            "tensorboard-controller",
            "pvcviewer-controller",
        ],
    },
];

impl IstioKind {
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// Lower-case singular name, as Kubernetes derives it from the kind.
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }

    /// A minimal CRD: one served and stored version, any fields accepted.
    pub fn stub_crd(&self) -> CustomResourceDefinition {
        let schema = JSONSchemaProps {
            type_: Some("object".into()),
            x_kubernetes_preserve_unknown_fields: Some(true),
            ..Default::default()
        };
        CustomResourceDefinition {
            metadata: ObjectMeta {
                name: Some(self.crd_name()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "kflite".to_string(),
                )])),
                ..Default::default()
            },
            spec: CustomResourceDefinitionSpec {
                group: self.group.into(),
                names: CustomResourceDefinitionNames {
                    kind: self.kind.into(),
                    list_kind: Some(format!("{}List", self.kind)),
                    plural: self.plural.into(),
                    singular: Some(self.singular()),
                    ..Default::default()
                },
                scope: "Namespaced".into(),
                versions: vec![CustomResourceDefinitionVersion {
                    name: self.version.into(),
                    served: true,
                    storage: true,
                    schema: Some(CustomResourceValidation {
                        open_api_v3_schema: Some(schema),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            status: None,
        }
    }
}

/// The stub CRDs, in a stable order (by CRD name).
pub fn stub_crds() -> Vec<CustomResourceDefinition> {
    let mut kinds: Vec<&IstioKind> = STUB_KINDS.iter().collect();
    kinds.sort_by_key(|k| k.crd_name());
    kinds.into_iter().map(IstioKind::stub_crd).collect()
}

/// The stub kind for `group`/`kind`, if any.
pub fn find(group: &str, kind: &str) -> Option<&'static IstioKind> {
    STUB_KINDS.iter().find(|k| k.group == group && k.kind == kind)
}
