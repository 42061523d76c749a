//! Homelab-scale objects for route-controller, shared by `examples/bench_routes.rs`
//! (`cargo xtask bench routes`) and the scale tests.

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfmodel::{Notebook, NotebookSpec, PVCViewer, PVCViewerSpec, Tensorboard, TensorboardSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

/// How many routed objects of each kind, spread round-robin over namespaces.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub notebooks: usize,
    pub tensorboards: usize,
    pub pvcviewers: usize,
}

impl Scale {
    pub fn total(&self) -> usize {
        self.notebooks + self.tensorboards + self.pvcviewers
    }
}

/// Install the Kubeflow and Gateway API CRDs, except those whose kind is in `skip`.
pub async fn install_crds(client: &Client, skip: &[&str]) -> kube::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut all = kfmodel::crd::all();
    all.extend(kfmodel::gateway::cluster_provided_crds());
    for crd in all
        .into_iter()
        .filter(|c| !skip.contains(&c.spec.names.kind.as_str()))
    {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("scale").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    Ok(())
}

pub fn notebook_spec() -> NotebookSpec {
    serde_json::from_value(serde_json::json!({
        "template": {"spec": {"containers": [{"name": "nb", "image": "jupyter"}]}}
    }))
    .expect("literal notebook spec")
}

/// Create `scale`'s objects (`nb-<i>`, `tb-<i>`, `pv-<i>`) over `namespaces`, 32 at a time.
pub async fn populate(client: &Client, namespaces: &[String], scale: Scale) -> kube::Result<()> {
    let spec = notebook_spec();
    let pp = PostParams::default();
    let jobs = (0..scale.notebooks)
        .map(|i| (0u8, i))
        .chain((0..scale.tensorboards).map(|i| (1u8, i)))
        .chain((0..scale.pvcviewers).map(|i| (2u8, i)));
    futures::stream::iter(jobs)
        .map(|(kind, i)| {
            let (client, spec, pp) = (client.clone(), spec.clone(), pp.clone());
            let ns = namespaces[i % namespaces.len()].clone();
            async move {
                match kind {
                    0 => Api::<Notebook>::namespaced(client, &ns)
                        .create(&pp, &Notebook::new(&format!("nb-{i}"), spec))
                        .await
                        .map(|_| ()),
                    1 => {
                        let spec = TensorboardSpec {
                            logspath: "pvc://l/".into(),
                            ..Default::default()
                        };
                        Api::<Tensorboard>::namespaced(client, &ns)
                            .create(&pp, &Tensorboard::new(&format!("tb-{i}"), spec))
                            .await
                            .map(|_| ())
                    }
                    _ => {
                        let spec = PVCViewerSpec {
                            pvc: "data".into(),
                            ..Default::default()
                        };
                        Api::<PVCViewer>::namespaced(client, &ns)
                            .create(&pp, &PVCViewer::new(&format!("pv-{i}"), spec))
                            .await
                            .map(|_| ())
                    }
                }
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
