//! A real Kubernetes control plane for tests, as controller-runtime's envtest
//! gives Go projects: etcd, kube-apiserver and kube-controller-manager built
//! from their Go modules by `cargo xtask test` (see `xtask/control-plane/`),
//! on loopback, with certificates made at start, RBAC on, ServiceAccount
//! tokens issued, and an audit log of every request. No kubelet: pods never run.
//!
//! [`ControlPlane::start`] owns the processes and stops them on drop;
//! [`ControlPlane::attach`] joins one that another process (`cargo xtask test`)
//! started and described in `control-plane.json`.

pub mod audit;
mod pki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The versions `xtask/control-plane/` pins; the API server reports this one.
pub const KUBERNETES_VERSION: &str = "v1.37.2";
pub const ETCD_VERSION: &str = "v3.6.16";

/// Where `cargo xtask test` puts a shared control plane's description.
pub const SHARED_ENV: &str = "KFLITE_CONTROL_PLANE_DIR";
/// Where private control planes leave their ServiceAccounts' audit lines
/// when they stop, so checks after the suite see every test's requests.
pub const AUDIT_DIR_ENV: &str = "KFLITE_AUDIT_DIR";
const INFO_FILE: &str = "control-plane.json";

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error(
        "{name} not found: set {env} or run `cargo xtask test`, which builds it into target/control-plane/bin"
    )]
    MissingBinary { name: &'static str, env: &'static str },
    #[error("making the control plane's {what}: {source}")]
    Pki {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a control plane description: {source}")]
    Info {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("starting {name}: {source}")]
    Spawn {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} did not become ready within {seconds} s ({why}); last lines of {log}:\n{tail}")]
    NotReady {
        name: &'static str,
        seconds: u64,
        why: String,
        log: PathBuf,
        tail: String,
    },
    #[error("no free port: {0}")]
    Port(#[source] std::io::Error),
    #[error("temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
}

/// The three executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

impl Binaries {
    /// The directory `cargo xtask test` builds them into.
    pub fn default_dir() -> PathBuf {
        testkit::workspace_root().join("target/control-plane/bin")
    }

    /// `KFLITE_TOOL_ETCD`, `KFLITE_TOOL_KUBE_APISERVER`,
    /// `KFLITE_TOOL_KUBE_CONTROLLER_MANAGER`, else [`Binaries::default_dir`].
    pub fn locate() -> Result<Self, ControlPlaneError> {
        let find = |name: &'static str, env: &'static str| {
            std::env::var_os(env)
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(|| Some(Self::default_dir().join(name)).filter(|p| p.is_file()))
                .ok_or(ControlPlaneError::MissingBinary { name, env })
        };
        Ok(Binaries {
            etcd: find("etcd", "KFLITE_TOOL_ETCD")?,
            kube_apiserver: find("kube-apiserver", "KFLITE_TOOL_KUBE_APISERVER")?,
            kube_controller_manager: find("kube-controller-manager", "KFLITE_TOOL_KUBE_CONTROLLER_MANAGER")?,
        })
    }
}

/// What a test needs to reach a control plane; written to `control-plane.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    /// `https://127.0.0.1:<port>`
    pub url: String,
    /// A kubeconfig for the admin (group `system:masters`).
    pub admin_kubeconfig: PathBuf,
    /// The API server's CA, for kubeconfigs of other identities.
    pub ca_cert: PathBuf,
    /// One JSON audit event per line, for every request (see [`audit`]).
    pub audit_log: PathBuf,
    /// Directory of the processes' logs.
    pub dir: PathBuf,
}

/// A control plane: started here (processes owned, stopped on drop) or attached.
#[derive(Debug)]
pub struct ControlPlane {
    info: Info,
    processes: Vec<(&'static str, Child)>,
    _temp: Option<tempfile::TempDir>,
    /// How long [`ControlPlane::start`] took, until the controller manager was at work.
    pub startup: Duration,
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager in a fresh temporary directory.
    pub fn start(binaries: &Binaries) -> Result<Self, ControlPlaneError> {
        let temp = tempfile::Builder::new()
            .prefix("kflite-control-plane-")
            .tempdir()
            .map_err(ControlPlaneError::TempDir)?;
        let mut cp = Self::start_in(temp.path(), binaries)?;
        cp._temp = Some(temp);
        Ok(cp)
    }

    /// Starts one in `dir` (kept afterwards), and writes `dir/control-plane.json`.
    pub fn start_in(dir: &Path, binaries: &Binaries) -> Result<Self, ControlPlaneError> {
        let started = Instant::now();
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text).map_err(|source| ControlPlaneError::Write { path, source })
        };
        std::fs::create_dir_all(dir).map_err(|source| ControlPlaneError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let pki = pki::write(dir)?;
        let [etcd_client, etcd_peer, api_port] = free_ports()?;
        let url = format!("https://127.0.0.1:{api_port}");

        let mut cp = ControlPlane {
            info: Info {
                url: url.clone(),
                admin_kubeconfig: dir.join("admin.kubeconfig"),
                ca_cert: pki.ca_cert.clone(),
                audit_log: dir.join("audit.log"),
                dir: dir.to_path_buf(),
            },
            processes: Vec::new(),
            _temp: None,
            startup: Duration::ZERO,
        };
        let ca_pem = std::fs::read_to_string(&pki.ca_cert).map_err(|source| ControlPlaneError::Read {
            path: pki.ca_cert.clone(),
            source,
        })?;
        write_private(
            &cp.info.admin_kubeconfig,
            &client_cert_kubeconfig(&url, &ca_pem, "admin", &pki.admin),
        )?;
        let kcm_kubeconfig = dir.join("controller-manager.kubeconfig");
        write_private(
            &kcm_kubeconfig,
            &client_cert_kubeconfig(&url, &ca_pem, "kube-controller-manager", &pki.controller_manager),
        )?;
        let policy = dir.join("audit-policy.yaml");
        // Metadata is enough to attribute every request: user, verb, resource, namespace, name, code.
        write(
            policy.clone(),
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
        )?;

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cp.spawn(
            "etcd",
            Command::new(&binaries.etcd)
                .arg("--data-dir")
                .arg(dir.join("etcd"))
                .args([
                    "--listen-client-urls",
                    &etcd_url,
                    "--advertise-client-urls",
                    &etcd_url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                ])
                .args(["--initial-cluster", &format!("default={peer_url}")])
                // A test store: losing it on a crash is fine, waiting for fsync is not.
                .args(["--unsafe-no-fsync", "--log-level", "warn"]),
        )?;
        cp.wait("etcd", Duration::from_secs(20), || {
            http_get_plain(etcd_client, "/health").is_some_and(|b| b.contains("\"health\":\"true\""))
        })?;

        let sa_key = pki.sa_key.display().to_string();
        cp.spawn(
            "kube-apiserver",
            Command::new(&binaries.kube_apiserver)
                .args(["--etcd-servers", &etcd_url])
                .args(["--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"])
                .args(["--secure-port", &api_port.to_string()])
                .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
                .arg(format!("--tls-private-key-file={}", pki.serving_key.display()))
                .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
                .args(["--authorization-mode", "Node,RBAC"])
                .args([
                    "--service-account-issuer",
                    "https://kubernetes.default.svc.cluster.local",
                ])
                .arg(format!(
                    "--service-account-key-file={}",
                    pki.sa_public_key.display()
                ))
                .args(["--service-account-signing-key-file", &sa_key])
                .args(["--service-cluster-ip-range", "10.96.0.0/16"])
                .arg(format!("--audit-policy-file={}", policy.display()))
                .arg(format!("--audit-log-path={}", cp.info.audit_log.display()))
                .args(["--audit-log-format", "json", "--audit-log-mode", "blocking"])
                .args(["--audit-log-maxsize", "0", "--audit-log-maxbackup", "0"])
                // Loopback cannot back the `kubernetes` Service's endpoints; nothing here needs them.
                .args(["--endpoint-reconciler-type", "none"])
                // Reach webhooks and aggregated APIs through their Endpoints, never
                // by resolving `<svc>.<ns>.svc` in the host's DNS: with no pods there
                // are no endpoints, so a call fails here instead of leaving the machine.
                .args(["--enable-aggregator-routing=true"])
                .args(["--allow-privileged=true", "--v=1"]),
        )?;
        let admin = cp.info.admin_kubeconfig.clone();
        cp.wait("kube-apiserver", Duration::from_secs(60), || {
            api_get(&admin, "/readyz").is_ok_and(|b| b.trim() == "ok")
        })?;

        cp.spawn(
            "kube-controller-manager",
            Command::new(&binaries.kube_controller_manager)
                .arg(format!("--kubeconfig={}", kcm_kubeconfig.display()))
                // Just what makes the API behave as in a cluster without nodes:
                // namespaces terminate, owner references cascade, ServiceAccounts appear.
                .args([
                    "--controllers",
                    "namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller",
                ])
                .arg(format!("--service-account-private-key-file={sa_key}"))
                .arg(format!("--root-ca-file={}", pki.ca_cert.display()))
                .args(["--use-service-account-credentials=true", "--leader-elect=false"])
                .args(["--secure-port", "0", "--v=1"]),
        )?;
        // The serviceaccount controller's first act: the `default` ServiceAccount.
        cp.wait("kube-controller-manager", Duration::from_secs(60), || {
            api_get(&admin, "/api/v1/namespaces/default/serviceaccounts/default").is_ok()
        })?;
        cp.startup = started.elapsed();
        let info_path = dir.join(INFO_FILE);
        let json = serde_json::to_string_pretty(&cp.info).map_err(|source| ControlPlaneError::Info {
            path: info_path.clone(),
            source,
        })?;
        write(info_path, &json)?;
        Ok(cp)
    }

    /// Joins the control plane described in `dir/control-plane.json`.
    pub fn attach(dir: &Path) -> Result<Self, ControlPlaneError> {
        let path = dir.join(INFO_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ControlPlaneError::Read {
            path: path.clone(),
            source,
        })?;
        let info = serde_json::from_str(&text).map_err(|source| ControlPlaneError::Info { path, source })?;
        Ok(ControlPlane {
            info,
            processes: Vec::new(),
            _temp: None,
            startup: Duration::ZERO,
        })
    }

    /// The one `cargo xtask test` shares ([`SHARED_ENV`]), if any.
    pub fn shared() -> Option<Result<Self, ControlPlaneError>> {
        let dir = std::env::var_os(SHARED_ENV).filter(|d| !d.is_empty())?;
        Some(Self::attach(Path::new(&dir)))
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Whether this handle started the processes (and stops them on drop).
    pub fn owns_processes(&self) -> bool {
        !self.processes.is_empty()
    }

    /// A kubeconfig that authenticates with `token` (a ServiceAccount's), written to `path`.
    pub fn write_token_kubeconfig(
        &self,
        path: &Path,
        user: &str,
        token: &str,
    ) -> Result<(), ControlPlaneError> {
        let ca = std::fs::read_to_string(&self.info.ca_cert).map_err(|source| ControlPlaneError::Read {
            path: self.info.ca_cert.clone(),
            source,
        })?;
        let text = kubeconfig(&self.info.url, &ca, user, &serde_json::json!({ "token": token }));
        write_private(path, &text)
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) -> Result<(), ControlPlaneError> {
        let log_path = self.info.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).map_err(|source| ControlPlaneError::Write {
            path: log_path.clone(),
            source,
        })?;
        let err = log.try_clone().map_err(|source| ControlPlaneError::Write {
            path: log_path,
            source,
        })?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        process::die_with_parent(cmd);
        let child = cmd
            .spawn()
            .map_err(|source| ControlPlaneError::Spawn { name, source })?;
        self.processes.push((name, child));
        Ok(())
    }

    fn wait(
        &mut self,
        name: &'static str,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), ControlPlaneError> {
        let deadline = Instant::now() + limit;
        loop {
            if ready() {
                return Ok(());
            }
            let exited = self
                .processes
                .iter_mut()
                .find(|(n, _)| *n == name)
                .and_then(|(_, c)| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = self.info.dir.join(format!("{name}.log"));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                return Err(ControlPlaneError::NotReady {
                    name,
                    seconds: limit.as_secs(),
                    why: exited.map_or("timed out".into(), |s| format!("exited: {s}")),
                    log,
                    tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Controller manager first, etcd last: each outlives what depends on it.
        while let Some((_, mut child)) = self.processes.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self._temp.is_some() {
            keep_audit(&self.info);
        }
    }
}

/// Copies the workload ServiceAccounts' lines of a private control plane's
/// audit log into [`AUDIT_DIR_ENV`] before its directory goes.
fn keep_audit(info: &Info) {
    let Some(dir) = std::env::var_os(AUDIT_DIR_ENV).filter(|d| !d.is_empty()) else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(&info.audit_log) else {
        return;
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            l.contains("\"username\":\"system:serviceaccount:")
                && !l.contains("\"username\":\"system:serviceaccount:kube-system:")
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    let name = info
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(Path::new(&dir).join(format!("{name}.log")), kept);
}

mod process {
    use std::process::Command;

    /// The child is killed when the process that started it dies, even by
    /// SIGKILL (a test timed out): no orphaned API servers.
    #[allow(unsafe_code)]
    pub fn die_with_parent(cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

fn free_ports<const N: usize>() -> Result<[u16; N], ControlPlaneError> {
    // Hold every listener until all are chosen, so the N ports differ.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(ControlPlaneError::Port)?;
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr().map_err(ControlPlaneError::Port)?.port();
    }
    Ok(ports)
}

/// A plain-HTTP GET on loopback (etcd's health endpoint), `None` on any failure.
fn http_get_plain(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.0 200").then_some(out)
}

/// GET `path` on the API server with the kubeconfig's identity; the body on 2xx.
pub fn api_get(kubeconfig: &Path, path: &str) -> Result<String, String> {
    let kubeconfig = kubeconfig.to_path_buf();
    let path = path.to_string();
    on_fresh_runtime(async move {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| e.to_string())?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(cfg).map_err(|e| e.to_string())?;
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        client.request_text(req).await.map_err(|e| e.to_string())
    })
}

/// Runs `fut` on a runtime of its own, in a thread of its own, so callers may
/// be sync or inside another runtime.
pub(crate) fn on_fresh_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(fut)
    })
    .join()
    .map_err(|_| "the request thread panicked".to_string())?
}

fn client_cert_kubeconfig(url: &str, ca_pem: &str, user: &str, cert: &pki::ClientCert) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    kubeconfig(
        url,
        ca_pem,
        user,
        &serde_json::json!({
            "client-certificate-data": b64(&cert.cert_pem),
            "client-key-data": b64(&cert.key_pem),
        }),
    )
}

fn kubeconfig(url: &str, ca_pem: &str, user: &str, auth: &serde_json::Value) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kflite-test", "cluster": {"server": url, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": auth}],
        "contexts": [{"name": user, "context": {"cluster": "kflite-test", "user": user}}],
        "current-context": user,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Writes a credential file readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), ControlPlaneError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| ControlPlaneError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(text.as_bytes())
        .map_err(|source| ControlPlaneError::Write {
            path: path.to_path_buf(),
            source,
        })
}
