//! Gateway API HTTPRoutes and ReferenceGrants for Kubeflow Notebooks, Tensorboards and PVCViewers.
