//! Fault injection: failing requests, added latency (watch cutting and
//! resourceVersion expiry live on the server handle).

use crate::status::ApiError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Fail the next `count` requests matching `verb` and `resource` (None: any).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FailRule {
    /// API verb: get, list, watch, create, update, patch, delete, deletecollection.
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural resource (`configmaps`), optionally group-qualified (`deployments.apps`).
    #[serde(default)]
    pub resource: Option<String>,
    /// HTTP status code to answer with (its metav1.Status reason follows the API server's).
    pub code: u16,
    pub count: u32,
    #[serde(default)]
    pub message: Option<String>,
}

/// Delay every request matching `verb`/`resource` (None: any) by `millis`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyRule {
    #[serde(default)]
    pub verb: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    pub millis: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    fails: Vec<FailRule>,
    latency: Vec<LatencyRule>,
}

/// The request a fault rule is matched against.
#[derive(Debug)]
pub struct Target<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub group: &'a str,
}

fn matches(verb: &Option<String>, resource: &Option<String>, t: &Target<'_>) -> bool {
    let verb_ok = verb.as_deref().is_none_or(|v| v == t.verb);
    let res_ok = resource.as_deref().is_none_or(|r| {
        r == t.resource || (!t.group.is_empty() && r == format!("{}.{}", t.resource, t.group))
    });
    verb_ok && res_ok
}

impl Faults {
    pub fn add_failure(&mut self, rule: FailRule) {
        if rule.count > 0 {
            self.fails.push(rule);
        }
    }

    pub fn add_latency(&mut self, rule: LatencyRule) {
        self.latency.push(rule);
    }

    pub fn clear(&mut self) {
        self.fails.clear();
        self.latency.clear();
    }

    /// The injected error for this request, consuming one count of the first matching rule.
    pub fn take_failure(&mut self, t: &Target<'_>) -> Option<ApiError> {
        let i = self.fails.iter().position(|r| matches(&r.verb, &r.resource, t))?;
        let rule = &mut self.fails[i];
        rule.count -= 1;
        let err = ApiError::injected(rule.code, rule.message.clone());
        if rule.count == 0 {
            self.fails.remove(i);
        }
        Some(err)
    }

    pub fn delay(&self, t: &Target<'_>) -> Duration {
        Duration::from_millis(
            self.latency
                .iter()
                .filter(|r| matches(&r.verb, &r.resource, t))
                .map(|r| r.millis)
                .sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_rules_count_down_and_match() {
        let mut f = Faults::default();
        f.add_failure(FailRule {
            verb: Some("list".into()),
            resource: Some("deployments.apps".into()),
            code: 503,
            count: 2,
            message: None,
        });
        let list = Target {
            verb: "list",
            resource: "deployments",
            group: "apps",
        };
        let get = Target {
            verb: "get",
            resource: "deployments",
            group: "apps",
        };
        assert!(f.take_failure(&get).is_none());
        assert_eq!(
            f.take_failure(&list).map(|e| (e.code, e.reason)),
            Some((503, "ServiceUnavailable"))
        );
        assert!(f.take_failure(&list).is_some());
        assert!(f.take_failure(&list).is_none());
    }
}
