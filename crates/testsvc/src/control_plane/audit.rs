//! The API server's audit log, read back: who did what to which resource.
//! Used to prove a controller's RBAC minimal: every rule it holds was needed.

use std::path::Path;

use serde::Deserialize;

/// One request, as the audit log (level Metadata, stage ResponseComplete) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub user: String,
    pub verb: String,
    /// "" for the core group.
    pub group: String,
    /// With the subresource, as RBAC names it: `serviceaccounts/token`.
    pub resource: String,
    /// None for cluster-scoped requests.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: u16,
    /// Non-resource requests (`/healthz`) carry the path instead.
    pub path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    stage: String,
    verb: String,
    request_u_r_i: String,
    user: User,
    #[serde(default)]
    impersonated_user: Option<User>,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<Status>,
}

#[derive(Deserialize)]
struct User {
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_group: String,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: u16,
}

/// Every request of the suite: the shared control plane's log and what
/// private ones left in `KFLITE_AUDIT_DIR` (see [`super::AUDIT_DIR_ENV`]).
pub fn read_suite(shared: &super::Info) -> std::io::Result<Vec<Request>> {
    let mut all = read(&shared.audit_log)?;
    if let Some(dir) = std::env::var_os(super::AUDIT_DIR_ENV).filter(|d| !d.is_empty()) {
        for entry in std::fs::read_dir(dir)? {
            all.extend(read(&entry?.path())?);
        }
    }
    Ok(all)
}

/// Every completed request in the log at `path` (lines that are not audit events are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Request>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(parse).collect())
}

fn parse(line: &str) -> Option<Request> {
    let e: Event = serde_json::from_str(line).ok()?;
    if e.stage != "ResponseComplete" {
        return None;
    }
    let user = e.impersonated_user.unwrap_or(e.user).username;
    let (group, resource, namespace, name) = match e.object_ref {
        Some(o) => {
            let resource = if o.subresource.is_empty() {
                o.resource
            } else {
                format!("{}/{}", o.resource, o.subresource)
            };
            let opt = |s: String| (!s.is_empty()).then_some(s);
            (o.api_group, resource, opt(o.namespace), opt(o.name))
        }
        None => Default::default(),
    };
    Some(Request {
        user,
        verb: e.verb,
        group,
        resource,
        namespace,
        name,
        code: e.response_status.map_or(0, |s| s.code),
        path: e.request_u_r_i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_completed_request_and_skips_other_stages_and_noise() {
        let lines = [
            r#"{"kind":"Event","stage":"ResponseStarted","verb":"watch","requestURI":"/x","user":{"username":"u"}}"#,
            r#"{"kind":"Event","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/namespaces/a/serviceaccounts/b/token","user":{"username":"admin"},"objectRef":{"resource":"serviceaccounts","subresource":"token","namespace":"a","name":"b","apiVersion":"v1"},"responseStatus":{"code":201}}"#,
            "not json",
        ];
        let got: Vec<Request> = lines.iter().filter_map(|l| parse(l)).collect();
        assert_eq!(
            got,
            vec![Request {
                user: "admin".into(),
                verb: "create".into(),
                group: String::new(),
                resource: "serviceaccounts/token".into(),
                namespace: Some("a".into()),
                name: Some("b".into()),
                code: 201,
                path: "/api/v1/namespaces/a/serviceaccounts/b/token".into(),
            }]
        );
    }
}
