//! Plain `http(s)://` files, over rustls.

use std::time::Duration;

/// Largest remote file accepted (release manifests are a few MB).
const LIMIT: u64 = 256 << 20;

pub fn get(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let shown = super::redact(url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("kflite-manifest-render/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("fetching {shown}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("fetching {shown}: HTTP {status}"));
    }
    resp.body_mut()
        .with_config()
        .limit(LIMIT)
        .read_to_vec()
        .map_err(|e| format!("reading {shown}: {e}"))
}
