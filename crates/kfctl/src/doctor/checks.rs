//! The checks: pure functions of a [`Snapshot`].

use std::collections::BTreeSet;

use gpu_probe::Status as LintStatus;
use kfmodel::routes::{MANAGED_BY, MANAGED_BY_LABEL, Source, SourceKind};
use serde_json::Value;

use super::snapshot::{ARTIFACT_SECRET, KFP_CONFIGMAPS, PIPELINES_ENABLED_LABEL, Snapshot};
use super::{Check, DoctorConfig, Status};
use crate::resources::{is_deleting, items, label, name, namespace_of, qualified};

/// Every check except the database one, in the order doctor prints them.
pub fn run(s: &Snapshot, config: &DoctorConfig) -> Vec<Check> {
    let checks = vec![
        dashboard_route(s, config),
        dashboard_backends(s, config),
        route_controller(s, config),
        app_routes(s, config),
        gateway_status(s, config),
        gpu_notebooks(s),
        pipelines_namespaces(s, config),
        artifact_controller(s, config),
        network_policies(s),
        istio(s),
        names(s),
        pvcviewer_rwo(s),
    ];
    checks.into_iter().map(|c| unreadable(c, s)).collect()
}

/// The resources (plural names) each check reads.
fn reads(id: &str) -> &'static [&'static str] {
    match id {
        "dashboard-route" => &["httproutes"],
        "dashboard-backends" => &["httproutes", "services", "referencegrants"],
        "route-controller" => &["deployments", "leases"],
        "app-routes" => &[
            "httproutes",
            "referencegrants",
            "notebooks",
            "tensorboards",
            "pvcviewers",
        ],
        "gateway-status" => &["httproutes"],
        "gpu-notebooks" => &["notebooks", "pods"],
        "pipelines-namespaces" => &["namespaces", "secrets", "configmaps"],
        "artifact-controller" => &["deployments"],
        "network-policies" => &["networkpolicies"],
        "istio" => &[
            "customresourcedefinitions",
            "authorizationpolicies",
            "destinationrules",
            "virtualservices",
        ],
        "names" => &["profiles", "namespaces"],
        "pvcviewer-rwo" => &["pvcviewers", "pods", "persistentvolumeclaims"],
        _ => &[],
    }
}

/// A check that needed something kfctl may not read fails as "cannot read",
/// rather than judging an empty list as healthy.
fn unreadable(check: Check, s: &Snapshot) -> Check {
    let denied: Vec<(&str, &String)> = reads(&check.id)
        .iter()
        .filter_map(|r| s.unreadable.get(*r).map(|e| (*r, e)))
        .collect();
    if denied.is_empty() {
        return check;
    }
    let names: Vec<&str> = denied.iter().map(|(r, _)| *r).collect();
    let cans: Vec<String> = names
        .iter()
        .map(|r| format!("kubectl auth can-i list {r} -A"))
        .collect();
    let problems = denied.iter().map(|(_, e)| e.to_string()).collect();
    let mut out = Check::new(&check.id, &check.title).fail(
        format!("cannot read {}: access denied", names.join(", ")),
        format!(
            "run doctor as a user who may get and list them (a cluster admin, or a read-only ClusterRole); check with {}",
            cans.join("; ")
        ),
    );
    out.problems = problems;
    out
}

/// The dashboard's prefixes and whether the app behind each needs the prefix
/// rewritten to `/` (`None`: either way; the catch-all goes to the dashboard).
pub const DASHBOARD_PREFIXES: [(&str, Option<bool>); 6] = [
    ("/jupyter/", Some(true)),
    ("/volumes/", Some(true)),
    ("/tensorboards/", Some(true)),
    ("/katib/", Some(false)),
    ("/pipeline/", Some(true)),
    ("/", None),
];

fn find_route<'a>(s: &'a Snapshot, config: &DoctorConfig, route: &str) -> Option<&'a Value> {
    s.routes
        .as_ref()?
        .iter()
        .find(|r| name(r) == route && namespace_of(r) == config.route_namespace)
}

/// A match's path prefix (Gateway API defaults a missing type to PathPrefix).
fn prefix_of(m: &Value) -> Option<&str> {
    let path = m.get("path")?;
    let kind = path.get("type").and_then(Value::as_str).unwrap_or("PathPrefix");
    (kind == "PathPrefix").then(|| path.get("value").and_then(Value::as_str).unwrap_or("/"))
}

/// Where a rule rewrites its prefix to (`Some("/")` for ReplacePrefixMatch `/`).
fn rewrite_of(rule: &Value) -> Option<String> {
    items(rule, "/filters")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("URLRewrite"))
        .find_map(|f| {
            let path = f.pointer("/urlRewrite/path")?;
            match path.get("type").and_then(Value::as_str) {
                Some("ReplacePrefixMatch") => Some(
                    path.get("replacePrefixMatch")
                        .and_then(Value::as_str)
                        .unwrap_or("/")
                        .to_string(),
                ),
                Some("ReplaceFullPath") => Some(format!(
                    "full path {}",
                    path.get("replaceFullPath").and_then(Value::as_str).unwrap_or("")
                )),
                _ => None,
            }
        })
}

fn dashboard_route(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = Check::new("dashboard-route", "dashboard HTTPRoute: prefixes and rewrites");
    let at = format!("{}/{}", config.route_namespace, config.dashboard_route);
    if s.routes.is_none() {
        return check.fail(
            "HTTPRoute is not served: the Gateway API CRDs are missing",
            "install the Gateway API CRDs (Cilium: gatewayAPI.enabled=true with the standard-channel CRDs applied)",
        );
    }
    let Some(route) = find_route(s, config, &config.dashboard_route) else {
        return check.fail(
            format!("HTTPRoute {at} does not exist: every Kubeflow page 404s"),
            "apply kflite's manifests (kubectl apply -k overlays/homelab), which include the kubeflow-dashboard HTTPRoute",
        );
    };
    let mut problems = Vec::new();
    for (prefix, rewrite) in DASHBOARD_PREFIXES {
        let rule = items(route, "/spec/rules")
            .find(|rule| items(rule, "/matches").any(|m| prefix_of(m) == Some(prefix)));
        let Some(rule) = rule else {
            problems.push(format!("no PathPrefix rule for {prefix}"));
            continue;
        };
        match (rewrite, rewrite_of(rule)) {
            (Some(true), Some(to)) if to == "/" => {}
            (Some(true), other) => problems.push(format!(
                "{prefix}: {}; the app serves at / and 404s on {prefix}...",
                other
                    .map(|o| format!("rewrites to {o}, not ReplacePrefixMatch /"))
                    .unwrap_or_else(|| "no URLRewrite ReplacePrefixMatch /".into())
            )),
            (Some(false), Some(to)) if to != prefix => problems.push(format!(
                "{prefix}: rewritten to {to}; katib serves at its own prefix and 404s without it"
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        check.pass(format!(
            "{at} routes {} with the right rewrites",
            DASHBOARD_PREFIXES.map(|(p, _)| p).join(" ")
        ))
    } else {
        check
            .fail(
                format!("{at}: {} problem(s) in its rules", problems.len()),
                "fix the kubeflow-dashboard HTTPRoute from kflite's manifests: PathPrefix rules for /jupyter/, /volumes/, /tensorboards/, /pipeline/ with URLRewrite ReplacePrefixMatch /, /katib/ without a rewrite, and / to centraldashboard",
            )
            .with_problems(problems)
    }
}

fn service<'a>(s: &'a Snapshot, ns: &str, svc: &str) -> Option<&'a Value> {
    s.services
        .iter()
        .find(|v| namespace_of(v) == ns && name(v) == svc)
}

/// Whether a ReferenceGrant in `ns` lets HTTPRoutes of `from_ns` reach Services.
fn granted(s: &Snapshot, ns: &str, from_ns: &str) -> bool {
    s.grants
        .iter()
        .flatten()
        .filter(|g| namespace_of(g) == ns)
        .any(|g| {
            items(g, "/spec/from").any(|f| {
                f.get("kind").and_then(Value::as_str) == Some("HTTPRoute")
                    && f.get("namespace").and_then(Value::as_str) == Some(from_ns)
            }) && items(g, "/spec/to").any(|t| {
                t.get("kind").and_then(Value::as_str) == Some("Service")
                    && t.get("group").and_then(Value::as_str).unwrap_or("").is_empty()
            })
        })
}

fn dashboard_backends(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = Check::new(
        "dashboard-backends",
        "dashboard HTTPRoute: backend Services exist",
    );
    let Some(route) = find_route(s, config, &config.dashboard_route) else {
        return check.skip("no dashboard HTTPRoute (see dashboard-route)");
    };
    let route_ns = namespace_of(route);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for rule in items(route, "/spec/rules") {
        for b in items(rule, "/backendRefs") {
            let kind = b.get("kind").and_then(Value::as_str).unwrap_or("Service");
            let group = b.get("group").and_then(Value::as_str).unwrap_or("");
            if kind != "Service" || !group.is_empty() {
                continue;
            }
            let svc = b.get("name").and_then(Value::as_str).unwrap_or("");
            let ns = b.get("namespace").and_then(Value::as_str).unwrap_or(route_ns);
            let port = b.get("port").and_then(Value::as_i64);
            if !seen.insert((ns.to_string(), svc.to_string(), port)) {
                continue;
            }
            match service(s, ns, svc) {
                None => problems.push(format!("Service {ns}/{svc} does not exist")),
                Some(found) => {
                    let ports: Vec<i64> = items(found, "/spec/ports")
                        .filter_map(|p| p.get("port").and_then(Value::as_i64))
                        .collect();
                    if let Some(port) = port.filter(|p| !ports.contains(p)) {
                        problems.push(format!(
                            "Service {ns}/{svc} has no port {port} (it has {ports:?})"
                        ));
                    }
                }
            }
            if ns != route_ns && !granted(s, ns, route_ns) {
                problems.push(format!(
                    "Service {ns}/{svc} is in another namespace and no ReferenceGrant in {ns} allows HTTPRoutes from {route_ns}"
                ));
            }
        }
    }
    if seen.is_empty() {
        problems.push("the route has no Service backends".into());
    }
    if problems.is_empty() {
        check.pass(format!(
            "{} backend Service(s) exist with their ports",
            seen.len()
        ))
    } else {
        check
            .fail(
                format!("{} backend problem(s): the gateway answers 500 for those paths", problems.len()),
                "kubectl -n kubeflow get svc: re-apply the app whose Service is missing (kubectl apply -k overlays/homelab), or fix the backendRef name/port",
            )
            .with_problems(problems)
    }
}

/// Available per the Deployment's status (`None`: missing).
fn deployment_state(d: &Value) -> (bool, String) {
    let available = items(d, "/status/conditions").any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Available")
            && c.get("status").and_then(Value::as_str) == Some("True")
    });
    let ready = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let want = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    (
        available && ready > 0,
        format!("{ready}/{want} replicas available"),
    )
}

fn deployment_check(
    check: Check,
    deployment: Option<&Value>,
    at: &str,
    what: &str,
    fix_missing: &str,
) -> Check {
    let Some(d) = deployment else {
        return check.fail(format!("Deployment {at} does not exist"), fix_missing);
    };
    let (ok, replicas) = deployment_state(d);
    if ok {
        check.pass(format!("Deployment {at}: {replicas}"))
    } else {
        let (ns, name) = at.split_once('/').unwrap_or(("kubeflow", at));
        check.fail(
            format!("Deployment {at} is not available ({replicas}): {what}"),
            format!("kubectl -n {ns} describe deploy/{name}; kubectl -n {ns} get pods; kubectl -n {ns} logs deploy/{name}"),
        )
    }
}

fn route_controller(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = deployment_check(
        Check::new("route-controller", "route-controller is available and leading"),
        s.route_controller.as_ref(),
        &config.route_controller,
        "new notebooks, tensorboards and PVC viewers get no route",
        "install route-controller (manifests/route-controller, part of overlays/homelab)",
    );
    if check.status != Status::Pass {
        return check;
    }
    let (ns, name) = config
        .route_controller
        .split_once('/')
        .unwrap_or(("kubeflow", &config.route_controller));
    let lease_at = format!("{ns}/{}", config.route_controller_lease);
    let Some(lease) = &s.route_controller_lease else {
        // Started with --no-leader-election: one replica, no Lease.
        let summary = format!("{}; no Lease {lease_at} (leader election off)", check.summary);
        return check.pass(summary);
    };
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or("");
    let duration = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(15);
    let renewed = lease
        .pointer("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    // Two lease durations of slack: a renewal may be in flight when we look.
    match renewed {
        Some(at) if !holder.is_empty() && s.now - at <= 2 * duration => {
            let summary = format!("{}; Lease {lease_at} held by {holder}", check.summary);
            check.pass(summary)
        }
        _ => {
            let age = renewed.map_or("never renewed".to_string(), |at| {
                format!("last renewed {} s ago", s.now - at)
            });
            check.fail(
                format!(
                    "Deployment {} is available but no replica leads: Lease {lease_at} {age}{}; nothing reconciles routes",
                    config.route_controller,
                    if holder.is_empty() { String::new() } else { format!(" by {holder}") }
                ),
                format!("a replica is hung or cannot reach the API server: kubectl -n {ns} logs deploy/{name}; kubectl -n {ns} rollout restart deploy/{name}"),
            )
        }
    }
}

fn artifact_controller(s: &Snapshot, config: &DoctorConfig) -> Check {
    deployment_check(
        Check::new(
            "artifact-controller",
            "the pipeline artifact controller is available",
        ),
        s.artifact_controller.as_ref(),
        &config.artifact_controller,
        "new pipelines namespaces get no artifact Secret and pipeline runs hang at Init",
        "install pipeline-artifacts (manifests/pipeline-artifacts, part of overlays/homelab)",
    )
}

/// The routed objects route-controller should have made routes for.
fn sources(s: &Snapshot) -> (Vec<Source>, Vec<&'static str>) {
    let mut out = Vec::new();
    let mut missing_kinds = Vec::new();
    for (kind, objects) in [
        (SourceKind::Notebook, &s.notebooks),
        (SourceKind::Tensorboard, &s.tensorboards),
        (SourceKind::PVCViewer, &s.pvcviewers),
    ] {
        let Some(objects) = objects else {
            missing_kinds.push(kind.as_str());
            continue;
        };
        out.extend(objects.iter().filter(|o| !is_deleting(o)).map(|o| Source {
            kind,
            namespace: namespace_of(o).to_string(),
            name: name(o).to_string(),
        }));
    }
    out.sort();
    (out, missing_kinds)
}

fn app_routes(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = Check::new(
        "app-routes",
        "every Notebook, Tensorboard and PVCViewer has its HTTPRoute and ReferenceGrant",
    );
    let (sources, missing_kinds) = sources(s);
    let mut problems = Vec::new();
    let mut namespaces = BTreeSet::new();
    for src in &sources {
        let what = format!("{} {}/{}", src.kind.as_str(), src.namespace, src.name);
        let route_name = src.route_name();
        namespaces.insert(src.namespace.clone());
        let Some(route) = find_route(s, config, &route_name) else {
            problems.push(format!(
                "{what}: no HTTPRoute {}/{route_name}",
                config.route_namespace
            ));
            continue;
        };
        if label(route, MANAGED_BY_LABEL) != Some(MANAGED_BY) {
            problems.push(format!(
                "{what}: HTTPRoute {route_name} is not labelled {MANAGED_BY_LABEL}={MANAGED_BY}"
            ));
        }
        let prefix = src.kind.path_prefix(&src.namespace, &src.name);
        let rule = items(route, "/spec/rules").next();
        let routed_prefix = rule.and_then(|r| items(r, "/matches").find_map(prefix_of));
        if routed_prefix != Some(prefix.as_str()) {
            problems.push(format!(
                "{what}: HTTPRoute {route_name} routes {routed_prefix:?}, expected {prefix}"
            ));
        }
        let backend = rule.and_then(|r| items(r, "/backendRefs").next());
        let service = src.kind.service_name(&src.name);
        let b_name = backend.and_then(|b| b.get("name")).and_then(Value::as_str);
        let b_ns = backend.and_then(|b| b.get("namespace")).and_then(Value::as_str);
        if (b_name, b_ns) != (Some(service.as_str()), Some(src.namespace.as_str())) {
            problems.push(format!(
                "{what}: HTTPRoute {route_name} sends to {}/{}, expected Service {}/{service}",
                b_ns.unwrap_or("?"),
                b_name.unwrap_or("?"),
                src.namespace
            ));
        }
    }
    for ns in &namespaces {
        let grant = s
            .grants
            .iter()
            .flatten()
            .find(|g| namespace_of(g) == ns && name(g) == config.reference_grant);
        if grant.is_none() || !granted(s, ns, &config.route_namespace) {
            problems.push(format!(
                "namespace {ns}: no ReferenceGrant {} allowing HTTPRoutes from {} (the gateway reports RefNotPermitted)",
                config.reference_grant, config.route_namespace
            ));
        }
    }
    if s.routes.is_none() || s.grants.is_none() {
        return check.fail(
            "HTTPRoute or ReferenceGrant is not served: the Gateway API CRDs are missing",
            "install the Gateway API CRDs (standard channel, ReferenceGrant v1beta1 served)",
        );
    }
    let note = if missing_kinds.is_empty() {
        String::new()
    } else {
        format!(" ({} not served)", missing_kinds.join(", "))
    };
    if problems.is_empty() {
        check.pass(format!(
            "{} object(s) in {} namespace(s) routed{note}",
            sources.len(),
            namespaces.len()
        ))
    } else {
        let (ns, name) = config
            .route_controller
            .split_once('/')
            .unwrap_or(("kubeflow", &config.route_controller));
        check
            .fail(
                format!("{} routing problem(s){note}: those URLs 404", problems.len()),
                format!(
                    "route-controller puts these back within seconds when it runs: kubectl -n {ns} logs deploy/{name} (look for `reconcile failed`), kubectl -n NS describe notebook NAME (RouteFailed events); kubectl -n {ns} get lease kflite-route-controller shows the active replica"
                ),
            )
            .with_problems(problems)
    }
}

/// The gateway's verdict on each route: `status.parents[].conditions`.
fn gateway_status(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = Check::new(
        "gateway-status",
        "the Gateway accepted every HTTPRoute and resolved its backends",
    );
    let Some(routes) = &s.routes else {
        return check.skip("HTTPRoute is not served (see dashboard-route)");
    };
    let mut problems = Vec::new();
    let mut reasons = BTreeSet::new();
    for route in routes {
        let parents: Vec<&Value> = items(route, "/status/parents").collect();
        if parents.is_empty() {
            problems.push(format!(
                "HTTPRoute {}: no Gateway has reported on it (its parentRef names no Gateway the controller runs?)",
                qualified(route)
            ));
            reasons.insert("NoStatus");
            continue;
        }
        for parent in parents {
            let gateway = parent
                .pointer("/parentRef/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            for c in items(parent, "/conditions") {
                let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(kind, "Accepted" | "ResolvedRefs")
                    || c.get("status").and_then(Value::as_str) != Some("False")
                {
                    continue;
                }
                let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
                let message = c.get("message").and_then(Value::as_str).unwrap_or("");
                reasons.insert(match reason {
                    "RefNotPermitted" => "RefNotPermitted",
                    "BackendNotFound" => "BackendNotFound",
                    "NotAllowedByListeners" | "NoMatchingListenerHostname" => "Listeners",
                    _ => "Other",
                });
                problems.push(
                    format!(
                        "HTTPRoute {} on Gateway {gateway}: {kind}=False ({reason}) {message}",
                        qualified(route)
                    )
                    .trim_end()
                    .to_string(),
                );
            }
        }
    }
    if problems.is_empty() {
        return check.pass(format!(
            "{} HTTPRoute(s) accepted with resolved backends",
            routes.len()
        ));
    }
    let mut fixes = vec![format!(
        "kubectl -n {} describe httproute NAME shows the Gateway's conditions",
        config.route_namespace
    )];
    for reason in reasons {
        fixes.push(
            match reason {
                "NoStatus" => "no status: check the route's parentRefs name the Gateway (kubectl get gateway -A) and that the Gateway controller runs (Cilium: kubectl -n kube-system logs deploy/cilium-operator)",
                "RefNotPermitted" => "RefNotPermitted: the backend's namespace lacks the ReferenceGrant (see app-routes)",
                "BackendNotFound" => "BackendNotFound: the Service is missing or has no such port",
                "Listeners" => "NotAllowedByListeners/NoMatchingListenerHostname: the Gateway's listener must allow routes from this namespace and serve the route's hostname",
                _ => "read the condition's message",
            }
            .to_string(),
        );
    }
    check
        .fail(
            format!(
                "{} HTTPRoute problem(s) reported by the Gateway: those paths 404 or 500",
                problems.len()
            ),
            fixes.join("; "),
        )
        .with_problems(problems)
}

/// Pods of a Notebook (the StatefulSet's pods carry `notebook-name`).
fn notebook_pods<'a>(s: &'a Snapshot, ns: &'a str, nb: &'a str) -> impl Iterator<Item = &'a Value> {
    s.pods
        .iter()
        .filter(move |p| namespace_of(p) == ns && label(p, "notebook-name") == Some(nb))
}

fn gpu_notebooks(s: &Snapshot) -> Check {
    let check = Check::new(
        "gpu-notebooks",
        "GPU notebooks run with runtimeClassName nvidia on a GPU node",
    );
    let Some(notebooks) = &s.notebooks else {
        return check.skip("the Notebook kind is not served");
    };
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut fixes = BTreeSet::new();
    let mut gpu = 0;
    for nb in notebooks.iter().filter(|n| !is_deleting(n)) {
        let (ns, nb_name) = (namespace_of(nb), name(nb));
        let mut objects = vec![nb];
        objects.extend(notebook_pods(s, ns, nb_name));
        let mut asks_gpu = false;
        for obj in objects {
            let text = match serde_yaml_ng::to_string(obj) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{}: cannot encode for the lint: {e}", qualified(obj)));
                    continue;
                }
            };
            let findings = match gpu_probe::lint::lint_yaml(&qualified(obj), &text) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(e.to_string());
                    continue;
                }
            };
            asks_gpu |= !findings.is_empty();
            for f in findings {
                let line = format!("{}: {}", f.object, f.message);
                match f.status {
                    LintStatus::Fail => failures.push(line),
                    LintStatus::Warn => warnings.push(line),
                    LintStatus::Ok | LintStatus::Skip => continue,
                }
                fixes.extend(f.fix);
            }
        }
        if asks_gpu {
            gpu += 1;
            for image in crate::notebook::images(nb) {
                if let Some(w) = crate::notebook::sm120_warning(&image) {
                    warnings.push(format!("Notebook {ns}/{nb_name}: {w}"));
                    fixes.insert(crate::notebook::SM120_FIX.to_string());
                }
            }
        }
    }
    let fix = fixes.into_iter().collect::<Vec<_>>().join("; ");
    if !failures.is_empty() {
        let n = failures.len();
        failures.extend(warnings);
        check
            .fail(
                format!("{n} GPU pod-spec problem(s): those notebooks see no GPU (\"Found no NVIDIA driver\") or never schedule"),
                format!("{fix} (edit the Notebook: kubectl -n NS edit notebook NAME, then restart it)"),
            )
            .with_problems(failures)
    } else if !warnings.is_empty() {
        check
            .warn(
                format!("{gpu} GPU notebook(s), {} warning(s)", warnings.len()),
                fix,
            )
            .with_problems(warnings)
    } else {
        check.pass(format!(
            "{gpu} GPU notebook(s): runtimeClassName nvidia, GPU node selector, equal requests/limits"
        ))
    }
}

fn pipelines_namespaces(s: &Snapshot, config: &DoctorConfig) -> Check {
    let check = Check::new(
        "pipelines-namespaces",
        "pipelines namespaces have the artifact Secret and KFP ConfigMaps",
    );
    let mut problems = Vec::new();
    for (ns, state) in &s.pipelines {
        let mut missing = Vec::new();
        if !state.has_secret {
            missing.push(format!("Secret {ARTIFACT_SECRET}"));
        }
        missing.extend(
            KFP_CONFIGMAPS
                .iter()
                .filter(|cm| !state.configmaps.contains(**cm))
                .map(|cm| format!("ConfigMap {cm}")),
        );
        if !missing.is_empty() {
            problems.push(format!("namespace {ns}: missing {}", missing.join(", ")));
        }
    }
    if s.pipelines.is_empty() {
        return check.pass(format!("no namespace has {PIPELINES_ENABLED_LABEL}=true"));
    }
    if problems.is_empty() {
        check.pass(format!(
            "{} namespace(s) with {ARTIFACT_SECRET} and {}",
            s.pipelines.len(),
            KFP_CONFIGMAPS.join(", ")
        ))
    } else {
        let (ns, name) = config
            .artifact_controller
            .split_once('/')
            .unwrap_or(("kubeflow", &config.artifact_controller));
        check
            .fail(
                format!("{} namespace(s) incomplete: pipeline runs there hang at Init", problems.len()),
                format!(
                    "the artifact controller writes these: kubectl -n {ns} logs deploy/{name}; kubectl describe namespace NS (Events); if SeaweedFS's IAM port is unreachable, see network-policies"
                ),
            )
            .with_problems(problems)
    }
}

/// NetworkPolicies that only admit istio-system and so block a hostNetwork gateway.
pub const BLOCKING_POLICIES: [&str; 2] = ["seaweedfs", "centraldashboard"];

fn network_policies(s: &Snapshot) -> Check {
    let check = Check::new(
        "network-policies",
        "NetworkPolicies seaweedfs and centraldashboard are absent",
    );
    let found: Vec<String> = s
        .network_policies
        .iter()
        .filter(|p| BLOCKING_POLICIES.contains(&name(p)))
        .map(|p| format!("NetworkPolicy {}", qualified(p)))
        .collect();
    if found.is_empty() {
        return check.pass("neither exists");
    }
    let deletes: Vec<String> = s
        .network_policies
        .iter()
        .filter(|p| BLOCKING_POLICIES.contains(&name(p)))
        .map(|p| format!("kubectl -n {} delete networkpolicy {}", namespace_of(p), name(p)))
        .collect();
    check
        .fail(
            format!("{} Istio-era NetworkPolicy(ies) present: they admit only istio-system, so the hostNetwork Cilium envoy (and the profile controller on SeaweedFS's IAM port) is blocked", found.len()),
            format!("{}; and keep the `$patch: delete` for them in the overlay", deletes.join("; ")),
        )
        .with_problems(found)
}

fn istio(s: &Snapshot) -> Check {
    let check = Check::new("istio", "stub Istio CRDs exist and no Istio objects do");
    let mut missing_crds = Vec::new();
    let mut objects = Vec::new();
    for state in &s.istio {
        if !state.crd_exists {
            missing_crds.push(format!(
                "CRD {} is missing: {} cannot start its informers and crash-loops",
                state.kind.crd_name(),
                state.kind.needed_by.join(", ")
            ));
        }
        objects.extend(state.objects.iter().map(|o| {
            format!(
                "{} {o} exists, but nothing serves it without Istio",
                state.kind.kind
            )
        }));
    }
    if missing_crds.is_empty() && objects.is_empty() {
        return check.pass(format!("{} stub CRDs, no Istio objects", s.istio.len()));
    }
    let mut fixes = Vec::new();
    if !missing_crds.is_empty() {
        fixes.push(
            "apply the stub Istio CRDs (stub-istio-crds.yaml in the overlay; kfmodel::istio::stub_crds)"
                .to_string(),
        );
    }
    if !objects.is_empty() {
        let kinds: BTreeSet<String> = s
            .istio
            .iter()
            .filter(|st| !st.objects.is_empty())
            .map(|st| format!("{}.{}", st.kind.plural, st.kind.group))
            .collect();
        fixes.push(format!(
            "delete them (kubectl delete {} --all -A) and keep the overlay's `$patch: delete` for Istio kinds",
            kinds.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    let n = missing_crds.len() + objects.len();
    missing_crds.extend(objects);
    check
        .fail(format!("{n} Istio problem(s)"), fixes.join("; "))
        .with_problems(missing_crds)
}

fn names(s: &Snapshot) -> Check {
    let check = Check::new("names", "no Profile or Namespace name contains `$(`");
    let mut problems = Vec::new();
    for p in s.profiles.iter().flatten() {
        if name(p).contains("$(") {
            problems.push(format!("Profile {:?}: kustomize var never substituted", name(p)));
        }
        if let Some(owner) = p.pointer("/spec/owner/name").and_then(Value::as_str)
            && owner.contains("$(")
        {
            problems.push(format!(
                "Profile {:?}: owner {owner:?} never substituted",
                name(p)
            ));
        }
    }
    for n in &s.namespaces {
        if name(n).contains("$(") {
            problems.push(format!(
                "Namespace {:?}: kustomize var never substituted",
                name(n)
            ));
        }
    }
    if problems.is_empty() {
        return check.pass(format!(
            "{} Profile(s), {} Namespace(s) checked",
            s.profiles.as_ref().map_or(0, Vec::len),
            s.namespaces.len()
        ));
    }
    check
        .fail(
            format!("{} unsubstituted name(s): common/user-namespace/base was applied without its patch", problems.len()),
            "delete the object (kubectl delete profile '$(profile-name)') and create the profile properly: kfctl profile add EMAIL; keep the overlay's JSON patch that renames the Profile",
        )
        .with_problems(problems)
}

fn claims(pod: &Value) -> impl Iterator<Item = &str> {
    items(pod, "/spec/volumes").filter_map(|v| {
        v.pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
    })
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

fn node(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// `Pending`, or `Pending (ContainerCreating)` with the first waiting reason.
fn stuck_state(pod: &Value) -> String {
    let reason = items(pod, "/status/containerStatuses")
        .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
    match reason {
        Some(r) => format!("Pending ({r})"),
        None => "Pending".into(),
    }
}

fn pvcviewer_rwo(s: &Snapshot) -> Check {
    let check = Check::new(
        "pvcviewer-rwo",
        "no PVC viewer is stuck on a ReadWriteOnce volume a notebook holds",
    );
    let Some(viewers) = &s.pvcviewers else {
        return check.skip("the PVCViewer kind is not served");
    };
    let mut problems = Vec::new();
    let mut stop = BTreeSet::new();
    for viewer in viewers.iter().filter(|v| !is_deleting(v)) {
        let ns = namespace_of(viewer);
        let Some(pvc_name) = viewer.pointer("/spec/pvc").and_then(Value::as_str) else {
            continue;
        };
        let Some(pvc) = s
            .pvcs
            .iter()
            .find(|p| namespace_of(p) == ns && name(p) == pvc_name)
        else {
            continue;
        };
        let modes: Vec<&str> = items(pvc, "/spec/accessModes")
            .filter_map(Value::as_str)
            .collect();
        if modes
            .iter()
            .any(|m| *m == "ReadWriteMany" || *m == "ReadOnlyMany")
        {
            continue;
        }
        let mounting: Vec<&Value> = s
            .pods
            .iter()
            .filter(|p| namespace_of(p) == ns && claims(p).any(|c| c == pvc_name))
            .collect();
        // The viewer's pods: not a notebook's, mounting the viewed claim, not running.
        for stuck in mounting
            .iter()
            .filter(|p| label(p, "notebook-name").is_none() && phase(p) == "Pending")
        {
            for holder in mounting.iter().filter(|p| phase(p) == "Running") {
                if node(holder).is_some() && node(holder) == node(stuck) {
                    continue; // same node: RWO allows it
                }
                let owner = label(holder, "notebook-name")
                    .map(|nb| format!("notebook {nb}"))
                    .unwrap_or_else(|| format!("pod {}", name(holder)));
                if let Some(nb) = label(holder, "notebook-name") {
                    stop.insert(format!(
                        "kubectl -n {ns} annotate notebook {nb} kubeflow-resource-stopped=true"
                    ));
                }
                problems.push(format!(
                    "PVCViewer {ns}/{}: pod {} is {} on {}; PVC {pvc_name} is ReadWriteOnce and attached to running {owner} on {}",
                    name(viewer),
                    name(stuck),
                    stuck_state(stuck),
                    node(stuck).map(|n| format!("node {n}")).unwrap_or_else(|| "no node yet".into()),
                    node(holder).unwrap_or("another node"),
                ));
            }
        }
    }
    if problems.is_empty() {
        return check.pass(format!(
            "{} PVC viewer(s), none waiting on a held RWO volume",
            viewers.len()
        ));
    }
    check
        .fail(
            format!("{} PVC viewer(s) stuck on a ReadWriteOnce volume", problems.len()),
            format!(
                "stop the notebook ({}), or use an RWX storage class for the volume (or set spec.rwoScheduling: true on the PVCViewer so it lands on the notebook's node)",
                stop.into_iter().collect::<Vec<_>>().join("; ")
            ),
        )
        .with_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefix_defaults_follow_gateway_api() {
        assert_eq!(prefix_of(&json!({"path": {"value": "/x/"}})), Some("/x/"));
        assert_eq!(prefix_of(&json!({"path": {}})), Some("/"));
        assert_eq!(
            prefix_of(&json!({"path": {"type": "Exact", "value": "/x"}})),
            None
        );
        assert_eq!(prefix_of(&json!({"headers": []})), None);
    }

    #[test]
    fn rewrite_kinds() {
        let rule = |path: Value| json!({"filters": [{"type": "URLRewrite", "urlRewrite": {"path": path}}]});
        assert_eq!(
            rewrite_of(&rule(
                json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"})
            )),
            Some("/".into())
        );
        assert_eq!(
            rewrite_of(&rule(json!({"type": "ReplaceFullPath", "replaceFullPath": "/a"}))),
            Some("full path /a".into())
        );
        assert_eq!(rewrite_of(&json!({"filters": []})), None);
    }

    fn dashboard(katib_rewrite: Option<&str>) -> Snapshot {
        let rule = |prefix: &str, rewrite: Option<&str>| {
            let filters: Vec<Value> = rewrite
                .map(|to| json!({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": to}}}))
                .into_iter()
                .collect();
            json!({"matches": [{"path": {"type": "PathPrefix", "value": prefix}}], "filters": filters})
        };
        let rules: Vec<Value> = DASHBOARD_PREFIXES
            .iter()
            .map(|(p, rw)| match (*p, rw) {
                ("/katib/", _) => rule(p, katib_rewrite),
                (_, Some(true)) => rule(p, Some("/")),
                _ => rule(p, None),
            })
            .collect();
        Snapshot {
            routes: Some(vec![json!({
                "metadata": {"name": "kubeflow-dashboard", "namespace": "kubeflow"},
                "spec": {"rules": rules},
            })]),
            ..Default::default()
        }
    }

    #[test]
    fn every_check_declares_what_it_reads() {
        for c in run(&Snapshot::default(), &DoctorConfig::default()) {
            assert!(!reads(&c.id).is_empty(), "{} reads nothing?", c.id);
        }
        let stubs: Vec<&str> = kfmodel::istio::STUB_KINDS.iter().map(|k| k.plural).collect();
        assert!(stubs.iter().all(|p| reads("istio").contains(p)), "{stubs:?}");
    }

    #[test]
    fn katib_may_keep_its_prefix_but_not_lose_it() {
        let config = DoctorConfig::default();
        assert_eq!(dashboard_route(&dashboard(None), &config).status, Status::Pass);
        assert_eq!(
            dashboard_route(&dashboard(Some("/katib/")), &config).status,
            Status::Pass
        );
        let lost = dashboard_route(&dashboard(Some("/")), &config);
        assert_eq!(lost.status, Status::Fail);
        assert_eq!(lost.problems.len(), 1, "{:?}", lost.problems);
    }

    #[test]
    fn empty_cluster_fails_on_missing_pieces_not_panics() {
        let checks = run(&Snapshot::default(), &DoctorConfig::default());
        let status = |id: &str| checks.iter().find(|c| c.id == id).map(|c| c.status);
        assert_eq!(status("dashboard-route"), Some(Status::Fail));
        assert_eq!(status("dashboard-backends"), Some(Status::Skip));
        assert_eq!(status("route-controller"), Some(Status::Fail));
        assert_eq!(status("names"), Some(Status::Pass));
        assert_eq!(status("pvcviewer-rwo"), Some(Status::Skip));
        for c in &checks {
            assert!(!c.summary.is_empty(), "{} has no summary", c.id);
            if c.status == Status::Fail {
                assert!(
                    c.fix.as_deref().is_some_and(|f| !f.is_empty()),
                    "{} has no fix",
                    c.id
                );
            }
        }
    }
}
