//! Builds the adversarial test plugins under `tests/plugins/` as components and embeds
//! them, so the tests carry them like the host carries the first-party plugins.

use std::path::PathBuf;

const PLUGINS: &[&str] = &[
    "hostile",
    "wrong-wit",
    "extra-import",
    "kandji-broken",
    "kandji-greedy",
];

fn main() {
    let root = corral_build::workspace_root(2);
    for watched in ["tests/plugins", "plugins/sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let crates: Vec<String> = PLUGINS.iter().map(|p| format!("corral-{p}")).collect();
    let wasm = corral_build::build_components(&root, &root.join("target/plugins"), &crates);
    let items: Vec<(String, PathBuf)> = PLUGINS.iter().map(|p| p.to_string()).zip(wasm).collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(
        out.join("test_plugins.rs"),
        corral_build::embed_list("TEST_PLUGINS", &items),
    )
    .unwrap();
}
