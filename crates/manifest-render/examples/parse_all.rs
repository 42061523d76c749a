//! Parses (and prints) every file named on the command line; reports files
//! that fail and the time parsing and printing took. A tool for profiling
//! the YAML layer on real inputs.

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap_or_default()))
        .collect();
    let start = std::time::Instant::now();
    let mut docs = Vec::new();
    for (name, text) in &texts {
        match manifest_render::yaml::parse_documents(text) {
            Ok(d) => docs.extend(d.into_iter().filter(|d| d.as_map().is_some())),
            Err(e) => println!("ERR {name}: {e}"),
        }
    }
    let parsed = start.elapsed();
    let out = manifest_render::yaml::emit_documents(&docs);
    let printed = start.elapsed() - parsed;
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let fast: usize = texts
        .iter()
        .filter(|(_, t)| manifest_render::yaml::fast_path_accepts(t))
        .map(|(_, t)| t.len())
        .sum();
    eprintln!("fast path takes {fast} of {bytes} bytes");
    for (name, t) in &texts {
        if std::env::var_os("SHOW_SLOW").is_some() && !manifest_render::yaml::fast_path_accepts(t) {
            eprintln!("slow: {name} ({} bytes)", t.len());
        }
    }
    eprintln!(
        "parsed {bytes} bytes in {parsed:?}, printed {} bytes in {printed:?}",
        out.len()
    );
}
