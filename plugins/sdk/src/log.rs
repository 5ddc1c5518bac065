//! Structured logging through the host (`corral:integration/log`).
//!
//! In a native build (the connectors' unit tests) there is no host: records are kept in
//! a per-thread buffer that [`take_captured`] hands to the test.

#[cfg(target_arch = "wasm32")]
use crate::bindings::corral::integration::log::{Level, log};

pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit("info", message, fields)
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit("warn", message, fields)
}

pub fn debug(message: &str, fields: &[(&str, &str)]) {
    emit("debug", message, fields)
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    emit("error", message, fields)
}

fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(target_arch = "wasm32")]
fn emit(level: &str, message: &str, fields: &[(&str, &str)]) {
    let level = match level {
        "info" => Level::Info,
        "warn" => Level::Warn,
        "debug" => Level::Debug,
        _ => Level::Error,
    };
    log(level, message, &owned(fields));
}

/// One record logged in a native build.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub level: &'static str,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Captured {
    /// The value of field `name`, if the record has one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<Captured>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(not(target_arch = "wasm32"))]
fn emit(level: &'static str, message: &str, fields: &[(&str, &str)]) {
    CAPTURED.with(|c| {
        c.borrow_mut().push(Captured {
            level,
            message: message.to_string(),
            fields: owned(fields),
        })
    });
}

/// The records this thread logged since the last call (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured() -> Vec<Captured> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
