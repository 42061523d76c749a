//! KFP's `mlpipeline` database: connect, check the `run_details` columns gc
//! reads, and read runs. Runtime queries only (no database at build time);
//! the tests run them against a real MariaDB.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::Row as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlRow};

use super::GcError;
use super::plan::{MlmdRun, RunRow, Storage};
use crate::secret::SecretString;

/// The table KFP 2.x's gorm model `Run` maps to (`func (Run) TableName()`).
pub const TABLE: &str = "run_details";

/// A column gc reads: name, `DATA_TYPE` expected, and the declaration its creator uses.
pub type Column = (&'static str, &'static str, &'static str);

/// Columns gc reads, with the type KFP 2.15's gorm AutoMigrate gives them on
/// MySQL (`DefaultStringSize: 255`; sizes from the model's `type:` tags).
pub const COLUMNS: &[Column] = &[
    ("UUID", "varchar", "varchar(191), the primary key"),
    ("Namespace", "varchar", "varchar(63)"),
    ("Name", "varchar", "varchar(255): the Argo Workflow's name"),
    ("StorageState", "varchar", "varchar(255)"),
    ("FinishedAtInSec", "bigint", "bigint, default 0"),
];

/// MLMD's tables and columns gc reads, with the types ml-metadata 1.14.0 (the
/// `metadata-grpc-server` kubeflow/manifests v1.11.0 deploys) creates on MySQL
/// (`kMySQLMetadataSourceQueryConfig` in `ml_metadata/util/metadata_source_query_config.cc`).
pub const MLMD_COLUMNS: &[(&str, &[Column])] = &[
    (
        "Type",
        &[
            ("id", "int", "INT"),
            ("name", "varchar", "VARCHAR(255)"),
            ("type_kind", "tinyint", "TINYINT(1)"),
        ],
    ),
    (
        "Context",
        &[
            ("id", "int", "INTEGER"),
            ("type_id", "int", "INT"),
            ("name", "varchar", "VARCHAR(255)"),
            ("create_time_since_epoch", "bigint", "BIGINT"),
        ],
    ),
    (
        "ContextProperty",
        &[
            ("context_id", "int", "INT"),
            ("name", "varchar", "VARCHAR(255)"),
            ("is_custom_property", "tinyint", "TINYINT(1)"),
            ("string_value", "mediumtext", "MEDIUMTEXT"),
        ],
    ),
    ("Artifact", &[("id", "int", "INTEGER"), ("uri", "text", "TEXT")]),
    (
        "Event",
        &[("artifact_id", "int", "INT"), ("execution_id", "int", "INT")],
    ),
    (
        "Association",
        &[("context_id", "int", "INT"), ("execution_id", "int", "INT")],
    ),
    (
        "Attribution",
        &[("context_id", "int", "INT"), ("artifact_id", "int", "INT")],
    ),
];

/// KFP's pipeline-run contexts with their namespace and workflow
/// (`type_kind` 2 is a context type in MLMD's `Type` table).
const SELECT_MLMD_RUNS: &str = "SELECT C.name, C.create_time_since_epoch, NS.string_value, WF.string_value \
     FROM `Context` AS C \
     JOIN `Type` AS T ON T.id = C.type_id AND T.name = 'system.PipelineRun' AND T.type_kind = 2 \
     JOIN `ContextProperty` AS NS ON NS.context_id = C.id AND NS.name = 'namespace' AND NS.is_custom_property = 1 \
     JOIN `ContextProperty` AS WF ON WF.context_id = C.id AND WF.name = 'resource_name' AND WF.is_custom_property = 1";

/// Artifact URIs and the runs MLMD links them to: through an execution of the
/// run (an input, an output, or a cached execution's reused output: KFP's
/// driver publishes a cache hit with the earlier run's artifacts as outputs)
/// or attributed to the run's context.
const SELECT_MLMD_LINKS: &str = "SELECT C.name, A.uri FROM `Artifact` AS A \
     JOIN `Event` AS E ON E.artifact_id = A.id \
     JOIN `Association` AS X ON X.execution_id = E.execution_id \
     JOIN `Context` AS C ON C.id = X.context_id \
     JOIN `Type` AS T ON T.id = C.type_id AND T.name = 'system.PipelineRun' AND T.type_kind = 2 \
     WHERE A.uri IS NOT NULL \
     UNION \
     SELECT C.name, A.uri FROM `Artifact` AS A \
     JOIN `Attribution` AS B ON B.artifact_id = A.id \
     JOIN `Context` AS C ON C.id = B.context_id \
     JOIN `Type` AS T ON T.id = C.type_id AND T.name = 'system.PipelineRun' AND T.type_kind = 2 \
     WHERE A.uri IS NOT NULL";

const SELECT: &str = "SELECT UUID, Namespace, Name, StorageState, FinishedAtInSec FROM run_details";

/// A connection pool to the KFP database. Shown (logs, errors) only as
/// `mysql://USER@HOST:PORT/DB`: the password never leaves [`SecretString`].
#[derive(Debug, Clone)]
pub struct Db {
    pool: MySqlPool,
    shown: String,
    secrets: Vec<SecretString>,
}

/// The password inside `url` (`mysql://user:PASSWORD@host/db`), if any.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p).filter(|p| !p.is_empty())
}

impl Db {
    /// Connects to `url`; `password`, when given (e.g. `DB_PASSWORD` from a
    /// Secret), replaces the URL's. Fails clearly, never showing the password.
    pub async fn connect(url: &SecretString, password: Option<&SecretString>) -> Result<Self, GcError> {
        let raw = url.expose();
        // Checked first: sqlx also parses strings that are no URL at all (the
        // password could then end up shown as a database name).
        if !(raw.starts_with("mysql://") || raw.starts_with("mariadb://")) {
            return Err(GcError::DbUrl(
                "it must start with mysql:// (mysql://USER@HOST:3306/mlpipeline)".into(),
            ));
        }
        let mut secrets: Vec<SecretString> = password.cloned().into_iter().collect();
        secrets.extend(url_password(raw).map(SecretString::new));
        let scrub = |msg: String| scrub_all(msg, &secrets);
        let mut options =
            MySqlConnectOptions::from_str(raw).map_err(|e| GcError::DbUrl(scrub(e.to_string())))?;
        if let Some(p) = password {
            options = options.password(p.expose());
        }
        let Some(database) = options.get_database().map(str::to_owned) else {
            return Err(GcError::DbUrl(
                "it names no database (use mysql://USER@HOST:3306/mlpipeline)".into(),
            ));
        };
        let shown = format!(
            "mysql://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            database
        );
        let fail = |e: sqlx::Error| GcError::Db {
            db: shown.clone(),
            message: scrub(e.to_string()),
        };
        // One plain connection first: the pool would retry until its timeout
        // and report only "pool timed out", hiding e.g. "connection refused".
        let first = tokio::time::timeout(Duration::from_secs(15), MySqlConnection::connect_with(&options))
            .await
            .map_err(|_| GcError::Db {
                db: shown.clone(),
                message: "no answer within 15 s".into(),
            })?
            .map_err(fail)?;
        let _ = first.close().await;
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(15))
            .connect_lazy_with(options);
        Ok(Db { pool, shown, secrets })
    }

    /// `mysql://USER@HOST:PORT/DB`, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn err(&self, what: &str, e: sqlx::Error) -> GcError {
        GcError::Db {
            db: self.shown.clone(),
            message: scrub_all(format!("{what}: {e}"), &self.secrets),
        }
    }

    /// (name, DATA_TYPE) of `table`'s columns in this database.
    async fn columns(&self, table: &str) -> Result<Vec<(String, String)>, GcError> {
        let rows = sqlx::query(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err("reading information_schema.columns", e))?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            // information_schema columns are utf8 text on MySQL, binary on some MariaDB versions.
            let name = text(&row, 0).map_err(|e| self.err("reading information_schema.columns", e))?;
            let ty = text(&row, 1).map_err(|e| self.err("reading information_schema.columns", e))?;
            found.push((name, ty.to_ascii_lowercase()));
        }
        Ok(found)
    }

    /// Checks that `run_details` has the columns gc reads, with KFP 2.x's types.
    pub async fn check_schema(&self) -> Result<(), GcError> {
        let found = self.columns(TABLE).await?;
        check_columns(
            TABLE,
            "KFP 2.x",
            "is this KFP's mlpipeline database?",
            COLUMNS,
            &found,
        )
        .map_err(|message| GcError::Schema {
            db: self.shown.clone(),
            message,
        })
    }

    /// Checks the MLMD tables gc reads ([`MLMD_COLUMNS`]).
    pub async fn check_mlmd_schema(&self) -> Result<(), GcError> {
        for (table, columns) in MLMD_COLUMNS {
            let found = self.columns(table).await?;
            check_columns(
                table,
                "ml-metadata 1.14",
                "is this KFP's metadb database?",
                columns,
                &found,
            )
            .map_err(|message| GcError::Schema {
                db: self.shown.clone(),
                message,
            })?;
        }
        Ok(())
    }

    /// KFP v2 runs as MLMD recorded them (deleted runs included).
    pub async fn mlmd_runs(&self) -> Result<Vec<MlmdRun>, GcError> {
        let rows = sqlx::query(SELECT_MLMD_RUNS)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("reading MLMD contexts", e))?;
        let read = |r: &MySqlRow| -> Result<MlmdRun, sqlx::Error> {
            Ok(MlmdRun {
                uuid: text(r, 0)?,
                created_ms: r.try_get(1)?,
                namespace: text(r, 2)?,
                workflow: text(r, 3)?,
            })
        };
        rows.iter()
            .map(|r| read(r).map_err(|e| self.err("reading MLMD contexts", e)))
            .collect()
    }

    /// (run UUID, artifact URI) for every artifact MLMD links to a run.
    pub async fn mlmd_links(&self) -> Result<Vec<(String, String)>, GcError> {
        let rows = sqlx::query(SELECT_MLMD_LINKS)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("reading MLMD artifact links", e))?;
        let read = |r: &MySqlRow| -> Result<(String, String), sqlx::Error> {
            Ok((text(r, 0)?.to_ascii_lowercase(), text(r, 1)?))
        };
        rows.iter()
            .map(|r| read(r).map_err(|e| self.err("reading MLMD artifact links", e)))
            .collect()
    }

    /// `SELECT … FROM run_details` + `filter`, with `binds` for its `?`s.
    async fn select_runs(&self, filter: &str, binds: &[&str]) -> Result<Vec<RunRow>, GcError> {
        let sql = format!("{SELECT}{filter}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("reading run_details", e))?;
        rows.iter()
            .map(|r| run_row(r).map_err(|e| self.err("reading run_details", e)))
            .collect()
    }

    /// Every run (all namespaces and storage states).
    pub async fn runs(&self) -> Result<Vec<RunRow>, GcError> {
        self.select_runs("", &[]).await
    }

    /// The run with this UUID, if it exists now.
    pub async fn run_by_uuid(&self, uuid: &str) -> Result<Vec<RunRow>, GcError> {
        self.select_runs(" WHERE UUID = ?", &[uuid]).await
    }

    /// The runs of namespace `namespace` whose workflow is `name`, now.
    pub async fn runs_by_workflow(&self, namespace: &str, name: &str) -> Result<Vec<RunRow>, GcError> {
        self.select_runs(" WHERE Namespace = ? AND Name = ?", &[namespace, name])
            .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn text(row: &MySqlRow, i: usize) -> Result<String, sqlx::Error> {
    match row.try_get::<String, _>(i) {
        Ok(s) => Ok(s),
        Err(_) => row
            .try_get::<Vec<u8>, _>(i)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    }
}

fn run_row(row: &MySqlRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        uuid: row.try_get("UUID")?,
        namespace: row.try_get("Namespace")?,
        name: row.try_get("Name")?,
        storage: Storage::from_db(&row.try_get::<String, _>("StorageState")?),
        finished_at: row.try_get::<Option<i64>, _>("FinishedAtInSec")?.unwrap_or(0),
    })
}

/// Compares the columns found in `table` (name, DATA_TYPE) with `want`
/// (name, DATA_TYPE, as `creator` declares it); MySQL column names are case-insensitive.
pub fn check_columns(
    table: &str,
    creator: &str,
    hint: &str,
    want: &[Column],
    found: &[(String, String)],
) -> Result<(), String> {
    if found.is_empty() {
        return Err(format!("table {table} does not exist ({hint})"));
    }
    for (name, ty, declared) in want {
        match found.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            None => {
                return Err(format!(
                    "table {table} has no column {name} ({creator} creates {name} {declared})"
                ));
            }
            Some((_, got)) if got != ty => {
                return Err(format!(
                    "column {table}.{name} is {got}, but {creator} creates {name} {declared}"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn scrub_all(mut message: String, secrets: &[SecretString]) -> String {
    for s in secrets {
        if !s.expose().is_empty() {
            message = message.replace(s.expose(), "***");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn schema_differences_name_the_column() {
        let good = cols(&[
            ("UUID", "varchar"),
            ("namespace", "varchar"),
            ("Name", "varchar"),
            ("StorageState", "varchar"),
            ("FinishedAtInSec", "bigint"),
            ("Extra", "longtext"),
        ]);
        assert_eq!(check_columns(TABLE, "KFP 2.x", "h", COLUMNS, &good), Ok(()));
        let err = check_columns(TABLE, "KFP 2.x", "h", COLUMNS, &good[..4]).unwrap_err();
        assert!(err.contains("no column FinishedAtInSec"), "{err}");
        let mut wrong = good.clone();
        wrong[3].1 = "int".into();
        let err = check_columns(TABLE, "KFP 2.x", "h", COLUMNS, &wrong).unwrap_err();
        assert!(
            err.contains("run_details.StorageState is int") && err.contains("varchar(255)"),
            "{err}"
        );
        assert!(
            check_columns(TABLE, "KFP 2.x", "h", COLUMNS, &[])
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[tokio::test]
    async fn bad_urls_and_closed_ports_are_clear_errors_without_the_password() {
        let err = Db::connect(&SecretString::new("not-a-url:hunter2"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must start with mysql://") && !err.contains("hunter2"),
            "{err}"
        );
        let err = Db::connect(&SecretString::new("mysql://u:hunter2@127.0.0.1:3306"), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("names no database"), "{err}");
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = SecretString::new(format!("mysql://u:hunter2@127.0.0.1:{port}/mlpipeline"));
        let err = Db::connect(&url, Some(&SecretString::new("other-secret")))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("mysql://u@127.0.0.1:{port}/mlpipeline")),
            "{err}"
        );
        assert!(err.to_lowercase().contains("refused"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("other-secret"), "{err}");
    }

    #[test]
    fn passwords_are_scrubbed() {
        assert_eq!(url_password("mysql://root:pa:ss@h:3306/db"), Some("pa:ss"));
        assert_eq!(url_password("mysql://root@h/db"), None);
        let s = [SecretString::new("hunter2")];
        assert_eq!(scrub_all("x hunter2 y".into(), &s), "x *** y");
    }
}
