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
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    let mut out = Vec::with_capacity(256);
    let mut hash = Sha256::new();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, &Value::String(k.clone()));
        out.push(b':');
        let start = out.len();
        write_json(&mut out, &object[k]);
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

fn write_json(out: &mut Vec<u8>, value: &Value) {
    // Writing a `Value` into a Vec cannot fail: no I/O, and every key is a string.
    let _ = serde_json::to_writer(&mut *out, value);
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
}
