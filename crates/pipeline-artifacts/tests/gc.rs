//! `pipeline-artifacts gc` against a real MariaDB (KFP 2.15's `run_details`)
//! and a real SeaweedFS holding objects of existing, deleted and archived
//! runs, plus objects gc must never touch.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pipeline_artifacts::gc::{self, GcOptions};
use pipeline_artifacts::secret::SecretString;
use pipeline_artifacts::store::SeaweedStore;
use sqlx::Connection as _;
use sqlx::mysql::MySqlConnection;
use testsvc::mariadb::{KFP_RUN_DETAILS_DDL, MLMD_DDL, MariaDb};
use testsvc::seaweedfs::SeaweedFs;

const PASSWORD: &str = "gc-s3cret-pa55";

fn mariadb(test: &str) -> Option<MariaDb> {
    let mariadbd = testkit::require_tool(test, "mariadbd")?;
    let install = testkit::require_tool(test, "mariadb-install-db")?;
    Some(MariaDb::start(&mariadbd, &install).expect("MariaDB starts"))
}

async fn sql(db: &MariaDb, statement: &str) {
    let mut conn = MySqlConnection::connect(&db.url(PASSWORD))
        .await
        .expect("connect to MariaDB");
    sqlx::raw_sql(statement)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    conn.close().await.unwrap();
}

/// A run row with every NOT NULL column KFP fills.
async fn insert_run(db: &MariaDb, r: &Run) {
    let mut conn = MySqlConnection::connect(&db.url(PASSWORD)).await.unwrap();
    sqlx::query(
        "INSERT INTO run_details (UUID, DisplayName, Name, Description, Namespace, ExperimentUUID, StorageState, \
         ServiceAccount, PipelineId, PipelineName, CreatedAtInSec, FinishedAtInSec, Conditions, State, \
         PipelineRuntimeManifest, WorkflowRuntimeManifest) \
         VALUES (?, ?, ?, '', ?, '4c3b1c2e-0000-4000-8000-000000000001', ?, 'pipeline-runner', '', ?, 1700000000, ?, ?, ?, '{}', '')",
    )
    .bind(r.uuid)
    .bind(format!("display {}", r.workflow))
    .bind(r.workflow)
    .bind(r.namespace)
    .bind(r.storage)
    .bind(r.pipeline)
    .bind(r.finished)
    .bind(if r.finished > 0 { "Succeeded" } else { "Running" })
    .bind(if r.finished > 0 { "SUCCEEDED" } else { "RUNNING" })
    .execute(&mut conn)
    .await
    .expect("insert run");
    conn.close().await.unwrap();
}

/// A run of the fixture; `in_db: false` means deleted from KFP.
struct Run {
    uuid: &'static str,
    namespace: &'static str,
    workflow: &'static str,
    pipeline: &'static str,
    storage: &'static str,
    finished: i64,
    in_db: bool,
}

const FINISHED: i64 = 1_700_000_100;

const RUNS: &[Run] = &[
    // team-a: available, deleted, archived (finished), archived (still running)
    Run {
        uuid: "a1a1a1a1-0000-4000-8000-000000000001",
        namespace: "team-a",
        workflow: "pipe-a1-x1",
        pipeline: "pipe-a",
        storage: "AVAILABLE",
        finished: FINISHED,
        in_db: true,
    },
    Run {
        uuid: "a2a2a2a2-0000-4000-8000-000000000002",
        namespace: "team-a",
        workflow: "pipe-a2-x2",
        pipeline: "pipe-a",
        storage: "AVAILABLE",
        finished: FINISHED,
        in_db: false,
    },
    Run {
        uuid: "a3a3a3a3-0000-4000-8000-000000000003",
        namespace: "team-a",
        workflow: "pipe-a3-x3",
        pipeline: "pipe-a",
        storage: "ARCHIVED",
        finished: FINISHED,
        in_db: true,
    },
    Run {
        uuid: "a5a5a5a5-0000-4000-8000-000000000005",
        namespace: "team-a",
        workflow: "pipe-a5-x5",
        pipeline: "pipe-a",
        storage: "ARCHIVED",
        finished: 0,
        in_db: true,
    },
    // team-b: KFP v1 spellings of the storage state, and another deleted run
    Run {
        uuid: "b1b1b1b1-0000-4000-8000-000000000001",
        namespace: "team-b",
        workflow: "pipe-b1-y1",
        pipeline: "pipe-b",
        storage: "STORAGESTATE_AVAILABLE",
        finished: FINISHED,
        in_db: true,
    },
    Run {
        uuid: "b2b2b2b2-0000-4000-8000-000000000002",
        namespace: "team-b",
        workflow: "pipe-b2-y2",
        pipeline: "pipe-b",
        storage: "AVAILABLE",
        finished: FINISHED,
        in_db: false,
    },
    Run {
        uuid: "b4b4b4b4-0000-4000-8000-000000000004",
        namespace: "team-b",
        workflow: "pipe-b4-y4",
        pipeline: "pipe-b",
        storage: "STORAGESTATE_ARCHIVED",
        finished: FINISHED,
        in_db: true,
    },
    // exists in team-b, but has objects under team-a's prefix: a run that exists is never touched
    Run {
        uuid: "c1c1c1c1-0000-4000-8000-000000000001",
        namespace: "team-b",
        workflow: "pipe-c1-z1",
        pipeline: "pipe-c",
        storage: "AVAILABLE",
        finished: FINISHED,
        in_db: true,
    },
];

fn is_archived(r: &Run) -> bool {
    r.storage.ends_with("ARCHIVED")
}

/// Objects of a run: v2 artifacts under its UUID, Argo logs under its workflow.
fn run_objects(r: &Run, prefix_ns: &str) -> Vec<(String, usize)> {
    let v2 = format!(
        "private-artifacts/{prefix_ns}/v2/artifacts/{}/{}",
        r.pipeline, r.uuid
    );
    let logs = format!("private-artifacts/{prefix_ns}/{}/2026/11/27", r.workflow);
    vec![
        (format!("{v2}/train/a1b2/model"), 3000),
        (format!("{v2}/train/a1b2/metrics"), 120),
        (format!("{v2}/eval/c3d4/report.html"), 777),
        (
            format!("{logs}/{}-system-container-impl-1/main.log", r.workflow),
            450,
        ),
        (
            format!("{logs}/{}-system-container-driver-2/main.log", r.workflow),
            210,
        ),
    ]
}

/// Everything in the bucket at the start, and the objects gc may delete
/// (v2 artifacts of deleted runs; with `include_archived` all objects of
/// finished archived runs).
struct Fixture {
    all: BTreeSet<String>,
    sizes: std::collections::BTreeMap<String, u64>,
    deleted_runs: BTreeSet<String>,
    archived_runs: BTreeSet<String>,
    /// Argo logs of deleted runs: garbage only with MLMD's evidence.
    deleted_runs_logs: BTreeSet<String>,
}

impl Fixture {
    fn deletable(&self, include_archived: bool, namespace: Option<&str>) -> BTreeSet<String> {
        let mut out = self.deleted_runs.clone();
        if include_archived {
            out.extend(self.archived_runs.iter().cloned());
        }
        out.retain(|k| namespace.is_none_or(|ns| k.starts_with(&format!("private-artifacts/{ns}/"))));
        out
    }

    /// With `--mlmd-db-url`: also the Argo logs of deleted runs.
    fn deletable_with_mlmd(&self, include_archived: bool) -> BTreeSet<String> {
        let mut out = self.deletable(include_archived, None);
        out.extend(self.deleted_runs_logs.iter().cloned());
        out
    }

    fn bytes(&self, keys: &BTreeSet<String>) -> u64 {
        keys.iter().map(|k| self.sizes[k]).sum()
    }
}

/// 2026-11-27T12:00:00Z, the day of the fixture's Argo log directories.
const NOV_27_NOON_MS: i64 = 1_795_780_800_000;

async fn mlmd_schema(db: &MariaDb) {
    sql(db, "CREATE DATABASE metadb").await;
    let mut conn = MySqlConnection::connect(&db.url_for("metadb", PASSWORD))
        .await
        .unwrap();
    sqlx::raw_sql(MLMD_DDL)
        .execute(&mut conn)
        .await
        .expect("MLMD tables");
    // KFP's context types, as the driver registers them (type_kind 2: a context type).
    sqlx::raw_sql(
        "INSERT INTO `Type` (`name`, `type_kind`) VALUES ('system.Pipeline', 2), ('system.PipelineRun', 2)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// The driver's `system.PipelineRun` context for a run: named by the run
/// UUID, custom properties `namespace` and `resource_name` (the workflow).
async fn mlmd_context(db: &MariaDb, uuid: &str, namespace: &str, workflow: &str, created_ms: i64) {
    let mut conn = MySqlConnection::connect(&db.url_for("metadb", PASSWORD))
        .await
        .unwrap();
    let id = sqlx::query(
        "INSERT INTO `Context` (`type_id`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) \
         SELECT id, ?, ?, ? FROM `Type` WHERE name = 'system.PipelineRun'",
    )
    .bind(uuid)
    .bind(created_ms)
    .bind(created_ms)
    .execute(&mut conn)
    .await
    .unwrap()
    .last_insert_id();
    for (name, value) in [
        ("namespace", namespace.to_owned()),
        ("resource_name", workflow.to_owned()),
        (
            "pipeline_root",
            format!("minio://mlpipeline/private-artifacts/{namespace}/v2/artifacts/p/{uuid}"),
        ),
    ] {
        sqlx::query(
            "INSERT INTO `ContextProperty` (`context_id`, `name`, `is_custom_property`, `string_value`) VALUES (?, ?, 1, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(value)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

async fn build_fixture(db: &MariaDb, sw: &SeaweedFs) -> Fixture {
    sql(db, KFP_RUN_DETAILS_DDL).await;
    let store = sw.store();
    let mut all = BTreeSet::new();
    let mut sizes = std::collections::BTreeMap::new();
    let mut deleted_runs = BTreeSet::new();
    let mut archived_runs = BTreeSet::new();
    let mut deleted_runs_logs = BTreeSet::new();
    let mut objects: Vec<(String, usize)> = Vec::new();
    mlmd_schema(db).await;
    // A context for a workflow named like the manual one, but weeks before its
    // logs' date: no evidence for them.
    mlmd_context(
        db,
        "d0d0d0d0-0000-4000-8000-000000000000",
        "team-a",
        "manual-wf",
        NOV_27_NOON_MS - 20 * 86_400_000,
    )
    .await;
    for r in RUNS {
        if r.in_db {
            insert_run(db, r).await;
        }
        // Every run started, so its driver recorded it in MLMD (which keeps it after deletion).
        mlmd_context(db, r.uuid, r.namespace, r.workflow, NOV_27_NOON_MS).await;
        let prefix_ns = if r.uuid.starts_with("c1") {
            "team-a"
        } else {
            r.namespace
        };
        let objs = run_objects(r, prefix_ns);
        for (i, (key, _)) in objs.iter().enumerate() {
            let is_v2 = i < 3;
            if !r.in_db && is_v2 {
                deleted_runs.insert(key.clone());
            }
            if !r.in_db && !is_v2 {
                deleted_runs_logs.insert(key.clone());
            }
            if r.in_db && is_archived(r) && r.finished > 0 && prefix_ns == r.namespace {
                archived_runs.insert(key.clone());
            }
        }
        objects.extend(objs);
    }
    // Never touched: unattributable keys, other prefixes, shared and public artifacts.
    for key in [
        "private-artifacts/team-a/notes.txt",
        "private-artifacts/team-a/v2/artifacts/pipe-a/not-a-run-id/x/y",
        "private-artifacts/team-a/manual-wf/2026/11/27/manual-wf-pod/main.log",
        "private/team-a/a2a2a2a2-0000-4000-8000-000000000002/data.csv",
        "shared/datasets/a2a2a2a2-0000-4000-8000-000000000002/train.csv",
        "artifacts/pipe-a2-x2/2026/11/27/pipe-a2-x2-pod/main.log",
    ] {
        objects.push((key.to_owned(), 64));
    }
    for (key, size) in &objects {
        store
            .s3
            .put_object()
            .bucket(&store.bucket)
            .key(key)
            .body(vec![b'x'; *size].into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
        all.insert(key.clone());
        sizes.insert(key.clone(), *size as u64);
    }
    Fixture {
        all,
        sizes,
        deleted_runs,
        archived_runs,
        deleted_runs_logs,
    }
}

/// MariaDB and SeaweedFS with the fixture in them (None: a tool is missing, skip recorded).
async fn setup(test: &str) -> Option<(MariaDb, SeaweedFs, Fixture, SeaweedStore)> {
    let db = mariadb(test)?;
    let sw = common::seaweed(test)?;
    let fx = build_fixture(&db, &sw).await;
    let store = sw.store();
    Some((db, sw, fx, store))
}

/// Waits until a running gc has deleted its first object from a bucket of `total`.
async fn first_deletion(store: &SeaweedStore, total: usize) {
    let start = Instant::now();
    while bucket(store).await.len() == total {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gc deleted nothing within 60s"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn bucket(store: &SeaweedStore) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut token = None;
    loop {
        let page = store
            .s3
            .list_objects_v2()
            .bucket(&store.bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return keys,
        }
    }
}

fn gc_command(db: &MariaDb, sw: &SeaweedFs) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline-artifacts"));
    cmd.arg("gc")
        .env_clear()
        .env("DB_URL", db.url(PASSWORD))
        .env("S3_ENDPOINT_URL", &sw.endpoints.s3)
        .env("AWS_ENDPOINT_URL", &sw.endpoints.iam)
        .env("AWS_ACCESS_KEY_ID", &sw.admin.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", sw.admin.secret_access_key.expose())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null());
    cmd
}

fn run_gc(db: &MariaDb, sw: &SeaweedFs, args: &[&str]) -> Output {
    let out = gc_command(db, sw)
        .args(args)
        .output()
        .expect("run pipeline-artifacts gc");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [PASSWORD, sw.admin.secret_access_key.expose()] {
        assert!(
            !all.contains(secret),
            "a secret appeared in gc's output for {args:?}"
        );
    }
    out
}

fn json_report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "gc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Keys of groups whose action is one of `actions`.
fn keys_with(report: &serde_json::Value, actions: &[&str]) -> BTreeSet<String> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| actions.contains(&g["action"].as_str().unwrap()))
        .flat_map(|g| {
            g["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_exactly_the_deletable_set_and_a_real_run_deletes_exactly_it() {
    let test = "dry_run_reports_exactly_the_deletable_set_and_a_real_run_deletes_exactly_it";
    let Some((db, sw, fx, store)) = setup(test).await else {
        return;
    };
    assert_eq!(bucket(&store).await, fx.all);
    assert!(
        fx.deletable(false, None).len() == 6 && fx.deletable(true, None).len() == 16,
        "fixture as designed"
    );

    // Dry runs: each reports exactly its deletable set and deletes nothing.
    const DRY: [&str; 5] = ["--dry-run", "--older-than", "0s", "--output", "json"];
    for (extra, include_archived, namespace) in [
        (vec![], false, None),
        (vec!["--include-archived"], true, None),
        (
            vec!["--include-archived", "--namespace", "team-b"],
            true,
            Some("team-b"),
        ),
    ] {
        let args: Vec<&str> = DRY.iter().copied().chain(extra).collect();
        let report = json_report(&run_gc(&db, &sw, &args));
        assert_eq!(
            keys_with(&report, &["delete"]),
            fx.deletable(include_archived, namespace),
            "{args:?}"
        );
        assert_eq!(report["dry_run"], true);
        let planned = fx.deletable(include_archived, namespace);
        assert_eq!(
            report["totals"]["delete_objects"].as_u64(),
            Some(planned.len() as u64)
        );
        assert_eq!(
            bucket(&store).await,
            fx.all,
            "a dry run deleted something ({args:?})"
        );
    }
    // The grace period: every object is younger than an hour, so nothing is garbage.
    let report = json_report(&run_gc(
        &db,
        &sw,
        &[
            "--dry-run",
            "--older-than",
            "1h",
            "--output",
            "json",
            "--include-archived",
        ],
    ));
    assert!(keys_with(&report, &["delete"]).is_empty());

    // The table names each run with its objects, bytes and action.
    let out = run_gc(&db, &sw, &["--dry-run", "--older-than", "0s"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    let row = table
        .lines()
        .find(|l| l.contains("a2a2a2a2-0000-4000-8000-000000000002") && l.contains("v2-artifacts"))
        .expect("row of the deleted run");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cols[..7],
        [
            "team-a",
            "a2a2a2a2-0000-4000-8000-000000000002",
            "v2-artifacts",
            "deleted",
            "3",
            "3897",
            "would"
        ],
        "{table}"
    );
    assert!(
        table.lines().next().unwrap().starts_with("NAMESPACE  RUN"),
        "{table}"
    );
    let planned = fx.deletable(false, None);
    assert!(
        table.contains(&format!(
            "dry run: would delete 6 objects ({} bytes)",
            fx.bytes(&planned)
        )),
        "{table}"
    );

    // With MLMD, deleted runs' Argo logs are attributable too (and only theirs:
    // not the manual workflow's, nor c1's logs filed under another namespace).
    let mlmd_url = db.url_for("metadb", PASSWORD);
    let with_mlmd = [
        "--older-than",
        "0s",
        "--output",
        "json",
        "--include-archived",
        "--mlmd-db-url",
        &mlmd_url,
    ];
    let mut dry = with_mlmd.to_vec();
    dry.push("--dry-run");
    let report = json_report(&run_gc(&db, &sw, &dry));
    let expected = fx.deletable_with_mlmd(true);
    assert_eq!(keys_with(&report, &["delete"]), expected);
    assert_eq!(expected.len(), 20, "16 + the two deleted runs' 2 logs each");
    assert_eq!(bucket(&store).await, fx.all);

    // The real run deletes exactly the dry run's set: the bucket before minus it.
    let report = json_report(&run_gc(&db, &sw, &with_mlmd));
    assert_eq!(keys_with(&report, &["deleted"]), expected);
    assert!(keys_with(&report, &["delete", "failed"]).is_empty());
    let after = bucket(&store).await;
    assert_eq!(
        after,
        fx.all.difference(&expected).cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        report["totals"]["deleted_objects"].as_u64(),
        Some(expected.len() as u64)
    );
    // Nothing left to do.
    let report = json_report(&run_gc(
        &db,
        &sw,
        &["--older-than", "0s", "--output", "json", "--include-archived"],
    ));
    assert!(keys_with(&report, &["deleted", "delete"]).is_empty());
    assert_eq!(bucket(&store).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_midway_then_rerun_loses_nothing_that_should_stay() {
    let test = "killed_midway_then_rerun_loses_nothing_that_should_stay";
    let Some((db, sw, fx, store)) = setup(test).await else {
        return;
    };
    let deletable = fx.deletable(true, None);
    let must_stay: BTreeSet<String> = fx.all.difference(&deletable).cloned().collect();

    // Slow deletes, so the kill lands after the first deletion and before the last.
    let mut child = gc_command(&db, &sw)
        .args(["--older-than", "0s", "--include-archived"])
        .env("KFLITE_GC_DELETE_DELAY_MS", "500")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    first_deletion(&store, fx.all.len()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = bucket(&store).await;
    let gone: BTreeSet<String> = fx.all.difference(&after_kill).cloned().collect();
    assert!(
        !gone.is_empty() && gone.len() < deletable.len(),
        "killed midway: {} of {} deleted",
        gone.len(),
        deletable.len()
    );
    assert!(
        gone.is_subset(&deletable),
        "deleted outside the deletable set: {:?}",
        gone.difference(&deletable)
    );
    assert!(must_stay.is_subset(&after_kill));

    // The rerun finishes the job and nothing else.
    let out = run_gc(
        &db,
        &sw,
        &["--older-than", "0s", "--include-archived", "--output", "json"],
    );
    let report = json_report(&out);
    assert_eq!(
        keys_with(&report, &["deleted"]),
        deletable.difference(&gone).cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(bucket(&store).await, must_stay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_created_after_the_plan_keeps_its_objects() {
    let test = "a_run_created_after_the_plan_keeps_its_objects";
    let Some((db, _sw, fx, store)) = setup(test).await else {
        return;
    };
    let gc_db = gc::open(&SecretString::new(db.url(PASSWORD)), None)
        .await
        .expect("open the KFP database");
    let opts = GcOptions {
        older_than: Duration::ZERO,
        namespace: None,
        include_archived: false,
        dry_run: false,
        delete_delay: Duration::from_millis(800),
        ..GcOptions::default()
    };
    let metrics = pipeline_artifacts::metrics::Metrics::default();
    let task = {
        let store = store.clone();
        tokio::spawn(async move {
            gc::run_once(&gc_db, &store, &opts, Some(&metrics))
                .await
                .map(|r| (r, metrics.render()))
        })
    };
    // team-a is handled first; once its deletions start, team-b's deleted run reappears.
    first_deletion(&store, fx.all.len()).await;
    let b2 = RUNS.iter().find(|r| r.uuid.starts_with("b2")).unwrap();
    insert_run(&db, b2).await;
    let (report, metrics) = task.await.unwrap().expect("gc cycle");
    let b2_keys: BTreeSet<String> = fx.deletable(false, Some("team-b"));
    let group = report
        .groups
        .iter()
        .find(|g| g.runs == [b2.uuid] && g.keys.iter().any(|k| b2_keys.contains(k)))
        .unwrap();
    assert_eq!(
        group.action,
        pipeline_artifacts::gc::plan::Action::Keep,
        "{}",
        report.to_table()
    );
    assert!(
        group.reason.contains("changed since the plan"),
        "{}",
        group.reason
    );
    let after = bucket(&store).await;
    assert!(b2_keys.is_subset(&after), "the reappeared run lost objects");
    let team_a = fx.deletable(false, Some("team-a"));
    assert_eq!(
        after,
        fx.all.difference(&team_a).cloned().collect::<BTreeSet<_>>()
    );
    let bytes = fx.bytes(&team_a);
    assert_eq!(report.groups.iter().map(|g| g.deleted_bytes).sum::<u64>(), bytes);
    assert!(
        metrics.contains(&format!(
            "pipeline_artifacts_gc_objects_deleted_total {}\n",
            team_a.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("pipeline_artifacts_gc_bytes_reclaimed_total {bytes}\n")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_serves_gc_metrics_after_a_cycle() {
    let test = "every_mode_serves_gc_metrics_after_a_cycle";
    let Some((db, sw, fx, store)) = setup(test).await else {
        return;
    };
    let port = testsvc::seaweedfs::free_tcp_port().unwrap();
    // KFP has not migrated its database yet: gc must wait for it, not crash.
    sql(&db, "RENAME TABLE run_details TO run_details_later").await;
    // The password comes from DB_PASSWORD (as from a Secret), not the URL.
    let mut child = gc_command(&db, &sw)
        .env("DB_URL", format!("mysql://root@127.0.0.1:{}/mlpipeline", db.port))
        .env("DB_PASSWORD", PASSWORD)
        .args(["--every", "2s", "--older-than", "0s", "--include-archived"])
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        // A file, not a pipe: debug logs would fill a pipe nobody reads.
        .stderr(std::fs::File::create(sw.data_dir().join("gc.log")).unwrap())
        .spawn()
        .unwrap();
    let value = |body: &str, name: &str| -> Option<u64> {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let not_ready = common::cluster::wait_for("a failed cycle on /metrics", 60, || async {
        let body = http_get(port, "/metrics").await?;
        (value(&body, "pipeline_artifacts_gc_errors_total")? >= 1).then_some(body)
    })
    .await;
    assert!(not_ready.contains("pipeline_artifacts_ready 0"), "{not_ready}");
    assert_eq!(
        value(&not_ready, "pipeline_artifacts_gc_last_success_timestamp_seconds"),
        Some(0)
    );
    assert_eq!(
        bucket(&store).await,
        fx.all,
        "nothing deleted without the database"
    );
    sql(&db, "RENAME TABLE run_details_later TO run_details").await;
    let metrics = common::cluster::wait_for("a finished gc cycle on /metrics", 60, || async {
        let body = http_get(port, "/metrics").await?;
        (value(&body, "pipeline_artifacts_gc_cycles_total{result=\"ok\"}")? >= 1).then_some(body)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(sw.data_dir().join("gc.log")).unwrap();
    assert!(
        !log.contains(PASSWORD),
        "the database password appeared in the log"
    );
    assert!(log.contains("gc deleted"), "deletions are logged");
    assert!(
        log.contains("table run_details does not exist"),
        "the wait is explained in the log"
    );
    let expected = fx.deletable(true, None);
    let after = bucket(&store).await;
    assert_eq!(
        after,
        fx.all.difference(&expected).cloned().collect::<BTreeSet<_>>()
    );
    let kept = after
        .iter()
        .filter(|k| k.starts_with("private-artifacts/"))
        .count() as u64;
    for (name, want) in [
        (
            "pipeline_artifacts_gc_objects_deleted_total",
            expected.len() as u64,
        ),
        ("pipeline_artifacts_gc_bytes_reclaimed_total", fx.bytes(&expected)),
        ("pipeline_artifacts_gc_objects_kept", kept),
        ("pipeline_artifacts_ready", 1),
    ] {
        assert_eq!(value(&metrics, name), Some(want), "{name} in:\n{metrics}");
    }
    let last = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pipeline_artifacts_gc_last_success_timestamp_seconds "))
        .unwrap();
    let last: u64 = last.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        last > 0 && last <= now && now - last < 120,
        "last success {last}, now {now}"
    );
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    common::http_get(port, path).await.map(|(_, body)| body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_unlike_kfp_is_a_clear_error() {
    let test = "a_schema_unlike_kfp_is_a_clear_error";
    let Some(db) = mariadb(test) else { return };
    let url = SecretString::new(db.url(PASSWORD));
    let err = gc::open(&url, None).await.unwrap_err().to_string();
    assert!(err.contains("table run_details does not exist"), "{err}");
    // Without FinishedAtInSec (KFP 1.x-era tables, or someone else's).
    sql(
        &db,
        &KFP_RUN_DETAILS_DDL
            .replace("  `FinishedAtInSec` bigint DEFAULT 0,\n", "")
            .replace(",`FinishedAtInSec`", ""),
    )
    .await;
    let err = gc::open(&url, None).await.unwrap_err().to_string();
    assert!(
        err.contains("no column FinishedAtInSec") && err.contains("KFP 2.x"),
        "{err}"
    );
    assert!(
        err.contains("mysql://root@127.0.0.1") && !err.contains(PASSWORD),
        "{err}"
    );
    sql(
        &db,
        "ALTER TABLE run_details ADD COLUMN FinishedAtInSec varchar(20)",
    )
    .await;
    let err = gc::open(&url, None).await.unwrap_err().to_string();
    assert!(
        err.contains("run_details.FinishedAtInSec is varchar") && err.contains("bigint"),
        "{err}"
    );
    sql(
        &db,
        "ALTER TABLE run_details MODIFY COLUMN FinishedAtInSec bigint DEFAULT 0",
    )
    .await;
    let gc_db = gc::open(&url, None).await.expect("KFP's schema is accepted");
    assert!(gc_db.kfp.runs().await.unwrap().is_empty());
    // MLMD's tables are checked the same way.
    sql(&db, "CREATE DATABASE metadb").await;
    let mlmd_url = SecretString::new(db.url_for("metadb", PASSWORD));
    let err = gc_db
        .clone()
        .with_mlmd(&mlmd_url, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("table Type does not exist (is this KFP's metadb database?)"),
        "{err}"
    );
    let mut conn = MySqlConnection::connect(mlmd_url.expose()).await.unwrap();
    sqlx::raw_sql(&MLMD_DDL.replace("`string_value` MEDIUMTEXT", "`string_value` BLOB"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let err = gc_db
        .clone()
        .with_mlmd(&mlmd_url, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column ContextProperty.string_value is blob, but ml-metadata 1.14 creates"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    // A wrong password is refused without showing it... (grant tables are
    // skipped in the test server, so check the URL without a database instead).
    let err = gc::open(
        &SecretString::new(format!("mysql://root:{PASSWORD}@127.0.0.1:{}", db.port)),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("names no database") && !err.contains(PASSWORD),
        "{err}"
    );
}

fn real_run() -> GcOptions {
    GcOptions {
        older_than: Duration::ZERO,
        ..GcOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_run_details_is_refused_unless_forced() {
    let test = "an_empty_run_details_is_refused_unless_forced";
    let Some((db, _sw, fx, store)) = setup(test).await else {
        return;
    };
    // A fresh or restored database, or the wrong database name: no runs at all.
    sql(&db, "DELETE FROM run_details").await;
    let gc_db = gc::open(&SecretString::new(db.url(PASSWORD)), None)
        .await
        .unwrap();
    let err = gc::run_once(&gc_db, &store, &real_run(), None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("run_details is empty"), "{err}");
    assert_eq!(bucket(&store).await, fx.all, "nothing deleted");
    let forced = GcOptions {
        force: true,
        ..real_run()
    };
    let report = gc::run_once(&gc_db, &store, &forced, None).await.expect("forced");
    assert!(report.totals.deleted_objects > 0, "{}", report.to_table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_deleting_more_than_the_allowed_share_is_refused() {
    let test = "a_plan_deleting_more_than_the_allowed_share_is_refused";
    let Some((db, _sw, fx, store)) = setup(test).await else {
        return;
    };
    let gc_db = gc::open(&SecretString::new(db.url(PASSWORD)), None)
        .await
        .unwrap();
    let plan = gc::run_once(
        &gc_db,
        &store,
        &GcOptions {
            dry_run: true,
            ..real_run()
        },
        None,
    )
    .await
    .unwrap();
    let planned = plan.totals.delete_objects as f64 / plan.totals.objects as f64;
    // Just under the plan's share: refused; at it: allowed.
    let strict = GcOptions {
        max_delete_share: planned - 0.01,
        ..real_run()
    };
    let err = gc::run_once(&gc_db, &store, &strict, None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("--max-delete-share"), "{err}");
    assert_eq!(bucket(&store).await, fx.all, "nothing deleted");
    let dry = gc::run_once(
        &gc_db,
        &store,
        &GcOptions {
            dry_run: true,
            ..strict.clone()
        },
        None,
    )
    .await
    .expect("a dry run reports");
    assert!(dry.refused.is_some_and(|e| e.contains("--max-delete-share")));
    let allowed = GcOptions {
        max_delete_share: planned,
        ..real_run()
    };
    let report = gc::run_once(&gc_db, &store, &allowed, None)
        .await
        .expect("allowed");
    assert_eq!(
        report
            .deletable_keys()
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        fx.deletable(false, None)
    );
}

/// MLMD rows of a cache hit as KFP's driver publishes them: an execution in
/// the live run's context whose outputs are the earlier run's artifacts.
async fn cached_execution(db: &MariaDb, live_run: &str, reused_uri: &str) {
    let mut conn = MySqlConnection::connect(&db.url_for("metadb", PASSWORD))
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO `Type` (`name`, `type_kind`) VALUES ('system.ContainerExecution', 0), ('system.Model', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let artifact = sqlx::query(
        "INSERT INTO `Artifact` (`type_id`, `uri`, `state`, `name`) \
         SELECT id, ?, 2, 'model' FROM `Type` WHERE name = 'system.Model'",
    )
    .bind(reused_uri)
    .execute(&mut conn)
    .await
    .unwrap()
    .last_insert_id();
    let execution = sqlx::query(
        "INSERT INTO `Execution` (`type_id`, `last_known_state`, `name`) \
         SELECT id, 5, 'train-cached' FROM `Type` WHERE name = 'system.ContainerExecution'",
    )
    .execute(&mut conn)
    .await
    .unwrap()
    .last_insert_id();
    sqlx::query(
        "INSERT INTO `Association` (`context_id`, `execution_id`) SELECT id, ? FROM `Context` WHERE name = ?",
    )
    .bind(execution)
    .bind(live_run)
    .execute(&mut conn)
    .await
    .unwrap();
    // Event type 4: OUTPUT.
    sqlx::query("INSERT INTO `Event` (`artifact_id`, `execution_id`, `type`) VALUES (?, ?, 4)")
        .bind(artifact)
        .bind(execution)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_a_live_run_reuses_from_the_cache_are_kept() {
    let test = "outputs_a_live_run_reuses_from_the_cache_are_kept";
    let Some((db, _sw, fx, store)) = setup(test).await else {
        return;
    };
    // a1 (live) reused the `train` output of a2 (deleted) through KFP's cache.
    let a1 = RUNS.iter().find(|r| r.uuid.starts_with("a1")).unwrap();
    let a2 = RUNS.iter().find(|r| r.uuid.starts_with("a2")).unwrap();
    let reused = format!(
        "private-artifacts/team-a/v2/artifacts/{}/{}/train/a1b2/model",
        a2.pipeline, a2.uuid
    );
    assert!(fx.deleted_runs.contains(&reused));
    cached_execution(&db, a1.uuid, &format!("minio://mlpipeline/{reused}")).await;
    let dbs = gc::DbConfig {
        url: SecretString::new(db.url(PASSWORD)),
        mlmd_url: Some(SecretString::new(db.url_for("metadb", PASSWORD))),
        password: None,
    }
    .open()
    .await
    .unwrap();
    let report = gc::run_once(&dbs, &store, &real_run(), None)
        .await
        .expect("gc cycle");
    let after = bucket(&store).await;
    assert!(after.contains(&reused), "a live run's cached input was deleted");
    let kept = report.groups.iter().find(|g| g.keys.contains(&reused)).unwrap();
    assert_eq!(kept.action, pipeline_artifacts::gc::plan::Action::Keep);
    assert!(
        kept.reason.contains(a1.uuid) && kept.reason.contains("cache"),
        "{}",
        kept.reason
    );
    // The other deleted run's artifacts still go.
    let b2 = fx.deletable(false, Some("team-b"));
    assert!(!b2.is_empty() && b2.is_disjoint(&after), "{}", report.to_table());
}
