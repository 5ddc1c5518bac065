//! Any text as `corral.toml` through `corral_core::config::CorralConfig::parse` (instances,
//! `[serve]`, `[jupiterone]`, `[[alert]]` rules with their filters and webhooks): no panic,
//! and time linear in the input.

#![no_main]

use corral_core::config::CorralConfig;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let started = Instant::now();
    let _ = CorralConfig::parse(text, Path::new("/fuzz/corral.toml"));
    let budget = Duration::from_millis(500)
        + Duration::from_micros(20) * u32::try_from(text.len()).unwrap_or(u32::MAX);
    let took = started.elapsed();
    assert!(took < budget, "{} bytes took {took:?}", text.len());
});
