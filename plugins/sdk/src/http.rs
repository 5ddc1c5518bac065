//! HTTP through the host: request building with credentials by reference, retry with
//! backoff on 429 and 5xx honouring `Retry-After` (as a floor over the backoff), and
//! pagination loops.

use crate::bindings::corral::integration::http as wit;
// The host's calls: the WIT imports in a component, the fake host natively.
use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::http as host;
use serde::de::{DeserializeOwned, DeserializeSeed};
use std::time::Duration;
#[cfg(target_arch = "wasm32")]
use wit as host;

pub use wit::{Auth, BasicAuth, Body, HttpError, Request, Response, ResponseHead};

/// A `GET` with no headers and no credentials.
pub fn get(url: impl Into<String>) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        auth: Auth::None,
        body: None,
        timeout_ms: None,
    }
}

/// Builder-style helpers on the WIT request record.
pub trait RequestExt: Sized {
    /// `Authorization: Bearer <secret>`; the host substitutes the named secret.
    fn bearer(self, secret: &str) -> Self;
    /// A header; its value may hold `{{secret:NAME}}`.
    fn header(self, name: &str, value: &str) -> Self;
    fn timeout(self, timeout: Duration) -> Self;
}

impl RequestExt for Request {
    fn bearer(mut self, secret: &str) -> Self {
        self.auth = Auth::Bearer(secret.to_string());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(timeout.as_millis().min(u32::MAX as u128) as u32);
        self
    }
}

/// Helpers on the WIT response record.
pub trait ResponseExt {
    fn header(&self, name: &str) -> Option<&str>;
    fn is_success(&self) -> bool;
    /// Parses the body as JSON; garbage is a provider error naming the URL.
    fn json<T: DeserializeOwned>(&self) -> Result<T>;
    /// The items of the body's `list` array, each object item with only `fields` built
    /// (what a step reads of a record it does not keep whole): the rest of the body is
    /// read past, never allocated. An item of another shape is built whole; a body that
    /// is not an object, or whose `list` is not an array, has none. Garbage (bad syntax,
    /// bad UTF-8, anywhere) is a provider error as in [`ResponseExt::json`]. What is read
    /// past is not held to the limits a full parse adds: nesting deeper than 128, a
    /// number out of `f64`'s range and a lone surrogate's `\u` escape pass there.
    fn json_items(&self, list: &str, fields: &[&str]) -> Result<Vec<serde_json::Value>>;
    /// The J1-style error for a non-2xx answer, or `Ok` for a 2xx.
    fn error_for_status(self) -> Result<Response>;
}

impl ResponseExt for Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        parse_body(self, std::marker::PhantomData::<T>)
    }
    fn json_items(&self, list: &str, fields: &[&str]) -> Result<Vec<serde_json::Value>> {
        // The parser does not check the UTF-8 of what it reads past: a body that is not
        // UTF-8 is refused as a full parse refuses it.
        if std::str::from_utf8(&self.body).is_err() {
            self.json::<serde_json::Value>()?;
        }
        parse_body(self, crate::projection::Items::Body { list, fields })
    }
    fn error_for_status(self) -> Result<Response> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::provider_status(&self.url, self.status))
        }
    }
}

/// `r`'s body as `seed` reads it. One UTF-8 check of the whole body instead of
/// serde_json's check of each string it builds (cheaper for the whole-record parses
/// connectors do); a body that fails it is parsed as bytes, so it is refused (or not)
/// and explained as by `from_slice`.
fn parse_body<T, S>(r: &Response, seed: S) -> Result<T>
where
    S: for<'de> DeserializeSeed<'de, Value = T>,
{
    fn whole<'de, R: serde_json::de::Read<'de>, S: DeserializeSeed<'de>>(
        mut de: serde_json::Deserializer<R>,
        seed: S,
    ) -> serde_json::Result<S::Value> {
        let value = seed.deserialize(&mut de)?;
        de.end().map(|()| value)
    }
    let parsed = match std::str::from_utf8(&r.body) {
        Ok(text) => whole(serde_json::Deserializer::from_str(text), seed),
        Err(_) => whole(serde_json::Deserializer::from_slice(&r.body), seed),
    };
    parsed.map_err(|e| {
        Error::Provider(format!(
            "Provider API answered invalid JSON at {}: {e}",
            r.url
        ))
    })
}

/// When and how long to retry.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled after each further one.
    pub base_delay: Duration,
    /// Cap on any one delay, `Retry-After` included.
    pub max_delay: Duration,
    /// Retry 5xx answers (429 is always retried).
    pub retry_server_errors: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 10,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            retry_server_errors: true,
        }
    }
}

impl Retry {
    /// Never retry; for validation calls where any failure is final.
    pub fn none() -> Self {
        Retry {
            max_attempts: 1,
            ..Retry::default()
        }
    }

    /// How long to wait before retrying this outcome, or `None` when it is final.
    fn delay_for(
        &self,
        outcome: &std::result::Result<Response, HttpError>,
        attempt: u32,
    ) -> Option<Duration> {
        if attempt + 1 >= self.max_attempts {
            return None;
        }
        let backoff = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        // The provider's delay is a floor, never a reason to retry sooner than the
        // backoff: a reset header of 0 (or a past reset) would otherwise retry at once,
        // spending every attempt within milliseconds.
        let wait = |r: &Response| {
            retry_after(r)
                .map_or(backoff, |d| d.max(backoff))
                .min(self.max_delay)
        };
        match outcome {
            Ok(r) if r.status == 429 => Some(wait(r)),
            Ok(r) if r.status >= 500 && self.retry_server_errors => Some(wait(r)),
            Err(HttpError::Timeout(_)) | Err(HttpError::Connect(_)) => Some(backoff),
            _ => None,
        }
    }
}

/// `Retry-After` in seconds, or Kandji-style `ratelimit-reset`: the least the provider
/// asks to wait (the first header holding a usable number; at most a day, which
/// `Retry::max_delay` cuts further). [`Retry::delay_for`] waits the longer of this and
/// the backoff.
fn retry_after(r: &Response) -> Option<Duration> {
    ["retry-after", "ratelimit-reset", "x-ratelimit-reset"]
        .iter()
        .filter_map(|h| r.header(h)?.trim().parse::<f64>().ok())
        .find(|s| s.is_finite() && *s >= 0.0)
        // A provider's `1e20` would overflow a Duration (a panic): bounded first.
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// One request, retried per `retry`. A non-2xx answer that is not retried (or that
/// still fails after the last attempt) is returned as a response for the caller to judge.
pub fn fetch(req: &Request, retry: &Retry) -> std::result::Result<Response, HttpError> {
    let mut attempt = 0;
    loop {
        let outcome = host::fetch(req);
        match retry.delay_for(&outcome, attempt) {
            Some(delay) => {
                std::thread::sleep(delay);
                attempt += 1;
            }
            None => return outcome,
        }
    }
}

/// A request whose body is read as it streams, retried per `retry` on its head (429,
/// 5xx, connection failures) before any of the body is read.
pub fn fetch_streaming(
    req: &Request,
    retry: &Retry,
) -> std::result::Result<(ResponseHead, Body), HttpError> {
    let mut attempt = 0;
    loop {
        let outcome = host::fetch_streaming(req);
        let as_response = match &outcome {
            Ok((head, _)) => Ok(Response {
                status: head.status,
                headers: head.headers.clone(),
                body: Vec::new(),
                url: head.url.clone(),
            }),
            Err(e) => Err(e.clone()),
        };
        match retry.delay_for(&as_response, attempt) {
            Some(delay) => {
                drop(outcome);
                std::thread::sleep(delay);
                attempt += 1;
            }
            None => return outcome,
        }
    }
}

/// Longest line [`Lines`] accepts before giving up on a body.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The lines of a streamed body (JSONL exports), read a piece at a time so the whole
/// body is never in memory. Empty lines are skipped; a trailing `\r` is removed.
pub struct Lines {
    body: Body,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn new(body: Body) -> Self {
        Lines {
            body,
            buf: Vec::new(),
            done: false,
        }
    }
}

impl Iterator for Lines {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.is_empty() {
                    continue;
                }
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.done {
                if self.buf.is_empty() {
                    return None;
                }
                let rest = std::mem::take(&mut self.buf);
                return Some(Ok(String::from_utf8_lossy(&rest).into_owned()));
            }
            if self.buf.len() > MAX_LINE_BYTES {
                self.done = true;
                return Some(Err(Error::Provider(format!(
                    "a line longer than {MAX_LINE_BYTES} bytes"
                ))));
            }
            match self.body.read(64 << 10) {
                Ok(chunk) if chunk.is_empty() => self.done = true,
                Ok(chunk) => self.buf.extend_from_slice(&chunk),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}

/// The validation call most connectors make: one request whose failure means the
/// credentials (or the URL) are wrong. `passes` decides which statuses are fine; anything
/// else is the reference integrations' "Provider authentication failed at URL: …".
pub fn check_credentials(
    req: &Request,
    retry: &Retry,
    passes: impl Fn(u16) -> bool,
) -> Result<Response> {
    let failed = |why: String| {
        Error::Authentication(format!(
            "Provider authentication failed at {}: {why}",
            req.url
        ))
    };
    match fetch(req, retry) {
        Ok(r) if passes(r.status) => Ok(r),
        Ok(r) => Err(failed(format!(
            "{} {}",
            r.status,
            crate::error::status_text(r.status)
        ))),
        Err(e) => Err(failed(crate::error::describe_http_error(&e))),
    }
}

/// Many requests at once through the host's batch fetch. Those that need a retry are
/// sent again together, after the longest delay any of them asked for.
pub fn fetch_all(reqs: &[Request], retry: &Retry) -> Vec<std::result::Result<Response, HttpError>> {
    let mut results: Vec<Option<std::result::Result<Response, HttpError>>> =
        (0..reqs.len()).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..reqs.len()).collect();
    let mut attempt = 0;
    while !pending.is_empty() {
        let batch: Vec<Request> = pending.iter().map(|&i| reqs[i].clone()).collect();
        let outcomes = host::fetch_batch(&batch);
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        for (&i, outcome) in pending.iter().zip(outcomes) {
            match retry.delay_for(&outcome, attempt) {
                Some(d) => {
                    wait = wait.max(d);
                    again.push(i);
                }
                None => results[i] = Some(outcome),
            }
        }
        if !again.is_empty() {
            std::thread::sleep(wait);
        }
        pending = again;
        attempt += 1;
    }
    results
        .into_iter()
        .map(|r| r.expect("every request has an outcome"))
        .collect()
}

/// Offset pagination: calls `page(offset)` at 0, then past the items received so far,
/// and hands each non-empty page to `each`, stopping at the first empty page. Advancing
/// by what came back, not by the page size asked for, skips no rows when a provider
/// caps its pages below that size.
pub fn for_each_offset_page<T>(
    mut page: impl FnMut(usize) -> Result<Vec<T>>,
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let mut offset: usize = 0;
    loop {
        let items = page(offset)?;
        if items.is_empty() {
            return Ok(());
        }
        offset = offset.saturating_add(items.len());
        each(items)?;
    }
}

/// Cursor pagination: `page(cursor)` returns items and the next cursor; stops when
/// there is none, or when a provider hands back the cursor it was just given.
pub fn for_each_cursor_page<T>(
    mut page: impl FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>)>,
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = page(cursor.as_deref())?;
        each(items)?;
        match next {
            Some(n) if !n.is_empty() && Some(&n) != cursor.as_ref() => cursor = Some(n),
            _ => return Ok(()),
        }
    }
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
pub fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            url: "http://x/".into(),
        }
    }

    fn body(text: &[u8]) -> Response {
        Response {
            body: text.to_vec(),
            ..response(200, &[])
        }
    }

    /// Each item is what a full parse gives, less the fields not asked for.
    #[test]
    fn json_items_builds_the_named_fields_of_each_record() {
        use serde_json::{Value, json};
        let text = br#"{"device_id":"d","apps":[{"app_id":"1","big":{"x":[1,2]},"n\u0061me":"a"},"text",[{"app_id":"2"}],{"app_id":"3","app_id":"4"},null],"apps_count":5}"#;
        let items = body(text).json_items("apps", &["app_id", "name"]).unwrap();
        assert_eq!(
            items,
            vec![
                json!({"app_id": "1", "name": "a"}),
                json!("text"),
                json!([{"app_id": "2"}]),
                json!({"app_id": "4"}),
                Value::Null,
            ]
        );
        let whole: Value = body(text).json().unwrap();
        let narrowed: Vec<Value> = whole["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| match item.as_object() {
                Some(o) => Value::Object(
                    o.iter()
                        .filter(|(k, _)| ["app_id", "name"].contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                None => item.clone(),
            })
            .collect();
        assert_eq!(items, narrowed);
    }

    /// As `body.get("apps")` reads a full parse: no list, no items; the last one given wins.
    #[test]
    fn json_items_of_a_body_without_the_list_is_empty() {
        for text in [
            &br#"{"device_id":"d"}"#[..],
            br#"{"apps":{"app_id":"1"}}"#,
            br#"{"apps":"x"}"#,
            br#"{"apps":null}"#,
            br#"[{"apps":[{"app_id":"1"}]}]"#,
            br#""apps""#,
            b"7",
            br#"{"apps":[{"app_id":"1"}],"apps":3}"#,
        ] {
            let items = body(text).json_items("apps", &["app_id"]).unwrap();
            assert!(items.is_empty(), "{}", String::from_utf8_lossy(text));
        }
        let last = body(br#"{"apps":3,"apps":[{"app_id":"1"}]}"#);
        assert_eq!(last.json_items("apps", &["app_id"]).unwrap().len(), 1);
    }

    /// The worst a provider can nest or number: read past where no field is built (the
    /// parser keeps a byte per open level, within the body's size), refused where one is.
    #[test]
    fn json_items_reads_past_what_it_does_not_build_and_checks_what_it_does() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for odd in [deep.as_str(), "1e400", r#""\ud800""#] {
            let skipped = format!(r#"{{"x":{odd},"apps":[{{"app_id":"1","big":{odd}}}]}}"#);
            let items = body(skipped.as_bytes()).json_items("apps", &["app_id"]);
            assert_eq!(items.unwrap(), vec![serde_json::json!({"app_id": "1"})]);
            let built = format!(r#"{{"apps":[{{"app_id":{odd}}}]}}"#);
            match body(built.as_bytes()).json_items("apps", &["app_id"]) {
                Err(Error::Provider(m)) => assert!(m.contains("http://x/"), "{m}"),
                other => panic!("{}: {other:?}", &odd[..odd.len().min(20)]),
            }
        }
    }

    /// Garbage anywhere in the body is the provider error `json` gives, naming the URL.
    #[test]
    fn json_items_refuses_garbage_anywhere() {
        for text in [
            &br#"{"apps":[{"app_id":"1"}]"#[..],
            br#"{"apps":[{"app_id":"1"}]} x"#,
            br#"{"apps":[{"app_id":tru}]}"#,
            br#"{"other":[1,],"apps":[]}"#,
            br#"{"apps":[{"app_id":"\ud800"}]}"#,
            b"{\"apps\":[{\"big\":\"\xff\"}]}",
            b"",
        ] {
            match body(text).json_items("apps", &["app_id"]) {
                Err(Error::Provider(m)) => assert!(m.contains("http://x/"), "{m}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(text)),
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let r = Retry::default();
        let d = r.delay_for(&Ok(response(429, &[("Retry-After", "2")])), 0);
        assert_eq!(d, Some(Duration::from_secs(2)));
        let d = r.delay_for(&Ok(response(503, &[("retry-after", "9999")])), 0);
        assert_eq!(d, Some(Duration::from_secs(30)));
        // The worst values a provider can send: huge, negative (the next header counts).
        let d = r.delay_for(&Ok(response(429, &[("retry-after", "1e20")])), 0);
        assert_eq!(d, Some(Duration::from_secs(30)));
        let both = [("retry-after", "-5"), ("ratelimit-reset", "3")];
        let d = r.delay_for(&Ok(response(429, &both)), 0);
        assert_eq!(d, Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_zero_or_small_reset_header_still_backs_off() {
        let r = Retry::default();
        for (h, v) in [
            ("ratelimit-reset", "0"),
            ("x-ratelimit-reset", "0"),
            ("Retry-After", "0"),
            ("retry-after", "0.01"),
        ] {
            assert_eq!(
                r.delay_for(&Ok(response(429, &[(h, v)])), 0),
                Some(Duration::from_millis(250)),
                "{h}: {v}"
            );
            assert_eq!(
                r.delay_for(&Ok(response(503, &[(h, v)])), 3),
                Some(Duration::from_millis(2000)),
                "{h}: {v}, the fourth attempt"
            );
        }
        // A header longer than the backoff wins.
        assert_eq!(
            r.delay_for(&Ok(response(429, &[("ratelimit-reset", "5")])), 1),
            Some(Duration::from_secs(5))
        );
        // Neither ever exceeds the cap.
        assert_eq!(
            r.delay_for(&Ok(response(429, &[("ratelimit-reset", "0")])), 12),
            None,
            "attempts exhausted"
        );
        let long = Retry {
            max_attempts: 30,
            ..Retry::default()
        };
        assert_eq!(
            long.delay_for(&Ok(response(429, &[("ratelimit-reset", "0")])), 20),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn backoff_doubles_and_client_errors_are_final() {
        let r = Retry::default();
        assert_eq!(
            r.delay_for(&Ok(response(500, &[])), 0),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            r.delay_for(&Ok(response(500, &[])), 2),
            Some(Duration::from_millis(1000))
        );
        for status in [200, 400, 401, 403, 404] {
            assert_eq!(r.delay_for(&Ok(response(status, &[])), 0), None, "{status}");
        }
        assert_eq!(
            r.delay_for(&Ok(response(429, &[])), 9),
            None,
            "attempts exhausted"
        );
    }

    #[test]
    fn offset_pages_stop_on_empty() {
        let mut seen = Vec::new();
        let mut calls = Vec::new();
        for_each_offset_page(
            |offset| {
                calls.push(offset);
                Ok((offset..5.min(offset + 2)).collect::<Vec<_>>())
            },
            |items| {
                seen.extend(items);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        // The last page held one row: the next starts right after it.
        assert_eq!(calls, vec![0, 2, 4, 5]);
    }

    #[test]
    fn a_provider_capping_its_pages_below_the_limit_loses_no_row() {
        let mut seen = Vec::new();
        let mut calls = Vec::new();
        // Asked for 300 a page, the provider gives at most 100 (of 250).
        for_each_offset_page(
            |offset| {
                calls.push(offset);
                Ok((offset..250.min(offset + 100)).collect::<Vec<_>>())
            },
            |items| {
                seen.extend(items);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..250).collect::<Vec<_>>());
        assert_eq!(calls, vec![0, 100, 200, 250]);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("a b/c=d+e"), "a%20b%2Fc%3Dd%2Be");
    }
}
