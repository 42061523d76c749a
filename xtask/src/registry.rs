//! Pushing images over the registry HTTP API v2 (distribution spec):
//! HEAD each blob, upload the missing ones in one PUT, then PUT the manifest.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge:
//! `Basic` sends the credentials, `Bearer` trades them for a token at the
//! realm (ghcr.io does this; a GITHUB_TOKEN works there). Credentials come
//! from `KFLITE_REGISTRY_USER` / `KFLITE_REGISTRY_PASSWORD` and never appear
//! in output or errors.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use ureq::http::Response;

use crate::oci::{Blob, Image};

pub struct Registry {
    agent: ureq::Agent,
    /// `http(s)://host[:port]`.
    base: String,
    /// `host[:port]` as people write it, for references.
    host: String,
    /// Repository path under the host (`owner` in `ghcr.io/owner`), may be empty.
    prefix: String,
    credentials: Option<(String, String)>,
    /// `Authorization` header value per repository, once the challenge is met.
    auth: BTreeMap<String, String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || h.starts_with('['))
        .map_or(host, |(h, _)| h);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

impl Registry {
    /// `registry` is `host[:port][/path]`; loopback hosts (and `insecure`) use plain HTTP.
    pub fn new(registry: &str, insecure: bool) -> Result<Registry> {
        let registry = registry.trim_end_matches('/');
        if registry.contains("://") {
            bail!("registry '{registry}': write host[:port]/path without a scheme");
        }
        let (host, prefix) = registry.split_once('/').unwrap_or((registry, ""));
        if host.is_empty() {
            bail!("registry '{registry}' names no host");
        }
        let scheme = if insecure || is_loopback(host) {
            "http"
        } else {
            "https"
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(600)))
            .build()
            .into();
        let registry = Registry {
            agent,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            prefix: prefix.to_string(),
            credentials: None,
            auth: BTreeMap::new(),
        };
        Ok(
            match (
                std::env::var("KFLITE_REGISTRY_USER"),
                std::env::var("KFLITE_REGISTRY_PASSWORD"),
            ) {
                (Ok(u), Ok(p)) if !u.is_empty() => registry.with_credentials(&u, &p),
                _ => registry,
            },
        )
    }

    /// Uses these credentials instead of the environment's.
    pub fn with_credentials(mut self, user: &str, password: &str) -> Registry {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// The repository an image is pushed to (`owner/route-controller`).
    pub fn repository(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// Pushes `image` as `<registry>/<name>:<tag>`; returns that reference
    /// with the digest the registry confirmed appended.
    pub fn push(&mut self, name: &str, image: &Image) -> Result<String> {
        let repo = self.repository(name);
        let blobs = std::iter::once(&image.config).chain(image.layers.iter().map(|l| &l.blob));
        for blob in blobs {
            self.push_blob(&repo, blob)?;
        }
        let url = format!("{}/v2/{repo}/manifests/{}", self.base, image.tag);
        let media_type = image.manifest.media_type.to_string();
        let resp = self.send(&repo, |agent, auth| {
            authed(agent.put(&url).header("Content-Type", &media_type), auth)
                .send(image.manifest.data.as_slice())
        })?;
        let status = resp.status().as_u16();
        if status != 201 && status != 200 {
            bail!("PUT manifest {repo}:{}: {}", image.tag, describe(resp));
        }
        if let Some(d) = header(&resp, "docker-content-digest")
            && d != image.digest()
        {
            bail!(
                "registry stored manifest {repo}:{} as {d}, expected {}",
                image.tag,
                image.digest()
            );
        }
        eprintln!("pushed {}/{repo}:{}@{}", self.host, image.tag, image.digest());
        Ok(format!("{}/{repo}:{}@{}", self.host, image.tag, image.digest()))
    }

    fn push_blob(&mut self, repo: &str, blob: &Blob) -> Result<()> {
        let url = format!("{}/v2/{repo}/blobs/{}", self.base, blob.digest);
        let resp = self.send(repo, |agent, auth| authed(agent.head(&url), auth).call())?;
        if resp.status().as_u16() == 200 {
            return Ok(());
        }
        let start = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self.send(repo, |agent, auth| authed(agent.post(&start), auth).send_empty())?;
        if resp.status().as_u16() != 202 {
            bail!("starting upload of {} to {repo}: {}", blob.digest, describe(resp));
        }
        let location = header(&resp, "location").context("upload started without a Location")?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_string()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", blob.digest);
        let resp = self.send(repo, |agent, auth| {
            authed(
                agent.put(&put).header("Content-Type", "application/octet-stream"),
                auth,
            )
            .send(blob.data.as_slice())
        })?;
        if resp.status().as_u16() != 201 {
            bail!("uploading {} to {repo}: {}", blob.digest, describe(resp));
        }
        Ok(())
    }

    /// Sends a request; on 401 meets the challenge once and sends it again.
    fn send(
        &mut self,
        repo: &str,
        request: impl Fn(&ureq::Agent, Option<&str>) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let resp = request(&self.agent, self.auth.get(repo).map(String::as_str))
            .map_err(|e| http_error(&self.base, e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate").unwrap_or_default().to_string();
        let auth = self.authorize(repo, &challenge)?;
        self.auth.insert(repo.to_string(), auth);
        let resp = request(&self.agent, self.auth.get(repo).map(String::as_str))
            .map_err(|e| http_error(&self.base, e))?;
        if resp.status().as_u16() == 401 {
            bail!(
                "{}: still unauthorized for {repo} after authenticating (check KFLITE_REGISTRY_USER/PASSWORD and push rights)",
                self.base
            );
        }
        Ok(resp)
    }

    /// The `Authorization` value that answers `challenge` for pushing to `repo`.
    fn authorize(&self, repo: &str, challenge: &str) -> Result<String> {
        let basic = self
            .credentials
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return basic.with_context(|| {
                format!(
                    "{} asks for a login: set KFLITE_REGISTRY_USER and KFLITE_REGISTRY_PASSWORD",
                    self.base
                )
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            bail!("{}: unsupported authentication challenge '{scheme}'", self.base);
        }
        let params = challenge_params(params);
        let realm = params
            .get("realm")
            .with_context(|| format!("{}: Bearer challenge without a realm", self.base))?;
        let mut url = format!(
            "{realm}?scope={}",
            query_escape(&format!("repository:{repo}:pull,push"))
        );
        if let Some(service) = params.get("service") {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let mut req = self.agent.get(&url);
        if let Some(b) = &basic {
            req = req.header("Authorization", b);
        }
        let mut resp = req.call().map_err(|e| http_error(realm, e))?;
        if resp.status().as_u16() != 200 {
            // The body may echo the request; report the status only.
            bail!("token request to {realm} for {repo}: HTTP {}", resp.status());
        }
        let body: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string()?)
            .with_context(|| format!("token response from {realm} is not JSON"))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .with_context(|| format!("token response from {realm} has no token"))?;
        Ok(format!("Bearer {token}"))
    }
}

fn authed<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
}

fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Status and the registry's error body (distribution errors carry no secrets).
fn describe(mut resp: Response<ureq::Body>) -> String {
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    format!("HTTP {status} {}", body.trim())
}

fn http_error(base: &str, e: ureq::Error) -> anyhow::Error {
    anyhow::anyhow!("{base}: {e}")
}

/// `realm="https://x",service="y"` → map.
fn challenge_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let p = challenge_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull""#,
        );
        assert_eq!(p["realm"], "https://ghcr.io/token");
        assert_eq!(p["service"], "ghcr.io");
        assert_eq!(p["scope"], "repository:o/r:pull");
    }

    #[test]
    fn base64_matches_rfc4648() {
        // RFC 4648 section 10 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    /// A registry that demands a Bearer token from its realm, which in turn
    /// demands Basic credentials; every blob is already there.
    #[test]
    fn bearer_challenge_is_met_with_a_token_from_the_realm() {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let image = {
            let l = crate::oci::layer(vec![crate::oci::Entry::file("a", 0o644, b"a".to_vec())], "a").unwrap();
            let spec = crate::oci::ImageSpec {
                architecture: "amd64".into(),
                entrypoint: vec!["/a".into()],
                env: vec![],
                labels: Default::default(),
                created: crate::oci::rfc3339(0),
                tag: "1".into(),
            };
            crate::oci::image(&spec, vec![l]).unwrap()
        };
        let digest = image.digest().to_string();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for stream in listener.incoming().take(5) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let (mut auth, mut length) = (String::new(), 0usize);
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    match k.to_ascii_lowercase().as_str() {
                        "authorization" => auth = v.trim().to_string(),
                        "content-length" => length = v.trim().parse().unwrap(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                let path = line.split_whitespace().nth(1).unwrap().to_string();
                let response = if path.starts_with("/token") {
                    assert_eq!(auth, format!("Basic {}", base64(b"user:secret")));
                    assert!(
                        path.contains("scope=repository%3Aowner%2Fapp%3Apull%2Cpush"),
                        "{path}"
                    );
                    let body = r#"{"token":"t0k"}"#;
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                } else if auth != "Bearer t0k" {
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"test\"\r\nContent-Length: 0\r\n\r\n"
                    )
                } else if line.starts_with("HEAD") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string()
                } else {
                    format!(
                        "HTTP/1.1 201 Created\r\nDocker-Content-Digest: {digest}\r\nContent-Length: 0\r\n\r\n"
                    )
                };
                stream.write_all(response.as_bytes()).unwrap();
                seen.push(format!("{} {path}", line.split_whitespace().next().unwrap()));
            }
            seen
        });
        let mut reg = Registry::new(&format!("{addr}/owner"), false)
            .unwrap()
            .with_credentials("user", "secret");
        let reference = reg.push("app", &image).unwrap();
        assert_eq!(reference, format!("{addr}/owner/app:1@{}", image.digest()));
        let seen = server.join().unwrap();
        assert!(seen[1].starts_with("GET /token"), "{seen:?}");
        assert_eq!(seen.last().unwrap(), "PUT /v2/owner/app/manifests/1");
    }

    #[test]
    fn scheme_and_repository() {
        let r = Registry::new("127.0.0.1:5000/kflite", false).unwrap();
        assert_eq!(
            (r.base.as_str(), r.repository("x").as_str()),
            ("http://127.0.0.1:5000", "kflite/x")
        );
        let r = Registry::new("ghcr.io", false).unwrap();
        assert_eq!(
            (r.base.as_str(), r.repository("x").as_str()),
            ("https://ghcr.io", "x")
        );
        assert!(Registry::new("https://ghcr.io/o", false).is_err());
        assert!(is_loopback("localhost:5000") && is_loopback("[::1]:5000") && !is_loopback("ghcr.io"));
    }
}
