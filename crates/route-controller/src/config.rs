//! Everything the Python controller hard-coded, as configuration.

use std::net::SocketAddr;
use std::time::Duration;

use kfmodel::naming;

/// Where the `kubeflow-userid` header's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UserIdSource {
    /// Always `default_user_id`.
    Fixed,
    /// The owner of the Profile named like the namespace; `default_user_id` when there is none.
    ProfileOwner,
}

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Namespace the HTTPRoutes are created in (where the gateway allows routes from).
    #[arg(long, env = "ROUTE_NAMESPACE", default_value = "kubeflow")]
    pub route_namespace: String,
    /// Name of the Gateway the routes attach to.
    #[arg(long, env = "GATEWAY_NAME")]
    pub gateway_name: String,
    /// Namespace of that Gateway.
    #[arg(long, env = "GATEWAY_NAMESPACE")]
    pub gateway_namespace: String,
    /// Listener of the Gateway to attach to (all listeners when unset).
    #[arg(long, env = "GATEWAY_SECTION_NAME")]
    pub gateway_section_name: Option<String>,
    /// Hostnames the routes serve (comma-separated).
    #[arg(long = "hostname", env = "HOSTNAMES", value_delimiter = ',', required = true)]
    pub hostnames: Vec<String>,
    /// Request header that carries the user identity to Kubeflow's apps.
    #[arg(long, env = "USER_ID_HEADER", default_value = "kubeflow-userid")]
    pub user_id_header: String,
    #[arg(long, env = "USER_ID_SOURCE", value_enum, default_value = "profile-owner")]
    pub user_id_source: UserIdSource,
    /// The user identity when fixed, or when a namespace has no Profile.
    #[arg(long, env = "DEFAULT_USER_ID", default_value = "user@example.com")]
    pub default_user_id: String,
    /// Name of the ReferenceGrant made in each routed namespace.
    #[arg(long, env = "REFERENCE_GRANT_NAME", default_value = "allow-kubeflow-gateway")]
    pub reference_grant_name: String,
    /// Field manager for server-side apply.
    #[arg(long, env = "FIELD_MANAGER", default_value = "kflite-route-controller")]
    pub field_manager: String,
    /// How often every route is checked against its source, besides watch events.
    #[arg(long, env = "SWEEP_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,
    /// Namespaces reconciled at once (each with up to 4 requests in flight).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 8)]
    pub max_concurrent_reconciles: u16,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Name(#[from] naming::NameError),
    #[error("invalid configuration: at least one --hostname is needed")]
    NoHostname,
    #[error("invalid configuration: hostname {0:?} is not a DNS name (a leading '*.' is allowed)")]
    Hostname(String),
    #[error("invalid configuration: header name {0:?} is not an HTTP header name")]
    Header(String),
    #[error("invalid configuration: --default-user-id is empty")]
    EmptyUserId,
    #[error("invalid configuration: --sweep-interval must be at least 1s")]
    SweepInterval,
    #[error("invalid configuration: --max-concurrent-reconciles must be at least 1")]
    Concurrency,
}

impl Config {
    /// The owner's cluster, for tests and docs.
    pub fn example() -> Self {
        Self {
            route_namespace: "kubeflow".into(),
            gateway_name: "homelab-gateway".into(),
            gateway_namespace: "kube-system".into(),
            gateway_section_name: None,
            hostnames: vec!["kubeflow.madhan.app".into()],
            user_id_header: "kubeflow-userid".into(),
            user_id_source: UserIdSource::Fixed,
            default_user_id: "user@example.com".into(),
            reference_grant_name: "allow-kubeflow-gateway".into(),
            field_manager: "kflite-route-controller".into(),
            sweep_interval: Duration::from_secs(300),
            max_concurrent_reconciles: 8,
            metrics_addr: "127.0.0.1:0".parse().expect("literal address"),
        }
    }

    /// The settings every route shares.
    pub fn target(&self) -> kfmodel::routes::RouteTarget {
        kfmodel::routes::RouteTarget {
            route_namespace: self.route_namespace.clone(),
            gateway_name: self.gateway_name.clone(),
            gateway_namespace: self.gateway_namespace.clone(),
            gateway_section_name: self.gateway_section_name.clone(),
            hostnames: self.hostnames.clone(),
            user_id_header: self.user_id_header.clone(),
        }
    }

    /// Check everything a typo could break, so the controller fails at start, not per route.
    pub fn validate(&self) -> Result<(), ConfigError> {
        naming::validate_label("--route-namespace", &self.route_namespace)?;
        naming::validate_label("--gateway-namespace", &self.gateway_namespace)?;
        naming::validate_subdomain("--gateway-name", &self.gateway_name)?;
        if let Some(section) = &self.gateway_section_name {
            naming::validate_subdomain("--gateway-section-name", section)?;
        }
        naming::validate_subdomain("--reference-grant-name", &self.reference_grant_name)?;
        if self.hostnames.is_empty() {
            return Err(ConfigError::NoHostname);
        }
        for host in &self.hostnames {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if naming::validate_subdomain("hostname", bare).is_err() || bare.len() > 253 {
                return Err(ConfigError::Hostname(host.clone()));
            }
        }
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if self.user_id_header.is_empty() || !self.user_id_header.chars().all(token) {
            return Err(ConfigError::Header(self.user_id_header.clone()));
        }
        if self.default_user_id.trim().is_empty() {
            return Err(ConfigError::EmptyUserId);
        }
        if self.sweep_interval < Duration::from_secs(1) {
            return Err(ConfigError::SweepInterval);
        }
        if self.max_concurrent_reconciles == 0 {
            return Err(ConfigError::Concurrency);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_valid() {
        Config::example().validate().unwrap();
    }

    type Mutation = Box<dyn Fn(&mut Config)>;

    #[test]
    fn bad_values_are_named_in_the_error() {
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|c| c.gateway_name = "Homelab_Gateway".into()),
                "Homelab_Gateway",
            ),
            (Box::new(|c| c.route_namespace = "kube.flow".into()), "kube.flow"),
            (
                Box::new(|c| c.hostnames = vec!["https://kubeflow.example".into()]),
                "https://kubeflow.example",
            ),
            (Box::new(|c| c.hostnames.clear()), "--hostname"),
            (
                Box::new(|c| c.user_id_header = "kubeflow userid".into()),
                "kubeflow userid",
            ),
            (Box::new(|c| c.default_user_id = " ".into()), "--default-user-id"),
        ];
        for (mutate, needle) in cases {
            let mut config = Config::example();
            mutate(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should name {needle:?}");
        }
    }

    #[test]
    fn wildcard_hostnames_are_accepted() {
        let mut config = Config::example();
        config.hostnames = vec!["*.apps.example.com".into()];
        config.validate().unwrap();
    }
}
