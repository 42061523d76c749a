//! The HTTP front: routing, content negotiation, verbs, watch streams,
//! tables, and the admin endpoint for faults.

use crate::Shared;
use crate::faults::{FailRule, LatencyRule, Target};
use crate::registry::{self, ResourceType};
use crate::select::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{Change, DeleteOpts, FieldValidation, ListOpts, WriteOpts, with_version};
use crate::table;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    raw_json(code, v, "application/json")
}

fn raw_json(code: u16, v: &Value, ct: &str) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(h) = header::HeaderValue::from_str(ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, h);
    }
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if e.code == 429 || e.code == 503 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// A parsed resource URL.
#[derive(Debug, Default)]
struct ResPath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch: bool,
}

enum Route {
    Version,
    Health,
    CoreDiscovery,
    GroupsDiscovery,
    Group(String),
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3(String),
    Resource(ResPath),
    Admin(Vec<String>),
    Unknown,
}

fn parse_route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreDiscovery,
        ["apis"] => Route::GroupsDiscovery,
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["kube-sim", rest @ ..] => Route::Admin(rest.iter().map(|s| s.to_string()).collect()),
        _ => Route::Unknown,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch, rest) = match rest.split_first() {
        Some((&"watch", r)) => (true, r),
        _ => (false, rest),
    };
    let mut p = ResPath {
        group: group.into(),
        version: version.into(),
        watch,
        ..Default::default()
    };
    let ns_sub = group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let tail: &[&str] = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() && !ns_sub => {
            p.namespace = Some(ns.to_string());
            tail
        }
        _ => rest,
    };
    match tail {
        [plural] => p.plural = plural.to_string(),
        [plural, name] => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
        }
        [plural, name, sub] => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
            p.sub = Some(sub.to_string());
        }
        _ => return Route::Unknown,
    }
    Route::Resource(p)
}

fn query(req_uri: &http::Uri) -> HashMap<String, String> {
    req_uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn verb_of(method: &Method, p: &ResPath, q: &HashMap<String, String>) -> &'static str {
    let watch = p.watch || q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match *method {
        Method::GET if p.name.is_some() && !watch => "get",
        Method::GET if watch => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            ))));
        }
    };
    let path = parts.uri.path().to_string();
    let q = query(&parts.uri);
    let route = parse_route(&path);
    let (verb, resource, group) = match &route {
        Route::Resource(p) => (verb_of(&parts.method, p, &q), p.plural.clone(), p.group.clone()),
        _ => (
            if parts.method == Method::GET {
                "get"
            } else {
                "unknown"
            },
            String::new(),
            String::new(),
        ),
    };
    tracing::debug!(method = %parts.method, uri = %parts.uri, verb, "request");
    if let Route::Resource(_) = route {
        shared.count_request(verb, &resource, &group);
    }
    if !matches!(route, Route::Admin(_)) {
        let target = Target {
            verb,
            resource: &resource,
            group: &group,
        };
        let (delay, failure) = {
            let mut f = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
            (f.delay(&target), f.take_failure(&target))
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(e) = failure {
            tracing::info!(verb, resource, code = e.code, "injected failure");
            return Ok(error_response(&e));
        }
    }
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let resp = match route {
        Route::Version => json_response(200, &version_info()),
        Route::Health => {
            let mut r = Response::new(full("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Route::CoreDiscovery | Route::GroupsDiscovery => {
            let core = matches!(route, Route::CoreDiscovery);
            let st = shared.store();
            if wants_aggregated(&accept) {
                raw_json(200, &registry::aggregated(&st.reg, core), AGGREGATED)
            } else if core {
                json_response(
                    200,
                    &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]}),
                )
            } else {
                json_response(200, &registry::group_list(&st.reg))
            }
        }
        Route::Group(g) => match registry::group(&shared.store().reg, &g) {
            Some(v) => json_response(200, &v),
            None => error_response(&ApiError::no_route()),
        },
        Route::GroupVersion(g, v) => match registry::resource_list(&shared.store().reg, &g, &v) {
            Some(v) => json_response(200, &v),
            None => error_response(&ApiError::no_route()),
        },
        Route::OpenApiV2 => {
            // An empty protobuf message is a valid, empty OpenAPI v2 document
            // (kubectl only reads v2 as protobuf); it carries no schemas.
            let mut r = Response::new(full(Bytes::new()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            );
            r
        }
        Route::OpenApiV3Root => json_response(200, &openapi_root(&shared)),
        Route::OpenApiV3(p) => openapi_gv(&shared, &p),
        Route::Admin(segs) => admin(&shared, &parts.method, &segs, &bytes),
        Route::Unknown => error_response(&ApiError::no_route()),
        Route::Resource(p) => {
            let req = Req {
                method: parts.method.clone(),
                q,
                accept,
                ctype,
                ua,
                body: bytes,
                verb,
            };
            match serve_resource(&shared, p, req).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            }
        }
    };
    Ok(resp)
}

fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .any(|a| a.contains("as=APIGroupDiscoveryList") && a.contains("v=v2") && !a.contains("v=v2beta1"))
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": "v1.37.0-kube-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// OpenAPI v3 discovery: one entry per served group/version.
fn openapi_root(shared: &Shared) -> Value {
    let st = shared.store();
    let mut paths = serde_json::Map::new();
    for (g, vs) in st.reg.groups() {
        for v in vs {
            let p = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=0")}),
            );
        }
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group/version: its PATCH
/// operations, declaring the `fieldValidation` parameter (kubectl looks for
/// it to decide on server-side field validation), and CRD schemas.
fn openapi_gv(shared: &Shared, p: &str) -> Response<Body> {
    let st = shared.store();
    let (g, v) = match p.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return error_response(&ApiError::no_route()),
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
    ]);
    let types: Vec<&ResourceType> = st
        .reg
        .all()
        .iter()
        .filter(|t| t.group == g && t.serves(&v))
        .collect();
    if types.is_empty() {
        return error_response(&ApiError::no_route());
    }
    for t in types {
        let prefix = if g.is_empty() {
            format!("/api/{v}")
        } else {
            format!("/apis/{g}/{v}")
        };
        let coll = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{prefix}/{}", t.plural)
        };
        let gvk = json!([{"group": t.group, "version": v, "kind": t.kind}]);
        let op = |verb: &str| json!({"operationId": format!("{verb}{}", t.kind), "parameters": params, "x-kubernetes-group-version-kind": gvk[0], "responses": {"200": {"description": "OK"}}});
        paths.insert(coll.clone(), json!({"post": op("create"), "get": op("list")}));
        paths.insert(
            format!("{coll}/{{name}}"),
            json!({"get": op("read"), "put": op("replace"), "patch": op("patch"), "delete": op("delete")}),
        );
        let name = format!(
            "{}.{}.{}",
            if t.group.is_empty() {
                "io.k8s.api.core"
            } else {
                &t.group
            },
            v,
            t.kind
        );
        let mut schema = t
            .schema(&v)
            .cloned()
            .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = gvk;
        schemas.insert(name, schema);
    }
    let doc = json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"}, "paths": paths, "components": {"schemas": schemas}});
    json_response(200, &doc)
}

fn admin(shared: &Shared, method: &Method, segs: &[String], body: &[u8]) -> Response<Body> {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
    }
    match (method, segs.as_slice()) {
        (&Method::POST, ["faults", "fail"]) => match parse::<FailRule>("fail rule", body) {
            Ok(rule) => {
                shared.fail_next(rule);
                json_response(200, &json!({"ok": true}))
            }
            Err(e) => error_response(&e),
        },
        (&Method::POST, ["faults", "latency"]) => match parse::<LatencyRule>("latency rule", body) {
            Ok(rule) => {
                shared.add_latency(rule);
                json_response(200, &json!({"ok": true}))
            }
            Err(e) => error_response(&e),
        },
        (&Method::POST, ["faults", "cut-watches"]) => {
            shared.cut_watches();
            json_response(200, &json!({"ok": true}))
        }
        (&Method::POST, ["faults", "expire"]) => {
            shared.expire_resource_versions();
            json_response(200, &json!({"ok": true}))
        }
        (&Method::DELETE, ["faults"]) => {
            shared.clear_faults();
            json_response(200, &json!({"ok": true}))
        }
        (&Method::GET, ["objects"]) => {
            let objs: Vec<Value> = shared
                .store()
                .all_objects()
                .iter()
                .map(|o| (**o).clone())
                .collect();
            json_response(200, &json!({"items": objs}))
        }
        _ => error_response(&ApiError::no_route()),
    }
}

struct Req {
    method: Method,
    q: HashMap<String, String>,
    accept: String,
    ctype: String,
    ua: String,
    body: Bytes,
    verb: &'static str,
}

impl Req {
    fn flag(&self, k: &str) -> bool {
        self.q.get(k).is_some_and(|v| v == "true" || v == "1")
    }

    fn dry_run(&self) -> bool {
        self.q.get("dryRun").is_some_and(|v| v == "All")
    }

    /// fieldManager, else what the API server derives from the user agent.
    fn manager(&self) -> String {
        match self.q.get("fieldManager") {
            Some(m) if !m.is_empty() => m.clone(),
            _ => self
                .ua
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    fn write_opts(&self, manager: String) -> ApiResult<WriteOpts> {
        let validation = match self.q.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        Ok(WriteOpts {
            dry_run: self.dry_run(),
            manager,
            validation,
            warnings: Default::default(),
        })
    }

    fn parse_body(&self) -> ApiResult<Value> {
        let ct = self.ctype.split(';').next().unwrap_or("").trim();
        if ct.contains("protobuf") || ct.contains("cbor") {
            return Err(ApiError::unsupported_media(ct));
        }
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        match serde_json::from_slice(&self.body) {
            Ok(v) => Ok(v),
            Err(_) if ct.contains("yaml") => serde_yaml_ng::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
            Err(je) => Err(ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {je}"
            ))),
        }
    }

    fn list_opts(&self, t: &ResourceType, version: &str) -> ApiResult<ListOpts> {
        Ok(ListOpts {
            labels: LabelSelector::parse(self.q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
            fields: FieldSelector::parse(
                self.q.get("fieldSelector").map(String::as_str).unwrap_or(""),
                &t.kind,
                &t.selectable_fields(version),
            )?,
            limit: self.q.get("limit").and_then(|l| l.parse().ok()),
            continue_token: self.q.get("continue").filter(|c| !c.is_empty()).cloned(),
        })
    }
}

async fn serve_resource(shared: &Arc<Shared>, p: ResPath, req: Req) -> ApiResult<Response<Body>> {
    let t = shared
        .store()
        .reg
        .lookup(&p.group, &p.version, &p.plural)
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    if (!t.namespaced && p.namespace.is_some()) || (t.namespaced && p.namespace.is_none() && p.name.is_some())
    {
        return Err(ApiError::no_route());
    }
    let status = match p.sub.as_deref() {
        None => false,
        Some("status") if t.status_for(&p.version) => true,
        Some("finalize") if t.kind == "Namespace" && req.verb == "update" => {
            return finalize_namespace(shared, &t, &p, &req);
        }
        Some("scale") if t.scale_paths(&p.version).is_some() => return scale(shared, &t, &p, &req),
        Some(_) => return Err(ApiError::no_route()),
    };
    let ns = p.namespace.clone().unwrap_or_default();
    let v = p.version.as_str();
    if t.review {
        return review(&t, v, &req);
    }
    match req.verb {
        "get" => {
            let name = p.name.as_deref().unwrap_or("");
            let o = shared.store().get(&t, &ns, name)?;
            Ok(render_one(&t, v, &o, &req))
        }
        "list" => {
            let opts = req.list_opts(&t, v)?;
            let res = shared.store().list(&t, p.namespace.as_deref(), &opts)?;
            Ok(render_list(&t, v, &res, &req))
        }
        "watch" => watch(shared, &t, &p, &req),
        "create" => {
            if p.name.is_some() {
                return Err(ApiError::method_not_allowed());
            }
            let body = req.parse_body()?;
            let opts = req.write_opts(req.manager())?;
            let o = shared.store().create(&t, v, &ns, body, &opts)?;
            Ok(with_warnings(json_response(201, &with_version(&o, &t, v)), &opts))
        }
        "update" | "patch" => {
            let name = p.name.as_deref().unwrap_or("");
            let body = req.parse_body()?;
            let ct = req.ctype.split(';').next().unwrap_or("").trim().to_string();
            let is_apply = req.verb == "patch" && ct == "application/apply-patch+yaml";
            let manager = if is_apply {
                match req.q.get("fieldManager") {
                    Some(m) if !m.is_empty() => m.clone(),
                    _ => {
                        return Err(ApiError::new(
                            422,
                            "Invalid",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        ));
                    }
                }
            } else {
                req.manager()
            };
            if req.verb == "patch" && !is_apply && req.flag("force") {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                ));
            }
            let change = if req.verb == "update" {
                Change::Replace(body.clone())
            } else {
                match ct.as_str() {
                    "application/merge-patch+json" => Change::MergePatch(&body),
                    "application/json-patch+json" => Change::JsonPatch(&body),
                    "application/strategic-merge-patch+json" if t.is_crd() => {
                        return Err(ApiError::new(
                            415,
                            "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                        ));
                    }
                    "application/strategic-merge-patch+json" => Change::StrategicMerge(&body),
                    "application/apply-patch+yaml" => Change::Apply {
                        body: &body,
                        force: req.flag("force"),
                    },
                    other => return Err(ApiError::unsupported_media(other)),
                }
            };
            let opts = req.write_opts(manager)?;
            let (existed, o) = {
                let mut st = shared.store();
                let existed = st.get_obj(&t.store_gr(), &ns, name).is_some();
                (existed, st.modify(&t, v, &ns, name, change, status, &opts)?)
            };
            let code = if existed { 200 } else { 201 };
            Ok(with_warnings(
                json_response(code, &with_version(&o, &t, v)),
                &opts,
            ))
        }
        "delete" => {
            let name = p.name.as_deref().unwrap_or("");
            let dopts = delete_opts(&req)?;
            let (o, _gone) = shared.store().delete(&t, v, &ns, name, &dopts)?;
            Ok(json_response(200, &o))
        }
        "deletecollection" => {
            let opts = req.list_opts(&t, v)?;
            let dopts = delete_opts(&req)?;
            let items = shared
                .store()
                .delete_collection(&t, v, p.namespace.as_deref(), &opts, &dopts)?;
            let res = crate::store::ListResult {
                items,
                rv: shared.store().rv,
                continue_token: None,
                remaining: None,
            };
            Ok(render_list(&t, v, &res, &req))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A label selector as a string (`a=b,c in (d)`), from a metav1.LabelSelector or a string.
fn selector_string(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    let mut parts: Vec<String> = v
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in v
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let vals: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    parts.join(",")
}

/// The scale subresource (autoscaling/v1 Scale) over a replicas field.
fn scale(shared: &Arc<Shared>, t: &ResourceType, p: &ResPath, req: &Req) -> ApiResult<Response<Body>> {
    let Some(paths) = t.scale_paths(&p.version) else {
        return Err(ApiError::no_route());
    };
    let ns = p.namespace.clone().unwrap_or_default();
    let name = p.name.as_deref().unwrap_or("");
    let ptr = |path: &str| path.replace('.', "/");
    let to_scale = |o: &Value| -> Value {
        let m = o.get("metadata").cloned().unwrap_or(json!({}));
        let mut meta = serde_json::Map::new();
        for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let Some(v) = m.get(k) {
                meta.insert(k.into(), v.clone());
            }
        }
        let mut status = json!({"replicas": o.pointer(&ptr(&paths.status)).cloned().unwrap_or(json!(0))});
        if let Some(sel) = paths.selector.as_deref().and_then(|s| o.pointer(&ptr(s))) {
            status["selector"] = json!(selector_string(sel));
        }
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
               "spec": {"replicas": o.pointer(&ptr(&paths.spec)).cloned().unwrap_or(json!(0))}, "status": status})
    };
    let current = shared.store().get(t, &ns, name)?;
    let mut sc = to_scale(&current);
    match req.verb {
        "get" => return Ok(json_response(200, &sc)),
        "update" => sc = req.parse_body()?,
        "patch" => {
            let body = req.parse_body()?;
            match req.ctype.split(';').next().unwrap_or("").trim() {
                "application/json-patch+json" => crate::patch::json_patch(&mut sc, &body)?,
                "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml" => crate::patch::merge_patch(&mut sc, &body)?,
                other => return Err(ApiError::unsupported_media(other)),
            }
        }
        _ => return Err(ApiError::method_not_allowed()),
    }
    let replicas = sc
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                &[("spec.replicas".into(), "Required value".into())],
            )
        })?;
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    if let Some(rv) = sc
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        && current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            != Some(rv)
    {
        return Err(ApiError::modified(&t.gr(), name));
    }
    // Build {"spec": {"replicas": n}} along the spec replicas path.
    let mut patch = json!(replicas);
    for seg in paths.spec.trim_start_matches('.').split('.').rev() {
        patch = json!({ seg: patch });
    }
    let opts = req.write_opts(req.manager())?;
    let o = shared
        .store()
        .modify(t, &p.version, &ns, name, Change::MergePatch(&patch), false, &opts)?;
    Ok(json_response(200, &to_scale(&o)))
}

/// `PUT /api/v1/namespaces/<name>/finalize`: only spec.finalizers changes.
fn finalize_namespace(
    shared: &Arc<Shared>,
    t: &ResourceType,
    p: &ResPath,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let body = req.parse_body()?;
    let finalizers = body.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
    let patch = json!({"spec": {"finalizers": finalizers}});
    let opts = req.write_opts(req.manager())?;
    let name = p.name.as_deref().unwrap_or("");
    let o = shared
        .store()
        .modify(t, &p.version, "", name, Change::MergePatch(&patch), false, &opts)?;
    Ok(json_response(200, &with_version(&o, t, &p.version)))
}

/// Access and token reviews: kube-sim has no authentication or
/// authorization, so everyone is the cluster admin and everything is allowed.
fn review(t: &ResourceType, v: &str, req: &Req) -> ApiResult<Response<Body>> {
    if req.verb != "create" {
        return Err(ApiError::method_not_allowed());
    }
    let mut body = req.parse_body()?;
    let user = json!({"username": "kube-sim-admin", "groups": ["system:masters", "system:authenticated"]});
    body["status"] = match t.kind.as_str() {
        "TokenReview" => json!({"authenticated": true, "user": user, "audiences": []}),
        "SelfSubjectReview" => json!({"userInfo": user}),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => json!({"allowed": true, "reason": "kube-sim authorizes every request"}),
    };
    body["apiVersion"] = json!(t.api_version(v));
    body["kind"] = json!(t.kind);
    if body.get("metadata").is_none() {
        body["metadata"] = json!({});
    }
    Ok(json_response(201, &body))
}

/// `Warning: 299 - "..."` headers, which kubectl prints.
fn with_warnings(mut r: Response<Body>, opts: &WriteOpts) -> Response<Body> {
    for w in opts.warnings.borrow().iter() {
        let quoted = serde_json::to_string(w).unwrap_or_default();
        if let Ok(h) = header::HeaderValue::from_str(&format!("299 - {quoted}")) {
            r.headers_mut().append(header::WARNING, h);
        }
    }
    r
}

fn delete_opts(req: &Req) -> ApiResult<DeleteOpts> {
    let mut d = DeleteOpts {
        dry_run: req.dry_run(),
        ..Default::default()
    };
    if let Some(p) = req.q.get("propagationPolicy") {
        d.propagation = Some(p.clone());
    }
    if !req.body.is_empty() && req.method == Method::DELETE {
        let b: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("DeleteOptions: {e}")))?;
        if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
            d.propagation = Some(p.into());
        }
        if b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            d.propagation = Some("Orphan".into());
        }
        d.uid = b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        d.resource_version = b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            d.dry_run = true;
        }
    }
    Ok(d)
}

enum As {
    Object,
    Table,
    Meta,
}

fn wants(accept: &str) -> As {
    // The first acceptable representation wins, as in the API server's negotiation.
    for a in accept.split(',') {
        if a.contains("as=Table") {
            return As::Table;
        }
        if a.contains("as=PartialObjectMetadata") {
            return As::Meta;
        }
        let mt = a.split(';').next().unwrap_or("").trim();
        if matches!(mt, "application/json" | "*/*" | "application/*" | "") {
            return As::Object;
        }
    }
    As::Object
}

fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

fn render_one(t: &ResourceType, v: &str, o: &Value, req: &Req) -> Response<Body> {
    match wants(&req.accept) {
        As::Object => json_response(200, &with_version(o, t, v)),
        As::Meta => json_response(200, &partial(o)),
        As::Table => json_response(
            200,
            &table::table(
                t,
                v,
                &[Arc::new(o.clone())],
                None,
                req.q.get("includeObject").map(String::as_str),
            ),
        ),
    }
}

fn render_list(t: &ResourceType, v: &str, res: &crate::store::ListResult, req: &Req) -> Response<Body> {
    let mut meta = json!({"resourceVersion": res.rv.to_string()});
    if let Some(c) = &res.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = res.remaining
        && req.q.get("labelSelector").is_none_or(String::is_empty)
        && req.q.get("fieldSelector").is_none_or(String::is_empty)
    {
        meta["remainingItemCount"] = json!(n);
    }
    match wants(&req.accept) {
        As::Object => {
            let items: Vec<Value> = res.items.iter().map(|o| with_version(o, t, v)).collect();
            json_response(
                200,
                &json!({"kind": t.list_kind, "apiVersion": t.api_version(v), "metadata": meta, "items": items}),
            )
        }
        As::Meta => {
            let items: Vec<Value> = res.items.iter().map(|o| partial(o)).collect();
            json_response(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            )
        }
        As::Table => json_response(
            200,
            &table::table(
                t,
                v,
                &res.items,
                Some(meta),
                req.q.get("includeObject").map(String::as_str),
            ),
        ),
    }
}

fn event_line(etype: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": etype, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// A watch stream: initial events when asked, then matching changes,
/// bookmarks, until timeoutSeconds, a cut, or the client goes away.
fn watch(shared: &Arc<Shared>, t: &ResourceType, p: &ResPath, req: &Req) -> ApiResult<Response<Body>> {
    let mut opts = req.list_opts(t, &p.version)?;
    opts.limit = None;
    opts.continue_token = None;
    let rv_param = req.q.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = req.flag("sendInitialEvents");
    let bookmarks = req.flag("allowWatchBookmarks");
    let timeout = req
        .q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(shared.config.watch_timeout);
    let shape = wants(&req.accept);
    let include = req.q.get("includeObject").cloned();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let version = p.version.clone();
    let ns = p.namespace.clone();
    let t2 = t.clone();
    let render = move |o: &Value| -> Value {
        match shape {
            As::Table => table::table(&t2, &version, &[Arc::new(o.clone())], None, include.as_deref()),
            As::Meta => partial(o),
            As::Object => with_version(o, &t2, &version),
        }
    };
    let gr = t.store_gr();
    let initial_state = rv_param.is_empty() || rv_param == "0" || send_initial;
    let setup = {
        let st = shared.store();
        let start_rv = if initial_state {
            Ok(st.rv)
        } else {
            rv_param
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv_param}\"")))
        };
        match start_rv {
            Err(e) => return Err(e),
            Ok(rv) => match st.events_since(rv) {
                Ok((backlog, sub)) => {
                    let initial = if initial_state {
                        st.list(t, ns.as_deref(), &opts)?.items
                    } else {
                        Vec::new()
                    };
                    Ok((rv, initial, backlog, sub))
                }
                Err(e) => Err(e),
            },
        }
    };
    let mut cut = shared.cut.subscribe();
    let watches = shared.watches.clone();
    let bookmark_every = shared.config.bookmark_interval;
    let kind = t.kind.clone();
    let api_version = t.api_version(&p.version);
    match setup {
        Err(e) if e.code == 410 => {
            // The API server answers an expired watch with an ERROR event, not an HTTP error.
            let line = event_line("ERROR", &e.to_status());
            tokio::spawn(async move {
                let _ = tx.send(line).await;
            });
        }
        Err(e) => return Err(e),
        Ok((start_rv, initial, backlog, mut sub)) => {
            tokio::spawn(async move {
                let _open = crate::WatchGuard::new(&watches);
                let mut last_rv = start_rv;
                for o in &initial {
                    if tx.send(event_line("ADDED", &render(o))).await.is_err() {
                        return;
                    }
                }
                if send_initial && bookmarks {
                    let bm = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                    if tx.send(event_line("BOOKMARK", &bm)).await.is_err() {
                        return;
                    }
                }
                let matches = |o: &Value| opts.labels.matches(o) && opts.fields.matches(o);
                let translate = |ev: &crate::store::Event| -> Option<(&'static str, Arc<Value>)> {
                    if ev.gr != gr || ns.as_deref().is_some_and(|n| n != ev.namespace) {
                        return None;
                    }
                    let now = matches(&ev.object);
                    match (ev.etype, &ev.old) {
                        ("MODIFIED", Some(old)) => match (matches(old), now) {
                            (true, true) => Some(("MODIFIED", ev.object.clone())),
                            (true, false) => Some(("DELETED", ev.object.clone())),
                            (false, true) => Some(("ADDED", ev.object.clone())),
                            (false, false) => None,
                        },
                        (et, _) => now.then(|| (et, ev.object.clone())),
                    }
                };
                for ev in backlog {
                    last_rv = ev.rv;
                    if let Some((et, o)) = translate(&ev)
                        && tx.send(event_line(et, &render(&o))).await.is_err()
                    {
                        return;
                    }
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut ticker = tokio::time::interval(bookmark_every);
                ticker.tick().await;
                loop {
                    // Biased: a cut that has happened wins over events that came after it.
                    tokio::select! {
                        biased;
                        _ = cut.changed() => break,
                        _ = &mut deadline => break,
                        _ = tx.closed() => break,
                        _ = ticker.tick(), if bookmarks => {
                            let bm = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rv.to_string()}});
                            if tx.send(event_line("BOOKMARK", &bm)).await.is_err() { break; }
                        }
                        ev = sub.recv() => match ev {
                            Ok(ev) => {
                                if ev.rv <= last_rv { continue; }
                                last_rv = ev.rv;
                                if let Some((et, o)) = translate(&ev)
                                    && tx.send(event_line(et, &render(&o))).await.is_err() { break; }
                            }
                            // A watcher that fell behind is closed; the client re-watches.
                            Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
                        },
                    }
                }
            });
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::TRANSFER_ENCODING,
        header::HeaderValue::from_static("chunked"),
    );
    Ok(r)
}
