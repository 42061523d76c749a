//! Kubeflow's custom resources, the Gateway API types kflite writes, stub Istio
//! CRDs and the naming rules every kflite component agrees on.
//!
//! Types keep fields they do not model (`extra` maps, [`RawObject`]) so a
//! read → modify → write by a kflite controller never drops data that a newer
//! Kubeflow, or a user, put there.

pub mod crd;
pub mod gateway;
pub mod istio;
pub mod naming;
pub mod notebook;
pub mod pipelines;
pub mod poddefault;
pub mod preserve;
pub mod profile;
pub mod pvcviewer;
pub mod routes;
pub mod tensorboard;

pub use notebook::{Notebook, NotebookSpec, NotebookStatus};
pub use poddefault::{PodDefault, PodDefaultSpec};
pub use preserve::{Extra, RawObject};
pub use profile::{Profile, ProfileSpec, ProfileStatus};
pub use pvcviewer::{PVCViewer, PVCViewerSpec, PVCViewerStatus};
pub use tensorboard::{Tensorboard, TensorboardSpec, TensorboardStatus};
