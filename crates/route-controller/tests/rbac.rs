//! route-controller's RBAC is least privilege: every verb its roles in
//! `manifests/route-controller/` grant was used by the e2e suite, as the
//! real API server's audit log of the whole run records it.

#[test]
#[ignore = "reads the whole suite's audit log: `cargo xtask test` runs it after the suite"]
fn after_suite_rbac_is_minimal() {
    kube_sim::assert_rbac_minimal("after_suite_rbac_is_minimal", "route-controller");
}
