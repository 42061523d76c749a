//! Controllers under test act as they do in a cluster: as their own
//! ServiceAccount, bound by the RBAC objects in `manifests/<component>/`.

use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::testcluster::{TestCluster, TestClusterError};

/// A ServiceAccount identity and a kubeconfig that authenticates as it.
#[derive(Clone)]
pub struct Identity {
    /// `system:serviceaccount:<namespace>:<name>`, as the audit log names it.
    pub user: String,
    pub namespace: String,
    pub service_account: String,
    /// Names of the ClusterRoles, Roles and bindings applied for it.
    pub rbac: Vec<(String, String)>,
    /// Holds a token: readable by the owner only, inside the cluster's private cache.
    pub kubeconfig: PathBuf,
}

impl std::fmt::Debug for Identity {
    // The kubeconfig holds a token; print only who this is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("user", &self.user).finish()
    }
}

impl Identity {
    pub async fn kube_config(&self) -> Result<kube::Config, TestClusterError> {
        crate::testcluster::config_from_file(&self.kubeconfig).await
    }

    pub async fn client(&self) -> Result<kube::Client, TestClusterError> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }
}

/// `manifests/<component>/rbac.yaml`'s objects, moved to `namespace`: the
/// ServiceAccount, Roles and RoleBindings live there (as kustomize's
/// `namespace:` would put them), and cluster-scoped names get `-<namespace>`
/// so tests sharing one API server never rebind each other's accounts.
pub fn rbac_objects(component: &str, namespace: &str) -> Result<Vec<Value>, TestClusterError> {
    let path = testkit::workspace_root()
        .join("manifests")
        .join(component)
        .join("rbac.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| TestClusterError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let suffix = |name: &str| format!("{name}-{namespace}");
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut obj: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| TestClusterError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if obj.is_null() {
            continue;
        }
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "ServiceAccount" | "Role" | "RoleBinding" => obj["metadata"]["namespace"] = namespace.into(),
            "ClusterRole" | "ClusterRoleBinding" => {
                let name = suffix(obj["metadata"]["name"].as_str().unwrap_or_default());
                obj["metadata"]["name"] = name.into();
            }
            other => {
                return Err(TestClusterError::Manifest {
                    path,
                    message: format!("{other} is not an RBAC kind"),
                });
            }
        }
        if kind.ends_with("Binding") {
            if obj["roleRef"]["kind"] == "ClusterRole" {
                let name = suffix(obj["roleRef"]["name"].as_str().unwrap_or_default());
                obj["roleRef"]["name"] = name.into();
            }
            if let Some(subjects) = obj["subjects"].as_array_mut() {
                for s in subjects.iter_mut().filter(|s| s["kind"] == "ServiceAccount") {
                    s["namespace"] = namespace.into();
                }
            }
        }
        out.push(obj);
    }
    Ok(out)
}

fn api_resource(obj: &Value) -> ApiResource {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: match kind {
            "ServiceAccount" => "serviceaccounts".into(),
            k => format!("{}s", k.to_ascii_lowercase()),
        },
    }
}

impl TestCluster {
    /// Applies `manifests/<component>/rbac.yaml` into `namespace` (see
    /// [`rbac_objects`]) and returns a kubeconfig authenticating as its
    /// ServiceAccount (a TokenRequest token). On kube-sim, which authorizes
    /// nothing, the objects are applied all the same and the kubeconfig is the
    /// admin's.
    pub async fn controller_identity(
        &self,
        component: &str,
        namespace: &str,
    ) -> Result<Identity, TestClusterError> {
        let admin = self.client().await?;
        let objects = rbac_objects(component, namespace)?;
        let mut service_account = None;
        let mut rbac = Vec::new();
        for obj in &objects {
            let ar = api_resource(obj);
            let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
                Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
                None => Api::all_with(admin.clone(), &ar),
            };
            api.patch(
                &name,
                &PatchParams::apply("kflite-test").force(),
                &Patch::Apply(obj),
            )
            .await?;
            if ar.kind == "ServiceAccount" {
                service_account = Some(name);
            } else {
                rbac.push((ar.kind.clone(), name));
            }
        }
        let service_account = service_account.ok_or_else(|| TestClusterError::Manifest {
            path: PathBuf::from(format!("manifests/{component}/rbac.yaml")),
            message: "no ServiceAccount".into(),
        })?;
        let user = format!("system:serviceaccount:{namespace}:{service_account}");
        let kubeconfig = self
            .cache_path()
            .join(format!("{namespace}-{service_account}.kubeconfig"));
        if self.sim().is_some() {
            std::fs::copy(self.kubeconfig_path(), &kubeconfig).map_err(|source| TestClusterError::Write {
                path: kubeconfig.clone(),
                source,
            })?;
        } else {
            let token = request_token(&admin, namespace, &service_account).await?;
            write_token_kubeconfig(self.kubeconfig_path(), &kubeconfig, &user, &token)?;
        }
        Ok(Identity {
            user,
            namespace: namespace.into(),
            service_account,
            rbac,
            kubeconfig,
        })
    }
}

async fn request_token(client: &kube::Client, ns: &str, sa: &str) -> Result<String, TestClusterError> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = api.create_token_request(sa, &Default::default(), &req).await?;
    Ok(got.status.and_then(|s| s.token).unwrap_or_default())
}

/// The admin kubeconfig with its user's credentials replaced by `token`.
fn write_token_kubeconfig(admin: &Path, out: &Path, user: &str, token: &str) -> Result<(), TestClusterError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut kc =
        kube::config::Kubeconfig::read_from(admin).map_err(|source| TestClusterError::Kubeconfig {
            path: admin.to_path_buf(),
            source,
        })?;
    for named in &mut kc.auth_infos {
        named.name = user.into();
        named.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.to_string().into()),
            ..Default::default()
        });
    }
    for ctx in kc.contexts.iter_mut().filter_map(|c| c.context.as_mut()) {
        ctx.user = Some(user.into());
    }
    let text = serde_yaml_ng::to_string(&kc).map_err(|e| TestClusterError::Manifest {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    let write_err = |source| TestClusterError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(out)
        .map_err(write_err)?;
    f.write_all(text.as_bytes()).map_err(write_err)
}

/// One grant of a controller's RBAC: a verb on a resource, from one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `ClusterRole/<name>` or `Role/<name>`, as in the manifest.
    pub role: String,
    pub rule: usize,
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub resource_names: Vec<String>,
    /// Requests of the suite this grant allowed.
    pub used: usize,
}

/// Every (rule, group, resource, verb) the component's manifests grant, with
/// how many of `requests` (by its ServiceAccount, in any test namespace) it
/// allowed. A Role's grants count only requests in the account's namespace.
pub fn rbac_usage(
    component: &str,
    requests: &[testsvc::control_plane::audit::Request],
) -> Result<Vec<Grant>, TestClusterError> {
    // Namespace "ns" is a placeholder: names are matched without it.
    let objects = rbac_objects(component, "ns")?;
    let sa = objects
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.user
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(_, name)| name == sa)
        })
        .collect();
    let mut grants = Vec::new();
    for obj in objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        let kind = obj["kind"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let name = name.strip_suffix("-ns").unwrap_or(name);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
            let names = strings(&rule["resourceNames"]);
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        let used = ours
                            .iter()
                            .filter(|r| {
                                (group == "*" || r.group == group)
                                    && (resource == "*" || r.resource == resource)
                                    && (verb == "*"
                                        || r.verb == verb
                                        // A server-side apply that creates is authorized as create too.
                                        || (verb == "create" && r.verb == "patch" && r.code == 201))
                                    && (names.is_empty()
                                        || r.name.as_ref().is_some_and(|n| names.contains(n)))
                                    // A Role binds in the account's own namespace only.
                                    && (kind == "ClusterRole"
                                        || r.namespace.as_deref()
                                            == r.user.split(':').nth(2))
                                    && r.code != 403
                            })
                            .count();
                        grants.push(Grant {
                            role: format!("{kind}/{name}"),
                            rule: i,
                            group: group.clone(),
                            resource: resource.clone(),
                            verb,
                            resource_names: names.clone(),
                            used,
                        });
                    }
                }
            }
        }
    }
    Ok(grants)
}

/// The report `after_suite_*rbac*` tests print: one line per grant.
pub fn rbac_report(grants: &[Grant]) -> String {
    let mut out = String::new();
    for g in grants {
        let group = if g.group.is_empty() { "core" } else { &g.group };
        let names = if g.resource_names.is_empty() {
            String::new()
        } else {
            format!(" names={}", g.resource_names.join(","))
        };
        out.push_str(&format!(
            "{:>6}  {} rule {}: {} {}/{}{}{}\n",
            g.used,
            g.role,
            g.rule,
            g.verb,
            group,
            g.resource,
            names,
            if g.used == 0 { "   <- UNUSED" } else { "" }
        ));
    }
    out
}

/// Fails unless every grant of `component`'s RBAC allowed at least one
/// request of the suite recorded in the shared control plane's audit log;
/// prints each grant with its count. Skips loudly without a shared control plane.
pub fn assert_rbac_minimal(test: &str, component: &str) {
    let cp = match testsvc::ControlPlane::shared() {
        Some(Ok(cp)) => cp,
        Some(Err(e)) => panic!("{test}: {e}"),
        None => {
            return testkit::skip(
                test,
                "no shared control plane (KFLITE_CONTROL_PLANE_DIR): run by cargo xtask test after the suite",
            );
        }
    };
    let log = &cp.info().audit_log;
    let requests = testsvc::control_plane::audit::read_suite(cp.info())
        .unwrap_or_else(|e| panic!("{test}: {}: {e}", log.display()));
    let grants = rbac_usage(component, &requests).unwrap_or_else(|e| panic!("{test}: {e}"));
    let report = rbac_report(&grants);
    eprintln!(
        "{component}: requests each grant of manifests/{component}/rbac.yaml allowed in the suite:\n{report}"
    );
    let unused: Vec<String> = grants
        .iter()
        .filter(|g| g.used == 0)
        .map(|g| {
            format!(
                "{} rule {}: {} {}/{}",
                g.role, g.rule, g.verb, g.group, g.resource
            )
        })
        .collect();
    assert!(
        unused.is_empty(),
        "{component}'s RBAC grants what the suite never used (narrow it, or test the path that needs it):\n{}",
        unused.join("\n")
    );
}
