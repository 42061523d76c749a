//! `kfctl doctor --db-url` against a real MariaDB (`mariadbd` from the
//! Debian package mariadb-server), started in a temp dir on 127.0.0.1.
#![cfg(feature = "db")]

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kfctl::doctor::{self, DoctorConfig, Status};

struct MariaDb {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start(mariadbd: &Path, install_db: &Path) -> MariaDb {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A private TMPDIR: bootstrap servers started side by side (other test
    // binaries start MariaDB too) collide on temporary-table files in /tmp.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let user = user();
    let install = Command::new(install_db)
        .env("TMPDIR", &tmp)
        .args([
            "--no-defaults",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--user={user}"))
        .output()
        .expect("mariadb-install-db runs");
    assert!(
        install.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let init = dir.path().join("init.sql");
    std::fs::write(&init, "CREATE DATABASE IF NOT EXISTS mlpipeline;\n").unwrap();
    let port = free_port();
    let child = Command::new(mariadbd)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.path().join("sock").display()))
        .arg(format!("--port={port}"))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--user={user}"))
        .arg(format!("--init-file={}", init.display()))
        // Any password is accepted: the test is about connecting, not auth.
        .arg("--skip-grant-tables")
        .arg("--innodb-buffer-pool-size=16M")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd starts");
    let db = MariaDb {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mariadbd did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    db
}

// Doctor reads the whole cluster: the fixture gets one of its own.
kube_sim::on_each_backend!(private: database_check_against_mariadb);

async fn database_check_against_mariadb(tc: kube_sim::TestCluster) {
    let test = "database_check_against_mariadb";
    let (Some(mariadbd), Some(install_db)) = (
        testkit::require_tool(test, "mariadbd"),
        testkit::require_tool(test, "mariadb-install-db"),
    ) else {
        return;
    };
    let db = start(&mariadbd, &install_db);
    let Some(c) = common::healthy(tc).await else {
        return;
    };
    let run = |url: String| {
        let client = c.client.clone();
        async move {
            let config = DoctorConfig {
                db_url: Some(url),
                db_timeout: Duration::from_secs(10),
                ..Default::default()
            };
            doctor::run(&client, &config).await.unwrap()
        }
    };

    let report = run(format!("mysql://root:pa55word@127.0.0.1:{}/mlpipeline", db.port)).await;
    let check = report.check("kfp-database").unwrap();
    assert_eq!(check.status, Status::Pass, "{}", report.to_table());
    assert!(check.summary.contains("MariaDB"), "{}", check.summary);
    assert_eq!(report.exit_code(), 0);

    // A database that does not exist: the server's own error, password hidden.
    let report = run(format!("mysql://root:pa55word@127.0.0.1:{}/nosuchdb", db.port)).await;
    let check = report.check("kfp-database").unwrap();
    assert_eq!(check.status, Status::Fail, "{}", report.to_table());
    assert!(check.summary.contains("nosuchdb"), "{}", check.summary);
    let all = serde_json::to_string(&report).unwrap() + &report.to_table();
    assert!(!all.contains("pa55word"), "the password leaked:\n{all}");
}
