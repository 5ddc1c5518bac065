//! Startup costs of a plugin: compiling the Kandji component, and instantiating it from
//! its `InstancePre` with the pooling allocator.
//!
//! Run with `cargo bench -p corral-host --bench startup`; results go in
//! docs/benchmarks.md.

use corral::plugin::runtime::Runtime;
use corral::plugin::{self, PluginSource};
use corral::run::measure_instantiation;
use std::time::Duration;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let rt = Runtime::new().unwrap();
        let bytes = corral::plugin::builtin::component("kandji").unwrap();
        println!("kandji component: {} KiB", bytes.len() / 1024);

        let mut compiles = Vec::new();
        for _ in 0..5 {
            let p = plugin::load(&rt.engine, &rt.linker, bytes, PluginSource::Builtin)
                .await
                .unwrap();
            compiles.push(p.compile_time);
        }
        compiles.sort();
        println!(
            "compile (Component::new), 5 runs: min {:?}, median {:?}",
            compiles[0], compiles[2]
        );

        let plugin = rt.plugin("kandji").await.unwrap();
        let _warmup = measure_instantiation(&plugin, 100).await;
        let mut times = measure_instantiation(&plugin, 10_000).await;
        times.sort();
        println!(
            "instantiate from InstancePre, 10000 runs: p50 {:?}, p90 {:?}, p99 {:?}",
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99)
        );
    });
}
