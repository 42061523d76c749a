//! Bounds on what one YAML file may make the reader build, so hostile input
//! (alias bombs, deep nesting, huge files) gets an error instead of using up
//! memory or the stack.

/// Deepest nesting of collections accepted. go-yaml v3 stops at 10,000;
/// ours is far lower because the reader and every later pass (merge,
/// print, drop) recurse over the tree, on threads with 2 MiB stacks, and an
/// unoptimised build spends kilobytes a level. Upstream manifests nest at
/// most 42 deep (a CRD schema).
pub const MAX_DEPTH: usize = 200;

/// Most nodes one file may expand to, aliases counted as often as they are
/// expanded (as go-yaml's decoder counts). About 100 bytes a node keeps a
/// file's values near 50 MiB; the largest upstream file has 123,000 nodes.
pub const MAX_NODES: usize = 500_000;

/// Most scalar text one file may expand to (aliases of a long string add
/// its length each time).
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// Largest file read (the largest upstream manifest is 3.2 MB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// go-yaml v3's `allowedAliasRatio`: the share of decoded nodes that may
/// come from aliases, from 99% for small documents down to 10% past four
/// million nodes.
pub fn alias_ratio_allowed(decoded: usize) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let d = decoded as f64;
    if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * (d - LOW) / (HIGH - LOW)
    }
}

/// Why the expansion so far is refused, if it is.
pub fn check_expansion(decoded: usize, bytes: usize, aliases: usize) -> Option<String> {
    if bytes > MAX_TEXT_BYTES {
        return Some(format!(
            "the document expands to more than {} MiB of text (aliases counted each time they are used); refused",
            MAX_TEXT_BYTES >> 20
        ));
    }
    if decoded > MAX_NODES {
        return Some(format!(
            "the document expands to more than {MAX_NODES} nodes (aliases counted each time they are used); refused"
        ));
    }
    if aliases > 100 && decoded > 1000 && aliases as f64 / decoded as f64 > alias_ratio_allowed(decoded) {
        return Some(format!(
            "document contains excessive aliasing ({aliases} aliases expanding to {decoded} nodes); refused"
        ));
    }
    None
}

/// The error for nesting past [`MAX_DEPTH`].
pub fn too_deep() -> String {
    format!("collections nested deeper than {MAX_DEPTH} levels; refused")
}
