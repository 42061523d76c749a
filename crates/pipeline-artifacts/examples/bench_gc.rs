//! gc at homelab scale on a real MariaDB and SeaweedFS: R runs of O objects
//! in N namespaces, half of the runs deleted from the database; times the
//! dry run (snapshot, listing, plan) and the real run (re-checks, deletes).
//!
//! cargo run --release -p pipeline-artifacts --example bench_gc -- [--runs 200] [--objects 10] [--namespaces 4]
//! Tools from KFLITE_TOOL_WEED, KFLITE_TOOL_MARIADBD, KFLITE_TOOL_MARIADB_INSTALL_DB, else PATH.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use pipeline_artifacts::gc::{self, GcOptions};
use pipeline_artifacts::secret::SecretString;
use sqlx::Connection as _;
use testsvc::mariadb::{KFP_RUN_DETAILS_DDL, MariaDb};
use testsvc::seaweedfs::SeaweedFs;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    Ok(args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

fn tool(name: &str) -> anyhow::Result<std::path::PathBuf> {
    testkit::find_tool(name).with_context(|| format!("{name} not found (KFLITE_TOOL_* or PATH)"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (runs, per_run, namespaces) = (
        arg("--runs", 200)?,
        arg("--objects", 10)?,
        arg("--namespaces", 4)?,
    );
    let db = MariaDb::start(&tool("mariadbd")?, &tool("mariadb-install-db")?)?;
    let sw = SeaweedFs::start(&tool("weed")?)?;
    let store = sw.store();
    let url = db.url("bench");
    let mut conn = sqlx::mysql::MySqlConnection::connect(&url).await?;
    sqlx::raw_sql(KFP_RUN_DETAILS_DDL).execute(&mut conn).await?;
    let fill = Instant::now();
    for i in 0..runs {
        let ns = format!("bench-{}", i % namespaces);
        let uuid = format!("{i:08x}-0000-4000-8000-000000000000");
        if i % 2 == 0 {
            sqlx::query(
                "INSERT INTO run_details (UUID, DisplayName, Name, Description, Namespace, ExperimentUUID, StorageState, \
                 ServiceAccount, PipelineId, PipelineName, CreatedAtInSec, FinishedAtInSec, Conditions, \
                 PipelineRuntimeManifest, WorkflowRuntimeManifest) \
                 VALUES (?, 'r', ?, '', ?, 'e', 'AVAILABLE', 'sa', '', 'p', 1, 2, 'Succeeded', '', '')",
            )
            .bind(&uuid)
            .bind(format!("wf-{i}"))
            .bind(&ns)
            .execute(&mut conn)
            .await?;
        }
        for j in 0..per_run {
            let key = format!("private-artifacts/{ns}/v2/artifacts/p/{uuid}/task/{j}/out");
            store
                .s3
                .put_object()
                .bucket(&store.bucket)
                .key(key)
                .body(vec![b'x'; 1024].into())
                .send()
                .await?;
        }
    }
    println!(
        "filled {} runs x {} objects in {:.1}s",
        runs,
        per_run,
        fill.elapsed().as_secs_f64()
    );
    let gc_db = gc::open(&SecretString::new(url), None).await?;
    let mut opts = GcOptions {
        older_than: Duration::ZERO,
        namespace: None,
        include_archived: false,
        dry_run: true,
        delete_delay: Duration::ZERO,
        ..GcOptions::default()
    };
    let t = Instant::now();
    let plan = gc::run_once(&gc_db, &store, &opts, None).await?;
    let dry = t.elapsed();
    opts.dry_run = false;
    let t = Instant::now();
    let done = gc::run_once(&gc_db, &store, &opts, None).await?;
    let real = t.elapsed();
    anyhow::ensure!(done.errors.is_empty(), "errors: {:?}", done.errors);
    println!(
        "dry run: {} objects listed, {} planned, {:.2}s\nreal run: {} objects deleted in {:.2}s ({:.0} objects/s)",
        plan.totals.objects,
        plan.totals.delete_objects,
        dry.as_secs_f64(),
        done.totals.deleted_objects,
        real.as_secs_f64(),
        done.totals.deleted_objects as f64 / real.as_secs_f64()
    );
    Ok(())
}
