fn main() {
    let weed = std::path::PathBuf::from(std::env::args().nth(1).expect("weed path"));
    let t = std::time::Instant::now();
    let sw = pipeline_artifacts::testsupport::SeaweedFs::start(&weed).expect("start");
    println!("started in {:?}: {:?}", t.elapsed(), sw);
}
