//! RBAC short of one verb, on the real API server: the route-controller
//! binary, running as its ServiceAccount, says so — an error in its log, a
//! `RouteFailed` Event on the source, `/readyz` failing with the reason — and
//! recovers by itself once the rule is back.

mod common;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube_sim::TestCluster;

use common::replica::Replica;
use common::{create_notebook, route_names, wait_for};

#[test]
fn a_missing_verb_is_surfaced_and_recovered_from_on_apiserver() {
    kube_sim::run_on(
        "a_missing_verb_is_surfaced_and_recovered_from_on_apiserver",
        kube_sim::Backend::ApiServer,
        false,
        missing_verb,
    );
}

async fn readyz(port: u16) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
}

/// Sets the `verbs` of the Role's HTTPRoute rule, as an operator editing it would.
async fn httproute_verbs(client: &kube::Client, ns: &str, name: &str, verbs: &[&str]) {
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let mut role = roles.get(name).await.expect("the controller's Role");
    for rule in role.rules.iter_mut().flatten() {
        if rule.resources.iter().flatten().any(|r| r == "httproutes") {
            rule.verbs = verbs.iter().map(|v| v.to_string()).collect();
        }
    }
    role.metadata.managed_fields = None;
    roles
        .patch(
            name,
            &PatchParams::apply("kflite-test").force(),
            &Patch::Apply(&role),
        )
        .await
        .expect("edit the Role");
}

async fn missing_verb(cluster: TestCluster) {
    common::init_tracing();
    let client = cluster.client().await.expect("client");
    cluster.install_platform_crds().await.expect("CRDs");
    let route_ns = cluster.namespace("routes").await.unwrap();
    let ns = cluster.namespace("team").await.unwrap();
    let identity = cluster
        .controller_identity("route-controller", &route_ns)
        .await
        .expect("controller identity");
    let role = identity
        .rbac
        .iter()
        .find(|(kind, _)| kind == "Role")
        .map(|(_, name)| name.clone())
        .expect("manifests/route-controller has a Role");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let replica = Replica::start(&identity.kubeconfig, &route_ns, "route-controller", "solo", port);

    create_notebook(&client, &ns, "before").await;
    wait_for("the first route", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 1 }
    })
    .await;

    // Take `patch` away: server-side apply of a route is a patch.
    // The rule as manifests/route-controller/rbac.yaml grants it, less `patch`.
    let granted: Vec<String> = Api::<Role>::namespaced(client.clone(), &route_ns)
        .get(&role)
        .await
        .expect("the controller's Role")
        .rules
        .into_iter()
        .flatten()
        .find(|r| r.resources.iter().flatten().any(|x| x == "httproutes"))
        .map(|r| r.verbs)
        .expect("a rule for httproutes");
    assert!(granted.iter().any(|v| v == "patch"), "the manifest grants patch");
    let all: Vec<&str> = granted.iter().map(String::as_str).collect();
    let without_patch: Vec<&str> = all.iter().copied().filter(|v| *v != "patch").collect();
    httproute_verbs(&client, &route_ns, &role, &without_patch).await;
    create_notebook(&client, &ns, "during").await;

    wait_for("/readyz to fail on the 403", || async {
        readyz(port)
            .await
            .is_some_and(|(code, body)| code == 503 && body.contains("permissions: failing: forbidden"))
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("a RouteFailed Event on the notebook", || {
        let events = events.clone();
        async move {
            events.list(&ListParams::default()).await.is_ok_and(|l| {
                l.items.iter().any(|e| {
                    e.reason.as_deref() == Some("RouteFailed")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("during")
                        && e.note.as_deref().is_some_and(|n| n.contains("forbidden"))
                })
            })
        }
    })
    .await;
    let log = std::fs::read_to_string(&replica.log).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("\"level\":\"ERROR\"") && l.contains("RBAC lacks a verb")),
        "an error line names the cause; log: {}",
        replica.log.display()
    );

    // Restore the rule: the controller routes the waiting notebook and is ready again.
    httproute_verbs(&client, &route_ns, &role, &all).await;
    wait_for("the waiting notebook's route", || {
        let (c, r, n) = (client.clone(), route_ns.clone(), ns.clone());
        async move { route_names(&c, &r, &n).await.len() == 2 }
    })
    .await;
    wait_for("/readyz ok again", || async {
        readyz(port).await.is_some_and(|(code, _)| code == 200)
    })
    .await;
}
