//! Builds the first-party plugins (every crate under `plugins/` but the SDK) as
//! `wasm32-wasip2` components and embeds them in the `corral` binary, so a plain
//! `cargo build` gives a binary that runs them with no further step.
//!
//! The nested cargo uses its own target directory (`target/plugins`), so it never waits
//! on the outer build's lock, and adds the wasm target through rustup if it is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    let plugins = first_party_plugins(&root.join("plugins"));
    ensure_wasm_target();
    let target_dir = root.join("target").join("plugins");
    build_plugins(&root, &target_dir, &plugins);

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut code = String::from(
        "/// First-party plugins: (id, component bytes).\npub const BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for (id, krate) in &plugins {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(
            wasm.exists(),
            "plugin {id}: {} was not built",
            wasm.display()
        );
        code.push_str(&format!(
            "    ({id:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtin_plugins.rs"), code).unwrap();
}

/// (plugin id, crate name): each `plugins/<id>/` with a Cargo.toml, named `corral-<id>`.
fn first_party_plugins(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "sdk")
        .map(|id| (id.clone(), format!("corral-{id}")))
        .collect();
    found.sort();
    found
}

fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again"
        ),
    }
}

fn build_plugins(root: &Path, target_dir: &Path, plugins: &[(String, String)]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir);
    for (_, krate) in plugins {
        cmd.args(["-p", krate]);
    }
    // The outer build's settings (flags, wrappers such as clippy-driver, profiles) are
    // for the host; plugins get their own.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key.starts_with("CARGO_PROFILE_")
            || key == "CARGO_TARGET_DIR"
            || key == "CARGO_BUILD_TARGET"
            || key.starts_with("CARGO_CFG_")
            || key == "TARGET"
            || key == "RUSTC"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
    let status = cmd.status().expect("running cargo for the plugins");
    assert!(
        status.success(),
        "building the plugins for {TARGET} failed (see the errors above)"
    );
}
