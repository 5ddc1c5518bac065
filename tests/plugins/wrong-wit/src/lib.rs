//! Built against `corral:integration@2.0.0`: the host must refuse it at link time.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({ world: "plugin", path: "wit" });

struct Future;

impl exports::corral::integration::connector::Guest for Future {
    fn manifest() -> String {
        corral::integration::log::log("v2");
        "{}".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Future);
