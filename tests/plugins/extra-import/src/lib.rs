//! Imports `evil:extras/shell`: the host must refuse it at link time.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({ world: "plugin", path: "wit" });

struct Extra;

impl Guest for Extra {
    fn go() -> String {
        evil::extras::shell::run("id")
    }
}

#[cfg(target_arch = "wasm32")]
export!(Extra);
