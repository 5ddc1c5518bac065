//! Any JSON text as a plugin manifest through `corral_core::manifest::check`: no panic,
//! and time linear in the input (a generous per-byte budget catches anything quadratic;
//! `fuzz/run.sh` also sets libFuzzer's `-timeout`).

#![no_main]

use corral_core::manifest::{Manifest, check};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let started = Instant::now();
    if let Ok(m) = serde_json::from_str::<Manifest>(text) {
        let _ = check(&m);
    }
    let budget = Duration::from_millis(500)
        + Duration::from_micros(20) * u32::try_from(text.len()).unwrap_or(u32::MAX);
    let took = started.elapsed();
    assert!(took < budget, "{} bytes took {took:?}", text.len());
});
