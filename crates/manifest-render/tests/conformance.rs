//! The reference corpus: every `.yaml` case of `../shared/reference/corpus`
//! must render byte for byte, every `.err` case must be refused, and the
//! owner's overlay must print exactly `homelab.yaml`.
//!
//! `KNOWN_FAILING` lists cases allowed to differ while work is in progress;
//! it may only shrink (a listed case that now passes fails the test, so the
//! list is kept honest). It is empty: every case conforms.

use std::path::Path;

const KNOWN_FAILING: &[&str] = &[];

fn compare(dir: &Path, mirror: &Path, expected: &Path) -> Result<(), String> {
    let opts = manifest_render::Options {
        mirror: Some(mirror.to_path_buf()),
        ..Default::default()
    };
    let got = manifest_render::render(dir, &opts);
    if expected.extension().is_some_and(|e| e == "err") {
        return match got {
            Err(e) if !e.to_string().is_empty() => Ok(()),
            Err(_) => Err("refused with an empty message".into()),
            Ok(_) => Err("kustomize refuses this case; we rendered it".into()),
        };
    }
    let want =
        std::fs::read_to_string(expected).map_err(|e| format!("reading {}: {e}", expected.display()))?;
    let got = got.map_err(|e| format!("error: {e}"))?.yaml;
    if got == want {
        return Ok(());
    }
    let line = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(got.lines().count().min(want.lines().count()));
    Err(format!(
        "line {}: expected {:?}, got {:?}",
        line + 1,
        want.lines().nth(line).unwrap_or("<end>"),
        got.lines().nth(line).unwrap_or("<end>")
    ))
}

#[test]
fn corpus_and_homelab_match_kustomize() {
    let Some(shared) = testkit::require_shared("corpus_and_homelab_match_kustomize") else {
        return;
    };
    let mirror = shared.join("upstream");
    let reference = shared.join("reference");
    let list = std::fs::read_to_string(reference.join("corpus.list")).expect("corpus.list");
    let mut cases: Vec<(String, std::path::PathBuf, std::path::PathBuf)> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|case| {
            let stem = case.replace('/', "__");
            let err = reference.join("corpus").join(format!("{stem}.err"));
            let expected = if err.is_file() {
                err
            } else {
                reference.join("corpus").join(format!("{stem}.yaml"))
            };
            (case.to_string(), mirror.join("git").join(case), expected)
        })
        .collect();
    cases.push((
        "homelab".into(),
        reference.join("homelab"),
        reference.join("homelab.yaml"),
    ));
    assert_eq!(cases.len(), 267, "266 corpus cases plus the owner's overlay");
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for (name, dir, expected) in &cases {
        let known = KNOWN_FAILING.contains(&name.as_str());
        match (compare(dir, &mirror, expected), known) {
            (Ok(()), true) => fixed.push(name.clone()),
            (Err(e), false) => unexpected.push(format!("{name}: {e}")),
            _ => {}
        }
    }
    assert!(
        fixed.is_empty(),
        "now conforming, remove from KNOWN_FAILING: {fixed:?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} case(s) differ from kustomize:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
