//! URL globs, `scheme://host[:port][/path[?query]]`, against URLs.
//!
//! The pattern is split into parts before anything is matched, so a `*` in one part can
//! never run into the next: the host glob against the host, the port against the port
//! (not written: the scheme's default), the path glob against the path only, and the
//! query only when the pattern writes a `?`. A URL that cannot be compared safely (an
//! encoded `/`, `\` or `.` in its path, a backslash, user-info, an empty host label) is
//! refused before matching: see [`refused_url`].

use crate::glob::{Tok, find_unescaped, has_star, match_tokens, tokens};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use url::Url;

/// How a pattern is compared. A DENY (its resources and its conditions) matches what a
/// server might read as the same path: ASCII case ignored and `;parameters` of a path
/// segment dropped. An ALLOW matches exactly what the pattern spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    Allow,
    Deny,
}

/// Where the parts of a URL pattern are, as byte ranges of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub scheme: Range<usize>,
    pub authority: Range<usize>,
    pub host: Range<usize>,
    pub port: Option<Range<usize>>,
    /// From the `/` that ends the authority up to the first unescaped `?`.
    pub path: Option<Range<usize>>,
    pub query: Option<Range<usize>>,
}

/// Splits a URL pattern into its parts, or says why it is not one.
pub(crate) fn layout(p: &str) -> Result<Layout, String> {
    let sep = p
        .find("://")
        .ok_or("no scheme:// (expected scheme://host[:port][/path[?query]])")?;
    let scheme_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'*');
    if sep == 0 || !p[..sep].bytes().all(scheme_ok) {
        return Err(format!("{:?} is not a scheme", &p[..sep]));
    }
    if p.contains('#') {
        return Err("a URL pattern cannot hold a fragment (#)".into());
    }
    let start = sep + 3;
    let end = find_unescaped(p, start, b"/").unwrap_or(p.len());
    let authority = &p[start..end];
    if find_unescaped(authority, 0, b"?").is_some() {
        return Err("a query needs a path (host/*?query)".into());
    }
    if authority.contains('@') {
        return Err("user-info (user@) is not allowed in a URL pattern".into());
    }
    let (host, port) = split_host_port(authority)?;
    let offset = |r: Range<usize>| start + r.start..start + r.end;
    let (path, query) = match find_unescaped(p, end, b"?") {
        _ if end == p.len() => (None, None),
        Some(q) => (Some(end..q), Some(q + 1..p.len())),
        None => (Some(end..p.len()), None),
    };
    Ok(Layout {
        scheme: 0..sep,
        authority: start..end,
        host: offset(host),
        port: port.map(offset),
        path,
        query,
    })
}

/// Host and port ranges within an authority. IPv6 literals must be bracketed, so a `:`
/// outside brackets can only introduce the port.
fn split_host_port(a: &str) -> Result<(Range<usize>, Option<Range<usize>>), String> {
    let host_end = if a.starts_with('[') {
        a.find(']')
            .map(|i| i + 1)
            .ok_or("an unclosed [ in the host")?
    } else if a.bytes().filter(|b| *b == b':').count() > 1 {
        return Err("an IPv6 address must be written in brackets ([::1])".into());
    } else {
        a.find(':').unwrap_or(a.len())
    };
    if host_end == 0 {
        return Err("the host is empty".into());
    }
    let port = match &a[host_end..] {
        "" => None,
        rest => {
            let digits = rest.strip_prefix(':').unwrap_or("");
            let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'*');
            let in_range = digits.contains('*') || digits.parse::<u16>().is_ok();
            if !ok || !in_range {
                return Err(format!("{rest:?} is not a port (:digits, * allowed)"));
            }
            Some(host_end + 1..a.len())
        }
    };
    Ok((0..host_end, port))
}

/// A URL pattern ready to compare.
#[derive(Debug)]
pub(crate) struct UrlPattern {
    scheme: Vec<Tok>,
    host: HostPattern,
    port: Option<Vec<Tok>>,
    path: Option<Vec<Tok>>,
    query: Option<Vec<Tok>>,
}

#[derive(Debug)]
enum HostPattern {
    /// A bare `*` authority: any host and any port.
    Any,
    /// A literal host, normalised as URLs are (lowercase, punycode, IP forms, no final dot).
    Exact(String),
    Glob(Vec<Tok>),
}

impl UrlPattern {
    pub(crate) fn parse(p: &str) -> Result<UrlPattern, String> {
        let l = layout(p)?;
        let scheme = tokens(&p[l.scheme.clone()].to_ascii_lowercase());
        let host_text = &p[l.host.clone()];
        let host = if &p[l.authority.clone()] == "*" {
            HostPattern::Any
        } else {
            host_pattern(host_text)?
        };
        let port = l.port.map(|r| tokens(&p[r]));
        let path = l.path.map(|r| normalise_path(&tokens(&p[r])));
        let query = l.query.map(|r| normalise_query(&tokens(&p[r])));
        Ok(UrlPattern {
            scheme,
            host,
            port,
            path,
            query,
        })
    }

    pub(crate) fn matches(&self, t: &Target, mode: MatchMode) -> bool {
        match_tokens(&self.scheme, t.scheme.as_bytes(), false)
            && self.authority_matches(t)
            && self.path_matches(t, mode == MatchMode::Deny)
    }

    fn authority_matches(&self, t: &Target) -> bool {
        let host_ok = match &self.host {
            HostPattern::Any => return true,
            HostPattern::Exact(h) => *h == t.host,
            HostPattern::Glob(g) => match_tokens(g, t.host.as_bytes(), true),
        };
        let port = t.port.map(|p| p.to_string()).unwrap_or_default();
        let port_ok = match &self.port {
            Some(g) => match_tokens(g, port.as_bytes(), false),
            None => t.port.is_some() && t.port == default_port(&t.scheme),
        };
        host_ok && port_ok
    }

    /// No path in the pattern: any path and query. A path without `?`: the path only.
    /// A path a server may read two ways (encoded separators): an ALLOW must match both
    /// readings, a DENY either.
    fn path_matches(&self, t: &Target, broad: bool) -> bool {
        let Some(path) = &self.path else {
            return true;
        };
        let one = |p: &[u8]| {
            match_tokens(path, p, broad)
                || (broad && match_tokens(path, &without_segment_params(p), true))
        };
        let path_ok = match &t.decoded_path {
            None => one(&t.path),
            Some(d) if broad => one(&t.path) || one(d),
            Some(d) => one(&t.path) && one(d),
        };
        path_ok
            && self
                .query
                .as_ref()
                .is_none_or(|q| match_tokens(q, t.query.as_deref().unwrap_or_default(), broad))
    }
}

fn host_pattern(text: &str) -> Result<HostPattern, String> {
    if text.contains('\\') {
        return Err(format!("the host {text:?} holds an escaped character"));
    }
    if has_star(text) {
        if !text.is_ascii() {
            return Err(format!(
                "the host glob {text:?} must be ASCII (write the name in punycode, xn--…)"
            ));
        }
        let lower = text.to_ascii_lowercase();
        return Ok(HostPattern::Glob(tokens(
            lower.strip_suffix('.').unwrap_or(&lower),
        )));
    }
    let host = url::Host::parse(text).map_err(|e| format!("{text:?} is not a host ({e})"))?;
    let host = host.to_string();
    Ok(HostPattern::Exact(
        host.strip_suffix('.').unwrap_or(&host).to_string(),
    ))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A URL as patterns see it: normalised so that spellings a server reads alike compare
/// alike (percent-escapes of unreserved characters decoded, the others in upper case,
/// repeated slashes as one, the host without its final dot).
#[derive(Debug)]
pub(crate) struct Target {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: Vec<u8>,
    /// The path as a server that decodes `%2F`, `%5C` and `%2E` reads it (dot segments
    /// resolved), when that differs from `path`.
    decoded_path: Option<Vec<u8>>,
    query: Option<Vec<u8>>,
}

impl Target {
    /// The URL ready to compare, or why it is refused before matching.
    pub(crate) fn parse(text: &str) -> Result<Target, String> {
        let u = Url::parse(text)
            .map_err(|e| format!("{text} is not a URL ({e}); refused before matching"))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("{text} holds user-info; refused before matching"));
        }
        // `url` reads `\` as `/`; the text may be read otherwise elsewhere.
        let before_query = text.split(['?', '#']).next().unwrap_or_default();
        if before_query.contains('\\') {
            return Err(format!(
                "path of {text} holds a backslash; refused before matching"
            ));
        }
        let host = u.host_str().unwrap_or_default();
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.starts_with('.') || host.ends_with('.') || host.contains("..") {
            return Err(format!(
                "host of {text} has an empty label; refused before matching"
            ));
        }
        Ok(Target {
            scheme: u.scheme().to_string(),
            host: host.to_string(),
            port: u.port_or_known_default(),
            path: collapse_slashes(&percent_normalise(u.path().as_bytes())),
            decoded_path: encoded_separator(u.path()).map(|_| decoded_path(u.path())),
            query: u.query().map(|q| percent_normalise(q.as_bytes())),
        })
    }
}

/// The path a server reads when it decodes `%2F` and `%5C` into `/` and `%2E` into `.`
/// before routing: separators collapsed and dot segments resolved.
fn decoded_path(path: &str) -> Vec<u8> {
    let mut text = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_lowercase);
        match code.as_deref() {
            Some("2f" | "5c") => text.push('/'),
            Some("2e") => text.push('.'),
            _ => {
                text.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    text.push_str(rest);
    let mut segments: Vec<&str> = Vec::new();
    for seg in text.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = text.ends_with('/') && !segments.is_empty();
    let mut out = format!("/{}", segments.join("/"));
    if trailing {
        out.push('/');
    }
    percent_normalise(out.as_bytes())
}

/// The first `%2f`, `%5c` or `%2e` (any case) in a path: a server may decode it into a
/// separator after the policy has looked, so such a path is matched both ways.
fn encoded_separator(path: &str) -> Option<&str> {
    path.match_indices('%').find_map(|(i, _)| {
        let esc = path.get(i..i + 3)?;
        let code = esc[1..].to_ascii_lowercase();
        matches!(code.as_str(), "2f" | "5c" | "2e").then_some(esc)
    })
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `%61` → `a` (unreserved characters mean the same encoded or not), `%c3` → `%C3`.
fn percent_normalise(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let code = match (
            b,
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => h * 16 + l,
            _ => {
                out.push(b);
                i += 1;
                continue;
            }
        };
        if is_unreserved(code) {
            out.push(code);
        } else {
            out.push(b'%');
            out.extend(s[i + 1..i + 3].iter().map(u8::to_ascii_uppercase));
        }
        i += 3;
    }
    out
}

fn collapse_slashes(s: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    for &b in s {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    out
}

/// A path with every segment's `;parameters` dropped (`/a;x=1/b` → `/a/b`).
fn without_segment_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut skipping = false;
    for &b in path {
        match b {
            b'/' => skipping = false,
            b';' => skipping = true,
            _ => {}
        }
        if !skipping {
            out.push(b);
        }
    }
    out
}

/// A pattern path written as URLs are serialised: characters `url` would escape are
/// escaped, escapes normalised as in [`percent_normalise`], repeated slashes as one (so a
/// base URL ending in `/` followed by `/api/*` still means `/api/*`).
fn normalise_path(p: &[Tok]) -> Vec<Tok> {
    let set = |b: u8| matches!(b, b' ' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}');
    let out = normalise_literals(p, &set);
    let mut collapsed: Vec<Tok> = Vec::with_capacity(out.len());
    for t in out {
        if !(t == Tok::Lit(b'/') && collapsed.last() == Some(&Tok::Lit(b'/'))) {
            collapsed.push(t);
        }
    }
    collapsed
}

fn normalise_query(p: &[Tok]) -> Vec<Tok> {
    normalise_literals(p, &|b| matches!(b, b' ' | b'"' | b'<' | b'>' | b'\''))
}

/// Percent-encodes the literal bytes in `set` (and non-ASCII, controls), and normalises
/// existing escapes; stars are left alone.
fn normalise_literals(p: &[Tok], set: &dyn Fn(u8) -> bool) -> Vec<Tok> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while let Some(&t) = p.get(i) {
        i += 1;
        let Tok::Lit(b) = t else {
            out.push(t);
            continue;
        };
        let escape = match (b, p.get(i), p.get(i + 1)) {
            (b'%', Some(Tok::Lit(h)), Some(Tok::Lit(l))) => hex(*h).zip(hex(*l)),
            _ => None,
        };
        if let Some((h, l)) = escape {
            i += 2;
            push_escape(&mut out, h * 16 + l, is_unreserved(h * 16 + l));
        } else if !(0x20..0x7f).contains(&b) || set(b) {
            push_escape(&mut out, b, false);
        } else {
            out.push(t);
        }
    }
    out
}

fn push_escape(out: &mut Vec<Tok>, byte: u8, decode: bool) {
    if decode {
        out.push(Tok::Lit(byte));
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(Tok::Lit(b'%'));
    out.push(Tok::Lit(HEX[usize::from(byte >> 4)]));
    out.push(Tok::Lit(HEX[usize::from(byte & 15)]));
}

/// Patterns this thread keeps parsed, by text: a policy has a few, and each request is
/// compared with them several times (the grant, the manifest, `secret:Use`), each
/// parse normalising a host and a path. Past this many, a pattern is parsed each time.
const MAX_CACHED_PATTERNS: usize = 256;
/// Longer patterns are parsed each time: a parsed pattern is a few times its text, and
/// what a thread keeps stays under 2 MiB whatever the manifests say.
const MAX_CACHED_PATTERN_BYTES: usize = 1024;
/// URLs this thread keeps parsed, the newest: one request's checks read its URL
/// several times. Longer URLs are parsed each time (the cache stays small).
const RECENT_TARGETS: usize = 4;
const MAX_CACHED_URL_BYTES: usize = 2048;

/// A URL's text and what parsing it gave.
type ParsedUrl = (Box<str>, Result<Rc<Target>, String>);

thread_local! {
    static PATTERNS: RefCell<HashMap<Box<str>, Option<Rc<UrlPattern>>>> =
        RefCell::new(HashMap::new());
    static TARGETS: RefCell<VecDeque<ParsedUrl>> = const { RefCell::new(VecDeque::new()) };
}

/// [`UrlPattern::parse`], remembered (parsing is a pure function of the text).
fn cached_pattern(p: &str) -> Option<Rc<UrlPattern>> {
    if p.len() > MAX_CACHED_PATTERN_BYTES {
        return UrlPattern::parse(p).ok().map(Rc::new);
    }
    PATTERNS.with(|cache| {
        if let Some(hit) = cache.borrow().get(p) {
            return hit.clone();
        }
        let parsed = UrlPattern::parse(p).ok().map(Rc::new);
        let mut cache = cache.borrow_mut();
        if cache.len() < MAX_CACHED_PATTERNS {
            cache.insert(p.into(), parsed.clone());
        }
        parsed
    })
}

/// [`Target::parse`], remembered for the last few URLs.
fn cached_target(url: &str) -> Result<Rc<Target>, String> {
    if url.len() > MAX_CACHED_URL_BYTES {
        return Target::parse(url).map(Rc::new);
    }
    TARGETS.with(|cache| {
        if let Some((_, hit)) = cache.borrow().iter().find(|(u, _)| &**u == url) {
            return hit.clone();
        }
        let parsed = Target::parse(url).map(Rc::new);
        let mut cache = cache.borrow_mut();
        if cache.len() == RECENT_TARGETS {
            cache.pop_front();
        }
        cache.push_back((url.into(), parsed.clone()));
        parsed
    })
}

/// Why `url` is refused before any pattern is compared with it, if it is: such a URL
/// matches no URL pattern, and a policy denies it outright (a DENY it might have
/// slipped past cannot be trusted to have seen it).
pub fn refused_url(url: &str) -> Option<String> {
    cached_target(url).err()
}

/// Whether `pattern` is a valid URL pattern; the reason when it is not.
pub fn check_url_pattern(pattern: &str) -> Result<(), String> {
    UrlPattern::parse(pattern).map(|_| ())
}

/// The host a URL pattern names literally, normalised as URLs are (`[::1]`,
/// `127.0.0.1`, `api.example`); `None` for a host glob, any host, or not a URL pattern.
/// The address rules ask whether an allowing rule names a restricted host itself.
pub fn literal_host(pattern: &str) -> Option<String> {
    match UrlPattern::parse(pattern).ok()?.host {
        HostPattern::Exact(h) => Some(h),
        HostPattern::Any | HostPattern::Glob(_) => None,
    }
}

/// A URL glob against a URL, as an ALLOW compares them. A refused URL or an invalid
/// pattern never matches.
pub fn url_match(pattern: &str, url: &str) -> bool {
    url_match_as(pattern, url, MatchMode::Allow)
}

/// A URL glob against a URL, compared as `mode` says. A bare `*` is any URL.
pub fn url_match_as(pattern: &str, url: &str, mode: MatchMode) -> bool {
    if pattern == "*" {
        return cached_target(url).is_ok();
    }
    match (cached_pattern(pattern), cached_target(url)) {
        (Some(p), Ok(t)) => p.matches(&t, mode),
        _ => false,
    }
}

/// The checks on a URL resource holding `{{config.…}}`, after templating: an http or
/// https URL with a literal, non-empty host, and no value that starts inside the host
/// and runs past it (`https://{{config.sub}}.example.com/` with `evil.com/`).
pub(crate) fn check_templated(text: &str, values: &[Range<usize>]) -> Result<(), String> {
    let l = layout(text)?;
    let scheme = &text[l.scheme.clone()];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("the scheme must be http or https, not {scheme:?}"));
    }
    let host = &text[l.host.clone()];
    if has_star(host) || &text[l.authority.clone()] == "*" {
        return Err(format!("the host must be literal, not the glob {host:?}"));
    }
    let a = &l.authority;
    if values.iter().any(|v| a.contains(&v.start) && v.end > a.end) {
        return Err("a config value runs out of the host into the path".into());
    }
    UrlPattern::parse(text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(p: &str, u: &str) -> bool {
        url_match_as(p, u, MatchMode::Allow)
    }

    fn deny(p: &str, u: &str) -> bool {
        url_match_as(p, u, MatchMode::Deny)
    }

    /// Past the caches' bounds (more patterns than kept, URLs beyond the recent ones and
    /// longer than kept), every answer is the uncached parse's.
    #[test]
    fn remembered_parses_answer_as_fresh_ones() {
        let fresh = |p: &str, u: &str| match (UrlPattern::parse(p), Target::parse(u)) {
            (Ok(p), Ok(t)) => p.matches(&t, MatchMode::Allow),
            _ => false,
        };
        let long = format!("https://h3.example/{}", "a".repeat(MAX_CACHED_URL_BYTES));
        let urls = [
            "https://h3.example/x".to_string(),
            "https://H3.example./x?y".to_string(),
            "https://h3.example/%2e%2e/x".to_string(),
            "http://h3.example/x".to_string(),
            "https://h4.example/x".to_string(),
            "https://u:p@h3.example/x".to_string(),
            long,
        ];
        let long_pattern = format!(
            "https://h3.example/{}*",
            "a".repeat(MAX_CACHED_PATTERN_BYTES)
        );
        for round in 0..2 {
            for u in &urls {
                assert_eq!(allow(&long_pattern, u), fresh(&long_pattern, u), "{u}");
            }
            for i in 0..MAX_CACHED_PATTERNS + 20 {
                let p = format!("https://h{}.example/*", i % 300);
                for u in &urls {
                    assert_eq!(allow(&p, u), fresh(&p, u), "round {round}: {p} {u}");
                }
            }
        }
        assert!(refused_url("https://u:p@h3.example/x").is_some());
        assert!(
            refused_url("https://u:p@h3.example/x").is_some(),
            "a refusal is remembered as one"
        );
        assert!(
            !allow("https://h[", "https://h3.example/x"),
            "a bad pattern never matches"
        );
        assert!(!allow("https://h[", "https://h3.example/x"));
    }

    #[test]
    fn the_path_is_matched_without_the_query() {
        let p = "https://h/api/*/admin";
        for u in [
            "https://h/api/x/admin",
            "https://h/api/x/admin?",
            "https://h/api/x/admin?a=1",
            "https://h/api/x/y/admin?z",
        ] {
            assert!(allow(p, u) && deny(p, u), "{u}");
        }
        assert!(!allow(
            "https://h/pub/*/items",
            "https://h/pub/secret?/items"
        ));
        assert!(!allow("https://h/api/v1", "https://h/api/v1/x"));
        assert!(allow("https://h/api/v1", "https://h/api/v1?x=1"));
    }

    #[test]
    fn a_literal_question_mark_splits_path_and_query() {
        let p = "https://h/search?q=*";
        assert!(allow(p, "https://h/search?q=corral"));
        assert!(!allow(p, "https://h/search/x?q=1"));
        assert!(!allow(p, "https://h/search?r=1&q=1"));
        assert!(!allow(p, "https://h/search"), "an absent query is empty");
        assert!(allow("https://h/a?", "https://h/a"));
        assert!(!allow("https://h/*?x=1", "https://h/a?x=1&y=*"));
        assert!(allow("https://h/*?x=1*", "https://h/a?x=1&y=2"));
    }

    #[test]
    fn deny_ignores_case_and_segment_parameters() {
        let p = "https://h/api/*/admin";
        assert!(deny(p, "https://h/API/x/Admin"));
        assert!(!allow(p, "https://h/API/x/Admin"));
        assert!(deny(p, "https://h/api/x/admin;jsessionid=1"));
        assert!(deny(p, "https://h/api;v=2/x/admin"));
        assert!(!allow(p, "https://h/api/x/admin;x"));
    }

    #[test]
    fn escapes_of_unreserved_characters_are_decoded() {
        let p = "https://h/admin/*";
        assert!(deny(p, "https://h/%61dmin/x"));
        assert!(deny(p, "https://h/%41DMIN/x"));
        assert!(allow(p, "https://h/%61dmin/x"));
        assert!(allow("https://h/%c3%a4/*", "https://h/%C3%A4/x"));
        assert!(allow("https://h/ä b/*", "https://h/ä b/x"));
        assert!(allow("https://h/%7e/*", "https://h/~/x"));
    }

    #[test]
    fn encoded_separators_are_read_both_ways() {
        // CircleCI's project slugs are `gh%2Forg%2Frepo`: allowed under a base URL.
        let slug = "https://h/api/v2/project/gh%2Forg%2Frepo";
        assert!(refused_url(slug).is_none());
        assert!(allow("https://h/api/v2/*", slug));
        // A server that decodes them would climb out of the allowed tree.
        assert!(!allow("https://h/pub/*", "https://h/pub/..%2f..%2fadmin"));
        assert!(!allow(
            "https://h/pub/*",
            "https://h/pub/x%2F%2E%2E%2F%2E%2E%2Fadmin"
        ));
        assert!(!allow("https://h/pub/*/items", "https://h/pub/x%2Fitems"));
        // A DENY applies when either reading matches.
        assert!(deny("https://h/api/*/admin", "https://h/api/x%2Fadmin"));
        assert!(deny("https://h/admin*", "https://h/pub/..%2Fadmin"));
        assert!(deny("https://h/a/b", "https://h/a%5cb"));
        assert!(!deny("https://h/admin*", "https://h/pub/x%2Fy"));
        assert!(refused_url(r"https://h/a\b").unwrap().contains("backslash"));
        assert!(refused_url("https://u:p@h/").unwrap().contains("user-info"));
        assert!(refused_url("https://h/a?b\\c").is_none(), "only the path");
        assert!(refused_url("https://h/a?x=%2f").is_none());
        // `url` resolves `%2e%2e` segments itself, before the policy looks.
        assert!(refused_url("https://h/a/%2e%2e/admin").is_none());
        assert!(deny("https://h/admin", "https://h/a/%2e%2e/admin"));
    }

    #[test]
    fn hosts_are_normalised_on_both_sides() {
        assert!(deny("https://evil.com/*", "https://evil.com./x"));
        assert!(deny("https://evil.com./*", "https://evil.com/x"));
        assert!(deny("https://*.evil.com/*", "https://a.EVIL.com./x"));
        assert!(refused_url("https://evil.com../x").is_some());
        assert!(deny("https://EVIL.com/*", "https://evil.com/x"));
        assert!(deny(
            "https://bücher.example/*",
            "https://xn--bcher-kva.example/"
        ));
        assert!(deny("http://[0:0::1]:8080/*", "http://[::1]:8080/x"));
        assert!(deny("http://127.0.0.1/*", "http://0x7f.1/x"));
    }

    #[test]
    fn literal_hosts_are_normalised() {
        assert_eq!(
            literal_host("http://[0:0::1]:8080/*").as_deref(),
            Some("[::1]")
        );
        assert_eq!(
            literal_host("http://LocalHost./x").as_deref(),
            Some("localhost")
        );
        assert_eq!(literal_host("http://0x7f.1/").as_deref(), Some("127.0.0.1"));
        assert_eq!(literal_host("http://*.example/"), None);
        assert_eq!(literal_host("http://*"), None);
        assert_eq!(literal_host("type:x"), None);
    }

    #[test]
    fn host_globs_and_ip_literals() {
        assert!(allow("https://*", "https://[::1]/x"));
        assert!(allow("https://*:8443", "https://[::1]:8443/x"));
        assert!(!allow("https://*.example.com", "https://[::1]/x"));
        assert!(!allow(
            "https://*.example.com/*",
            "https://evil.com/.example.com/x"
        ));
        assert!(!allow(
            "https://*.example.com/*",
            "https://a.example.com:8443/x"
        ));
        assert!(allow("http://*", "http://127.0.0.1:8080/anything"));
    }

    #[test]
    fn escaped_stars_are_literal_in_every_part() {
        assert!(!allow(r"https://h/a\*", "https://h/ab"));
        assert!(allow(r"https://h/a\*", "https://h/a*"));
        assert!(allow(r"https://h/a?q=\*", "https://h/a?q=*"));
        assert!(!allow(r"https://h/a?q=\*", "https://h/a?q=x"));
        assert!(check_url_pattern(r"https://a\*b/").is_err());
    }

    #[test]
    fn malformed_patterns_are_named() {
        for (p, why) in [
            ("https://u@h/*", "user-info"),
            ("https://h/a#b", "fragment"),
            ("https://h?x", "query needs a path"),
            ("https://::1/", "brackets"),
            ("https:///x", "host is empty"),
            ("https://h:x/", "not a port"),
            ("https://h:99999/", "not a port"),
            ("://h/", "not a scheme"),
            ("h/x", "no scheme"),
            ("https://*.bücher.de/", "punycode"),
        ] {
            let e = check_url_pattern(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
        assert!(!allow("https://u@h/*", "https://h/x"));
    }

    #[test]
    fn templated_urls_need_a_literal_host_of_their_own() {
        let ok = |t: &str, v: Range<usize>| check_templated(t, &[v]);
        assert!(ok("https://api.example/v1/*", 0..24).is_ok());
        assert!(ok("http://*", 0..7).unwrap_err().contains("literal"));
        assert!(ok("https://h.com*", 0..13).unwrap_err().contains("literal"));
        assert!(ok("ftp://h/*", 0..8).unwrap_err().contains("scheme"));
        assert!(ok("https:///*", 0..8).unwrap_err().contains("empty"));
        assert!(
            ok(r"https://\*.com/*", 0..15)
                .unwrap_err()
                .contains("escaped")
        );
        let e = ok("https://evil.com/.example.com/*", 8..17).unwrap_err();
        assert!(e.contains("runs out of the host"), "{e}");
        assert!(ok("https://good.example.com/*", 8..12).is_ok());
        assert!(
            ok("https://h/x?y/*", 10..13).is_ok(),
            "a value in the path may hold ?"
        );
    }
}
