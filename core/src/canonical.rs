//! An object's canonical bytes and its content hash, computed together in one pass.
//!
//! Canonical: compact JSON with every object's keys in byte order (what serde_json
//! writes for a `Map` without `preserve_order`, made explicit at the top level). The
//! content hash is sha256 over each top-level property but `_rawData`, in key order,
//! as `name \0 value-json \0`: `_rawData` mirrors the provider's payload, and a change
//! there alone is not a change to the asset. The state compares these hashes, so the
//! definition is stable across versions (the state's stored hashes use it).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A content hash (sha256).
pub type ContentHash = [u8; 32];

/// The property the hash leaves out.
pub const RAW_DATA: &str = "_rawData";

/// `object`'s canonical bytes and content hash.
pub fn encode(object: &Map<String, Value>) -> (Vec<u8>, ContentHash) {
    encode_with_raw_data(object, None)
}

/// [`encode`] of `object` with `_rawData` given apart as its canonical text
/// ([`is_canonical`]), written as it is; a `_rawData` in `object` itself wins.
pub fn encode_with_raw_data(
    object: &Map<String, Value>,
    raw_data: Option<&str>,
) -> (Vec<u8>, ContentHash) {
    let raw_data = raw_data.filter(|_| !object.contains_key(RAW_DATA));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.extend(raw_data.map(|_| RAW_DATA));
    keys.sort_unstable();
    let size = raw_data.map_or(0, str::len);
    let mut out = Vec::with_capacity(256 + size);
    let mut hash = Sha256::new();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, k);
        out.push(b':');
        let start = out.len();
        match (object.get(k), raw_data) {
            (Some(value), _) => write_json(&mut out, value),
            (None, Some(text)) => out.extend_from_slice(text.as_bytes()),
            (None, None) => {}
        }
        if k != RAW_DATA {
            hash.update(k.as_bytes());
            hash.update([0]);
            hash.update(&out[start..]);
            hash.update([0]);
        }
    }
    out.push(b'}');
    (out, hash.finalize().into())
}

/// The content hash alone.
pub fn content_hash(object: &Map<String, Value>) -> ContentHash {
    encode(object).1
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing a `Value` or a `str` into a Vec cannot fail: no I/O, every key a string.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Whether `text` is canonical JSON: compact, every object's keys in strictly increasing
/// byte order, each scalar as serde_json writes it, so parsing and writing it again gives
/// the same bytes. Conservative: a text it cannot vouch for in one pass (a `\u` or `\/`
/// escape, a key with an escape or one serde_json reserves ([`RESERVED_KEYS`]), nesting
/// deeper than [`MAX_DEPTH`]) is not canonical here, and is re-encoded. A number other
/// than a short integer is parsed and written again to be compared (serde_json's float
/// formatting is its own).
pub fn is_canonical(text: &str) -> bool {
    let mut c = Checker {
        bytes: text.as_bytes(),
        at: 0,
    };
    c.value(0) && c.at == c.bytes.len()
}

/// Whether the number `text` reads as a `Value` that serde_json writes as `text` again.
fn writes_back(text: &[u8]) -> bool {
    serde_json::from_slice::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .is_some_and(|again| again == text)
}

/// The prefix of the keys serde_json reserves (with `raw_value`, an object whose first
/// key is `$serde_json::private::RawValue` parses as the JSON text its value holds): such
/// a text never writes back as it is.
pub const RESERVED_KEYS: &str = "$serde_json::private::";

/// Nesting [`is_canonical`] follows (serde_json's own parser stops at 128).
pub const MAX_DEPTH: usize = 100;

/// One pass of [`is_canonical`] over `bytes`, `at` the next byte.
struct Checker<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Checker<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self
            .bytes
            .get(self.at..)
            .is_some_and(|r| r.starts_with(word));
        self.at += if found { word.len() } else { 0 };
        found
    }

    /// A number as serde_json writes it back: a short integer at a glance; anything else
    /// (a fraction, an exponent, a long integer, `-0`) only if parsing it as serde_json
    /// does and writing it again gives the same text.
    fn number(&mut self) -> bool {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let short_integer = match digits {
            [b'1'..=b'9', rest @ ..] => rest.len() < 18 && rest.iter().all(u8::is_ascii_digit),
            [b'0'] => digits.len() == text.len(),
            _ => false,
        };
        short_integer || writes_back(text)
    }

    /// A string's contents (between the quotes) and whether it holds an escape; `None`
    /// unless every escape is one serde_json writes in short form.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 1;
                    if !matches!(
                        self.peek()?,
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't'
                    ) {
                        return None;
                    }
                }
                // Raw control characters are not JSON; serde_json would escape them.
                0..0x20 => return None,
                _ => {}
            }
            self.at += 1;
        }
        let bytes: &'a [u8] = self.bytes;
        let contents = &bytes[start..self.at];
        self.at += 1;
        Some((contents, escaped))
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            // A key's bytes are its text only without escapes: those sort as written.
            let Some((key, false)) = self.string() else {
                return false;
            };
            if key.starts_with(RESERVED_KEYS.as_bytes()) {
                return false;
            }
            if previous.is_some_and(|p| p >= key) {
                return false;
            }
            previous = Some(key);
            if !(self.eat(b':') && self.value(depth)) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_bytes() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{ "b": 1, "a": {"y": [1, 2], "x": "é\n"} }"#).unwrap();
        let b = map(json!({"a": {"x": "é\n", "y": [1, 2]}, "b": 1}));
        assert_eq!(encode(&a), encode(&b));
        assert_eq!(
            String::from_utf8(encode(&a).0).unwrap(),
            r#"{"a":{"x":"é\n","y":[1,2]},"b":1}"#
        );
    }

    #[test]
    fn raw_data_is_stored_but_not_hashed() {
        let with = map(json!({"_key": "k", "_rawData": [{"x": 1}]}));
        let without = map(json!({"_key": "k"}));
        assert_eq!(content_hash(&with), content_hash(&without));
        assert_ne!(encode(&with).0, encode(&without).0);
        let changed = map(json!({"_key": "k2"}));
        assert_ne!(content_hash(&changed), content_hash(&without));
    }

    #[test]
    fn the_hash_is_the_documented_one() {
        // sha256("_key\0\"k\"\0name\0\"n\"\0"): what states written before keep.
        let h = content_hash(&map(json!({"name": "n", "_key": "k"})));
        let mut expected = Sha256::new();
        expected.update(b"_key\0\"k\"\0name\0\"n\"\0");
        assert_eq!(h, <[u8; 32]>::from(expected.finalize()));
    }

    /// What parsing `text` and writing it back gives (`None`: not JSON).
    fn rewritten(text: &str) -> Option<String> {
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| serde_json::to_string(&v).unwrap())
    }

    #[test]
    fn only_texts_that_write_back_the_same_are_canonical() {
        let canonical = [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"x\"y\\z\n\t"}}"#,
            r#"[{"name":"default","rawData":{"a":-12,"b":0,"é":"ü"}}]"#,
            r#"{}"#,
            r#"[]"#,
            r#""""#,
            r#"123456789012345678"#,
            r#"1234567890123456789"#,
            r#"1.0"#,
            r#"-0.5"#,
            r#"15.447481"#,
            r#""\b\f\r""#,
            r#"{"A":1,"B":2,"a":3}"#,
        ];
        for text in canonical {
            assert!(is_canonical(text), "{text}");
            assert_eq!(rewritten(text).as_deref(), Some(text));
        }
        let not = [
            r#"{"b":1,"a":2}"#,            // unsorted
            r#"{"a":1,"a":2}"#,            // repeated
            r#"{"a": 1}"#,                 // spaced
            r#" {}"#,                      // leading space
            r#"{}x"#,                      // trailing bytes
            r#"1.50"#,                     // written back as 1.5
            r#"1e3"#,                      // written back as 1000.0
            r#"1E300"#,                    // written back as 1e300
            r#"-0"#,                       // written back as 0
            r#"01"#,                       // not JSON
            r#"1-2"#,                      // not JSON
            r#"100000000000000000000000"#, // a float, written back as 1e23
            r#""\/""#,                     // an escape serde_json does not write
            r#""\u0041""#,                 // written back as A
            r#"{"\u0061":1}"#,             // an escaped key
            "\"\u{1}\"",                   // a raw control character
            r#"[1,]"#,
            r#"{"a":1,}"#,
            r#"{"a"}"#,
            r#"tru"#,
            r#""open"#,
            "",
        ];
        for text in not {
            assert!(!is_canonical(text), "{text}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(is_canonical(&deep(MAX_DEPTH)));
        assert!(!is_canonical(&deep(MAX_DEPTH + 1)));
    }

    /// A small deterministic generator of JSON texts, canonical or not.
    struct Texts(u64);

    impl Texts {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn value(&mut self, depth: usize, out: &mut String) {
            let space = |t: &mut Texts, out: &mut String| {
                if t.next(40) == 0 {
                    out.push(' ');
                }
            };
            match self.next(if depth > 4 { 5 } else { 7 }) {
                0 => out.push_str(["true", "false", "null"][self.next(3) as usize]),
                1 => {
                    let n = [
                        "0",
                        "-0",
                        "7",
                        "-15",
                        "1.5",
                        "2e3",
                        "99999999999999999999",
                        "-123456",
                        "1.50",
                        "0.1",
                        "1E2",
                        "-0.0",
                        "18446744073709551616",
                        "15.447481",
                    ];
                    out.push_str(n[self.next(n.len() as u64) as usize]);
                }
                2..=4 => self.string(out),
                5 => {
                    out.push('[');
                    for i in 0..self.next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        space(self, out);
                        self.value(depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    let mut keys: Vec<String> = (0..self.next(5))
                        .map(|_| {
                            let mut k = String::new();
                            self.string(&mut k);
                            k
                        })
                        .collect();
                    if self.next(3) > 0 {
                        keys.sort();
                    }
                    for (i, k) in keys.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(k);
                        out.push(':');
                        space(self, out);
                        self.value(depth + 1, out);
                    }
                    out.push('}');
                }
            }
        }

        fn string(&mut self, out: &mut String) {
            let pieces = [
                "a", "b", "Z", "é", r"\n", r#"\""#, r"\\", r"\/", r"\u0041", r"\t", " ", "_",
            ];
            out.push('"');
            for _ in 0..self.next(4) {
                out.push_str(pieces[self.next(pieces.len() as u64) as usize]);
            }
            out.push('"');
        }
    }

    #[test]
    fn generated_texts_are_canonical_exactly_when_they_write_back_the_same() {
        let mut texts = Texts(0x9E37_79B9_7F4A_7C15);
        let (mut vouched, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut text = String::new();
            texts.value(0, &mut text);
            total += 1;
            if is_canonical(&text) {
                vouched += 1;
                assert_eq!(rewritten(&text).as_deref(), Some(text.as_str()), "{text}");
            }
            // As an object's `_rawData`, parsed lazily or whole: one verdict, one encoding.
            let object = format!(
                r#"{{"_key":"device-0001","_type":"t","_class":"Device","name":"n","_rawData":{text}}}"#
            );
            let whole = crate::datamodel::parse_object(&object);
            match (whole, crate::datamodel::parse_object_lazy(&object)) {
                (Ok((whole, _)), Ok((lazy, raw, _))) => {
                    assert_eq!(encode(&whole), encode_with_raw_data(&lazy, raw), "{object}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("{object}: {:?} / {:?}", a.is_ok(), b.is_ok()),
            }
        }
        // Conservative, not useless: many plain texts pass.
        assert!(vouched * 5 > total, "{vouched} of {total}");
    }

    #[test]
    fn raw_data_given_apart_encodes_as_if_it_were_in_the_object() {
        let raw = r#"[{"name":"default","rawData":{"a":[1,2],"b":"x"}}]"#;
        let mut whole = map(json!({"_key": "k", "_type": "t", "zeta": 1, "_class": ["A"]}));
        let apart = whole.clone();
        whole.insert(RAW_DATA.into(), serde_json::from_str(raw).unwrap());
        assert_eq!(encode_with_raw_data(&apart, Some(raw)), encode(&whole));
        // A `_rawData` in the object wins over one given apart.
        assert_eq!(encode_with_raw_data(&whole, Some("[]")), encode(&whole));
        assert_eq!(encode_with_raw_data(&apart, None), encode(&apart));
    }
}
