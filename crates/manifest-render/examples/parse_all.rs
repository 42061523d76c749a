fn main() {
    for arg in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&arg).unwrap_or_default();
        let r = std::panic::catch_unwind(|| manifest_render::yaml::parse_documents(&text).map(|d| d.len()));
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => println!("ERR {arg}: {e}"),
            Err(_) => println!("PANIC {arg}"),
        }
    }
}
