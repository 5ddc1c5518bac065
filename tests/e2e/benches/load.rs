//! The load scenario as a measurement: 50 well-behaved Kandji instances and 10 hostile
//! ones in one process; prints wall time and peak RSS.
//!
//! `cargo bench -p corral-e2e --bench load`; results go in docs/benchmarks.md.

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let outcome = rt.block_on(corral_e2e::load_scenario(50, 10));
    let ok = outcome
        .kandji
        .iter()
        .filter(|r| r.succeeded() && corral_e2e::keys_by_type(r) == outcome.expected)
        .count();
    let contained = outcome.hostile.iter().filter(|r| !r.succeeded()).count();
    println!("well-behaved runs exact: {ok}/50; hostile runs contained: {contained}/10");
    println!("wall time: {:.2} s", started.elapsed().as_secs_f64());
    println!(
        "peak RSS: {} MiB",
        corral_e2e::peak_rss_kib().unwrap_or(0) / 1024
    );
}
