//! The gc report: a table for people, JSON (`--output json`) for scripts.

use serde::Serialize;

use super::GcOptions;
use super::plan::{Action, Group, Layout, RunState};

/// Everything one cycle saw and did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Snapshot time, epoch seconds.
    pub started: i64,
    /// Objects modified and archived runs finished after this are kept.
    pub cutoff: i64,
    pub older_than_secs: u64,
    pub include_archived: bool,
    pub runs_in_database: usize,
    pub namespaces: Vec<String>,
    pub groups: Vec<Group>,
    pub totals: Totals,
    pub errors: Vec<String>,
    /// Why a real run of this plan is refused without `--force` (dry runs report it here).
    pub refused: Option<String>,
}

/// Sums over the groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub objects: u64,
    pub bytes: u64,
    /// Planned for deletion (still planned in a dry run).
    pub delete_objects: u64,
    pub delete_bytes: u64,
    /// Actually deleted.
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    /// Everything not deleted.
    pub kept_objects: u64,
    pub kept_bytes: u64,
}

impl Report {
    pub fn new(
        opts: &GcOptions,
        started: i64,
        cutoff: i64,
        runs_in_database: usize,
        namespaces: Vec<String>,
        groups: Vec<Group>,
    ) -> Self {
        let mut r = Report {
            dry_run: opts.dry_run,
            started,
            cutoff,
            older_than_secs: opts.older_than.as_secs(),
            include_archived: opts.include_archived,
            runs_in_database,
            namespaces,
            groups,
            totals: Totals::default(),
            errors: Vec::new(),
            refused: None,
        };
        r.totals = r.totals();
        r
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for g in &self.groups {
            t.objects += g.objects;
            t.bytes += g.bytes;
            if matches!(g.action, Action::Delete | Action::Deleted) {
                t.delete_objects += g.objects;
                t.delete_bytes += g.bytes;
            }
            t.deleted_objects += g.deleted_objects;
            t.deleted_bytes += g.deleted_bytes;
        }
        t.kept_objects = t.objects - t.deleted_objects;
        t.kept_bytes = t.bytes - t.deleted_bytes;
        t
    }

    /// Refreshes [`Report::totals`] after execution.
    pub fn finish(&mut self) {
        self.totals = self.totals();
    }

    /// Keys planned for deletion (dry run) or deleted (real run).
    pub fn deletable_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| matches!(g.action, Action::Delete | Action::Deleted))
            .flat_map(|g| g.keys.iter().map(String::as_str))
            .collect();
        keys.sort_unstable();
        keys
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One line per run: namespace, run, layout, state, objects, bytes, action, reason.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 8]> = vec![[
            "NAMESPACE".into(),
            "RUN".into(),
            "LAYOUT".into(),
            "STATE".into(),
            "OBJECTS".into(),
            "BYTES".into(),
            "ACTION".into(),
            "REASON".into(),
        ]];
        for g in &self.groups {
            let run = match (&g.workflow, g.runs.as_slice()) {
                (Some(w), []) => format!("workflow {w}"),
                (Some(w), runs) => format!("{} (workflow {w})", runs.join(",")),
                (None, []) => "-".into(),
                (None, runs) => runs.join(","),
            };
            rows.push([
                g.namespace.clone(),
                run,
                match g.layout {
                    Layout::V2Artifacts => "v2-artifacts",
                    Layout::ArgoLogs => "argo-logs",
                    Layout::Other => "other",
                }
                .into(),
                match g.state {
                    RunState::Available => "available",
                    RunState::Archived => "archived",
                    RunState::Deleted => "deleted",
                    RunState::Unknown => "unknown",
                }
                .into(),
                g.objects.to_string(),
                g.bytes.to_string(),
                match (g.action, self.dry_run) {
                    (Action::Delete, true) => "would delete",
                    (Action::Delete, false) => "delete",
                    (Action::Keep, _) => "keep",
                    (Action::Deleted, _) => "deleted",
                    (Action::Failed, _) => "FAILED",
                }
                .into(),
                g.reason.clone(),
            ]);
        }
        let widths: Vec<usize> = (0..8)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        let t = &self.totals;
        if self.dry_run {
            out.push_str(&format!(
                "dry run: would delete {} objects ({} bytes); {} objects ({} bytes) in all\n",
                t.delete_objects, t.delete_bytes, t.objects, t.bytes
            ));
        } else {
            out.push_str(&format!(
                "deleted {} objects ({} bytes); kept {} objects ({} bytes)\n",
                t.deleted_objects, t.deleted_bytes, t.kept_objects, t.kept_bytes
            ));
        }
        if let Some(why) = &self.refused {
            out.push_str(&format!("a real run would be refused: {why}\n"));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}
