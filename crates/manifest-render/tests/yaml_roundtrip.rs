//! Every reference output of kustomize, parsed and printed again, gives the
//! same bytes: the emitter reproduces go-yaml v2 on everything kustomize
//! printed for the corpus and the owner's overlay.

use manifest_render::yaml::{emit_documents, parse_documents};

#[test]
fn reference_outputs_roundtrip_byte_for_byte() {
    let Some(shared) = testkit::require_shared("reference_outputs_roundtrip_byte_for_byte") else {
        return;
    };
    let reference = shared.join("reference");
    let mut files: Vec<_> = std::fs::read_dir(reference.join("corpus"))
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.push(reference.join("homelab.yaml"));
    files.sort();
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let docs = match parse_documents(&text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: parse error {e}", f.display()));
                continue;
            }
        };
        let out = emit_documents(docs.iter().filter(|d| !d.is_null()));
        if out != text {
            let line = out
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| out.lines().count().min(text.lines().count()));
            failures.push(format!(
                "{}:{}: expected {:?}, got {:?}",
                f.display(),
                line + 1,
                text.lines().nth(line).unwrap_or("<eof>"),
                out.lines().nth(line).unwrap_or("<eof>")
            ));
        }
    }
    assert!(files.len() > 250, "only {} reference files", files.len());
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
