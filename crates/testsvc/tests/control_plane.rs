//! The control plane starts, enforces RBAC, cascades deletes and audits.

use std::time::{Duration, Instant};

use testsvc::control_plane::{ControlPlane, api_get, audit};

fn start(test: &str) -> Option<ControlPlane> {
    let bins = match testsvc::Binaries::locate() {
        Ok(b) => b,
        Err(e) => {
            testkit::skip(test, &e.to_string());
            return None;
        }
    };
    Some(ControlPlane::start(&bins).unwrap_or_else(|e| panic!("{test}: {e}")))
}

#[test]
fn starts_serves_the_pinned_version_and_audits_every_request() {
    let Some(cp) = start("starts_serves_the_pinned_version_and_audits_every_request") else {
        return;
    };
    eprintln!("control plane up in {:?}", cp.startup);
    let admin = &cp.info().admin_kubeconfig;
    let version = api_get(admin, "/version").expect("version");
    assert!(version.contains("\"gitVersion\": \"v1.37.2\""), "{version}");
    api_get(admin, "/api/v1/namespaces/kube-system").expect("admin reads");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = audit::read(&cp.info().audit_log).unwrap_or_default();
        if seen.iter().any(|r| {
            r.user == "kflite-test-admin"
                && r.verb == "get"
                && r.resource == "namespaces"
                && r.name.as_deref() == Some("kube-system")
                && r.code == 200
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the admin's get is not in the audit log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
