//! Secret values: held only by the host, substituted into requests after the policy
//! check, and scrubbed from anything that leaves the host (errors, logs, files).
//!
//! A provider may echo a credential in another form than it was sent: percent-encoded
//! in a URL, JSON-escaped in a body. [`Redactor`] finds a value after decoding, in
//! every form below, and replaces the stretch of input that spells it with
//! `[REDACTED]`:
//! - raw;
//! - percent-encoded, any mix of encoded and plain characters, either hex case (`+` for a
//!   space too);
//! - JSON-escaped: `\uXXXX` for any character (surrogate pairs included), `\/` and the
//!   other short escapes;
//! - JSON-escaped percent-encoding (`\u0025` for the `%`).
//!
//! Values shorter than [`MIN_LEN`] are never redacted: they would redact ordinary text.
//! Other encodings (base64 of the value, HTML entities, a value split across fields) are
//! not recognised.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A credential value. `Debug` and `Display` never print it.
#[derive(Clone)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        SecretValue(value.into())
    }

    /// The value, for the one place that needs it: the outgoing request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The secret config fields of one instance, by field name.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    values: BTreeMap<String, SecretValue>,
}

pub const REDACTED: &str = "[REDACTED]";

/// Shortest value redacted, in bytes.
pub const MIN_LEN: usize = 4;

impl Secrets {
    pub fn insert(&mut self, name: impl Into<String>, value: SecretValue) {
        self.values.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A redactor for every secret value (to add values derived from them).
    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        for v in self.values.values() {
            r.add(v.expose());
        }
        r
    }

    /// `text` with every secret value, raw, percent-encoded or JSON-escaped, replaced by
    /// `[REDACTED]`. Applied to whatever a provider or a guest hands back, in case it
    /// echoes a credential.
    pub fn redact(&self, text: &str) -> String {
        self.redactor().redact(text)
    }

    /// [`Secrets::redact`] for bytes (response bodies).
    pub fn redact_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.redactor().redact_bytes(bytes)
    }
}

/// Values to scrub, recognised in every form the module documentation lists. `Debug`
/// never prints them.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first (`max_span` reads the first).
    needles: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

/// Input bytes one decoded byte can take at most: `\u0025\u0034\u0031` (a JSON-escaped
/// percent escape) is 18 bytes for one `A`.
const MAX_EXPANSION: usize = 18;
/// Bytes decoded at once; bounds the memory decoding a large body needs.
const WINDOW: usize = 64 << 10;
/// Bytes decoded before a window so that the decoder is in step with the escapes when
/// it reaches the window (an escape is at most 12 bytes).
const SYNC: usize = 32;

impl Redactor {
    /// Adds `value` (ignored when shorter than [`MIN_LEN`]). A value with a space is also
    /// looked for with `+` for it, as a query string encodes it.
    pub fn add(&mut self, value: &str) {
        if value.len() < MIN_LEN {
            return;
        }
        let mut new = vec![value.to_string()];
        if value.contains(' ') {
            new.push(value.replace(' ', "+"));
        }
        for v in new {
            if !self.needles.contains(&v) {
                self.needles.push(v);
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The most input bytes one encoded value can span. A caller scrubbing a stream piece
    /// by piece holds back this many bytes until the next piece arrives.
    pub fn max_span(&self) -> usize {
        self.needles.first().map_or(0, |n| n.len() * MAX_EXPANSION)
    }

    /// `text` with every value, in any recognised form, replaced by `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        let spans = self.find(text.as_bytes());
        if spans.is_empty() {
            return text.to_string();
        }
        // Spans cover whole characters (a value is whole characters, an escape is ASCII).
        match String::from_utf8(replace(text.as_bytes(), &spans)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// [`Redactor::redact`] for bytes.
    pub fn redact_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        let spans = self.find(&bytes);
        if spans.is_empty() {
            return bytes;
        }
        replace(&bytes, &spans)
    }

    /// The stretches of `bytes` that spell a value, sorted and not overlapping.
    pub fn find(&self, bytes: &[u8]) -> Vec<Range<usize>> {
        if self.needles.is_empty() {
            return Vec::new();
        }
        let mut spans = Vec::new();
        find_raw(bytes, &self.needles, &mut spans);
        for region in self.escape_regions(bytes) {
            self.find_decoded(bytes, region, &mut spans);
        }
        merge(spans)
    }

    /// The stretches of `bytes` near a `\` or `%`: an encoded value includes an escape
    /// and lies within `max_span` of it. Everything else needs only the raw search.
    fn escape_regions(&self, bytes: &[u8]) -> Vec<Range<usize>> {
        if !bytes.contains(&b'\\') && !bytes.contains(&b'%') {
            return Vec::new();
        }
        let reach = self.max_span();
        let mut regions: Vec<Range<usize>> = Vec::new();
        let escapes = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b, b'\\' | b'%'));
        for (i, _) in escapes {
            let r = i.saturating_sub(reach)..(i + reach + 1).min(bytes.len());
            match regions.last_mut() {
                Some(last) if r.start <= last.end => last.end = r.end,
                _ => regions.push(r),
            }
        }
        regions
    }

    /// Values found after decoding `region` of `bytes`, window by window (windows
    /// overlap by `max_span`, so a value across a window edge is found whole).
    fn find_decoded(&self, bytes: &[u8], region: Range<usize>, spans: &mut Vec<Range<usize>>) {
        let reach = self.max_span();
        let mut start = region.start;
        while start < region.end {
            let from = start.saturating_sub(SYNC);
            let to = (start + WINDOW + reach).min(region.end);
            if let Some(decoded) = Decoding::new(&bytes[from..to]) {
                let mut found = Vec::new();
                find_raw(&decoded.bytes, &self.needles, &mut found);
                spans.extend(
                    found.into_iter().map(|m| {
                        from + decoded.source(m.start).0..from + decoded.source(m.end - 1).1
                    }),
                );
            }
            start += WINDOW;
        }
    }
}

/// Raw occurrences of `needles` in `hay`. A needle is valid UTF-8, so it lies within one
/// valid stretch of `hay` and the fast `str` search applies.
fn find_raw(hay: &[u8], needles: &[String], out: &mut Vec<Range<usize>>) {
    // Most text is valid throughout (an emitted object always is): checked in one pass,
    // which is several times faster than walking it chunk by chunk.
    if let Ok(s) = std::str::from_utf8(hay) {
        return find_in(s, 0, needles, out);
    }
    let mut offset = 0;
    for chunk in hay.utf8_chunks() {
        find_in(chunk.valid(), offset, needles, out);
        offset += chunk.valid().len() + chunk.invalid().len();
    }
}

/// Occurrences of `needles` in `s`, which starts at `offset` of the text searched.
fn find_in(s: &str, offset: usize, needles: &[String], out: &mut Vec<Range<usize>>) {
    for n in needles {
        if s.contains(n.as_str()) {
            out.extend(
                s.match_indices(n.as_str())
                    .map(|(i, _)| offset + i..offset + i + n.len()),
            );
        }
    }
}

/// Sorted, with overlapping spans joined.
fn merge(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut out: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start < last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// `bytes` with every span (sorted, disjoint) replaced by `[REDACTED]`.
fn replace(bytes: &[u8], spans: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for s in spans {
        out.extend_from_slice(&bytes[at..s.start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = s.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Decoded text, and where each escape in it came from; the bytes between escapes are
/// copied one to one.
struct Decoded {
    bytes: Vec<u8>,
    escapes: Vec<Escape>,
}

/// One decoded escape: `len` bytes at `at` in the decoded text, from `from..to` in the
/// input.
#[derive(Clone, Copy)]
struct Escape {
    at: usize,
    len: usize,
    from: usize,
    to: usize,
}

impl Decoded {
    /// Decodes `input`, taking each `escape_char` to `escape` (the decoded bytes and the
    /// escape's length, or `None` when it is not an escape there).
    fn new(
        input: &[u8],
        escape_char: u8,
        escape: impl Fn(&[u8]) -> Option<(Utf8Buf, usize)>,
    ) -> Self {
        let mut out = Decoded {
            bytes: Vec::with_capacity(input.len()),
            escapes: Vec::new(),
        };
        let mut i = 0;
        while i < input.len() {
            let next = input[i..]
                .iter()
                .position(|&b| b == escape_char)
                .map_or(input.len(), |p| i + p);
            out.bytes.extend_from_slice(&input[i..next]);
            i = next;
            if i == input.len() {
                break;
            }
            match escape(&input[i..]) {
                Some((decoded, len)) => {
                    let at = out.bytes.len();
                    out.bytes.extend_from_slice(decoded.as_slice());
                    out.escapes.push(Escape {
                        at,
                        len: decoded.len,
                        from: i,
                        to: i + len,
                    });
                    i += len;
                }
                None => {
                    out.bytes.push(escape_char);
                    i += 1;
                }
            }
        }
        out
    }

    /// The input range decoded byte `i` came from.
    fn source(&self, i: usize) -> (usize, usize) {
        let k = self.escapes.partition_point(|e| e.at <= i);
        match k.checked_sub(1).map(|k| self.escapes[k]) {
            Some(e) if i < e.at + e.len => (e.from, e.to),
            Some(e) => {
                let s = e.to + (i - e.at - e.len);
                (s, s + 1)
            }
            None => (i, i + 1),
        }
    }
}

/// A window's text with JSON escapes and then percent escapes decoded.
struct Decoding {
    bytes: Vec<u8>,
    json: Option<Decoded>,
    percent: Option<Decoded>,
}

impl Decoding {
    /// `None` when `input` holds no escape (the raw search already covered it).
    fn new(input: &[u8]) -> Option<Self> {
        let mut json = input
            .contains(&b'\\')
            .then(|| Decoded::new(input, b'\\', json_escape))
            .filter(|d| !d.escapes.is_empty());
        let text = json.as_ref().map_or(input, |d| &d.bytes[..]);
        let mut percent = text
            .contains(&b'%')
            .then(|| Decoded::new(text, b'%', percent_escape))
            .filter(|d| !d.escapes.is_empty());
        let bytes = match (&mut json, &mut percent) {
            (_, Some(p)) => std::mem::take(&mut p.bytes),
            (Some(j), None) => std::mem::take(&mut j.bytes),
            (None, None) => return None,
        };
        Some(Decoding {
            bytes,
            json,
            percent,
        })
    }

    /// The input range decoded byte `i` came from.
    fn source(&self, i: usize) -> (usize, usize) {
        let (a, b) = self.percent.as_ref().map_or((i, i + 1), |p| p.source(i));
        match &self.json {
            Some(j) => (j.source(a).0, j.source(b - 1).1),
            None => (a, b),
        }
    }
}

/// The JSON escape at the start of `s` (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`,
/// `\uXXXX`) and its length.
fn json_escape(s: &[u8]) -> Option<(Utf8Buf, usize)> {
    let short = match *s.get(1)? {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unicode_escape(s),
        _ => return None,
    };
    Some((Utf8Buf::byte(short), 2))
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX` (a lone surrogate is not decoded).
fn unicode_escape(s: &[u8]) -> Option<(Utf8Buf, usize)> {
    let unit = |at: usize| -> Option<u32> {
        let hex = s.get(at..at + 6)?;
        if &hex[..2] != b"\\u" {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let first = unit(0)?;
    let (code, len) = match first {
        0xD800..=0xDBFF => {
            let low = unit(6).filter(|l| (0xDC00..=0xDFFF).contains(l))?;
            (0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00), 12)
        }
        _ => (first, 6),
    };
    Some((Utf8Buf::char(char::from_u32(code)?), len))
}

/// `%XX` (either hex case) at the start of `s`.
fn percent_escape(s: &[u8]) -> Option<(Utf8Buf, usize)> {
    let h = s.get(1..3)?;
    let b = (hex_digit(h[0])? << 4) | hex_digit(h[1])?;
    Some((Utf8Buf::byte(b), 3))
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One character's UTF-8 bytes, without allocating.
struct Utf8Buf {
    buf: [u8; 4],
    len: usize,
}

impl Utf8Buf {
    fn byte(b: u8) -> Self {
        Utf8Buf {
            buf: [b, 0, 0, 0],
            len: 1,
        }
    }

    fn char(c: char) -> Self {
        let mut buf = [0; 4];
        let len = c.encode_utf8(&mut buf).len();
        Utf8Buf { buf, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(value: &str) -> Secrets {
        let mut s = Secrets::default();
        s.insert("token", SecretValue::new(value));
        s
    }

    #[test]
    fn debug_and_redact_hide_the_value() {
        let s = secrets("hunter2-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.redactor()).contains("hunter2"));
        assert_eq!(
            s.redact("Bearer hunter2-secret was refused"),
            "Bearer [REDACTED] was refused"
        );
        assert_eq!(
            s.redact_bytes(b"{\"auth\":\"Bearer hunter2-secret\"}".to_vec()),
            b"{\"auth\":\"Bearer [REDACTED]\"}".to_vec()
        );
    }

    #[test]
    fn values_among_invalid_utf8_are_found_where_they_are() {
        let s = secrets("hunter2-secret");
        let body = b"\xff\xfe hunter2-secret \xc3 and hunter2-secret\xff".to_vec();
        assert_eq!(
            s.redact_bytes(body),
            b"\xff\xfe [REDACTED] \xc3 and [REDACTED]\xff".to_vec()
        );
    }

    #[test]
    fn percent_encoded_forms_are_redacted() {
        let s = secrets("s3cret/token+x");
        for echoed in [
            "?v=%73%33%63%72%65%74%2F%74%6F%6B%65%6E%2B%78&n=1",
            "?v=%733cret%2ftoken%2Bx&n=1",
            "?v=s3cret%2Ftoken%2bx&n=1",
            "?v=s3cret/token%2Bx&n=1",
        ] {
            assert_eq!(s.redact(echoed), "?v=[REDACTED]&n=1", "{echoed}");
        }
        // A space may be `+` in a query string.
        assert_eq!(
            secrets("pass phrase").redact("q=pass+phrase"),
            "q=[REDACTED]"
        );
    }

    #[test]
    fn json_escaped_forms_are_redacted() {
        let s = secrets("s3cret/tokén😀");
        for echoed in [
            r#"{"v":"\u0073\u0033cret\/tok\u00e9n\ud83d\ude00","n":1}"#,
            r#"{"v":"s3cret\/tok\u00E9n😀","n":1}"#,
            r#"{"v":"\u0073\u0033\u0063\u0072\u0065\u0074\u002F\u0074\u006f\u006b\u00e9\u006e\uD83D\uDE00","n":1}"#,
        ] {
            assert_eq!(s.redact(echoed), r#"{"v":"[REDACTED]","n":1}"#, "{echoed}");
        }
        // A JSON-escaped URL holding a percent-encoded value, and JSON-escaped `%`.
        let s = secrets("s3cret/token");
        assert_eq!(
            s.redact(r#"{"next":"https:\/\/x\/?t=%73%33cret%2Ftoken&p=2"}"#),
            r#"{"next":"https:\/\/x\/?t=[REDACTED]&p=2"}"#
        );
        assert_eq!(
            s.redact(r#"["\u002573\u0033cret\/token"]"#),
            r#"["[REDACTED]"]"#
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let s = secrets("s3cret-token");
        for text in [
            r#"{"a":"\u0041\\u0073","b":"100%","c":"%zz","d":"\ud800"}"#,
            "s3cret-toke%6",
            r"s3cret\-token",
        ] {
            assert_eq!(s.redact(text), text);
        }
        // Values shorter than four bytes are never redacted.
        assert_eq!(secrets("abc").redact("abc %61bc"), "abc %61bc");
    }

    #[test]
    fn values_across_window_edges_are_found() {
        let s = secrets("s3cret-token");
        for at in [WINDOW - 20, WINDOW - 3, WINDOW, WINDOW + 5, 3 * WINDOW - 7] {
            let mut body = "x".repeat(at);
            body.push_str(r"\u0073\u0033cret%2Dtoken");
            body.push_str(&"%41".repeat(WINDOW / 2));
            let out = s.redact(&body);
            assert!(!out.contains("cret"), "at {at}");
            assert_eq!(out.matches(REDACTED).count(), 1, "at {at}");
        }
    }

    #[test]
    fn derived_values_are_redacted_within_their_header() {
        let mut r = secrets("s3cret-token").redactor();
        r.add("dXNlcjpzM2NyZXQtdG9rZW4=");
        assert_eq!(
            r.redact(r#"{"authorization":"Basic dXNlcjpzM2NyZXQtdG9rZW4\u003d"}"#),
            r#"{"authorization":"Basic [REDACTED]"}"#
        );
    }

    /// A 30 MB JSON body: the time of a scrub with no escape in it (the fast path), with a
    /// `\/` in every record, and with a secret echoed JSON-escaped in every record.
    #[test]
    fn large_bodies_scrub_fast() {
        let s = secrets("s3cret/token-0123456789");
        let body = |record: &str| -> Vec<u8> {
            let mut b = b"[".to_vec();
            while b.len() < 30_000_000 {
                b.extend_from_slice(record.as_bytes());
            }
            b.push(b']');
            b
        };
        let cases = [
            (
                "plain",
                r#"{"id":"device-1234","name":"MacBook","os":"14.2"},"#,
                0,
            ),
            (
                "escaped",
                r#"{"id":"d-1","url":"https:\/\/x\/a","n":1},"#,
                0,
            ),
            (
                "echoed",
                r#"{"id":"d-1","t":"s3cret\/token-0123456789"},"#,
                1,
            ),
        ];
        for (name, record, hits) in cases {
            let input = body(record);
            let started = std::time::Instant::now();
            let out = s.redact_bytes(input.clone());
            let took = started.elapsed();
            eprintln!("{name}: {} MB in {took:?}", input.len() / 1_000_000);
            // Optimised: 30-180 ms; unoptimised (this crate's test profile): 0.2-1.6 s.
            assert!(
                took < std::time::Duration::from_secs(15),
                "{name}: {took:?}"
            );
            assert_eq!(out.len() == input.len(), hits == 0, "{name}");
        }
    }
}
