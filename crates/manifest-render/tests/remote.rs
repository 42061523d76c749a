//! Remote bases through real fetches: git repositories and an HTTP server
//! built from `../shared/upstream` in a temporary directory (as
//! `../shared/tools/kustomize-ref` does), the manifest-render binary run
//! against them, its output compared with kustomize's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use manifest_render::loader::Remote;
use manifest_render::remote::fixture::Fixture;

const BIN: &str = env!("CARGO_BIN_EXE_manifest-render");

fn run(fx: &Fixture, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("KFLITE_UPSTREAM_MIRROR")
        .env_remove("KFLITE_CACHE_DIR")
        .env("CI", "1");
    for (k, v) in fx.env() {
        c.env(k, v);
    }
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().expect("run manifest-render")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every remote URL the overlay's kustomization names.
fn overlay_remotes(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("overlay");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|t| t.trim().trim_matches('"').to_string())
        .filter(|t| Remote::parse(t).is_some())
        .collect()
}

fn lock_field(lock: &str, url: &str, field: &str) -> Option<String> {
    let block = lock
        .split("- url: ")
        .find(|b| b.starts_with(&format!("\"{url}\"")))?;
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{field}: ")))?;
    Some(line.split_once(": ")?.1.trim_matches('"').to_string())
}

fn fixture(test: &str) -> Option<(PathBuf, tempfile::TempDir, Fixture)> {
    let shared = testkit::require_shared(test)?;
    testkit::require_tool(test, "git")?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx =
        Fixture::build(&shared.join("upstream"), &tmp.path().join("fixture")).expect("fixture repositories");
    Some((shared, tmp, fx))
}

/// Acceptance 1 and 4 in one fixture (building it costs seconds): cold
/// fetch prints kustomize's bytes and writes the lock; a warm build needs no
/// git at all; a changed byte in the cache fails `--locked` naming the URL
/// and both hashes; `--offline` on an empty cache lists every remote; a
/// vendored mirror renders the same bytes offline.
#[test]
fn homelab_through_git_fetches() {
    let Some((shared, tmp, fx)) = fixture("homelab_through_git_fetches") else {
        return;
    };
    let overlay = shared.join("reference/homelab");
    let want = std::fs::read(shared.join("reference/homelab.yaml")).expect("reference output");
    let cache = tmp.path().join("cache");
    let lock = tmp.path().join("kflite.lock");
    let build = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "build",
            s(&overlay),
            "--cache-dir",
            s(&cache),
            "--lockfile",
            s(&lock),
        ];
        args.extend_from_slice(extra);
        run(&fx, &args, env)
    };

    // Cold: every remote fetched (git for three repositories, HTTP for the jobset file).
    let cold = build(&[], &[]);
    assert!(cold.status.success(), "cold build failed: {}", stderr(&cold));
    assert!(
        cold.stdout == want,
        "cold build differs from reference/homelab.yaml"
    );
    let lock_text = std::fs::read_to_string(&lock).expect("kflite.lock written");
    // The overlay's bases pull argo-workflows and the jobset release file (not lws).
    for url in [
        "https://github.com/kubeflow/manifests",
        "https://github.com/argoproj/argo-workflows",
    ] {
        let commit =
            lock_field(&lock_text, url, "commit").unwrap_or_else(|| panic!("{url} locked:\n{lock_text}"));
        assert!(
            cache.join("git").join(&commit).is_dir(),
            "{url}: tree of {commit} cached"
        );
    }
    let jobset = format!(
        "{}/github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml",
        fx.http_base
    );
    let jobset_sha =
        lock_field(&lock_text, &jobset, "sha256").unwrap_or_else(|| panic!("jobset locked:\n{lock_text}"));
    assert!(cache.join("http").join(&jobset_sha).is_file());

    // Warm and --locked, with no git on PATH: the lock and cache suffice.
    let warm = build(&["--locked"], &[("PATH", "/nonexistent")]);
    assert!(
        warm.status.success(),
        "warm --locked build failed: {}",
        stderr(&warm)
    );
    assert!(warm.stdout == want, "warm build differs");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        lock_text,
        "an unchanged build leaves the lock alone"
    );

    // Acceptance 4: one changed byte in a cached file the build reads.
    let url = "https://github.com/kubeflow/manifests";
    let commit = lock_field(&lock_text, url, "commit").unwrap();
    let old_sha = lock_field(&lock_text, url, "sha256").unwrap();
    let victim = cache
        .join("git")
        .join(&commit)
        .join("common/kubeflow-namespace/base/namespace.yaml");
    let mut bytes = std::fs::read(&victim).expect("cached file");
    let i = bytes.iter().position(|&b| b == b'\n').expect("a newline");
    bytes.insert(i, b' ');
    std::fs::write(&victim, &bytes).unwrap();
    let tampered = build(&["--locked"], &[]);
    let err = stderr(&tampered);
    assert!(!tampered.status.success(), "--locked accepted a changed cache");
    assert!(tampered.stdout.is_empty(), "no partial output");
    assert!(
        err.contains(url) && err.contains(&old_sha),
        "names URL and locked hash: {err}"
    );
    let found = err
        .split("found sha256 ")
        .nth(1)
        .map(|t| t.chars().take(64).collect::<String>())
        .unwrap_or_default();
    assert!(
        found.len() == 64 && found != old_sha,
        "names the hash found: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        lock_text,
        "--locked never rewrites the lock"
    );

    // Acceptance 4: offline with an empty cache lists every remote the overlay names.
    let empty = tmp.path().join("empty-cache");
    let offline = run(
        &fx,
        &[
            "build",
            s(&overlay),
            "--offline",
            "--cache-dir",
            s(&empty),
            "--lockfile",
            s(&lock),
        ],
        &[],
    );
    let err = stderr(&offline);
    assert!(!offline.status.success());
    let remotes = overlay_remotes(&overlay);
    assert_eq!(remotes.len(), 18, "the owner's overlay names 18 remote bases");
    for r in &remotes {
        assert!(err.contains(r.as_str()), "--offline lists {r}: {err}");
    }
    assert!(err.contains(&format!("{} remote(s)", remotes.len())), "{err}");

    // Vendor (from a fresh cache: the tampered one is not the source), then
    // render from the vendored mirror alone: offline, empty cache, no git.
    let vendored = tmp.path().join("vendored");
    let fresh = tmp.path().join("cache2");
    let v = run(
        &fx,
        &[
            "vendor",
            s(&overlay),
            s(&vendored),
            "--cache-dir",
            s(&fresh),
            "--lockfile",
            s(&lock),
            "--update-lock",
        ],
        &[],
    );
    assert!(v.status.success(), "vendor failed: {}", stderr(&v));
    assert!(
        vendored
            .join("git/github.com/kubeflow/manifests/v1.11.0/common")
            .is_dir()
    );
    let from_mirror = run(
        &fx,
        &[
            "build",
            s(&overlay),
            "--mirror",
            s(&vendored),
            "--offline",
            "--locked",
            "--cache-dir",
            s(&empty),
            "--lockfile",
            s(&lock),
        ],
        &[("PATH", "/nonexistent")],
    );
    assert!(
        from_mirror.status.success(),
        "render from vendored mirror failed: {}",
        stderr(&from_mirror)
    );
    assert!(
        from_mirror.stdout == want,
        "vendored mirror renders different bytes"
    );
}

/// A `file://` URL written in the kustomization fetches the same tree the
/// mirror holds: same bytes as rendering the https spelling from the mirror.
#[test]
fn file_url_remote_matches_mirror() {
    let Some((shared, tmp, fx)) = fixture("file_url_remote_matches_mirror") else {
        return;
    };
    let via = |name: &str, resource: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("kustomization.yaml"),
            format!("resources:\n- {resource}\nnamespace: demo\n"),
        )
        .unwrap();
        d
    };
    let file_dir = via(
        "file",
        &format!(
            "{}//config/default?ref=v0.7.0",
            fx.file_url("github.com/kubernetes-sigs/lws")
        ),
    );
    let https_dir = via(
        "https",
        "https://github.com/kubernetes-sigs/lws//config/default?ref=v0.7.0",
    );
    let cache = tmp.path().join("cache");
    // Not under CI, but stderr is a pipe: no progress output either.
    let got = Command::new(BIN)
        .args(["build", s(&file_dir), "--cache-dir", s(&cache)])
        .envs(fx.env())
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(
        !stderr(&got).contains("fetching"),
        "quiet in a pipe: {}",
        stderr(&got)
    );
    let mirror = shared.join("upstream");
    let want = run(
        &fx,
        &[
            "build",
            s(&https_dir),
            "--mirror",
            s(&mirror),
            "--offline",
            "--cache-dir",
            s(&cache),
        ],
        &[],
    );
    assert!(want.status.success(), "{}", stderr(&want));
    assert!(
        !got.stdout.is_empty() && got.stdout == want.stdout,
        "file:// fetch and mirror differ"
    );
    assert!(
        file_dir.join("kflite.lock").is_file(),
        "a fetching build writes kflite.lock beside the overlay"
    );
    assert!(
        https_dir.join("kflite.lock").is_file(),
        "a mirror-only build pins what it read too"
    );

    // Default mode, as Cargo with a checksum: a content change is an error
    // naming the URL and both hashes, and the lock stays; --update-lock
    // accepts it, and --locked then agrees.
    let lock_path = file_dir.join("kflite.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let url = fx.file_url("github.com/kubernetes-sigs/lws");
    let commit = lock_field(&lock, &url, "commit").expect("lws commit locked");
    let kust = cache
        .join("git")
        .join(&commit)
        .join("config/default/kustomization.yaml");
    let text = std::fs::read_to_string(&kust).unwrap();
    std::fs::write(&kust, format!("{text}\n# local edit\n")).unwrap();
    let again = run(&fx, &["build", s(&file_dir), "--cache-dir", s(&cache)], &[]);
    let err = stderr(&again);
    let old_sha = lock_field(&lock, &url, "sha256").expect("lws sha256 locked");
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(again.stdout.is_empty(), "no output on a changed remote");
    assert!(
        err.contains("content differs") && err.contains(&url) && err.contains(&old_sha),
        "names the URL and the locked hash: {err}"
    );
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), lock, "lock kept");
    let again = run(
        &fx,
        &["build", s(&file_dir), "--cache-dir", s(&cache), "--update-lock"],
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(again.stdout == got.stdout, "a comment changes no object");
    let updated = std::fs::read_to_string(&lock_path).unwrap();
    assert_ne!(
        lock_field(&updated, &url, "sha256"),
        lock_field(&lock, &url, "sha256")
    );
    let locked = run(
        &fx,
        &["build", s(&file_dir), "--cache-dir", s(&cache), "--locked"],
        &[],
    );
    assert!(locked.status.success(), "{}", stderr(&locked));

    // Two cold builds racing on one empty cache both succeed, same bytes.
    let race = tmp.path().join("race-cache");
    let spawn = |i: usize| {
        let mut c = Command::new(BIN);
        let lock = tmp.path().join(format!("race-{i}.lock"));
        c.args([
            "build",
            s(&file_dir),
            "--cache-dir",
            s(&race),
            "--lockfile",
            s(&lock),
        ])
        .env("CI", "1");
        c.envs(fx.env())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().expect("spawn")
    };
    let (a, b) = (spawn(1), spawn(2));
    for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        assert!(o.status.success(), "racing build: {}", stderr(&o));
        assert!(o.stdout == got.stdout, "racing build printed other bytes");
    }
    let left: Vec<_> = std::fs::read_dir(race.join("tmp"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no scratch left behind: {left:?}");
}

/// Failures name the URL and the kustomization that referenced it; exit 1, no output.
#[test]
fn remote_errors_are_clear() {
    let Some((_shared, tmp, fx)) = fixture("remote_errors_are_clear") else {
        return;
    };
    let cache = tmp.path().join("cache");
    let case = |name: &str, resource: &str, env: &[(&str, &str)]| -> String {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("kustomization.yaml"),
            format!("resources:\n- {resource}\n"),
        )
        .unwrap();
        let o = run(&fx, &["build", s(&d), "--cache-dir", s(&cache)], env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(o.stdout.is_empty(), "{name}: no partial output");
        assert!(
            err.contains(&format!("{name}/kustomization.yaml")),
            "{name}: names the kustomization: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        err
    };
    let lws = "https://github.com/kubernetes-sigs/lws//config/default";
    let e = case("unknown-ref", &format!("{lws}?ref=v9.9.9"), &[]);
    assert!(e.contains(lws) && e.contains("v9.9.9"), "{e}");
    let e = case(
        "no-git",
        &format!("{lws}?ref=v0.7.0"),
        &[("PATH", "/nonexistent")],
    );
    assert!(e.contains("git is not installed") && e.contains(lws), "{e}");
    let e = case(
        "ssh-no-git",
        "git@github.com:kubernetes-sigs/lws//config/default?ref=v0.7.0",
        &[("PATH", "/nonexistent")],
    );
    assert!(
        e.contains("git is not installed") && e.contains("git@github.com:kubernetes-sigs/lws"),
        "{e}"
    );
    let e = case(
        "no-repo",
        &format!("file://{}/nothing-here//x?ref=v1", tmp.path().display()),
        &[],
    );
    assert!(
        e.contains("nothing-here") && e.contains("does not appear to be a git repository"),
        "{e}"
    );
    let missing = format!("{}/no/such/file.yaml", fx.http_base);
    let e = case("http-404", &missing, &[]);
    assert!(e.contains(&missing) && e.contains("404"), "{e}");
    // A local path inside a remote may not climb out of the repository.
    let repo = tmp.path().join("escape-repo");
    std::fs::create_dir_all(repo.join("base")).unwrap();
    std::fs::write(repo.join("base/kustomization.yaml"), "resources:\n- ../..\n").unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .envs(fx.env())
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", stderr(&ok));
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"]);
    git(&["tag", "v1"]);
    // (The error names the remote's own kustomization, which wrote `../..`.)
    let d = tmp.path().join("escape");
    std::fs::create_dir_all(&d).unwrap();
    let url = format!("file://{}//base?ref=v1", repo.display());
    std::fs::write(d.join("kustomization.yaml"), format!("resources:\n- {url}\n")).unwrap();
    let o = run(&fx, &["build", s(&d), "--cache-dir", s(&cache)], &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("leaves the remote repository")
            && e.contains("escape-repo")
            && e.contains("base/kustomization.yaml"),
        "{e}"
    );
    let e = case(
        "secret-url",
        "https://user:hunter2@127.0.0.1:1/o/r//x?ref=v1",
        &[],
    );
    assert!(!e.contains("hunter2"), "credentials never printed: {e}");
}

/// A tag that moves after locking: builds keep fetching the pinned commit
/// (as Cargo keeps locked versions), `--locked` included, from an empty
/// cache; `--update-lock` moves the pin.
#[test]
fn moved_ref_keeps_the_pin() {
    if testkit::require_tool("moved_ref_keeps_the_pin", "git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.email=t@t", "-c", "user.name=t"])
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    std::fs::create_dir_all(repo.join("base")).unwrap();
    std::fs::write(repo.join("base/kustomization.yaml"), "resources:\n- cm.yaml\n").unwrap();
    std::fs::write(repo.join("base/cm.yaml"), cm("one")).unwrap();
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "one"]);
    git(&["tag", "v1"]);
    let c1 = git(&["rev-parse", "HEAD"]);
    let overlay = tmp.path().join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    let url = format!("file://{}", repo.display());
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources:\n- {url}//base?ref=v1\n"),
    )
    .unwrap();
    let build = |cache: &str, extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["build", s(&overlay), "--cache-dir", s(&tmp.path().join(cache))])
            .args(extra);
        c.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("CI", "1")
            .output()
            .unwrap()
    };
    let first = build("a", &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("name: one"));
    let lock = std::fs::read_to_string(overlay.join("kflite.lock")).unwrap();
    assert_eq!(lock_field(&lock, &url, "commit").as_deref(), Some(c1.as_str()));

    std::fs::write(repo.join("base/cm.yaml"), cm("two")).unwrap();
    git(&["commit", "-qam", "two"]);
    git(&["tag", "-f", "v1"]);
    let c2 = git(&["rev-parse", "HEAD"]);

    let pinned = build("b", &[]);
    assert!(pinned.status.success(), "{}", stderr(&pinned));
    assert!(
        pinned.stdout == first.stdout,
        "the default build keeps the pinned commit"
    );
    assert_eq!(
        std::fs::read_to_string(overlay.join("kflite.lock")).unwrap(),
        lock
    );

    // --locked agrees: the lock is the truth, the moved tag is not consulted.
    let locked = build("c", &["--locked"]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    assert!(locked.stdout == first.stdout, "--locked builds the pinned commit");

    let updated = build("c", &["--update-lock"]);
    assert!(updated.status.success(), "{}", stderr(&updated));
    assert!(String::from_utf8_lossy(&updated.stdout).contains("name: two"));
    let lock = std::fs::read_to_string(overlay.join("kflite.lock")).unwrap();
    assert_eq!(lock_field(&lock, &url, "commit").as_deref(), Some(c2.as_str()));
}
