//! A Kubernetes client from kubectl-like flags.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{Error, Result};

/// `--kubeconfig`, `--context`, `-n` as kubectl reads them.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A connected client and the namespace commands default to.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Target {
    /// Connect as kubectl would: the named kubeconfig, else `$KUBECONFIG` /
    /// `~/.kube/config`, else the in-cluster service account.
    pub async fn connect(&self) -> Result<Connection> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client =
            kube::Client::try_from(config).map_err(|e| Error::kube("creating the Kubernetes client", e))?;
        Ok(Connection { client, namespace })
    }
}
