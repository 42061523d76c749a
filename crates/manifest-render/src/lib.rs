//! A kustomize v5.8.1-compatible manifest renderer.

pub mod yaml;
