//! Parsing JSON with only the parts a step uses: a stored object read back
//! ([`crate::graph::Pages`]'s `only` and `raw_fields`; a record's `_rawData` is most of
//! its bytes), and a provider's list of records (`ResponseExt::json_items`). What is left
//! out is read past, never allocated.
//!
//! No `RawValue` here: serde_json's `raw_value` feature would make every guest parse
//! (provider bodies included) treat a key it reserves as raw JSON text.

use crate::entity::Object;
use crate::error::{Error, Result};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Which parts of each object are built.
#[derive(Clone, Copy, Default)]
pub(crate) struct Projection<'a> {
    /// Top-level properties built (every one when `None`).
    pub fields: Option<&'a [&'a str]>,
    /// When set, `_rawData`'s first entry has only these fields of its `rawData` (the
    /// provider's record, which `entity::raw_data` reads), whatever `fields` names.
    pub raw: Option<&'a [&'a str]>,
}

impl Projection<'_> {
    fn builds(&self, key: &str) -> bool {
        self.fields.is_none_or(|f| f.contains(&key))
    }
}

/// `json`'s object as `projection` has it.
pub(crate) fn parse_projected(json: &str, projection: Projection) -> Result<Object> {
    let mut de = serde_json::Deserializer::from_str(json);
    projection
        .deserialize(&mut de)
        .and_then(|object| de.end().map(|()| object))
        .map_err(|e| Error::Graph(format!("host returned bad JSON: {e}")))
}

impl<'de> DeserializeSeed<'de> for Projection<'_> {
    type Value = Object;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Object, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Projection<'_> {
    type Value = Object;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Object, A::Error> {
        let mut out = Object::new();
        while let Some(Key(key)) = map.next_key()? {
            let value = match self.raw {
                Some(raw) if key == "_rawData" => map.next_value_seed(Part::RawData(raw))?,
                _ if self.builds(&key) => map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            out.insert(key.into_owned(), value);
        }
        Ok(out)
    }
}

/// A part of `_rawData` (the SDK writes `[{"name": …, "rawData": {…}}]`) and the record
/// fields kept in it. A value of any other shape than the part expects is built whole,
/// as the full parse builds it.
#[derive(Clone, Copy)]
enum Part<'a> {
    /// `_rawData`: an array whose first entry is projected, the others built whole.
    RawData(&'a [&'a str]),
    /// Its first entry: an object whose `rawData` is projected.
    Entry(&'a [&'a str]),
    /// The provider's record: an object of which only these fields are built.
    Record(&'a [&'a str]),
}

impl<'de> DeserializeSeed<'de> for Part<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Part<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        if let Part::RawData(fields) = self
            && let Some(first) = seq.next_element_seed(Part::Entry(fields))?
        {
            items.push(first);
        }
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        match self {
            Part::Record(fields) => {
                let only = Projection {
                    fields: Some(fields),
                    raw: None,
                };
                only.visit_map(map).map(Value::Object)
            }
            Part::Entry(fields) => {
                let mut out = Object::new();
                while let Some(Key(key)) = map.next_key()? {
                    let value = if key == "rawData" {
                        map.next_value_seed(Part::Record(fields))?
                    } else {
                        map.next_value()?
                    };
                    out.insert(key.into_owned(), value);
                }
                Ok(Value::Object(out))
            }
            Part::RawData(_) => {
                let everything = Projection::default();
                everything.visit_map(map).map(Value::Object)
            }
        }
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        // serde_json hands only finite numbers; `Null` as `Value`'s own visitor does.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(v.into())
    }
}

/// A provider body's `list` array, each object item with only `fields` built (an item
/// of another shape is built whole, as the full parse builds it); a body that is not an
/// object, or whose `list` is not an array, has none (as `body.get(list)` reads in a
/// full parse). A key given twice counts once, its last value, as in a full parse.
#[derive(Clone, Copy)]
pub(crate) enum Items<'a> {
    /// The body: an object holding the list.
    Body {
        list: &'a str,
        fields: &'a [&'a str],
    },
    /// The list: an array of records.
    List(&'a [&'a str]),
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Vec<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

/// Any shape but the one expected gives no items (and is read past).
impl<'de> Visitor<'de> for Items<'_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<Value>, A::Error> {
        let mut items = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            match self {
                Items::Body { list, fields } if key == list => {
                    items = map.next_value_seed(Items::List(fields))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(items)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<Value>, A::Error> {
        let mut items = Vec::new();
        match self {
            Items::List(fields) => {
                while let Some(item) = seq.next_element_seed(Part::Record(fields))? {
                    items.push(item);
                }
            }
            Items::Body { .. } => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(items)
    }
    fn visit_unit<E>(self) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Vec<Value>, E> {
        Ok(Vec::new())
    }
}

/// A key borrowed from the text where it has no escapes (serde's `Cow` always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(v.to_string().into()))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn only(fields: &'static [&'static str]) -> Projection<'static> {
        Projection {
            fields: Some(fields),
            raw: None,
        }
    }

    fn raw_only(
        fields: Option<&'static [&'static str]>,
        raw: &'static [&'static str],
    ) -> Projection<'static> {
        Projection {
            fields,
            raw: Some(raw),
        }
    }

    #[test]
    fn only_builds_the_named_fields_and_still_rejects_bad_json() {
        let json = r#"{"_key":"k","user.id":7,"_rawData":[{"rawData":{"deep":[1,{"x":"y"}]}}],"we\u0069rd":1}"#;
        let o = parse_projected(json, only(&["_key", "user.id", "weird", "absent"])).unwrap();
        assert_eq!(
            Value::Object(o),
            json!({"_key": "k", "user.id": 7, "weird": 1})
        );
        for bad in [r#"{"_key":"k""#, r#"{"_key":"k"} x"#, "[1]", r#"{"a":tru}"#] {
            assert!(
                matches!(parse_projected(bad, only(&["_key"])), Err(Error::Graph(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn raw_fields_build_the_named_fields_of_the_first_record_only() {
        let json = r#"{"_key":"k","n":1,"_rawData":[{"name":"default","rawData":{"site_id":"s1","big":{"x":[1,2]},"o\u0072g":"o","gone":null}},{"name":"other","rawData":{"site_id":"s2"}}]}"#;
        let o = parse_projected(
            json,
            raw_only(Some(&["_key"]), &["site_id", "org", "gone", "absent"]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(o.clone()),
            json!({"_key": "k", "_rawData": [
                {"name": "default", "rawData": {"site_id": "s1", "org": "o", "gone": null}},
                {"name": "other", "rawData": {"site_id": "s2"}},
            ]})
        );
        let site = crate::entity::raw_data(&o).and_then(|r| r.get("site_id"));
        assert_eq!(site, Some(&json!("s1")));
        // Without `only`, every top-level property is built.
        let all = parse_projected(json, raw_only(None, &["site_id"])).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["_key", "_rawData", "n"]);
        assert_eq!(all["_rawData"][0]["rawData"], json!({"site_id": "s1"}));
    }

    /// Any other shape is what the full parse builds: `raw_data` reads the same there.
    #[test]
    fn raw_data_of_another_shape_is_built_whole() {
        let shapes = [
            r#"[1,2]"#,
            r#"{"a":1,"b":[2]}"#,
            r#""text""#,
            "null",
            "[]",
            r#"[[{"a":1,"b":2}]]"#,
            r#"[{"rawData":[1,{"a":2,"b":3}]}]"#,
            r#"[{"rawData":null}]"#,
            r#"[{"rawData":1.5e3},{"rawData":{"b":1}}]"#,
            r#"[{"name":"x"}]"#,
            r#"[{"rawData":{"b":1},"rawData":{"a":2,"b":3}}]"#,
            r#"[{"raw\u0044ata":{"a":-0.0,"b":18446744073709551615}}]"#,
        ];
        for raw in shapes {
            let json = format!(r#"{{"_key":"k","_rawData":{raw}}}"#);
            let whole: Object = serde_json::from_str(&json).unwrap();
            let projected = parse_projected(&json, raw_only(None, &["a"])).unwrap();
            let field = |o: &Object| crate::entity::raw_data(o).and_then(|r| r.get("a")).cloned();
            assert_eq!(field(&projected), field(&whole), "{raw}");
            let full_record = crate::entity::raw_data(&whole).is_none_or(|r| !r.is_object());
            if full_record {
                // Not a record the projection narrows: kept exactly.
                assert_eq!(projected, whole, "{raw}");
            }
        }
    }

    #[test]
    fn bad_json_fails_in_any_part() {
        for bad in [
            r#"{"_key":"k","_rawData":[{"rawData":{"a":tru}}]}"#,
            r#"{"_key":"k","_rawData":[{"rawData":{"a":"\ud800"}}]}"#,
            r#"{"_key":"k","_rawData":[{"rawData":{"a":1e400}}]}"#,
            r#"{"_key":"k","_rawData":[{"name":"x"},{"rawData":[1,]}]}"#,
            r#"{"_key":"k","_rawData":[1"#,
        ] {
            let got = parse_projected(bad, raw_only(Some(&["_key"]), &["a"]));
            assert!(matches!(got, Err(Error::Graph(_))), "{bad}");
        }
    }

    /// The key serde_json reserves for raw text is an ordinary key here.
    #[test]
    fn serde_json_reserved_keys_are_plain_keys() {
        let json =
            r#"{"_key":"k","_rawData":[{"rawData":{"$serde_json::private::RawValue":"x","a":1}}]}"#;
        let o = parse_projected(
            json,
            raw_only(None, &["a", "$serde_json::private::RawValue"]),
        )
        .unwrap();
        assert_eq!(
            o["_rawData"][0]["rawData"],
            json!({"$serde_json::private::RawValue": "x", "a": 1})
        );
    }
}
