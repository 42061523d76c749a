//! A token written in a remote URL (`http://user:TOKEN@host/...`) reaches
//! git through its credential mechanism and nowhere else: not git's command
//! line, not the cache's paths or files, not the lock, not the output or
//! the messages. The server is real `git http-backend` behind a loopback
//! HTTP server that demands Basic authentication.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_manifest-render");
const TOKEN: &str = "tok3n-5ecret-9d1e";

/// Serves `root` (a directory of bare repositories) with `git http-backend`,
/// answering 401 to requests without `want_auth`; records each
/// Authorization header seen.
fn serve(git: PathBuf, root: PathBuf, want_auth: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, target) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                headers.push(h.trim().to_string());
            }
            let header = |name: &str| {
                headers.iter().find_map(|h| {
                    let (k, v) = h.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let mut out = stream;
            let auth = header("Authorization");
            if let Some(a) = &auth {
                seen2.lock().unwrap().push(a.clone());
            }
            if auth.as_deref() != Some(want_auth.as_str()) {
                let _ = out.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let len: usize = header("Content-Length").and_then(|l| l.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let mut cgi = Command::new(&git)
                .arg("http-backend")
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("PATH_INFO", path)
                .env("QUERY_STRING", query)
                .env("REQUEST_METHOD", &method)
                .env("CONTENT_TYPE", header("Content-Type").unwrap_or_default())
                .env("CONTENT_LENGTH", len.to_string())
                .env(
                    "HTTP_CONTENT_ENCODING",
                    header("Content-Encoding").unwrap_or_default(),
                )
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("git http-backend");
            let _ = cgi.stdin.take().expect("stdin").write_all(&body);
            let done = cgi.wait_with_output().expect("http-backend output");
            let text = done.stdout;
            let split = text
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
            let Some((i, sep)) = split else { continue };
            let head = String::from_utf8_lossy(&text[..i]).to_string();
            let status = head
                .lines()
                .find_map(|l| l.strip_prefix("Status: "))
                .unwrap_or("200 OK")
                .to_string();
            let payload = &text[i + sep..];
            let mut resp = format!("HTTP/1.1 {status}\r\n");
            for l in head.lines().filter(|l| !l.starts_with("Status:")) {
                resp.push_str(l.trim_end());
                resp.push_str("\r\n");
            }
            resp.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            ));
            let _ = out.write_all(resp.as_bytes());
            let _ = out.write_all(payload);
        }
    });
    (port, seen)
}

fn every_file(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.clone());
        if p.is_dir() && !p.is_symlink() {
            every_file(&p, out);
        }
    }
}

#[test]
fn url_token_reaches_git_only_through_its_credential_helper() {
    let test = "url_token_reaches_git_only_through_its_credential_helper";
    let Some(git) = testkit::require_tool(test, "git") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // The repository: one base, tagged v1, as a bare repository to serve.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("base")).unwrap();
    std::fs::write(work.join("base/kustomization.yaml"), "resources:\n- cm.yaml\n").unwrap();
    std::fs::write(
        work.join("base/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
    )
    .unwrap();
    common::commit_all(&git, &work, "v1");
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    common::git_in(
        &git,
        &served,
        &["clone", "-q", "--bare", work.to_str().unwrap(), "r.git"],
    );
    // What Basic authentication with the URL's user and token sends, as
    // coreutils' base64 encodes it.
    let Some(base64) = testkit::require_tool(test, "base64") else {
        return;
    };
    let mut enc = Command::new(base64)
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("base64");
    enc.stdin
        .take()
        .expect("stdin")
        .write_all(format!("me:{TOKEN}").as_bytes())
        .expect("write");
    let encoded = String::from_utf8(enc.wait_with_output().expect("base64").stdout).expect("ascii");
    let (port, seen) = serve(git.clone(), served, format!("Basic {}", encoded.trim()));

    // A git on PATH that logs its command line, then runs the real one.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let argv_log = tmp.path().join("argv.log");
    let wrapper = bin.join("git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            argv_log.display(),
            git.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let overlay = tmp.path().join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources:\n- http://me:{TOKEN}@127.0.0.1:{port}/r.git//base?ref=v1\n"),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(BIN)
        .arg("build")
        .arg(&overlay)
        .env("KFLITE_CACHE_DIR", &cache)
        .env_remove("KFLITE_UPSTREAM_MIRROR")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("RUST_LOG", "manifest_render=debug")
        .env("PATH", path)
        .env("CI", "1")
        .output()
        .expect("run manifest-render");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build failed: {stderr}");
    assert!(stdout.contains("name: c"), "the base was fetched: {stdout}");
    assert!(
        !seen.lock().unwrap().is_empty(),
        "git authenticated to the server"
    );
    let argv = std::fs::read_to_string(&argv_log).expect("git ran");
    assert!(argv.contains("127.0.0.1"), "{argv}");
    for (what, text) in [
        ("git's command line", argv.as_str()),
        ("stderr", &stderr),
        ("stdout", &stdout),
    ] {
        assert!(!text.contains(TOKEN), "the token is in {what}: {text}");
    }
    let lock = std::fs::read_to_string(overlay.join("kflite.lock")).expect("lock written");
    assert!(!lock.contains(TOKEN), "{lock}");
    let mut files = Vec::new();
    every_file(&cache, &mut files);
    assert!(!files.is_empty());
    for f in files {
        assert!(!f.to_string_lossy().contains(TOKEN), "{}", f.display());
        if f.is_file() {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "the token is in {}",
                f.display()
            );
        }
    }
}
