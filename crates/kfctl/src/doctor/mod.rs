//! `kfctl doctor`: the owner's runbook as checks.
//!
//! [`snapshot::Snapshot::fetch`] reads everything the checks need in one go;
//! [`checks::run`] judges it without I/O (except the optional database
//! check, [`crate::db`]). Each check has a stable id (docs/kfctl.md lists
//! them with the kubectl commands they replace).

pub mod checks;
pub mod snapshot;

use serde::{Deserialize, Serialize};

/// Value of `schema` in `kfctl doctor -o json`.
pub const SCHEMA: &str = "kfctl.doctor/v1";

/// What doctor looks for, and where.
#[derive(Clone, Debug)]
pub struct DoctorConfig {
    /// Namespace of the dashboard route and route-controller's routes.
    pub route_namespace: String,
    /// Name of the static dashboard HTTPRoute (in `route_namespace`).
    pub dashboard_route: String,
    /// `namespace/name` of route-controller's Deployment.
    pub route_controller: String,
    /// route-controller's leader-election Lease (in its Deployment's namespace).
    pub route_controller_lease: String,
    /// `namespace/name` of the artifact controller's Deployment.
    pub artifact_controller: String,
    /// Name of the ReferenceGrant route-controller makes per namespace.
    pub reference_grant: String,
    /// The KFP MySQL database, checked when set (`mysql://user:pass@host:port/db`).
    pub db_url: Option<String>,
    /// How long the database check waits.
    pub db_timeout: std::time::Duration,
}

impl Default for DoctorConfig {
    fn default() -> Self {
        DoctorConfig {
            route_namespace: "kubeflow".into(),
            dashboard_route: "kubeflow-dashboard".into(),
            route_controller: "kubeflow/route-controller".into(),
            route_controller_lease: "kflite-route-controller".into(),
            artifact_controller: "kubeflow/pipeline-artifacts".into(),
            reference_grant: "allow-kubeflow-gateway".into(),
            db_url: None,
            db_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not applicable (nothing to check, or an earlier check already failed).
    Skip,
    Pass,
    /// Works, but something will bite later (e.g. an image without sm_120 kernels).
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier (see docs/kfctl.md).
    pub id: String,
    /// What is checked, in a few words.
    pub title: String,
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// Each offending object or rule, one line each (empty on pass).
    pub problems: Vec<String>,
    /// What to do, when the status is warn or fail.
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn new(id: &str, title: &str) -> Self {
        Check {
            id: id.into(),
            title: title.into(),
            status: Status::Pass,
            summary: String::new(),
            problems: Vec::new(),
            fix: None,
        }
    }

    pub(crate) fn pass(mut self, summary: impl Into<String>) -> Self {
        self.status = Status::Pass;
        self.summary = summary.into();
        self
    }

    pub(crate) fn skip(mut self, summary: impl Into<String>) -> Self {
        self.status = Status::Skip;
        self.summary = summary.into();
        self
    }

    pub(crate) fn fail(mut self, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        self.status = Status::Fail;
        self.summary = summary.into();
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn warn(mut self, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        self.status = Status::Warn;
        self.summary = summary.into();
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn with_problems(mut self, problems: Vec<String>) -> Self {
        self.problems = problems;
        self
    }
}

/// Everything one `kfctl doctor` run found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `fail` if any check failed, else `warn` if any warned, else `pass`.
    pub status: Status,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        let status = checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skip)
            .max()
            .unwrap_or(Status::Pass);
        Report {
            schema: SCHEMA.into(),
            status,
            checks,
        }
    }

    /// 1 when a check failed, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.status == Status::Fail)
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The table `kfctl doctor` prints: one row per check, then each
    /// non-passing check's problems and fix.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let rows: Vec<Vec<String>> = self
            .checks
            .iter()
            .map(|c| vec![c.id.clone(), c.status.as_str().to_uppercase(), c.summary.clone()])
            .collect();
        let mut out = crate::output::table(&["CHECK", "STATUS", "SUMMARY"], &rows);
        for c in self
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        {
            let _ = writeln!(out, "\n{} ({}): {}", c.id, c.status.as_str(), c.title);
            for p in &c.problems {
                let _ = writeln!(out, "  - {p}");
            }
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "  fix: {fix}");
            }
        }
        out
    }
}

/// Read the cluster through `client` and run every check.
pub async fn run(client: &kube::Client, config: &DoctorConfig) -> crate::Result<Report> {
    let snapshot = snapshot::Snapshot::fetch(client, config).await?;
    let mut checks = checks::run(&snapshot, config);
    checks.push(crate::db::check(config).await);
    Ok(Report::new(checks))
}
