//! A real SeaweedFS for tests: `weed server` on 127.0.0.1 with free ports in a
//! temp dir, bucket and admin identity made the upstream way (`weed shell`),
//! killed on drop. The gc work reuses it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeline_artifacts::secret::Credentials;
use pipeline_artifacts::store::{Endpoints, SeaweedStore};

#[derive(Debug, thiserror::Error)]
pub enum SeaweedError {
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("cannot create a temp dir for SeaweedFS: {0}")]
    TempDir(std::io::Error),
    #[error("cannot start {weed}: {source}")]
    Spawn { weed: PathBuf, source: std::io::Error },
    #[error("SeaweedFS did not become ready in {secs}s ({what}); its log:\n{log}")]
    NotReady { secs: u64, what: String, log: String },
    #[error("`weed shell` {command} failed: {message}")]
    Shell { command: &'static str, message: String },
}

/// A running `weed server`; dropping it kills the server and removes its data.
pub struct SeaweedFs {
    child: Child,
    dir: tempfile::TempDir,
    pub endpoints: Endpoints,
    pub admin: Credentials,
    pub bucket: String,
    master: String,
    filer: String,
    weed: PathBuf,
}

impl std::fmt::Debug for SeaweedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaweedFs")
            .field("endpoints", &self.endpoints)
            .field("dir", &self.dir.path())
            .finish()
    }
}

fn free_port() -> Result<u16, SeaweedError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(SeaweedError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(SeaweedError::Port)
}

/// A random string from the OS (admin secrets differ per run).
fn random_token(len: usize) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|i| {
            let mut h = RandomState::new().build_hasher();
            h.write_usize(i);
            ALPHABET[(h.finish() % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

impl SeaweedFs {
    /// Starts `weed server -s3 -iam -filer` and provisions bucket `mlpipeline` and
    /// admin `kubeflow-admin` exactly as upstream's postStart hook does.
    pub fn start(weed: &Path) -> Result<Self, SeaweedError> {
        // Ports are picked free but released before weed binds them; another
        // test may take one in between, so a server that exits early is retried.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(weed) {
                Err(SeaweedError::NotReady { secs: 0, .. }) if attempt < 3 => continue,
                other => return other,
            }
        }
    }

    fn start_once(weed: &Path) -> Result<Self, SeaweedError> {
        let dir = tempfile::Builder::new()
            .prefix("kflite-seaweedfs-")
            .tempdir()
            .map_err(SeaweedError::TempDir)?;
        let mut ports = Vec::new();
        // Hold every listener until all are chosen so no two ports collide.
        let mut held = Vec::new();
        for _ in 0..9 {
            let l = TcpListener::bind("127.0.0.1:0").map_err(SeaweedError::Port)?;
            ports.push(l.local_addr().map_err(SeaweedError::Port)?.port());
            held.push(l);
        }
        drop(held);
        let [
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            iam,
        ] = <[u16; 9]>::try_from(ports)
            .map_err(|_| SeaweedError::Port(std::io::Error::other("port count")))?;
        let log = std::fs::File::create(dir.path().join("weed.log")).map_err(SeaweedError::TempDir)?;
        let log2 = log.try_clone().map_err(SeaweedError::TempDir)?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(SeaweedError::TempDir)?;
        let child = Command::new(weed)
            .arg("server")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.volumePreallocate=false",
            ])
            .args([
                "-master.telemetry=false",
                "-volume.max=0",
                "-filer",
                "-s3",
                "-iam",
            ])
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
            ])
            .arg(format!("-master.port={master}"))
            .arg(format!("-master.port.grpc={master_grpc}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-volume.port.grpc={volume_grpc}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-filer.port.grpc={filer_grpc}"))
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.port.grpc={s3_grpc}"))
            .arg(format!("-iam.port={iam}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| SeaweedError::Spawn {
                weed: weed.to_owned(),
                source,
            })?;
        let admin = Credentials::new(format!("ADMIN{}", random_token(15)), random_token(40));
        let mut me = SeaweedFs {
            child,
            dir,
            endpoints: Endpoints {
                iam: format!("http://127.0.0.1:{iam}"),
                s3: format!("http://127.0.0.1:{s3}"),
                region: "us-east-1".into(),
            },
            admin,
            bucket: "mlpipeline".into(),
            // `host:port.grpcPort`: without it the shell dials port+10000 and hangs.
            master: format!("127.0.0.1:{master}.{master_grpc}"),
            filer: format!("127.0.0.1:{filer}.{filer_grpc}"),
            weed: weed.to_owned(),
        };
        me.wait_ready(s3, iam)?;
        me.shell("s3.bucket.create", "s3.bucket.create --name mlpipeline")?;
        let configure = format!(
            "s3.configure -user kubeflow-admin -access_key {} -secret_key {} -actions Admin -apply",
            me.admin.access_key_id,
            me.admin.secret_access_key.expose()
        );
        me.shell("s3.configure", &configure)?;
        Ok(me)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn wait_ready(&mut self, s3: u16, iam: u16) -> Result<(), SeaweedError> {
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        for (what, port) in [("S3 /status", s3), ("IAM port", iam)] {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(SeaweedError::NotReady {
                        secs: 0,
                        what: format!("weed exited: {status}"),
                        log: self.log(),
                    });
                }
                let ok = if port == s3 {
                    http_ok(port, "/status")
                } else {
                    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                };
                if ok {
                    break;
                }
                if start.elapsed() > limit {
                    return Err(SeaweedError::NotReady {
                        secs: limit.as_secs(),
                        what: what.into(),
                        log: self.log(),
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// Runs one `weed shell` command. Its output is not shown: `s3.configure`
    /// echoes the identity, secret key included.
    fn shell(&self, name: &'static str, command: &str) -> Result<(), SeaweedError> {
        use std::io::Write;
        let start = Instant::now();
        let out_path = self.dir.path().join("shell.out");
        loop {
            let out_file = std::fs::File::create(&out_path).map_err(|e| SeaweedError::Shell {
                command: name,
                message: e.to_string(),
            })?;
            let err_file = out_file.try_clone().map_err(|e| SeaweedError::Shell {
                command: name,
                message: e.to_string(),
            })?;
            let mut child = Command::new(&self.weed)
                .args([
                    "shell",
                    &format!("-master={}", self.master),
                    &format!("-filer={}", self.filer),
                ])
                .stdin(Stdio::piped())
                .stdout(out_file)
                .stderr(err_file)
                .spawn()
                .map_err(|e| SeaweedError::Shell {
                    command: name,
                    message: e.to_string(),
                })?;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = writeln!(stdin, "{command}");
            }
            // The shell can hang when it cannot reach the cluster; never wait forever.
            let deadline = Instant::now() + Duration::from_secs(20);
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
            };
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            let _ = std::fs::remove_file(&out_path);
            let ok = status.is_some_and(|s| s.success());
            let done = match name {
                "s3.bucket.create" => text.contains("created bucket") || text.contains("already exist"),
                _ => text.contains("\"accessKey\"") || text.contains("Admin"),
            };
            if ok && done {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                // Only the status and whether a known marker appeared: the text may hold the secret.
                return Err(SeaweedError::Shell {
                    command: name,
                    message: format!(
                        "exit {status:?}, expected confirmation not seen; weed log:\n{}",
                        self.log()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// A store acting as the admin identity.
    pub fn store(&self) -> SeaweedStore {
        SeaweedStore::new(&self.endpoints, &self.admin, &self.bucket)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (for servers the tests start).
pub fn free_tcp_port() -> Result<u16, SeaweedError> {
    free_port()
}

/// Fault injection for the IAM client: the first `count` responses to
/// `action` (e.g. `CreateAccessKey`) become HTTP 500 *after* SeaweedFS has
/// done the work, as when a response is lost. Add it with
/// `iam_config(..).interceptor(FailAfterSend::new(..))`.
#[derive(Debug)]
pub struct FailAfterSend {
    needle: String,
    remaining: std::sync::atomic::AtomicU32,
    pub injected: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl FailAfterSend {
    pub fn new(action: &str, count: u32) -> Self {
        Self {
            needle: format!("Action={action}&"),
            remaining: std::sync::atomic::AtomicU32::new(count),
            injected: Default::default(),
        }
    }
}

#[derive(Clone, Debug)]
struct Targeted;

impl aws_smithy_types::config_bag::Storable for Targeted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_sdk_iam::config::Intercept for FailAfterSend {
    fn name(&self) -> &'static str {
        "FailAfterSend"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_iam::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_iam::config::RuntimeComponents,
        cfg: &mut aws_sdk_iam::config::ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        // The request is gone by the time the response arrives: mark this attempt.
        let body = context.request().body().bytes().unwrap_or_default();
        if String::from_utf8_lossy(body).contains(&self.needle) {
            cfg.interceptor_state().store_put(Targeted);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_iam::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &aws_sdk_iam::config::RuntimeComponents,
        cfg: &mut aws_sdk_iam::config::ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        use std::sync::atomic::Ordering;
        let matches = cfg.load::<Targeted>().is_some();
        if !matches
            || self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        let response = context.response_mut();
        *response.status_mut() = 500u16.try_into()?;
        *response.body_mut() = aws_sdk_s3::primitives::SdkBody::from(
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code><Message>injected by test</Message></Error></ErrorResponse>",
        );
        Ok(())
    }
}
