//! Which objects belong to which KFP run, and which of them are garbage: a
//! pure function of a database snapshot and a bucket listing.
//!
//! Layouts under `private-artifacts/<ns>/` (see docs/pipeline-artifacts.md):
//! - KFP v2 artifacts `v2/artifacts/<pipeline>/<run-uuid>/…`: the launcher's
//!   pipeline root is `<defaultPipelineRoot>/<pipelineName>/<runID>` and the
//!   compiler's `{{workflow.uid}}` is replaced by the KFP run UUID
//!   (KFP 2.15 `metadata.GetPipeline`, `Workflow.ReplaceUID`).
//! - Argo logs and v1 outputs `<workflow>/<Y>/<m>/<d>/<pod>/…` (the
//!   artifact-repositories keyFormat); a run's workflow name is
//!   `run_details.Name` (KFP 2.15 `CreateRun`: `run.K8SName = ExecutionName()`).
//!
//! A workflow name says nothing once its run row is gone (any Argo workflow
//! in the namespace writes there too), so Argo objects are only ever deleted
//! for runs that still exist and are archived.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Objects of one namespace live under this prefix; nothing else is ever listed.
pub const ROOT: &str = "private-artifacts/";

/// One object as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// LastModified, seconds since the epoch.
    pub modified: i64,
}

/// `run_details.StorageState`, as KFP's `StorageState.ToV2` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    Available,
    Archived,
    Unspecified,
}

impl Storage {
    /// v2 (`ARCHIVED`), v1 (`STORAGESTATE_ARCHIVED`) and legacy (`DISABLED`)
    /// spellings, case-insensitive, as `model.StorageState.ToV2` in KFP 2.15.
    pub fn from_db(raw: &str) -> Self {
        match raw.to_ascii_uppercase().as_str() {
            "AVAILABLE" | "STORAGESTATE_AVAILABLE" | "ENABLED" | "READY" => Storage::Available,
            "ARCHIVED" | "STORAGESTATE_ARCHIVED" | "DISABLED" => Storage::Archived,
            _ => Storage::Unspecified,
        }
    }
}

/// The columns of one `run_details` row that gc reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub uuid: String,
    pub namespace: String,
    /// `Name`: the Argo Workflow's name.
    pub name: String,
    pub storage: Storage,
    /// `FinishedAtInSec`; 0 while the run has not finished.
    pub finished_at: i64,
}

/// Where an object sits in the bucket's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    V2Artifacts,
    ArgoLogs,
    Other,
}

/// Whom an object belongs to, as far as its key proves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// A KFP run UUID (lower-case).
    Run(String),
    /// An Argo Workflow name, and the day (days since the epoch) of the
    /// workflow's creation date in the key.
    Workflow {
        name: String,
        day: i64,
    },
    Unattributed,
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|c| c.is_ascii_digit())
}

/// Classifies `key` of namespace `namespace` (the key must start with `private-artifacts/<ns>/`).
pub fn classify(namespace: &str, key: &str) -> (Layout, Owner) {
    let Some(rest) = key
        .strip_prefix(ROOT)
        .and_then(|r| r.strip_prefix(namespace))
        .and_then(|r| r.strip_prefix('/'))
    else {
        return (Layout::Other, Owner::Unattributed);
    };
    let seg: Vec<&str> = rest.split('/').collect();
    if seg.len() >= 2 && seg[0] == "v2" && seg[1] == "artifacts" {
        // v2/artifacts/<pipeline>/<run>/<something below the run>
        return if seg.len() >= 5
            && !seg[2].is_empty()
            && is_uuid(seg[3])
            && seg[4..].iter().any(|s| !s.is_empty())
        {
            (Layout::V2Artifacts, Owner::Run(seg[3].to_ascii_lowercase()))
        } else {
            (Layout::V2Artifacts, Owner::Unattributed)
        };
    }
    // <workflow>/<YYYY>/<MM>/<DD>/<pod>[/<file>…]: Go's "2006", "01", "02".
    if seg.len() >= 5
        && !seg[0].is_empty()
        && digits(seg[1], 4)
        && digits(seg[2], 2)
        && digits(seg[3], 2)
        && !seg[4].is_empty()
    {
        let date: Vec<i64> = seg[1..4].iter().map(|s| s.parse().unwrap_or(0)).collect();
        let day = days_from_civil(date[0], date[1], date[2]);
        return (
            Layout::ArgoLogs,
            Owner::Workflow {
                name: seg[0].to_owned(),
                day,
            },
        );
    }
    (Layout::Other, Owner::Unattributed)
}

/// What becomes of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Planned for deletion.
    Delete,
    Keep,
    /// Executed: every object deleted.
    Deleted,
    /// Executed: the re-check or a delete failed; see `reason`.
    Failed,
}

/// The run's state as gc saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Available,
    Archived,
    /// No row in `run_details`.
    Deleted,
    /// Not attributable to a run.
    Unknown,
}

/// The verdict for one owner, from the rows the database holds for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: RunState,
    pub action: Action,
    pub reason: String,
}

/// Options that decide what is garbage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Objects modified and archived runs finished after this (epoch seconds) are kept.
    pub cutoff: i64,
    pub include_archived: bool,
}

fn keep(state: RunState, reason: impl Into<String>) -> Verdict {
    Verdict {
        state,
        action: Action::Keep,
        reason: reason.into(),
    }
}

/// Judges an owner by the `run_details` rows found for it (for a run UUID at
/// most one; for a workflow every run of that name in the namespace, and the
/// runs MLMD names as that workflow's). `mlmd_runs`: the KFP run UUIDs MLMD
/// records for the workflow (see [`MlmdRun`]). Used both to plan and to
/// re-check right before deleting.
pub fn judge(owner: &Owner, rows: &[&RunRow], mlmd_runs: &[String], rules: &Rules) -> Verdict {
    match owner {
        Owner::Unattributed => return keep(RunState::Unknown, "not attributable to a run by its key"),
        Owner::Workflow { .. } if rows.is_empty() && mlmd_runs.is_empty() => {
            return keep(
                RunState::Unknown,
                "no run has this workflow name; cannot prove it was a KFP run",
            );
        }
        Owner::Workflow { .. } if rows.is_empty() => {
            return Verdict {
                state: RunState::Deleted,
                action: Action::Delete,
                reason: "run not in the database (MLMD names this workflow as its)".into(),
            };
        }
        Owner::Run(_) if rows.is_empty() => {
            return Verdict {
                state: RunState::Deleted,
                action: Action::Delete,
                reason: "run not in the database".into(),
            };
        }
        _ => {}
    }
    if rows.iter().any(|r| r.storage != Storage::Archived) {
        return keep(RunState::Available, "run exists");
    }
    if !rules.include_archived {
        return keep(RunState::Archived, "run archived (pass --include-archived)");
    }
    if rows.iter().any(|r| r.finished_at <= 0) {
        return keep(RunState::Archived, "run archived but not finished");
    }
    if rows.iter().any(|r| r.finished_at > rules.cutoff) {
        return keep(RunState::Archived, "run finished within the grace period");
    }
    Verdict {
        state: RunState::Archived,
        action: Action::Delete,
        reason: "run archived".into(),
    }
}

/// A KFP v2 run as MLMD recorded it: the driver's `system.PipelineRun`
/// context is named by the run UUID and carries custom properties
/// `namespace` and `resource_name` (the workflow's name), KFP 2.15
/// `metadata.Client.GetPipeline`. MLMD keeps it after the run is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlmdRun {
    pub uuid: String,
    pub namespace: String,
    pub workflow: String,
    /// `create_time_since_epoch`, milliseconds.
    pub created_ms: i64,
}

/// The runs of one snapshot, indexed as the judge needs them.
#[derive(Debug, Default)]
pub struct Snapshot {
    by_uuid: HashMap<String, RunRow>,
    by_workflow: HashMap<(String, String), Vec<String>>,
    /// (namespace, workflow) -> (run UUID, context creation day).
    mlmd: HashMap<(String, String), Vec<(String, i64)>>,
}

impl Snapshot {
    /// Adds MLMD's view of which run each workflow belonged to.
    pub fn with_mlmd(mut self, runs: Vec<MlmdRun>) -> Self {
        for r in runs {
            let day = r.created_ms.div_euclid(86_400_000);
            self.mlmd
                .entry((r.namespace, r.workflow))
                .or_default()
                .push((r.uuid.to_ascii_lowercase(), day));
        }
        self
    }

    /// The runs MLMD names as this workflow's, whose context was created within
    /// a day of the key's date (the date is the workflow's creation in the
    /// workflow controller's time zone; the driver starts right after).
    pub fn mlmd_runs(&self, namespace: &str, owner: &Owner) -> Vec<String> {
        let Owner::Workflow { name, day } = owner else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .mlmd
            .get(&(namespace.to_owned(), name.clone()))
            .map(|v| {
                v.iter()
                    .filter(|(_, d)| (d - day).abs() <= 1)
                    .map(|(u, _)| u.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    pub fn new(rows: Vec<RunRow>) -> Self {
        let mut s = Snapshot::default();
        for row in rows {
            let uuid = row.uuid.to_ascii_lowercase();
            s.by_workflow
                .entry((row.namespace.clone(), row.name.clone()))
                .or_default()
                .push(uuid.clone());
            s.by_uuid.insert(uuid, row);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    /// Whether a run with this UUID is in `run_details` (any storage state).
    pub fn has_run(&self, uuid: &str) -> bool {
        self.by_uuid.contains_key(&uuid.to_ascii_lowercase())
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }

    /// The rows that decide `owner` of an object in `namespace`.
    pub fn rows(&self, namespace: &str, owner: &Owner) -> Vec<&RunRow> {
        match owner {
            // A run UUID is global: a run that exists in any namespace is kept.
            Owner::Run(uuid) => self.by_uuid.get(uuid).into_iter().collect(),
            // Runs named like the workflow, and the runs MLMD names as its:
            // any of them existing keeps the logs.
            Owner::Workflow { name, .. } => {
                let mut ids: Vec<String> = self
                    .by_workflow
                    .get(&(namespace.to_owned(), name.clone()))
                    .cloned()
                    .unwrap_or_default();
                ids.extend(self.mlmd_runs(namespace, owner));
                ids.sort();
                ids.dedup();
                ids.iter().filter_map(|id| self.by_uuid.get(id)).collect()
            }
            Owner::Unattributed => Vec::new(),
        }
    }
}

/// Objects of one owner in one namespace, and what becomes of them.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub namespace: String,
    pub layout: Layout,
    /// Run UUIDs: the one in the key, or the runs named like the workflow.
    pub runs: Vec<String>,
    pub workflow: Option<String>,
    pub state: RunState,
    pub objects: u64,
    pub bytes: u64,
    /// Newest LastModified, epoch seconds.
    pub newest: i64,
    pub action: Action,
    pub reason: String,
    /// Objects and bytes actually deleted (after execution).
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    pub keys: Vec<String>,
    #[serde(skip)]
    pub owner: Owner,
    /// The runs MLMD names as the workflow's (the evidence re-checked before deleting).
    #[serde(skip)]
    pub mlmd_runs: Vec<String>,
    #[serde(skip)]
    pub sizes: Vec<u64>,
}

/// Groups one namespace's objects by owner and judges each group.
pub fn plan_namespace(namespace: &str, objects: &[Object], snapshot: &Snapshot, rules: &Rules) -> Vec<Group> {
    let mut by_owner: BTreeMap<(Layout, Owner), Vec<&Object>> = BTreeMap::new();
    for o in objects {
        by_owner.entry(classify(namespace, &o.key)).or_default().push(o);
    }
    by_owner
        .into_iter()
        .map(|((layout, owner), objs)| {
            let rows = snapshot.rows(namespace, &owner);
            let mlmd_runs = snapshot.mlmd_runs(namespace, &owner);
            let mut verdict = judge(&owner, &rows, &mlmd_runs, rules);
            let newest = objs.iter().map(|o| o.modified).max().unwrap_or(0);
            // Judged per run, not per object: a run still writing keeps all of it.
            if verdict.action == Action::Delete && newest > rules.cutoff {
                verdict = Verdict {
                    state: verdict.state,
                    action: Action::Keep,
                    reason: format!("{}, but objects are newer than the grace period", verdict.reason),
                };
            }
            let mut runs: Vec<String> = match &owner {
                Owner::Run(uuid) => vec![uuid.clone()],
                _ => rows
                    .iter()
                    .map(|r| r.uuid.to_ascii_lowercase())
                    .chain(mlmd_runs.iter().cloned())
                    .collect(),
            };
            runs.sort();
            runs.dedup();
            Group {
                namespace: namespace.to_owned(),
                layout,
                runs,
                workflow: match &owner {
                    Owner::Workflow { name, .. } => Some(name.clone()),
                    _ => None,
                },
                state: verdict.state,
                objects: objs.len() as u64,
                bytes: objs.iter().map(|o| o.size).sum(),
                newest,
                action: verdict.action,
                reason: verdict.reason,
                deleted_objects: 0,
                deleted_bytes: 0,
                keys: objs.iter().map(|o| o.key.clone()).collect(),
                sizes: objs.iter().map(|o| o.size).collect(),
                owner,
                mlmd_runs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "0b6c8f3e-2d1a-4c57-9a61-3f0e8b2c7d41";

    fn row(uuid: &str, ns: &str, name: &str, storage: &str, finished: i64) -> RunRow {
        RunRow {
            uuid: uuid.into(),
            namespace: ns.into(),
            name: name.into(),
            storage: Storage::from_db(storage),
            finished_at: finished,
        }
    }

    #[test]
    fn keys_are_classified_by_layout() {
        let ns = "team-a";
        let v2 = format!("private-artifacts/team-a/v2/artifacts/my-pipe/{RUN}/train/abc/model");
        assert_eq!(classify(ns, &v2), (Layout::V2Artifacts, Owner::Run(RUN.into())));
        let upper = v2.replace(RUN, &RUN.to_uppercase());
        assert_eq!(classify(ns, &upper).1, Owner::Run(RUN.into()));
        // Not a UUID, or nothing below the run: never attributed.
        assert_eq!(
            classify(ns, "private-artifacts/team-a/v2/artifacts/p/not-a-uuid/x").1,
            Owner::Unattributed
        );
        assert_eq!(
            classify(ns, &format!("private-artifacts/team-a/v2/artifacts/p/{RUN}")).1,
            Owner::Unattributed
        );
        let log = "private-artifacts/team-a/my-pipe-x7k2p/2026/11/27/my-pipe-x7k2p-system-container-impl-1/main.log";
        assert_eq!(
            classify(ns, log),
            (
                Layout::ArgoLogs,
                Owner::Workflow {
                    name: "my-pipe-x7k2p".into(),
                    day: days_from_civil(2026, 11, 27)
                }
            )
        );
        // A workflow named "v2" still has Argo's date layout.
        assert_eq!(
            classify(ns, "private-artifacts/team-a/v2/2026/11/27/v2-pod/main.log").1,
            Owner::Workflow {
                name: "v2".into(),
                day: days_from_civil(2026, 11, 27)
            }
        );
        for other in [
            "private-artifacts/team-a/notes.txt",
            "private-artifacts/team-a/wf/26/11/27/pod/main.log",
            "private-artifacts/team-a/wf/2026/11/27",
            "private-artifacts/team-b/wf/2026/11/27/pod/main.log",
            "artifacts/team-a/wf/2026/11/27/pod/main.log",
        ] {
            assert_eq!(
                classify(ns, other),
                (Layout::Other, Owner::Unattributed),
                "{other}"
            );
        }
    }

    #[test]
    fn storage_states_read_like_kfp() {
        for s in ["ARCHIVED", "STORAGESTATE_ARCHIVED", "archived", "DISABLED"] {
            assert_eq!(Storage::from_db(s), Storage::Archived, "{s}");
        }
        for s in ["AVAILABLE", "STORAGESTATE_AVAILABLE", "Ready", "ENABLED"] {
            assert_eq!(Storage::from_db(s), Storage::Available, "{s}");
        }
        assert_eq!(
            Storage::from_db("STORAGE_STATE_UNSPECIFIED"),
            Storage::Unspecified
        );
        assert_eq!(Storage::from_db(""), Storage::Unspecified);
    }

    #[test]
    fn only_absent_or_archived_finished_runs_are_garbage() {
        let rules = Rules {
            cutoff: 1000,
            include_archived: true,
        };
        let run = Owner::Run(RUN.into());
        assert_eq!(judge(&run, &[], &[], &rules).action, Action::Delete);
        let avail = row(RUN, "a", "wf", "AVAILABLE", 10);
        assert_eq!(judge(&run, &[&avail], &[], &rules).state, RunState::Available);
        assert_eq!(judge(&run, &[&avail], &[], &rules).action, Action::Keep);
        // Unspecified storage is not archived: kept.
        let unspecified = row(RUN, "a", "wf", "", 10);
        assert_eq!(judge(&run, &[&unspecified], &[], &rules).action, Action::Keep);
        let archived = row(RUN, "a", "wf", "STORAGESTATE_ARCHIVED", 10);
        assert_eq!(judge(&run, &[&archived], &[], &rules).action, Action::Delete);
        let no_archived = Rules {
            include_archived: false,
            ..rules.clone()
        };
        assert_eq!(judge(&run, &[&archived], &[], &no_archived).action, Action::Keep);
        let running = row(RUN, "a", "wf", "ARCHIVED", 0);
        assert_eq!(judge(&run, &[&running], &[], &rules).action, Action::Keep);
        let recent = row(RUN, "a", "wf", "ARCHIVED", 1001);
        assert_eq!(judge(&run, &[&recent], &[], &rules).action, Action::Keep);
        // A workflow name without a run proves nothing; with one available run of that name, kept.
        let wf = Owner::Workflow {
            name: "wf".into(),
            day: 0,
        };
        assert_eq!(judge(&wf, &[], &[], &rules).action, Action::Keep);
        assert_eq!(judge(&wf, &[&archived, &avail], &[], &rules).action, Action::Keep);
        assert_eq!(judge(&wf, &[&archived], &[], &rules).action, Action::Delete);
        assert_eq!(judge(&Owner::Unattributed, &[], &[], &rules).action, Action::Keep);
        // MLMD names the workflow's run: absent from run_details, deleted; present, judged as above.
        let mlmd = [RUN.to_owned()];
        assert_eq!(judge(&wf, &[], &mlmd, &rules).state, RunState::Deleted);
        assert_eq!(judge(&wf, &[], &mlmd, &rules).action, Action::Delete);
        assert_eq!(judge(&wf, &[&avail], &mlmd, &rules).action, Action::Keep);
    }

    #[test]
    fn mlmd_evidence_must_match_namespace_workflow_and_date() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        let day = days_from_civil(2026, 11, 27);
        let ms = |d: i64| d * 86_400_000 + 3_600_000;
        let mlmd = |uuid: &str, ns: &str, wf: &str, d: i64| MlmdRun {
            uuid: uuid.into(),
            namespace: ns.into(),
            workflow: wf.into(),
            created_ms: ms(d),
        };
        let snap = Snapshot::new(vec![row("b", "a", "other", "AVAILABLE", 1)]).with_mlmd(vec![
            mlmd("A", "a", "wf", day),
            mlmd("b", "a", "wf", day + 1),
            mlmd("c", "a", "wf", day - 5),
            mlmd("d", "other-ns", "wf", day),
        ]);
        let owner = Owner::Workflow {
            name: "wf".into(),
            day,
        };
        assert_eq!(snap.mlmd_runs("a", &owner), ["a", "b"]);
        // Run "b" exists (under another name): the logs are kept.
        assert_eq!(snap.rows("a", &owner).len(), 1);
        assert!(
            snap.mlmd_runs(
                "a",
                &Owner::Workflow {
                    name: "wf".into(),
                    day: day + 10
                }
            )
            .is_empty()
        );
        assert!(snap.mlmd_runs("a", &Owner::Run("a".into())).is_empty());
    }

    #[test]
    fn a_run_with_any_recent_object_is_kept_whole() {
        let snapshot = Snapshot::new(vec![]);
        let rules = Rules {
            cutoff: 1000,
            include_archived: false,
        };
        let key = |n: u32| format!("private-artifacts/a/v2/artifacts/p/{RUN}/t/{n}");
        let old = [
            Object {
                key: key(1),
                size: 5,
                modified: 900,
            },
            Object {
                key: key(2),
                size: 7,
                modified: 1000,
            },
        ];
        let groups = plan_namespace("a", &old, &snapshot, &rules);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            (groups[0].action, groups[0].objects, groups[0].bytes),
            (Action::Delete, 2, 12)
        );
        let mut mixed = old.to_vec();
        mixed.push(Object {
            key: key(3),
            size: 1,
            modified: 1001,
        });
        let groups = plan_namespace("a", &mixed, &snapshot, &rules);
        assert_eq!((groups[0].action, groups[0].objects), (Action::Keep, 3));
    }
}
