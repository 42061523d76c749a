//! A real MariaDB for tests: `mariadb-install-db` into a temp dir, then
//! `mariadbd` on a free 127.0.0.1 port with database `mlpipeline`, killed on
//! drop. Grant tables are skipped, so any user and password connect.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MariaDbError {
    #[error("cannot prepare MariaDB's temp dir: {0}")]
    Io(#[from] std::io::Error),
    #[error("mariadb-install-db failed: {0}")]
    Install(String),
    #[error("mariadbd on 127.0.0.1:{port} exited or did not listen within 60s; its log:\n{log}")]
    NotReady { port: u16, log: String },
}

/// A running `mariadbd`; dropping it kills the server and removes its data.
pub struct MariaDb {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for MariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariaDb")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

fn user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "root".into())
}

impl MariaDb {
    /// Installs a data dir and starts the server (a few seconds).
    pub fn start(mariadbd: &Path, install_db: &Path) -> Result<Self, MariaDbError> {
        let dir = tempfile::Builder::new().prefix("kflite-mariadb-").tempdir()?;
        let data = dir.path().join("data");
        let user = user();
        // A private TMPDIR: bootstrap servers running side by side (parallel
        // tests) otherwise collide on temporary-table files in /tmp
        // ("Could not remove temporary table ... Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let install = Command::new(install_db)
            .args([
                "--no-defaults",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .env("TMPDIR", &tmp)
            .output()?;
        if !install.status.success() {
            return Err(MariaDbError::Install(
                String::from_utf8_lossy(&install.stderr).into_owned(),
            ));
        }
        let init = dir.path().join("init.sql");
        std::fs::write(&init, "CREATE DATABASE IF NOT EXISTS mlpipeline;\n")?;
        let log = dir.path().join("mariadbd.log");
        // Ports are picked free, then bound by mariadbd: retry if another process took one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = crate::seaweedfs::free_tcp_port().map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut child = Command::new(mariadbd)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.path().join("sock").display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--user={user}"))
                .arg(format!("--init-file={}", init.display()))
                .arg("--skip-grant-tables")
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg("--innodb-buffer-pool-size=16M")
                .arg(format!("--log-error={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let deadline = Instant::now() + Duration::from_secs(60);
            let exited = loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(MariaDb { child, port, dir });
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !exited || attempt >= 3 {
                return Err(MariaDbError::NotReady {
                    port,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
        }
    }

    /// `mysql://root:<password>@127.0.0.1:<port>/<database>`.
    pub fn url_for(&self, database: &str, password: &str) -> String {
        format!("mysql://root:{password}@127.0.0.1:{}/{database}", self.port)
    }

    /// `mysql://root:<password>@127.0.0.1:<port>/mlpipeline`.
    pub fn url(&self, password: &str) -> String {
        format!("mysql://root:{password}@127.0.0.1:{}/mlpipeline", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `run_details` as KFP 2.15's gorm AutoMigrate creates it on MySQL.
///
/// Taken from kubeflow/pipelines tag 2.15.0 (the version kubeflow/manifests
/// v1.11.0 deploys, `appVersion: 2.15.0`): `backend/src/apiserver/model/run.go`
/// (`Run`, `RunDetails`, `TableName() = "run_details"`), `pipeline_spec.go`
/// (`PipelineSpec`), `runtime_config.go` (`RuntimeConfig`), `common.go`
/// (`LargeText` is LONGTEXT on MySQL), and `client_manager.go` (the MySQL
/// dialector with `DefaultStringSize: 255`, so untyped strings are
/// varchar(255)). Columns in gorm's field order, embedded structs inline;
/// `int64` is bigint; the four composite indexes are the model's `index:` tags.
pub const KFP_RUN_DETAILS_DDL: &str = "CREATE TABLE `run_details` (
  `UUID` varchar(191) NOT NULL,
  `DisplayName` varchar(255) NOT NULL,
  `Name` varchar(255) NOT NULL,
  `Description` varchar(255) NOT NULL,
  `Namespace` varchar(63) NOT NULL,
  `ExperimentUUID` varchar(64) NOT NULL,
  `JobUUID` varchar(255) DEFAULT NULL,
  `StorageState` varchar(255) NOT NULL,
  `ServiceAccount` varchar(255) NOT NULL,
  `PipelineId` varchar(255) NOT NULL,
  `PipelineVersionId` varchar(255) DEFAULT NULL,
  `PipelineName` varchar(255) NOT NULL,
  `PipelineSpecManifest` longtext,
  `WorkflowSpecManifest` longtext,
  `Parameters` longtext,
  `RuntimeParameters` longtext,
  `PipelineRoot` longtext,
  `CreatedAtInSec` bigint NOT NULL,
  `ScheduledAtInSec` bigint DEFAULT 0,
  `FinishedAtInSec` bigint DEFAULT 0,
  `Conditions` varchar(125) NOT NULL,
  `State` varchar(255) DEFAULT NULL,
  `StateHistory` longtext DEFAULT NULL,
  `PipelineRuntimeManifest` longtext NOT NULL,
  `WorkflowRuntimeManifest` longtext NOT NULL,
  `PipelineContextId` bigint DEFAULT 0,
  `PipelineRunContextId` bigint DEFAULT 0,
  PRIMARY KEY (`UUID`),
  KEY `namespace_createatinsec` (`Namespace`,`CreatedAtInSec`),
  KEY `namespace_conditions_finishedatinsec` (`Namespace`,`Conditions`,`FinishedAtInSec`),
  KEY `experimentuuid_createatinsec` (`ExperimentUUID`,`CreatedAtInSec`),
  KEY `experimentuuid_conditions_finishedatinsec` (`ExperimentUUID`,`Conditions`,`FinishedAtInSec`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// The MLMD tables gc reads, as ml-metadata 1.14.0 (the `metadata-grpc-server`
/// image kubeflow/manifests v1.11.0 deploys, `ml_metadata_store_server:1.14.0`)
/// creates them on MySQL: `create_type_table`, `create_context_table`,
/// `create_context_property_table`, and the artifact, execution, event,
/// association and attribution tables of `kMySQLMetadataSourceQueryConfig` in
/// google/ml-metadata `ml_metadata/util/metadata_source_query_config.cc` (tag v1.14.0).
pub const MLMD_DDL: &str = "CREATE TABLE IF NOT EXISTS `Type` (
  `id` INT PRIMARY KEY AUTO_INCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `version` VARCHAR(255),
  `type_kind` TINYINT(1) NOT NULL,
  `description` TEXT,
  `input_type` TEXT,
  `output_type` TEXT,
  `external_id` VARCHAR(255) UNIQUE
);
CREATE TABLE IF NOT EXISTS `Context` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `type_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  UNIQUE(`type_id`, `name`)
);
CREATE TABLE IF NOT EXISTS `ContextProperty` (
  `context_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT,
  `double_value` DOUBLE,
  `string_value` MEDIUMTEXT,
  `byte_value` MEDIUMBLOB,
  `proto_value` MEDIUMBLOB,
  `bool_value` BOOLEAN,
  PRIMARY KEY (`context_id`, `name`, `is_custom_property`)
);
CREATE TABLE IF NOT EXISTS `Artifact` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `type_id` INT NOT NULL,
  `uri` TEXT,
  `state` INT,
  `name` VARCHAR(255),
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  UNIQUE(`type_id`, `name`)
);
CREATE TABLE IF NOT EXISTS `Execution` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `type_id` INT NOT NULL,
  `last_known_state` INT,
  `name` VARCHAR(255),
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` BIGINT NOT NULL DEFAULT 0,
  UNIQUE(`type_id`, `name`)
);
CREATE TABLE IF NOT EXISTS `Event` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `artifact_id` INT NOT NULL,
  `execution_id` INT NOT NULL,
  `type` INT NOT NULL,
  `milliseconds_since_epoch` BIGINT,
  UNIQUE(`artifact_id`, `execution_id`, `type`)
);
CREATE TABLE IF NOT EXISTS `Association` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `context_id` INT NOT NULL,
  `execution_id` INT NOT NULL,
  UNIQUE(`context_id`, `execution_id`)
);
CREATE TABLE IF NOT EXISTS `Attribution` (
  `id` INTEGER PRIMARY KEY AUTO_INCREMENT,
  `context_id` INT NOT NULL,
  `artifact_id` INT NOT NULL,
  UNIQUE(`context_id`, `artifact_id`)
);";
