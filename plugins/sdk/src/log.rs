//! Structured logging through the host (`corral:integration/log`). Field values keep
//! their type in the run log: `("devices", 42.into())` is logged as a number.
//!
//! In a native build (the connectors' unit tests) there is no host: records are kept in
//! a per-thread buffer that [`take_captured`] hands to the test.

#[cfg(target_arch = "wasm32")]
use crate::bindings::corral::integration::log::{FieldValue, Level, log};

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                // Past i64 (a u64 or usize above 2^63) it is logged as text, exactly.
                i64::try_from(n).map_or_else(|_| Value::Text(n.to_string()), Value::Integer)
            }
        }
    )*};
}

integer_values!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

/// Logs at `info` with format arguments: `corral_sdk::info!("{n} devices")`. The
/// functions of this module take fields as well.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::info(&::std::format!($($arg)+), &[]) };
}

/// Logs at `warn` with format arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::warn(&::std::format!($($arg)+), &[]) };
}

/// Logs at `error` with format arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::error(&::std::format!($($arg)+), &[]) };
}

/// Logs at `debug` with format arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::debug(&::std::format!($($arg)+), &[]) };
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit("info", message, texts(fields))
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit("warn", message, texts(fields))
}

pub fn debug(message: &str, fields: &[(&str, &str)]) {
    emit("debug", message, texts(fields))
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit("error", message, texts(fields))
}

/// A line with typed fields: `log::typed("warn", "slow page", &[("ms", 950.into())])`.
/// `level` is `debug`, `info`, `warn` or `error` (anything else is logged as an error).
pub fn typed(level: &'static str, message: &str, fields: &[(&str, Value)]) {
    let fields = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    emit(level, message, fields)
}

fn texts(fields: &[(&str, &str)]) -> Vec<(String, Value)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Text(v.to_string())))
        .collect()
}

#[cfg(target_arch = "wasm32")]
fn emit(level: &str, message: &str, fields: Vec<(String, Value)>) {
    let level = match level {
        "info" => Level::Info,
        "warn" => Level::Warn,
        "debug" => Level::Debug,
        _ => Level::Error,
    };
    let fields: Vec<(String, FieldValue)> = fields
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Text(s) => FieldValue::Text(s),
                Value::Integer(n) => FieldValue::Integer(n),
                Value::Float(x) => FieldValue::Float(x),
                Value::Boolean(b) => FieldValue::Boolean(b),
            };
            (k, v)
        })
        .collect();
    log(level, message, &fields);
}

/// One record logged in a native build.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub level: &'static str,
    pub message: String,
    pub fields: Vec<(String, Value)>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Captured {
    /// The value of field `name`, if the record has one.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The text of field `name`, if the record has one and it is text.
    pub fn field(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<Captured>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(not(target_arch = "wasm32"))]
fn emit(level: &'static str, message: &str, fields: Vec<(String, Value)>) {
    let level = match level {
        "info" | "warn" | "debug" => level,
        _ => "error",
    };
    CAPTURED.with(|c| {
        c.borrow_mut().push(Captured {
            level,
            message: message.to_string(),
            fields,
        })
    });
}

/// The records this thread logged since the last call (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured() -> Vec<Captured> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn the_macros_format_their_arguments() {
        let n = 3;
        crate::warn!("{n} devices skipped of {}", 10);
        let got = take_captured();
        assert_eq!(got[0].level, "warn");
        assert_eq!(got[0].message, "3 devices skipped of 10");
    }

    #[test]
    fn typed_fields_keep_their_type_and_huge_integers_stay_exact() {
        typed(
            "warn",
            "page",
            &[
                ("n", 3.into()),
                ("big", u64::MAX.into()),
                ("ok", true.into()),
                ("id", "a1".into()),
            ],
        );
        let got = take_captured();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].fields,
            vec![
                ("n".to_string(), Value::Integer(3)),
                ("big".to_string(), Value::Text(u64::MAX.to_string())),
                ("ok".to_string(), Value::Boolean(true)),
                ("id".to_string(), Value::Text("a1".into())),
            ]
        );
        assert_eq!(got[0].field("big"), Some("18446744073709551615"));
        assert_eq!(got[0].field("n"), None);
        assert_eq!(got[0].value("n"), Some(&Value::Integer(3)));
    }
}
