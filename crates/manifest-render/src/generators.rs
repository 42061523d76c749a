//! `configMapGenerator`, `secretGenerator`, and the name-hash suffix.

use sha2::{Digest, Sha256};

use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::resource::{Behavior, Resource};
use crate::target::{Accumulator, Target, display_id};
use crate::yaml::{Map, Value};
use crate::{Error, Result};

/// kustomize's `encodeBase64`: standard base64, broken into 70-column lines
/// (each followed by a newline) once it is longer than one line.
fn encode_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut enc = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                enc.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                enc.push('=');
            }
        }
    }
    const LINE: usize = 70;
    let lines = enc.len() / LINE + 1;
    if lines <= 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    for chunk in enc.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn merge_options(local: &GeneratorOptions, global: Option<&GeneratorOptions>) -> GeneratorOptions {
    let mut o = local.clone();
    if let Some(g) = global {
        for (k, v) in &g.labels {
            upsert(&mut o.labels, k, v);
        }
        for (k, v) in &g.annotations {
            upsert(&mut o.annotations, k, v);
        }
        if g.disable_name_suffix_hash == Some(true) {
            o.disable_name_suffix_hash = Some(true);
        }
        if g.immutable == Some(true) {
            o.immutable = Some(true);
        }
    }
    o
}

fn upsert(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(kk, _)| kk == k) {
        Some(e) => e.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn is_env_var_name(k: &str) -> bool {
    !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
}

fn is_config_map_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Key/value pairs from envs, literals, then files (kustomize's order).
fn load_pairs(t: &Target, g: &GeneratorArgs) -> std::result::Result<Vec<(String, Vec<u8>)>, Error> {
    let err = |m: String| Error::invalid(&t.file, m);
    let mut out = Vec::new();
    for env in &g.envs {
        let (file, text) = t
            .root
            .load(env)
            .map_err(|e| e.context(&t.file, format!("env source '{env}'")))?;
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            if !is_env_var_name(k) {
                return Err(Error::invalid(
                    &file,
                    format!("line {}: invalid environment variable name '{k}'", i + 1),
                ));
            }
            out.push((k.to_string(), v.as_bytes().to_vec()));
        }
    }
    for lit in &g.literals {
        let Some((k, v)) = lit.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(err(format!("invalid literal source {lit}, expected key=value")));
        };
        out.push((k.to_string(), remove_quotes(v).as_bytes().to_vec()));
    }
    for src in &g.files {
        let (key, path) = match src.matches('=').count() {
            0 => (src.rsplit('/').next().unwrap_or(src).to_string(), src.as_str()),
            1 if src.starts_with('=') => {
                return Err(err(format!("missing key name for file path in source {src:?}")));
            }
            1 if src.ends_with('=') => {
                return Err(err(format!("missing file path for key name in source {src:?}")));
            }
            1 => {
                let (k, p) = src.split_once('=').expect("one separator");
                (k.to_string(), p)
            }
            _ => return Err(err(format!("source {src:?} key name or file path contains '='"))),
        };
        let bytes = load_bytes(t, path)?;
        out.push((key, bytes));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &out {
        if !is_config_map_key(k) {
            return Err(err(format!(
                "{:?} is not a valid key name for a ConfigMap or Secret",
                k
            )));
        }
        if !seen.insert(k.clone()) {
            return Err(err(format!(
                "configmap {} illegally repeats the key `{k}`",
                g.name
            )));
        }
    }
    Ok(out)
}

fn load_bytes(t: &Target, path: &str) -> Result<Vec<u8>> {
    // Files may hold binary data (they become binaryData); read raw bytes.
    t.root
        .read(path)
        .map(|(_, bytes)| bytes)
        .map_err(|e| e.context(&t.file, format!("file source '{path}'")))
}

fn make(t: &Target, g: &GeneratorArgs, secret: bool, global: Option<&GeneratorOptions>) -> Result<Resource> {
    if g.name.is_empty() {
        return Err(Error::invalid(&t.file, "a configmap must have a name"));
    }
    let opts = merge_options(&g.options, global);
    let pairs = load_pairs(t, g)?;
    let mut obj = Map::new();
    obj.insert("apiVersion", Value::Str("v1".into()));
    obj.insert(
        "kind",
        Value::Str(if secret { "Secret" } else { "ConfigMap" }.into()),
    );
    let mut meta = Map::new();
    meta.insert("name", Value::Str(g.name.clone()));
    if !g.namespace.is_empty() {
        meta.insert("namespace", Value::Str(g.namespace.clone()));
    }
    obj.insert("metadata", Value::Map(meta));
    let mut sorted = pairs;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if secret {
        let t = if g.kind_type.is_empty() {
            "Opaque"
        } else {
            &g.kind_type
        };
        obj.insert("type", Value::Str(t.to_string()));
        let data: Map = sorted
            .into_iter()
            .map(|(k, v)| (k, Value::Str(encode_base64(&v))))
            .collect();
        obj.insert("data", Value::Map(data));
    } else {
        let mut data = Map::new();
        let mut binary = Map::new();
        for (k, v) in sorted {
            match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(k, Value::Str(s));
                }
                Err(e) => {
                    binary.insert(k, Value::Str(encode_base64(e.as_bytes())));
                }
            }
        }
        if !data.is_empty() {
            obj.insert("data", Value::Map(data));
        }
        if !binary.is_empty() {
            obj.insert("binaryData", Value::Map(binary));
        }
    }
    let mut r = Resource::new(Value::Map(obj), t.file.display().to_string());
    let mut labels = opts.labels.clone();
    labels.sort();
    let mut annotations = opts.annotations.clone();
    annotations.sort();
    if !labels.is_empty() {
        r.set_string_map("labels", labels);
    }
    if !annotations.is_empty() {
        r.set_string_map("annotations", annotations);
    }
    if opts.immutable == Some(true)
        && let Some(m) = r.obj.as_map_mut()
    {
        m.insert("immutable", Value::Bool(true));
    }
    r.needs_hash = opts.disable_name_suffix_hash != Some(true);
    r.provenance = crate::resource::Provenance::Generated {
        kind: if secret {
            "SecretGenerator"
        } else {
            "ConfigMapGenerator"
        }
        .into(),
        name: String::new(),
        file: t.file.display().to_string(),
    };
    r.behavior = match g.behavior.as_str() {
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        _ => Behavior::Create,
    };
    Ok(r)
}

/// Runs the generators of a kustomization and absorbs their output.
pub fn run(t: &Target, ra: &mut Accumulator) -> Result<()> {
    let global = t.kust.generator_options.as_ref();
    for (list, secret) in [
        (&t.kust.config_map_generator, false),
        (&t.kust.secret_generator, true),
    ] {
        for g in list {
            let r = make(t, g, secret, global)?;
            absorb(ra, r).map_err(|m| Error::invalid(&t.file, m))?;
        }
    }
    Ok(())
}

fn data_map(r: &Resource, field: &str) -> Vec<(String, String)> {
    match r.obj.get(field).and_then(Value::as_map) {
        Some(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.scalar_text().unwrap_or_default()))
            .collect(),
        None => Vec::new(),
    }
}

fn set_data_map(r: &mut Resource, field: &str, mut pairs: Vec<(String, String)>) {
    pairs.sort();
    if let Some(m) = r.obj.as_map_mut() {
        m.remove(field);
        if !pairs.is_empty() {
            m.insert(
                field,
                Value::Map(pairs.into_iter().map(|(k, v)| (k, Value::Str(v))).collect()),
            );
        }
    }
}

fn overlay(base: Vec<(String, String)>, top: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = base;
    for (k, v) in top {
        upsert(&mut out, &k, &v);
    }
    out
}

/// `resWrangler.appendReplaceOrMerge`.
fn absorb(ra: &mut Accumulator, mut r: Resource) -> std::result::Result<(), String> {
    let id = r.cur_id();
    let hits: Vec<usize> = ra
        .resources
        .iter()
        .enumerate()
        .filter(|(_, x)| x.any_id(|i| i.equals(&id)))
        .map(|(i, _)| i)
        .collect();
    match hits.len() {
        0 => match r.behavior {
            Behavior::Merge | Behavior::Replace => Err(format!(
                "id {} does not exist; cannot merge or replace",
                display_id(&id)
            )),
            Behavior::Create => ra.append(r),
        },
        1 => {
            let old = &ra.resources[hits[0]];
            if r.behavior == Behavior::Create {
                return Err(format!(
                    "id {} exists; behavior must be merge or replace",
                    display_id(&id)
                ));
            }
            if r.behavior == Behavior::Merge {
                let data = overlay(data_map(old, "data"), data_map(&r, "data"));
                set_data_map(&mut r, "data", data);
                let binary = overlay(data_map(old, "binaryData"), data_map(&r, "binaryData"));
                set_data_map(&mut r, "binaryData", binary);
            }
            // CopyMergeMetaDataFieldsFrom: labels and annotations overlay the
            // old ones; name, namespace and build bookkeeping come from the old.
            let labels = overlay(old.labels(), r.labels());
            r.set_string_map("labels", labels);
            let annotations = overlay(old.annotations(), r.annotations());
            r.set_string_map("annotations", annotations);
            r.set_name(old.name());
            let ns = old.namespace().to_string();
            if ns.is_empty() {
                if let Some(Value::Map(meta)) = r.obj.get_mut("metadata") {
                    meta.remove("namespace");
                }
            } else {
                r.set_namespace(&ns);
            }
            r.needs_hash = r.needs_hash && old.needs_hash;
            r.prev = old.prev.clone();
            r.ref_var_names = old.ref_var_names.clone();
            r.prefixes = old.prefixes.clone();
            // The merged object keeps where the old one came from.
            r.provenance = old.provenance.clone();
            r.transformations = old.transformations.clone();
            r.suffixes = old.suffixes.clone();
            r.behavior = old.behavior;
            ra.resources[hits[0]] = r;
            Ok(())
        }
        _ => Err(format!(
            "found multiple objects that could accept merge of {}",
            display_id(&id)
        )),
    }
}

/// Go's `encoding/json` text for a value (map keys sorted, HTML-safe escapes).
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::NullText => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&crate::yaml::go_json_float(*f)),
        Value::Str(s) => go_json_str(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(it, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_str(k, out);
                out.push(':');
                go_json(v, out);
            }
            out.push('}');
        }
    }
}

fn go_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn encode_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// kustomize's content hash of a ConfigMap/Secret (other kinds: the object).
pub(crate) fn hash(r: &Resource) -> String {
    let field = |p: &str| -> Value {
        match r.obj.get(p) {
            None => Value::Str(String::new()),
            Some(v @ (Value::Map(_) | Value::Seq(_))) => v.clone(),
            Some(v) => Value::Str(v.scalar_text().unwrap_or_default()),
        }
    };
    // kustomize looks the name up as the single key "metadata/name", which
    // never exists: the hash always sees an empty name.
    let name = Value::Str(String::new());
    let mut m = Map::new();
    let text = match r.kind() {
        "ConfigMap" => {
            m.insert("kind", Value::Str("ConfigMap".into()));
            m.insert("name", name);
            m.insert("data", field("data"));
            if let Some(b @ Value::Map(_)) = r.obj.get("binaryData") {
                m.insert("binaryData", b.clone());
            }
            let mut s = String::new();
            go_json(&Value::Map(m), &mut s);
            s
        }
        "Secret" => {
            m.insert("kind", Value::Str("Secret".into()));
            m.insert("type", field("type"));
            m.insert("name", name);
            m.insert("data", field("data"));
            if let Some(b @ Value::Map(_)) = r.obj.get("stringData") {
                m.insert("stringData", b.clone());
            }
            let mut s = String::new();
            go_json(&Value::Map(m), &mut s);
            s
        }
        _ => {
            let mut s = String::new();
            go_json(&r.obj, &mut s);
            s
        }
    };
    encode_hash(&text)
}

/// Appends the content hash to the names of generated objects.
pub fn add_hashes(ra: &mut Accumulator) -> std::result::Result<(), String> {
    for r in &mut ra.resources {
        if r.needs_hash {
            let h = hash(r);
            r.store_previous_id();
            let name = format!("{}-{h}", r.name());
            r.set_name(&name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_like_kustomize() {
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
        let long = encode_base64(&[b'a'; 60]);
        assert!(
            long.ends_with('\n') && long.lines().all(|l| l.len() <= 70),
            "{long}"
        );
    }
}
