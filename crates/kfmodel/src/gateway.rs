//! Gateway API types kflite writes.
//!
//! HTTPRoute comes from the `gateway-api` crate (v1). ReferenceGrant is
//! defined here at v1beta1, the version every Gateway API release since v0.6
//! serves (Cilium's bundled CRDs included); its fields are the crate's own.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use gateway_api::httproutes::{self, HttpRoute, HttpRouteSpec};
pub use gateway_api::referencegrants::{ReferenceGrantFrom, ReferenceGrantTo};

/// API group of every Gateway API kind.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// `ReferenceGrant` at gateway.networking.k8s.io/v1beta1.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1beta1",
    kind = "ReferenceGrant",
    plural = "referencegrants",
    namespaced,
    derive = "Default",
    derive = "PartialEq"
)]
pub struct ReferenceGrantSpec {
    pub from: Vec<ReferenceGrantFrom>,
    pub to: Vec<ReferenceGrantTo>,
}

/// The Gateway API CRDs a cluster provides before kflite is installed
/// (HTTPRoute v1; ReferenceGrant v1 stored and v1beta1 served, as Gateway API
/// v1.5's standard channel installs them). Used to prime test clusters.
pub fn cluster_provided_crds() -> Vec<CustomResourceDefinition> {
    let mut grant = gateway_api::referencegrants::ReferenceGrant::crd();
    grant = crate::crd::with_served_versions(grant, &["v1beta1"]);
    let mut crds = vec![
        gateway_api::httproutes::HttpRoute::crd(),
        gateway_api::gateways::Gateway::crd(),
        grant,
    ];
    // `*.k8s.io` groups are protected: the API server refuses a CRD in one
    // without this annotation (the upstream release carries it too).
    for crd in &mut crds {
        crd.metadata.annotations.get_or_insert_default().insert(
            "api-approved.kubernetes.io".into(),
            "https://github.com/kubernetes-sigs/gateway-api/pull/3328".into(),
        );
    }
    crds
}
