//! Property-based fuzzing of the YAML layer and the kustomization loader:
//! no input may panic, and printing is a fixed point (print → parse → print
//! gives the same bytes).
//!
//! A normal test run tries a few hundred inputs per target. For a long run
//! set `MANIFEST_RENDER_FUZZ_SECS` (e.g. 600 for ten minutes per target):
//!
//! ```text
//! MANIFEST_RENDER_FUZZ_SECS=600 cargo test --release -p manifest-render --test fuzz -- --nocapture
//! ```

use std::time::{Duration, Instant};

use manifest_render::yaml::{emit_documents, parse_documents};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `strategy` against `test` for the configured time (or one batch).
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let secs: u64 = std::env::var("MANIFEST_RENDER_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut batches = 0u64;
    loop {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        batches += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("{name}: {} inputs without a failure", batches * 256);
}

/// Text built from YAML's structural characters and a few words, so the
/// parser sees mappings, sequences, flow collections, quotes, block scalars,
/// anchors, tags and documents far more often than random bytes would give.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("---\n".to_string()),
        Just("|\n".to_string()),
        Just(">-\n".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!str ".to_string()),
        Just("# c\n".to_string()),
        Just("<<: ".to_string()),
        Just("~".to_string()),
        "[a-z]{1,6}",
        "[0-9.eE+-]{1,6}",
        "[ -~]{1,4}",
        "\\PC{1,2}",
    ];
    proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

#[test]
fn yaml_parse_and_print_never_panic_and_print_is_a_fixed_point() {
    fuzz("yaml", yamlish(), |text| {
        if let Ok(docs) = parse_documents(&text) {
            let printed = emit_documents(docs.iter().filter(|d| d.as_map().is_some()));
            // A literal "<<" key prints plain (as go-yaml v2 does) and reads
            // back as a merge key: the one known non-fixed point.
            if printed.contains("<<") {
                return Ok(());
            }
            let again = parse_documents(&printed)
                .map_err(|e| TestCaseError::fail(format!("reparse of {printed:?}: {e}")))?;
            let reprinted = emit_documents(again.iter().filter(|d| d.as_map().is_some()));
            prop_assert_eq!(printed, reprinted);
        }
        Ok(())
    });
}

/// A kustomization assembled from real field names with random values.
fn kustomization() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("resources:\n- cm.yaml\n".to_string()),
        Just("resources: [missing.yaml]\n".to_string()),
        Just("namespace: ns\n".to_string()),
        Just("namePrefix: p-\n".to_string()),
        Just("nameSuffix: -s\n".to_string()),
        Just("commonLabels: {a: b}\n".to_string()),
        Just("labels:\n- pairs: {x: y}\n  includeSelectors: true\n".to_string()),
        Just("commonAnnotations: {n: v}\n".to_string()),
        Just("images:\n- name: nginx\n  newTag: '2'\n".to_string()),
        Just("replicas:\n- name: c\n  count: 2\n".to_string()),
        Just("configMapGenerator:\n- name: g\n  literals: [k=v]\n".to_string()),
        Just("secretGenerator:\n- name: s\n  literals: [k=v]\n".to_string()),
        Just("patches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: c}\n    data: {z: '1'}\n".to_string()),
        Just("patches:\n- target: {kind: ConfigMap}\n  patch: '[{\"op\": \"add\", \"path\": \"/data/q\", \"value\": 1}]'\n".to_string()),
        Just("vars:\n- name: V\n  objref: {kind: ConfigMap, name: c, apiVersion: v1}\n".to_string()),
        Just("replacements:\n- source: {kind: ConfigMap, name: c}\n  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [data.k]\n".to_string()),
        Just("sortOptions: {order: fifo}\n".to_string()),
        Just("components: [.]\n".to_string()),
        "[a-zA-Z]{1,10}: [ -~]{0,12}\n",
        yamlish(),
    ];
    proptest::collection::vec(field, 0..8).prop_map(|f| f.concat())
}

#[test]
fn kustomization_loader_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n",
    )
    .expect("write");
    let opts = manifest_render::Options::default();
    fuzz("kustomization", kustomization(), |text| {
        std::fs::write(dir.path().join("kustomization.yaml"), &text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        match manifest_render::render(dir.path(), &opts) {
            Ok(r) => {
                // What we print must read back.
                prop_assert!(
                    parse_documents(&r.yaml).is_ok(),
                    "unparseable output for {text:?}"
                );
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

/// Nodes in a parsed tree (what the reader's node limit counts).
fn nodes(v: &manifest_render::yaml::Value) -> usize {
    use manifest_render::yaml::Value;
    1 + match v {
        Value::Seq(s) => s.iter().map(nodes).sum(),
        Value::Map(m) => m.iter().map(|(_, v)| 1 + nodes(v)).sum(),
        _ => 0,
    }
}

/// Chains of anchors, each level aliasing the one below a random number of
/// times, in flow or block style, with scalars of random length: alias bombs
/// and their harmless neighbours.
fn alias_chain() -> impl Strategy<Value = String> {
    (1usize..14, 1usize..40, 0usize..5000, any::<bool>()).prop_map(|(levels, fan, len, block)| {
        let mut y = format!("a0: &a0 {}\n", "x".repeat(len.max(1)));
        for i in 1..levels {
            let refs = vec![format!("*a{}", i - 1); fan];
            if block {
                y.push_str(&format!("a{i}: &a{i}\n"));
                for r in refs {
                    y.push_str(&format!("- {r}\n"));
                }
            } else {
                y.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
            }
        }
        y
    })
}

#[test]
fn alias_expansion_stays_bounded() {
    use manifest_render::yaml::limits::MAX_NODES;
    fuzz("aliases", alias_chain(), |text| {
        if let Ok(docs) = parse_documents(&text) {
            let n: usize = docs.iter().map(nodes).sum();
            prop_assert!(n <= MAX_NODES, "{n} nodes accepted");
        }
        Ok(())
    });
}

/// Flow and block nesting of random depth and shape, balanced or not.
fn nesting() -> impl Strategy<Value = String> {
    let open = prop_oneof![Just("["), Just("{a: "), Just("- "), Just("k:\n")];
    (proptest::collection::vec(open, 1..8), 1usize..3000, any::<bool>()).prop_map(|(shape, depth, close)| {
        let mut y = String::new();
        let mut closers = Vec::new();
        for i in 0..depth {
            let o = shape[i % shape.len()];
            match o {
                "k:\n" | "- " => {
                    y.push_str(&" ".repeat(i.min(200)));
                    y.push_str(o);
                    if o == "- " {
                        y.push('\n');
                    }
                }
                _ => {
                    y.push_str(o);
                    closers.push(if o == "[" { "]" } else { "}" });
                }
            }
        }
        y.push('x');
        if close {
            while let Some(c) = closers.pop() {
                y.push_str(c);
            }
        }
        y.push('\n');
        y
    })
}

#[test]
fn deep_nesting_errors_instead_of_overflowing() {
    fuzz("nesting", nesting(), |text| {
        // A stack overflow aborts the test binary; reaching here is the property.
        let _ = parse_documents(&text);
        Ok(())
    });
}
