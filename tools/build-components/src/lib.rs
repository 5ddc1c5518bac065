//! Used from build scripts to compile crates of this workspace into `wasm32-wasip2`
//! components with a nested cargo, so that building the host (or the tests) also builds
//! the plugins they embed.
//!
//! The nested cargo uses its own target directory, so it never waits on the outer
//! build's lock, and the target is added through rustup when it is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Builds `crates` (package names) of the workspace at `root` in release mode into
/// `target_dir` and returns each crate's `.wasm` path, in order.
pub fn build_components(root: &Path, target_dir: &Path, crates: &[String]) -> Vec<PathBuf> {
    ensure_wasm_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir);
    for krate in crates {
        cmd.args(["-p", krate]);
    }
    // The outer build's settings (flags, wrappers such as clippy-driver, profiles) are
    // for the host; components get their own.
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
    // Optimised for speed, not size: at `s` a CPU-bound Kandji run of 5,000 devices
    // spent about a fifth more CPU for a component 6 % smaller (docs/benchmarks.md).
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
    let status = cmd.status().expect("running cargo for the components");
    assert!(
        status.success(),
        "building the components for {TARGET} failed (see the errors above)"
    );
    crates
        .iter()
        .map(|krate| {
            let wasm = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", krate.replace('-', "_")));
            assert!(wasm.exists(), "{krate}: {} was not built", wasm.display());
            wasm
        })
        .collect()
}

/// Rust source declaring `pub const NAME: &[(&str, &[u8])]` with the files embedded.
pub fn embed_list(name: &str, items: &[(String, PathBuf)]) -> String {
    let mut code = format!("pub const {name}: &[(&str, &[u8])] = &[\n");
    for (id, path) in items {
        code.push_str(&format!(
            "    ({id:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    code
}

/// Adds the wasm target through rustup when the toolchain's sysroot lacks it.
pub fn ensure_wasm_target() {
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

/// The workspace root of a crate whose manifest dir is `depth` levels below it.
pub fn workspace_root(depth: usize) -> PathBuf {
    let mut dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    for _ in 0..depth {
        dir.pop();
    }
    dir
}
