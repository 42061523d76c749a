//! Lint configuration: what the cluster provides and which rules run.

use std::collections::BTreeSet;
use std::path::Path;

use super::Rule;
use crate::Error;
use crate::yaml::{Value, parse_documents};

/// A kind named `group/Kind`, or every kind of a group as `group/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPattern {
    pub group: String,
    /// `None` matches every kind of the group.
    pub kind: Option<String>,
}

impl KindPattern {
    /// Reads `group/Kind` or `group/*` (`/Kind` for the core group).
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((group, kind)) = text.trim().rsplit_once('/') else {
            return Err(format!(
                "kind {text:?}: expected group/Kind or group/* (e.g. cert-manager.io/Certificate)"
            ));
        };
        if kind.is_empty() {
            return Err(format!(
                "kind {text:?}: the kind after '/' is empty (use group/* for a whole group)"
            ));
        }
        Ok(KindPattern {
            group: group.to_string(),
            kind: (kind != "*").then(|| kind.to_string()),
        })
    }

    pub fn matches(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

impl std::fmt::Display for KindPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.group, self.kind.as_deref().unwrap_or("*"))
    }
}

/// Kinds the homelab cluster serves without a CRD in the platform's output:
/// cert-manager is installed on its own (the overlay only adds an Issuer),
/// and the Gateway API CRDs are installed with Cilium, whose gateway the
/// platform routes through. Istio is not: its kinds are not here.
pub const DEFAULT_CLUSTER_PROVIDED: &[&str] = &[
    "cert-manager.io/Certificate",
    "cert-manager.io/CertificateRequest",
    "cert-manager.io/Issuer",
    "cert-manager.io/ClusterIssuer",
    "acme.cert-manager.io/Order",
    "acme.cert-manager.io/Challenge",
    "gateway.networking.k8s.io/GatewayClass",
    "gateway.networking.k8s.io/Gateway",
    "gateway.networking.k8s.io/HTTPRoute",
    "gateway.networking.k8s.io/GRPCRoute",
    "gateway.networking.k8s.io/ReferenceGrant",
    "gateway.networking.k8s.io/BackendTLSPolicy",
    "gateway.networking.k8s.io/TLSRoute",
];

/// What lint assumes about the cluster, and which rules are off.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kinds the cluster serves although no CRD in the output defines them.
    pub cluster_provided: Vec<KindPattern>,
    /// Namespaces that exist although nothing in the output creates them.
    pub namespaces: Vec<String>,
    pub disabled: BTreeSet<Rule>,
    /// Findings accepted as they are.
    pub ignore: Vec<Ignore>,
}

/// Accepts the findings it matches; an absent part matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    pub rule: Option<Rule>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Ignore {
    pub fn matches(&self, f: &super::Finding) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.rule.is_none_or(|r| r == f.rule)
            && is(&self.kind, &f.object.kind)
            && is(&self.namespace, &f.object.namespace)
            && is(&self.name, &f.object.name)
    }

    fn from_value(v: &Value) -> Result<Ignore, String> {
        let m = v
            .as_map()
            .ok_or("ignore: expected entries like {rule: gateway-blocked, kind: NetworkPolicy, name: x}")?;
        let mut ig = Ignore::default();
        for (k, v) in m.iter() {
            let s = v
                .as_str()
                .ok_or_else(|| format!("ignore: {k}: expected a string"))?
                .to_string();
            match k.as_str() {
                "rule" => ig.rule = Some(parse_rule(&s).map_err(|e| format!("ignore: {e}"))?),
                "kind" => ig.kind = Some(s),
                "namespace" => ig.namespace = Some(s),
                "name" => ig.name = Some(s),
                other => {
                    return Err(format!(
                        "ignore: unknown key {other:?} (known: rule, kind, namespace, name)"
                    ));
                }
            }
        }
        if ig == Ignore::default() {
            return Err(
                "ignore: an entry must name a rule, kind, namespace or name (use disable for whole rules)"
                    .into(),
            );
        }
        Ok(ig)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_provided: DEFAULT_CLUSTER_PROVIDED
                .iter()
                .map(|k| KindPattern::parse(k).expect("default kinds are well-formed"))
                .collect(),
            namespaces: Vec::new(),
            disabled: BTreeSet::new(),
            ignore: Vec::new(),
        }
    }
}

impl Config {
    /// The defaults, amended by a YAML file:
    ///
    /// ```yaml
    /// clusterProvidedDefaults: true   # false: forget the default kinds
    /// clusterProvided: [monitoring.coreos.com/*, cert-manager.io/Certificate]
    /// namespaces: [cert-manager]
    /// disable: [gateway-blocked]
    /// ignore: [{rule: unexpanded-var, kind: ConfigMap, namespace: istio-system, name: istio-sidecar-injector}]
    /// ```
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let docs = parse_documents(&text).map_err(|e| Error::yaml(path, e))?;
        let mut config = Config::default();
        match docs.as_slice() {
            [] => Ok(config),
            [doc] if doc.is_null() => Ok(config),
            [doc] => {
                config.apply(doc).map_err(|m| Error::invalid(path, m))?;
                Ok(config)
            }
            _ => Err(Error::invalid(path, "expected one YAML document")),
        }
    }

    fn apply(&mut self, doc: &Value) -> Result<(), String> {
        let map = doc
            .as_map()
            .ok_or("expected a mapping with clusterProvided, namespaces, disable")?;
        for (key, value) in map.iter() {
            match key.as_str() {
                "clusterProvidedDefaults" => match value {
                    Value::Bool(true) => {}
                    Value::Bool(false) => self.cluster_provided.clear(),
                    _ => return Err("clusterProvidedDefaults: expected true or false".into()),
                },
                "clusterProvided" => {
                    for k in string_list(key, value)? {
                        self.cluster_provided
                            .push(KindPattern::parse(&k).map_err(|e| format!("clusterProvided: {e}"))?);
                    }
                }
                "namespaces" => self.namespaces.extend(string_list(key, value)?),
                "disable" => {
                    for id in string_list(key, value)? {
                        self.disabled
                            .insert(parse_rule(&id).map_err(|e| format!("disable: {e}"))?);
                    }
                }
                "ignore" => {
                    let entries = value.as_seq().ok_or("ignore: expected a list")?;
                    for e in entries {
                        self.ignore.push(Ignore::from_value(e)?);
                    }
                }
                other => {
                    return Err(format!(
                        "unknown key {other:?} (known: clusterProvidedDefaults, clusterProvided, namespaces, disable, ignore)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A rule by its id, or an error listing the ids.
pub fn parse_rule(id: &str) -> Result<Rule, String> {
    Rule::from_id(id).ok_or_else(|| {
        let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        format!("unknown rule {id:?} (rules: {})", ids.join(", "))
    })
}

fn string_list(key: &str, value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::Null | Value::NullText => Ok(Vec::new()),
        Value::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key}: expected a list of strings"))
            })
            .collect(),
        _ => Err(format!("{key}: expected a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = KindPattern::parse("cert-manager.io/Certificate").unwrap();
        assert!(p.matches("cert-manager.io", "Certificate"));
        assert!(!p.matches("cert-manager.io", "Issuer"));
        let g = KindPattern::parse("monitoring.coreos.com/*").unwrap();
        assert!(g.matches("monitoring.coreos.com", "ServiceMonitor"));
        assert!(!g.matches("coreos.com", "ServiceMonitor"));
        assert!(KindPattern::parse("Certificate").is_err());
        assert!(KindPattern::parse("cert-manager.io/").is_err());
    }

    #[test]
    fn config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lint.yaml");
        std::fs::write(
            &path,
            "clusterProvidedDefaults: false\nclusterProvided: [monitoring.coreos.com/*]\nnamespaces: [cert-manager]\ndisable: [gateway-blocked]\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(
            c.cluster_provided,
            vec![KindPattern::parse("monitoring.coreos.com/*").unwrap()]
        );
        assert_eq!(c.namespaces, vec!["cert-manager".to_string()]);
        assert!(c.disabled.contains(&Rule::GatewayBlocked) && c.disabled.len() == 1);

        std::fs::write(&path, "ignore: [{rule: gateway-blocked, name: seaweedfs}]\n").unwrap();
        let c = Config::from_file(&path).unwrap();
        let want = Ignore {
            rule: Some(Rule::GatewayBlocked),
            name: Some("seaweedfs".into()),
            ..Ignore::default()
        };
        assert_eq!(c.ignore, vec![want]);
        for bad in [
            "ignore: [{}]\n",
            "ignore: [{rule: nope}]\n",
            "ignore: [{nam: x}]\n",
            "ignore: x\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = Config::from_file(&path).unwrap_err().to_string();
            assert!(e.contains("lint.yaml") && e.contains("ignore"), "{bad}: {e}");
        }

        std::fs::write(&path, "disable: [no-such-rule]\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("lint.yaml") && e.contains("no-such-rule") && e.contains("unexpanded-var"),
            "{e}"
        );
        std::fs::write(&path, "namespace: [x]\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("unknown key \"namespace\""), "{e}");
        std::fs::write(&path, "clusterProvided: [Certificate]\n").unwrap();
        assert!(
            Config::from_file(&path)
                .unwrap_err()
                .to_string()
                .contains("group/Kind")
        );
    }
}
