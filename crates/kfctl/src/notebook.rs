//! `kfctl notebook create|list`.

use gpu_probe::lint::{GPU_NODE_LABEL, GPU_RESOURCE};
use kfmodel::naming::validate_label;
use kube::api::{Api, DynamicObject, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::resources::{self as r, items, name, namespace_of};
use crate::urls;
use crate::{Error, Result};

/// The CUDA PyTorch image Kubeflow v1.11.0's spawner offers (jupyter-web-app's spawner_ui_config.yaml).
pub const DEFAULT_GPU_IMAGE: &str =
    "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda-full:v1.10.0";
/// Kubeflow v1.11.0's default image (same file).
pub const DEFAULT_CPU_IMAGE: &str = "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-scipy:v1.10.0";
/// The GPU nodes' RuntimeClass.
pub const RUNTIME_CLASS: &str = "nvidia";
/// What to do about an image without sm_120 kernels.
pub const SM120_FIX: &str = "use an image with PyTorch >= 2.7 built for CUDA 12.8, or in the notebook run: pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128 (check with `kfctl gpu` or gpu-probe)";

/// What `kfctl notebook create` makes.
#[derive(Clone, Debug)]
pub struct NotebookRequest {
    pub name: String,
    pub namespace: String,
    pub image: Option<String>,
    pub gpu: bool,
    pub cpu: String,
    pub memory: String,
    /// Size of a workspace PVC `<name>-workspace` mounted at /home/jovyan
    /// (as jupyter-web-app's default workspace volume); none when `None`.
    pub workspace: Option<String>,
    /// Storage class of the workspace PVC (the cluster default when `None`).
    pub storage_class: Option<String>,
}

/// Where jupyter-web-app mounts the workspace volume.
pub const WORKSPACE_MOUNT: &str = "/home/jovyan";

/// The `vMAJOR.MINOR` of a tag such as `v1.10.0` or `v1.9.2-rc.1`.
fn tag_version(tag: &str) -> Option<(u32, u32)> {
    let rest = tag.strip_prefix('v')?;
    let mut parts = rest.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A warning when `image` is one known to lack sm_120 (RTX 50xx) kernels:
/// Kubeflow's jupyter-pytorch-cuda images up to v1.10 ship PyTorch < 2.7.
pub fn sm120_warning(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (without_digest, "latest"),
    };
    let base = repo.rsplit('/').next().unwrap_or(repo);
    if !base.starts_with("jupyter-pytorch-cuda") {
        return None;
    }
    let (major, minor) = tag_version(tag)?;
    ((major, minor) <= (1, 10)).then(|| {
        format!(
            "image {image} ships PyTorch < 2.7, which has no sm_120 kernels: on the RTX 5070 Ti every CUDA call fails with \"no kernel image is available for execution on the device\""
        )
    })
}

impl NotebookRequest {
    pub fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(if self.gpu {
            DEFAULT_GPU_IMAGE
        } else {
            DEFAULT_CPU_IMAGE
        })
    }

    /// Warnings to print before creating (an image without sm_120 kernels).
    pub fn warnings(&self) -> Vec<String> {
        if !self.gpu {
            return Vec::new();
        }
        sm120_warning(self.image()).into_iter().collect()
    }

    /// The Notebook object, as Kubeflow's notebook-controller and jupyter-web-app expect it.
    pub fn object(&self) -> Result<Value> {
        validate_label("notebook name", &self.name)?;
        validate_label("namespace", &self.namespace)?;
        let mut resources = json!({
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"memory": self.memory},
        });
        let mut spec = json!({
            "containers": [{
                "name": self.name,
                "image": self.image(),
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
            }],
        });
        if self.gpu {
            // Requests equal limits: the API server rejects an extended resource otherwise.
            resources["requests"][GPU_RESOURCE] = json!("1");
            resources["limits"][GPU_RESOURCE] = json!("1");
            spec["runtimeClassName"] = json!(RUNTIME_CLASS);
            spec["nodeSelector"] = json!({GPU_NODE_LABEL: "true"});
        }
        spec["containers"][0]["resources"] = resources;
        if self.workspace.is_some() {
            spec["volumes"] =
                json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": self.workspace_name()}}]);
            spec["containers"][0]["volumeMounts"] =
                json!([{"name": "workspace", "mountPath": WORKSPACE_MOUNT}]);
        }
        Ok(json!({
            "apiVersion": "kubeflow.org/v1",
            "kind": "Notebook",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app": self.name},
                "annotations": {"notebooks.kubeflow.org/server-type": "jupyter"},
            },
            "spec": {"template": {"spec": spec}},
        }))
    }
}

impl NotebookRequest {
    pub fn workspace_name(&self) -> String {
        format!("{}-workspace", self.name)
    }

    /// The workspace PVC (ReadWriteOnce, as jupyter-web-app makes it), when asked for.
    pub fn workspace_object(&self) -> Option<Value> {
        let size = self.workspace.as_ref()?;
        let mut pvc = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": self.workspace_name(), "namespace": self.namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        });
        if let Some(class) = &self.storage_class {
            pvc["spec"]["storageClassName"] = json!(class);
        }
        Some(pvc)
    }
}

/// Create the workspace PVC (kept if it exists: a re-created notebook finds
/// its files) and the Notebook; fails when the Notebook exists.
pub async fn create(client: &kube::Client, request: &NotebookRequest) -> Result<Value> {
    let object = request.object()?;
    let notebooks: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &request.namespace, &r::notebook());
    if notebooks
        .get_opt(&request.name)
        .await
        .map_err(|e| {
            Error::kube(
                format!("reading Notebook {}/{}", request.namespace, request.name),
                e,
            )
        })?
        .is_some()
    {
        return Err(Error::Exists {
            what: format!("Notebook {}/{}", request.namespace, request.name),
            detail: String::new(),
        });
    }
    if let Some(pvc) = request.workspace_object() {
        let pvc: DynamicObject = serde_json::from_value(pvc).map_err(|e| Error::Encode(e.to_string()))?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &request.namespace, &r::pvc());
        match api.create(&PostParams::default(), &pvc).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::info!(pvc = %request.workspace_name(), "workspace PVC exists; reusing it");
            }
            Err(e) => {
                return Err(Error::kube(
                    format!(
                        "creating PersistentVolumeClaim {}/{}",
                        request.namespace,
                        request.workspace_name()
                    ),
                    e,
                ));
            }
        }
    }
    let dynamic: DynamicObject = serde_json::from_value(object).map_err(|e| Error::Encode(e.to_string()))?;
    match notebooks.create(&PostParams::default(), &dynamic).await {
        Ok(created) => serde_json::to_value(created).map_err(|e| Error::Encode(e.to_string())),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Exists {
            what: format!("Notebook {}/{}", request.namespace, request.name),
            detail: String::new(),
        }),
        Err(e) => Err(Error::kube(
            format!("creating Notebook {}/{}", request.namespace, request.name),
            e,
        )),
    }
}

/// Images of a Notebook's containers.
pub fn images(notebook: &Value) -> Vec<String> {
    items(notebook, "/spec/template/spec/containers")
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn gpus(notebook: &Value) -> u64 {
    items(notebook, "/spec/template/spec/containers")
        .filter_map(|c| {
            let v = c.pointer("/resources/limits")?.get(GPU_RESOURCE)?;
            v.as_u64().or_else(|| v.as_str()?.parse().ok())
        })
        .sum()
}

/// One row of `kfctl notebook list` (JSON field names are documented).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotebookRow {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub gpus: u64,
    /// `readyReplicas` from the Notebook's status.
    pub ready: bool,
    /// Where the gateway serves it; `null` when it has no route.
    pub url: Option<String>,
}

/// Notebooks in `namespace` (all when `None`) with their URLs, sorted.
pub async fn list(
    client: &kube::Client,
    namespace: Option<&str>,
    route_namespace: &str,
) -> Result<Vec<NotebookRow>> {
    let notebooks = match namespace {
        Some(ns) => r::list_in(client, &r::notebook(), ns).await?,
        None => r::list_all(client, &r::notebook()).await?,
    }
    .ok_or_else(|| {
        Error::Invalid("the Notebook kind is not served: install Kubeflow's notebook-controller CRDs".into())
    })?;
    let routes = r::list_in(client, &r::httproute(), route_namespace)
        .await?
        .unwrap_or_default();
    let mut rows: Vec<NotebookRow> = notebooks
        .iter()
        .map(|nb| {
            let (ns, nb_name) = (namespace_of(nb), name(nb));
            let route = kfmodel::naming::route_name("Notebook", ns, nb_name);
            NotebookRow {
                namespace: ns.to_string(),
                name: nb_name.to_string(),
                image: images(nb).join(","),
                gpus: gpus(nb),
                ready: nb
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    > 0,
                url: routes
                    .iter()
                    .find(|r| name(r) == route)
                    .and_then(|r| urls::route_urls(r).into_iter().next()),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bad_images() {
        let bad = [
            "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda-full:v1.10.0",
            "kubeflownotebookswg/jupyter-pytorch-cuda:v1.8.0",
            "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda:v1.9.2-rc.1",
            "jupyter-pytorch-cuda:v1.10.0@sha256:abc",
        ];
        for image in bad {
            assert!(sm120_warning(image).is_some(), "{image} should warn");
        }
        let fine = [
            "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda-full:v1.11.0",
            "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-scipy:v1.10.0",
            "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-cuda:latest",
            "registry:5000/jupyter-pytorch-cuda",
            "my/jupyter-pytorch:v1.8.0",
        ];
        for image in fine {
            assert!(sm120_warning(image).is_none(), "{image} should not warn");
        }
    }

    #[test]
    fn invalid_names_are_refused_with_the_name() {
        let req = NotebookRequest {
            name: "My_Notebook".into(),
            namespace: "ns".into(),
            image: None,
            gpu: true,
            cpu: "1".into(),
            memory: "4Gi".into(),
            workspace: None,
            storage_class: None,
        };
        let err = req.object().unwrap_err().to_string();
        assert!(err.contains("My_Notebook"), "{err}");
    }
}
