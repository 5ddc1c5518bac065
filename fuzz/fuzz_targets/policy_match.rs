//! Glob, URL and resource matching on arbitrary patterns and texts (`pattern\ntext`): no
//! panic; every text matches its escaped self and nothing else; a text without `\`
//! matches itself; whatever a pattern matches as an ALLOW it matches as a DENY.

#![no_main]

use corral_core::policy::{
    MatchMode, glob_escape, glob_match, resource_match, resource_match_as, url_match, url_match_as,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let _ = glob_match(pattern, subject);
    let escaped = glob_escape(subject);
    assert!(
        glob_match(&escaped, subject),
        "{subject:?} must match its escaped self"
    );
    assert!(
        !glob_match(&escaped, pattern) || pattern == subject,
        "{escaped:?} matches only {subject:?}, not {pattern:?}"
    );
    if !subject.contains('\\') {
        assert!(
            glob_match(subject, subject),
            "{subject:?} must match itself"
        );
    }
    if url_match(pattern, subject) {
        assert!(
            url_match_as(pattern, subject, MatchMode::Deny),
            "{pattern:?} {subject:?}"
        );
    }
    if resource_match(pattern, subject) {
        assert!(resource_match_as(pattern, subject, MatchMode::Deny));
    }
});
