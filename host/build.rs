//! Builds the first-party plugins (every crate under `plugins/` but the SDK) as
//! components and embeds them in the `corral` binary, so a plain `cargo build` gives a
//! binary that runs them with no further step.

use std::path::PathBuf;

fn main() {
    let root = corral_build::workspace_root(1);
    for watched in ["plugins", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // Each `plugins/<id>/` with a Cargo.toml (but the SDK) is the crate `corral-<id>`.
    let mut ids: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "sdk")
        .collect();
    ids.sort();
    let crates: Vec<String> = ids.iter().map(|id| format!("corral-{id}")).collect();
    let wasm = corral_build::build_components(&root, &root.join("target/plugins"), &crates);
    let items: Vec<(String, PathBuf)> = ids.into_iter().zip(wasm).collect();
    let code = format!(
        "/// First-party plugins: (id, component bytes).\n{}",
        corral_build::embed_list("BUILTINS", &items)
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("builtin_plugins.rs"), code).unwrap();
}
