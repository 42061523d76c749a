//! `pipeline-artifacts gc`: deletes the artifacts and logs of Kubeflow
//! Pipelines runs that are gone from KFP's database (or archived, when asked).
//!
//! Order of work, so that a crash or a kill at any point has deleted only
//! objects that were garbage, and a rerun finishes the job:
//! 1. snapshot every run from `run_details` (before listing any object, so an
//!    object listed later belongs to a run in the snapshot or to a run newer
//!    than it);
//! 2. list `private-artifacts/<ns>/` and plan per run ([`plan`]); objects
//!    modified after the cutoff (snapshot time minus `--older-than`) keep
//!    their whole run;
//! 3. per run: re-read that run's rows, judge again with the same rules, and
//!    only then delete the objects listed for it — never anything listed
//!    later, never outside `private-artifacts/<ns>/`.
//!
//! Safety ([`safety`]): a plan is refused without `--force` when `run_details`
//! is empty or it would delete more than `--max-delete-share` of the objects;
//! with MLMD, objects a live run still uses (KFP's cache reuses an earlier
//! run's outputs) are kept, checked at plan time and again before deleting.

pub mod db;
pub mod plan;
pub mod report;
pub mod safety;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::error::DisplayErrorContext;

use crate::metrics::Metrics;
use crate::secret::SecretString;
use crate::store::{SeaweedStore, StoreError};
use db::Db;
use plan::{Action, Object, Owner, ROOT, Rules, RunRow, Snapshot, judge, plan_namespace};
pub use report::Report;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("--db-url is not usable: {0}")]
    DbUrl(String),
    #[error("database {db}: {message}")]
    Db { db: String, message: String },
    #[error("database {db}: the schema differs from what KFP 2.x creates: {message}")]
    Schema { db: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--namespace {0:?} is not a Kubernetes namespace name")]
    Namespace(String),
    #[error("invalid duration {0:?}: use e.g. 7d, 12h, 30m, 0s")]
    Duration(String),
    #[error("gc refused: {0}")]
    Refused(String),
}

/// What one gc cycle does.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Grace period: objects modified, and archived runs finished, within it are kept.
    pub older_than: Duration,
    /// Only this namespace (else every namespace under `private-artifacts/`).
    pub namespace: Option<String>,
    /// Also delete the objects of archived (finished) runs.
    pub include_archived: bool,
    /// Plan and report only.
    pub dry_run: bool,
    /// Pause before each delete (tests use it to kill gc midway).
    pub delete_delay: Duration,
    /// `--force`: run a plan [`safety::refusal`] would refuse.
    pub force: bool,
    /// `--max-delete-share` (0..=1): the largest share of listed objects one plan may delete.
    pub max_delete_share: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            older_than: Duration::from_secs(7 * 86_400),
            namespace: None,
            include_archived: false,
            dry_run: false,
            delete_delay: Duration::ZERO,
            force: false,
            max_delete_share: safety::DEFAULT_MAX_DELETE_SHARE,
        }
    }
}

/// Parses `7d`, `12h`, `30m`, `45s`, `1w`, combinations like `1d12h`, or `0`.
pub fn parse_duration(raw: &str) -> Result<Duration, GcError> {
    let bad = || GcError::Duration(raw.to_owned());
    let s = raw.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn s3_err(op: &'static str, subject: &str, e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Call {
        api: "S3",
        op,
        subject: subject.to_owned(),
        message: DisplayErrorContext(&e).to_string(),
        code: None,
    }
}

/// One listing of `prefix`, all pages: the objects, and with `delimiter` the common prefixes.
async fn list(
    store: &SeaweedStore,
    prefix: &str,
    delimiter: Option<&str>,
) -> Result<(Vec<Object>, Vec<String>), StoreError> {
    let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    loop {
        let page = store
            .s3
            .list_objects_v2()
            .bucket(&store.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| s3_err("ListObjectsV2", prefix, e))?;
        prefixes.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            objects.push(Object {
                key: key.to_owned(),
                size: o.size().unwrap_or(0).max(0) as u64,
                // No timestamp: treat as new, so it is never deleted.
                modified: o.last_modified().map(|t| t.secs()).unwrap_or(i64::MAX),
            });
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) && Some(next) != token.as_deref() => {
                token = Some(next.to_owned())
            }
            _ => return Ok((objects, prefixes)),
        }
    }
}

/// Namespaces that have objects under `private-artifacts/`.
pub async fn list_namespaces(store: &SeaweedStore) -> Result<Vec<String>, StoreError> {
    let (_, prefixes) = list(store, ROOT, Some("/")).await?;
    let mut out: Vec<String> = prefixes
        .iter()
        .filter_map(|p| p.strip_prefix(ROOT).and_then(|p| p.strip_suffix('/')))
        .filter(|ns| is_dns_label(ns))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every object under `prefix`.
pub async fn list_objects(store: &SeaweedStore, prefix: &str) -> Result<Vec<Object>, StoreError> {
    Ok(list(store, prefix, None).await?.0)
}

/// One gc cycle: snapshot, list, plan, and unless `dry_run`, delete.
/// Errors during deletion are recorded in the report (other runs go on);
/// errors before it (database, listing) end the cycle.
pub async fn run_once(
    dbs: &Databases,
    store: &SeaweedStore,
    opts: &GcOptions,
    metrics: Option<&Metrics>,
) -> Result<Report, GcError> {
    if let Some(ns) = &opts.namespace
        && !is_dns_label(ns)
    {
        return Err(GcError::Namespace(ns.clone()));
    }
    let started = now_secs();
    let rules = Rules {
        cutoff: started - opts.older_than.as_secs() as i64,
        include_archived: opts.include_archived,
    };
    // The snapshot comes before the listing; see the module docs. MLMD is
    // read first: a run created in between then has a row but no MLMD
    // evidence (kept), never evidence but no row.
    let mlmd = match &dbs.mlmd {
        Some(m) => m.mlmd_runs().await?,
        None => Vec::new(),
    };
    let db = &dbs.kfp;
    let snapshot = Snapshot::new(db.runs().await?).with_mlmd(mlmd);
    let namespaces = match &opts.namespace {
        Some(ns) => vec![ns.clone()],
        None => list_namespaces(store).await?,
    };
    let mut groups = Vec::new();
    for ns in &namespaces {
        let objects = list_objects(store, &format!("{ROOT}{ns}/")).await?;
        groups.extend(plan_namespace(ns, &objects, &snapshot, &rules));
    }
    if let Some(m) = &dbs.mlmd {
        let links = safety::Links::new(&m.mlmd_links().await?, &store.bucket, |r| snapshot.has_run(r));
        safety::keep_reused(&mut groups, &links);
    }
    let mut report = Report::new(opts, started, rules.cutoff, snapshot.len(), namespaces, groups);
    if !opts.force
        && let Some(why) = safety::refusal(report.runs_in_database, &report.totals(), opts.max_delete_share)
    {
        if !opts.dry_run {
            return Err(GcError::Refused(why));
        }
        tracing::warn!(reason = %why, "a real run would be refused");
        report.refused = Some(why);
    }
    tracing::info!(
        db = db.shown(),
        runs = report.runs_in_database,
        namespaces = report.namespaces.len(),
        delete_objects = report.totals().delete_objects,
        delete_bytes = report.totals().delete_bytes,
        dry_run = opts.dry_run,
        "gc planned"
    );
    if !opts.dry_run {
        execute(dbs, store, &mut report, &rules, opts.delete_delay, metrics).await;
        report.finish();
    }
    Ok(report)
}

/// The rows that decide a workflow's logs now: runs of that name, and the runs MLMD named.
async fn recheck_workflow(
    db: &Db,
    namespace: &str,
    name: &str,
    mlmd_runs: &[String],
) -> Result<Vec<RunRow>, GcError> {
    let mut rows = db.runs_by_workflow(namespace, name).await?;
    for uuid in mlmd_runs {
        rows.extend(db.run_by_uuid(uuid).await?);
    }
    Ok(rows)
}

/// Re-checks and deletes each planned run in turn.
async fn execute(
    dbs: &Databases,
    store: &SeaweedStore,
    report: &mut Report,
    rules: &Rules,
    delay: Duration,
    metrics: Option<&Metrics>,
) {
    let db = &dbs.kfp;
    // Read again: a run started since the plan may reuse a planned run's outputs.
    let links = match &dbs.mlmd {
        Some(m) => match m.mlmd_links().await {
            Ok(pairs) => Some(pairs),
            Err(e) => {
                report
                    .errors
                    .push(format!("re-reading MLMD failed, nothing deleted: {e}"));
                return;
            }
        },
        None => None,
    };
    for g in report.groups.iter_mut().filter(|g| g.action == Action::Delete) {
        let rows: Result<Vec<RunRow>, GcError> = match &g.owner {
            Owner::Run(uuid) => db.run_by_uuid(uuid).await,
            Owner::Workflow { name, .. } => recheck_workflow(db, &g.namespace, name, &g.mlmd_runs).await,
            Owner::Unattributed => Ok(Vec::new()),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                g.action = Action::Failed;
                g.reason = format!("re-check failed, nothing deleted: {e}");
                report.errors.push(g.reason.clone());
                continue;
            }
        };
        let verdict = judge(&g.owner, &rows.iter().collect::<Vec<_>>(), &g.mlmd_runs, rules);
        if verdict.action != Action::Delete {
            g.action = Action::Keep;
            g.state = verdict.state;
            g.reason = format!("{} (changed since the plan; nothing deleted)", verdict.reason);
            tracing::info!(namespace = %g.namespace, runs = ?g.runs, reason = %g.reason, "gc kept a planned run");
            continue;
        }
        if let Some(pairs) = &links {
            match live_users(db, pairs, &store.bucket, &g.keys).await {
                Ok(runs) if runs.is_empty() => {}
                Ok(runs) => {
                    let runs: Vec<&str> = runs.iter().map(String::as_str).collect();
                    g.action = Action::Keep;
                    g.reason = format!(
                        "{} (changed since the plan; nothing deleted)",
                        safety::reuse_reason(&runs)
                    );
                    continue;
                }
                Err(e) => {
                    g.action = Action::Failed;
                    g.reason = format!("re-check failed, nothing deleted: {e}");
                    report.errors.push(g.reason.clone());
                    continue;
                }
            }
        }
        let own_prefix = format!("{ROOT}{}/", g.namespace);
        let mut failed = None;
        for (key, size) in g.keys.iter().zip(&g.sizes) {
            // Belt and braces: the plan only holds keys under the namespace's prefix.
            if !key.starts_with(&own_prefix) {
                failed = Some(format!("refusing to delete {key}: outside {own_prefix}"));
                break;
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match store
                .s3
                .delete_object()
                .bucket(&store.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(_) => {
                    g.deleted_objects += 1;
                    g.deleted_bytes += size;
                    if let Some(m) = metrics {
                        m.gc_objects_deleted.inc();
                        m.gc_bytes_reclaimed.add(*size);
                    }
                }
                Err(e) => {
                    failed = Some(s3_err("DeleteObject", key, e).to_string());
                    break;
                }
            }
        }
        match failed {
            Some(reason) => {
                g.action = Action::Failed;
                g.reason = reason;
                report.errors.push(g.reason.clone());
            }
            None => {
                g.action = Action::Deleted;
                tracing::info!(namespace = %g.namespace, runs = ?g.runs, workflow = ?g.workflow, objects = g.deleted_objects, bytes = g.deleted_bytes, "gc deleted");
            }
        }
    }
}

/// The runs MLMD links to any of `keys` that exist in `run_details` now.
async fn live_users(
    db: &Db,
    pairs: &[(String, String)],
    bucket: &str,
    keys: &[String],
) -> Result<Vec<String>, GcError> {
    let linked = safety::Links::new(pairs, bucket, |_| true);
    let mut live = Vec::new();
    for run in linked.runs_for_any(keys) {
        if !db.run_by_uuid(run).await?.is_empty() {
            live.push(run.to_owned());
        }
    }
    Ok(live)
}

/// Connects and checks the schema: what every gc start does first.
pub async fn open(url: &SecretString, password: Option<&SecretString>) -> Result<Databases, GcError> {
    let kfp = Db::connect(url, password).await?;
    kfp.check_schema().await?;
    Ok(Databases { kfp, mlmd: None })
}

/// KFP's database, and optionally MLMD's (`metadb`), which lets gc prove
/// which run an Argo log directory belonged to after the run is deleted.
#[derive(Debug, Clone)]
pub struct Databases {
    pub kfp: Db,
    pub mlmd: Option<Db>,
}

impl Databases {
    /// Also reads MLMD at `url` (its schema checked first).
    pub async fn with_mlmd(
        mut self,
        url: &SecretString,
        password: Option<&SecretString>,
    ) -> Result<Self, GcError> {
        let mlmd = Db::connect(url, password).await?;
        mlmd.check_mlmd_schema().await?;
        self.mlmd = Some(mlmd);
        Ok(self)
    }

    pub async fn close(&self) {
        self.kfp.close().await;
        if let Some(m) = &self.mlmd {
            m.close().await;
        }
    }
}

/// Where the databases are: the KFP database, optionally MLMD's, and a
/// password (e.g. `DB_PASSWORD` from a Secret) that replaces the URLs'.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: SecretString,
    pub mlmd_url: Option<SecretString>,
    pub password: Option<SecretString>,
}

impl DbConfig {
    /// Connects and checks the schemas.
    pub async fn open(&self) -> Result<Databases, GcError> {
        let dbs = open(&self.url, self.password.as_ref()).await?;
        match &self.mlmd_url {
            Some(m) => dbs.with_mlmd(m, self.password.as_ref()).await,
            None => Ok(dbs),
        }
    }
}

/// Controller mode: a cycle every `every`, metrics updated, until `shutdown`.
/// The database is (re)opened lazily, so a database that is down or not yet
/// migrated at start is retried (every minute at most) instead of crashing;
/// /readyz says whether it is open.
pub async fn run_every(
    config: DbConfig,
    store: SeaweedStore,
    opts: GcOptions,
    every: Duration,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut db: Option<Databases> = None;
    loop {
        let cycle = async {
            if db.is_none() {
                db = Some(config.open().await?);
            }
            let db = db.as_ref().expect("opened above");
            run_once(db, &store, &opts, Some(&metrics)).await
        };
        let result = cycle.await;
        metrics.set_ready(db.is_some());
        let pause = match result {
            Ok(report) => {
                metrics.record_gc(&report, now_secs());
                for e in &report.errors {
                    tracing::warn!(error = %e, "gc error");
                }
                every
            }
            Err(e) => {
                metrics.gc_cycles_failed.inc();
                metrics.gc_errors.inc();
                tracing::warn!(error = %e, "gc cycle failed");
                every.min(Duration::from_secs(60))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("1d12h").unwrap(), Duration::from_secs(129_600));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "7", "d", "7x", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespace_names() {
        assert!(is_dns_label("kubeflow-user-example-com"));
        for bad in ["", "A", "a/b", "-a", "a-", "..", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
