//! The binary's flags (and their environment variables), turned into what
//! [`crate::run`] takes.

use clap::Parser;
use kflite_runtime::leader::LeaderConfig;
use kflite_runtime::logging::LogFormat;

use crate::{Config, RunOptions};

#[derive(Debug, Parser)]
#[command(
    name = "route-controller",
    version,
    about = "Gateway API routes for Kubeflow notebooks, tensorboards and PVC viewers"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// Run without leader election (a single replica).
    #[arg(long, env = "NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Namespace of the leader Lease (defaults to the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kubeflow")]
    pub lease_namespace: String,
    #[arg(long, env = "LEASE_NAME", default_value = "kflite-route-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease (defaults to the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log format: json or text.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
}

impl Cli {
    /// This replica's identity: the pod name, else host and process id.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "route-controller".into());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn run_options(&self) -> RunOptions {
        let identity = self.identity();
        let leader = (!self.no_leader_election)
            .then(|| LeaderConfig::new(&self.lease_namespace, &self.lease_name, &identity));
        RunOptions { identity, leader }
    }
}
