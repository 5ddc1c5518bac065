//! `corral plugin build [DIR]`: a connector project compiled to a component and copied to
//! `DIR/dist/<id>.wasm`, its id read from the component's own manifest.

use crate::plugin::runtime::Runtime;
use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub async fn build(dir: &Path) -> anyhow::Result<ExitCode> {
    let built = build_project(dir).await?;
    println!("{}", built.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds the project in `dir` by its language and returns the `dist/<id>.wasm` written.
pub async fn build_project(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("Cargo.toml").is_file() {
        let wasm = cargo_build(dir)?;
        return to_dist(dir, &wasm).await;
    }
    for (file, lang) in [("package.json", "TypeScript"), ("pyproject.toml", "Python")] {
        if dir.join(file).is_file() {
            bail!(
                "{}: a {lang} project; this corral builds Rust connectors only (a Cargo.toml)",
                dir.display()
            );
        }
    }
    bail!("{}: no Cargo.toml, so nothing to build", dir.display())
}

/// `cargo build --release --target wasm32-wasip2` in `dir`; the component it wrote.
fn cargo_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .status()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "cargo is not installed: install Rust with rustup (https://rustup.rs), then run `corral plugin build` again"
            ),
            _ => anyhow::anyhow!("running cargo in {}: {e}", dir.display()),
        })?;
    if !status.success() {
        bail!(
            "cargo build failed in {} ({status}); if it says the wasm32-wasip2 target is missing, run `rustup target add wasm32-wasip2`",
            dir.display()
        );
    }
    let (target_dir, crate_name) = metadata(dir)?;
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    if !wasm.is_file() {
        bail!(
            "{}: cargo built no component (is the crate's type `cdylib`?)",
            wasm.display()
        );
    }
    Ok(wasm)
}

/// The project's target directory and package name, as cargo reports them.
fn metadata(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))?;
    let name = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .and_then(|p| p["name"].as_str())
        .with_context(|| format!("{}: no package", manifest.display()))?;
    Ok((PathBuf::from(target), name.to_string()))
}

/// Loads the component as the host would (refusing one it would refuse) and copies it
/// to `dir/dist/<its id>.wasm`.
async fn to_dist(dir: &Path, wasm: &Path) -> anyhow::Result<PathBuf> {
    let plugin = Runtime::new()?
        .load_file(wasm)
        .await
        .with_context(|| format!("{}: the built component", wasm.display()))?;
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist)?;
    let to = dist.join(format!("{}.wasm", plugin.manifest.id));
    std::fs::copy(wasm, &to).with_context(|| format!("writing {}", to.display()))?;
    Ok(to)
}
