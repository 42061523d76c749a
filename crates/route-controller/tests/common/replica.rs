//! The controller binary as a test process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The route-controller binary, as a pod runs it; its log in a file.
pub struct Replica {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Replica {
    /// `metrics_port` 0: any free port (the probes are not read).
    pub fn start(kubeconfig: &Path, route_ns: &str, lease: &str, identity: &str, metrics_port: u16) -> Self {
        let log =
            std::env::temp_dir().join(format!("route-controller-{identity}-{}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_route-controller"))
            .args([
                "--gateway-name",
                "homelab-gateway",
                "--gateway-namespace",
                "kube-system",
            ])
            .args(["--hostname", "kubeflow.example", "--metrics-addr"])
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(["--route-namespace", route_ns, "--lease-namespace", route_ns])
            .args(["--lease-name", lease, "--identity", identity])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start route-controller");
        Self { child, log }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Wait for the process to exit; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + super::WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("still running; log: {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
