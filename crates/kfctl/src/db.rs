//! `kfctl doctor --db-url`: does the KFP MySQL database answer?

use crate::doctor::{Check, DoctorConfig};

const ID: &str = "kfp-database";
const TITLE: &str = "the KFP MySQL database answers";
#[cfg_attr(not(feature = "db"), allow(dead_code))]
const FIX: &str = "kubectl -n kubeflow get pods -l app=mysql; kubectl -n kubeflow logs deploy/mysql; check the user and password in Secret mysql-secret and that Service mysql:3306 has endpoints";

/// `url` with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// The password in `url`, so it can be scrubbed from driver errors.
#[cfg_attr(not(feature = "db"), allow(dead_code))]
fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p).filter(|p| !p.is_empty())
}

/// A driver error as a message that never carries the password.
#[cfg_attr(not(feature = "db"), allow(dead_code))]
fn scrub(message: String, url: &str) -> String {
    match password(url) {
        Some(p) => message.replace(p, "***"),
        None => message,
    }
}

/// The database check (`skip` without `--db-url`).
pub async fn check(config: &DoctorConfig) -> Check {
    let check = Check::new(ID, TITLE);
    let Some(url) = config.db_url.as_deref() else {
        return check.skip("not checked (pass --db-url mysql://USER:PASSWORD@HOST:3306/mlpipeline)");
    };
    probe(check, url, config.db_timeout).await
}

#[cfg(feature = "db")]
async fn probe(check: Check, url: &str, timeout: std::time::Duration) -> Check {
    use std::str::FromStr as _;

    use sqlx::Connection as _;
    use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};

    let shown = redact(url);
    let options = match MySqlConnectOptions::from_str(url) {
        Ok(o) => o,
        Err(e) => {
            return check.fail(
                format!(
                    "--db-url {shown} is not a MySQL URL: {}",
                    scrub(e.to_string(), url)
                ),
                "pass mysql://USER:PASSWORD@HOST:PORT/DATABASE",
            );
        }
    };
    let started = std::time::Instant::now();
    let attempt = async {
        let mut conn = MySqlConnection::connect_with(&options).await?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(version)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(version)) => check.pass(format!(
            "{shown} answered in {} ms (server {version})",
            started.elapsed().as_millis()
        )),
        Ok(Err(e)) => check.fail(format!("{shown}: {}", scrub(e.to_string(), url)), FIX),
        Err(_) => check.fail(
            format!("{shown}: no answer within {} s", timeout.as_secs_f32()),
            FIX,
        ),
    }
}

#[cfg(not(feature = "db"))]
async fn probe(check: Check, url: &str, _timeout: std::time::Duration) -> Check {
    check.fail(
        format!(
            "cannot check {}: kfctl was built without the `db` feature",
            redact(url)
        ),
        "rebuild kfctl with --features db",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        assert_eq!(
            redact("mysql://root:s3cr@t@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(redact("mysql://root@db/x"), "mysql://root@db/x");
        assert_eq!(redact("not a url"), "not a url");
        let url = "mysql://u:hunter2@h/x";
        assert_eq!(scrub("bad hunter2 here".into(), url), "bad *** here");
    }
}
