//! URL globs against URLs (`pattern\nurl`): no panic, and the properties the query and
//! encoding bypasses of issue 11 broke:
//! - a pattern whose path has no `?` decides on the path alone: the URL's query (or its
//!   absence) changes nothing;
//! - a URL a DENY pattern matches is still matched (or refused outright) when a query,
//!   a fragment, a `;parameter`, a doubled `/`, a final dot on the host, other letter
//!   case, or a percent-escape of an unreserved character is added;
//! - a policy `ALLOW *, DENY pattern` denies every such variant, and denies a refused URL.

#![no_main]

use corral_core::policy::{Context, MatchMode, Policy, refused_url, url_match, url_match_as};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, url) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(u) = Url::parse(url) else { return };
    if !matches!(u.scheme(), "http" | "https") {
        return;
    }
    let _ = url_match(pattern, u.as_str());
    if !pattern.contains('?') {
        let mut bare = u.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        assert_eq!(
            url_match(pattern, u.as_str()),
            url_match(pattern, bare.as_str()),
            "{pattern:?}: the query of {u} decided a path-only match"
        );
    }
    let policy = deny_policy(pattern);
    if let Some(p) = &policy {
        if refused_url(u.as_str()).is_some() {
            assert!(!evaluate(p, &u).allowed, "{u} is refused but allowed");
        }
    }
    if !url_match_as(pattern, u.as_str(), MatchMode::Deny) {
        return;
    }
    for v in variants(&u, pattern.contains('?')) {
        let caught = url_match_as(pattern, &v, MatchMode::Deny) || refused_url(&v).is_some();
        assert!(caught, "DENY {pattern:?} matches {u} but not {v}");
        if let (Some(p), Ok(vu)) = (&policy, Url::parse(&v)) {
            assert!(
                !evaluate(p, &vu).allowed,
                "DENY {pattern:?} let {vu} through"
            );
        }
    }
});

/// `ALLOW *` and `DENY <pattern>`, if the pattern is a valid resource.
fn deny_policy(pattern: &str) -> Option<Policy> {
    let doc = serde_json::json!({ "permissions": [
        { "effect": "ALLOW", "actions": ["*"], "resources": ["*"] },
        { "effect": "DENY", "actions": ["*"], "resources": [pattern] },
    ]});
    Policy::parse(&doc.to_string(), "fuzz.json", &BTreeMap::new()).ok()
}

fn evaluate(p: &Policy, u: &Url) -> corral_core::policy::Decision {
    p.evaluate("http:GET", u.as_str(), &Context::http("GET", u))
}

/// Spellings of `u` a server may read as the same resource (or, for a pattern without
/// a query, the same path).
fn variants(u: &Url, pattern_has_query: bool) -> Vec<String> {
    let s = u.as_str();
    let path = u.path();
    let mut out = vec![
        format!("{s}#x"),
        with_path(u, &format!("{path};x=1")),
        with_path(u, &format!("/{path}")),
        with_path(u, &path.to_ascii_uppercase()),
        with_path(u, &path.to_ascii_lowercase()),
        s.to_ascii_uppercase(),
    ];
    if !pattern_has_query {
        out.extend([
            format!("{s}?"),
            with_query(u, "a=1"),
            with_query(u, "/admin?x"),
        ]);
    }
    if let Some(i) = unreserved_outside_escapes(path) {
        let escaped = format!(
            "{}%{:02x}{}",
            &path[..i],
            path.as_bytes()[i],
            &path[i + 1..]
        );
        out.push(with_path(u, &escaped));
    }
    if let Some(host) = u
        .host_str()
        .filter(|h| !h.ends_with('.') && !h.ends_with(']'))
    {
        let mut v = u.clone();
        if v.set_host(Some(&format!("{host}."))).is_ok() {
            out.push(v.to_string());
        }
    }
    out
}

/// The first unreserved character of `path` that is not part of a `%XX` escape.
fn unreserved_outside_escapes(path: &str) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            i += 3;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

fn with_query(u: &Url, q: &str) -> String {
    let mut v = u.clone();
    v.set_query(Some(q));
    v.to_string()
}

fn with_path(u: &Url, p: &str) -> String {
    let mut v = u.clone();
    v.set_path(p);
    v.to_string()
}
