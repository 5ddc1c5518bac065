//! The first-party plugins, compiled to components by `build.rs` and embedded here.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// The embedded component of a first-party plugin.
pub fn component(id: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(i, _)| *i == id).map(|(_, b)| *b)
}

pub fn ids() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(id, _)| *id)
}
