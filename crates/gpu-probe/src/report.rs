//! Check results and the report that `gpu-probe` prints (table or JSON).
//!
//! The JSON form is a stable interface (docs/gpu-probe.md, "JSON schema"):
//! fields are only ever added, never renamed or removed, while
//! [`SCHEMA_VERSION`] stays the same.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::driver::DriverInfo;
use crate::kernels::LibraryKernels;
use crate::launch::LaunchReport;

/// Value of `schema` in every JSON report.
pub const SCHEMA_VERSION: &str = "gpu-probe/v1";

/// Outcome of one check. Ordered by severity: `Skip < Ok < Warn < Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not applicable here, or blocked by an earlier failure (reason says which).
    Skip,
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the verdict: what was checked, how it went, why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier: `driver`, `devices`, `kernels`, `launch`, `vram`,
    /// `lint` (lint-pod), or `kernels:<file>` for one library.
    pub id: String,
    pub status: Status,
    /// One line: why this status.
    pub reason: String,
    /// What to change, when the status is warn or fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(id: impl Into<String>, status: Status, reason: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            status,
            reason: reason.into(),
            fix: None,
        }
    }

    pub fn ok(id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Ok, reason)
    }

    pub fn skip(id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Skip, reason)
    }

    pub fn warn(id: impl Into<String>, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, reason).with_fix(fix)
    }

    pub fn fail(id: impl Into<String>, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, reason).with_fix(fix)
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Everything one `gpu-probe` run found. Sections that were not run are absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema: String,
    /// Version of gpu-probe that wrote the report.
    pub tool_version: String,
    /// Worst status over `checks`.
    pub status: Option<Status>,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchReport>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub libraries: Vec<LibraryKernels>,
}

impl Report {
    pub fn new() -> Self {
        Report {
            schema: SCHEMA_VERSION.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Report::default()
        }
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
        self.status = self.worst();
    }

    /// Worst status over all checks (`None` when there are none).
    pub fn worst(&self) -> Option<Status> {
        self.checks.iter().map(|c| c.status).max()
    }

    /// Process exit code: 1 on any fail, 2 on a warning when `strict`, else 0.
    pub fn exit_code(&self, strict: bool) -> i32 {
        match self.worst() {
            Some(Status::Fail) => 1,
            Some(Status::Warn) if strict => 2,
            _ => 0,
        }
    }

    /// Human-readable table: one row per check, then the fixes.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let id_width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(5).max(5);
        let _ = writeln!(out, "{:<id_width$}  {:<6}  REASON", "CHECK", "STATUS");
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{:<id_width$}  {:<6}  {}",
                c.id,
                c.status.as_str().to_uppercase(),
                c.reason
            );
        }
        let fixes: Vec<&Check> = self.checks.iter().filter(|c| c.fix.is_some()).collect();
        if !fixes.is_empty() {
            let _ = writeln!(out);
            for c in fixes {
                let _ = writeln!(out, "fix {}: {}", c.id, c.fix.as_deref().unwrap_or_default());
            }
        }
        out
    }
}
