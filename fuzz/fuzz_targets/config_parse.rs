//! Any text through the `corral.toml` parser: no panic, and every parse error names a
//! position inside the file.

#![no_main]

#[path = "../../host/src/config.rs"]
#[allow(dead_code)]
mod config;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match config::CorralConfig::parse(text, std::path::Path::new("/etc/corral/corral.toml")) {
        Ok(c) => assert!(c.instances.iter().all(|i| !i.id.is_empty())),
        Err(config::ConfigError::Parse { line, .. }) => assert!(line <= text.lines().count() + 1),
        Err(_) => {}
    }
});
