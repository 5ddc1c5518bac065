//! Glob and URL matching on arbitrary patterns and texts: no panic, and every text
//! matches itself as a pattern.

#![no_main]

#[path = "../../host/src/policy.rs"]
#[allow(dead_code)]
mod policy;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let _ = policy::glob_match(pattern, subject);
    let _ = policy::url_match(pattern, subject);
    let _ = policy::resource_match(pattern, subject);
    assert!(policy::glob_match(subject, subject), "{subject:?} must match itself");
});
