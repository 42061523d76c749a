//! Table tests for kustomize's built-in plugins configured through
//! `generators:`, `transformers:` and `validators:`, one table per feature.
//!
//! Each case is a directory under `tests/builtins/<table>/<case>/` (bases may
//! use the shared `tests/builtins/_base`). What the reference kustomize
//! (v5.8.1) does with it sits beside it, written by `tests/builtins/regen.sh`:
//! `<case>.yaml` (its output: ours must be byte-identical) or `<case>.err`
//! (it refused: we must refuse too, naming a file of the case).
//! Case names say what they cover: every table has an `option-*` case (a
//! non-default option), an `overlay-*` case (over a base) and an `error-*`
//! case.

use std::path::{Path, PathBuf};

fn tables_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/builtins")
}

fn cases(table: &str) -> Vec<PathBuf> {
    let dir = tables_dir().join(table);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}: expected {w:?}, got {g:?}", i + 1);
        }
    }
    format!(
        "expected {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

fn check_case(case: &Path) -> Result<(), String> {
    let name = case.display();
    let yaml = case.with_extension("yaml");
    let err = case.with_extension("err");
    let got = manifest_render::render(case, &manifest_render::Options::default());
    if yaml.is_file() {
        let want = std::fs::read_to_string(&yaml).map_err(|e| format!("{}: {e}", yaml.display()))?;
        return match got {
            Ok(r) if r.yaml == want => Ok(()),
            Ok(r) => Err(format!(
                "{name}: output differs from kustomize's: {}",
                first_difference(&want, &r.yaml)
            )),
            Err(e) => Err(format!("{name}: kustomize renders this, we failed: {e}")),
        };
    }
    if err.is_file() {
        let base = tables_dir().join("_base");
        let ok_file =
            |msg: &str| msg.contains(&*case.to_string_lossy()) || msg.contains(&*base.to_string_lossy());
        return match got {
            Ok(_) => Err(format!(
                "{name}: kustomize refuses this ({}), we rendered it",
                std::fs::read_to_string(&err).unwrap_or_default().trim()
            )),
            Err(e) if ok_file(&e.to_string()) => Ok(()),
            Err(e) => Err(format!("{name}: our error does not name a file of the case: {e}")),
        };
    }
    Err(format!(
        "{name}: no expected output; run crates/manifest-render/tests/builtins/regen.sh"
    ))
}

fn run_table(table: &str) {
    let cases = cases(table);
    let names: Vec<String> = cases
        .iter()
        .filter_map(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for kind in ["option-", "overlay-", "error-"] {
        assert!(
            names.iter().any(|n| n.starts_with(kind)),
            "table {table} needs a case named {kind}*; it has {names:?}"
        );
    }
    for c in cases.iter().filter(|c| {
        c.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("error-"))
    }) {
        assert!(
            c.with_extension("err").is_file(),
            "{}: an error-* case must be one kustomize refuses",
            c.display()
        );
    }
    let failures: Vec<String> = cases.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases in table {table} fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

macro_rules! tables {
    ($($t:ident),* $(,)?) => {
        $(#[test]
        fn $t() {
            run_table(stringify!($t));
        })*

        /// Every table directory has a test above.
        #[test]
        fn every_table_is_run() {
            let known = [$(stringify!($t)),*];
            for e in std::fs::read_dir(tables_dir()).expect("tables") {
                let p = e.expect("entry").path();
                let n = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
                if p.is_dir() && !n.starts_with('_') {
                    assert!(known.contains(&n.as_str()), "table {n} has no test");
                }
            }
        }
    };
}

tables!(
    annotations,
    labels,
    namespace,
    prefixsuffix,
    patch,
    patchsm,
    json6902,
    images,
    replicas,
    replacements,
    configmap,
    secret,
    hash,
    order,
    plugins,
    buildmetadata,
    edgecases,
    crds,
    openapi,
    iampolicy,
    valueadd,
);
