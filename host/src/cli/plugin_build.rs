//! `corral plugin build [DIR]`: a connector project (Rust, TypeScript or Python, told by
//! its Cargo.toml, package.json or pyproject.toml) compiled to a component at
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

/// A connector project's language, told by the file that declares the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    TypeScript,
    Python,
}

/// The language of the project in `dir`, if it is one.
pub fn detect(dir: &Path) -> Option<Lang> {
    [
        ("Cargo.toml", Lang::Rust),
        ("package.json", Lang::TypeScript),
        ("pyproject.toml", Lang::Python),
    ]
    .into_iter()
    .find(|(file, _)| dir.join(file).is_file())
    .map(|(_, lang)| lang)
}

/// Builds the project in `dir` by its language and returns the `dist/<id>.wasm` written.
pub async fn build_project(dir: &Path) -> anyhow::Result<PathBuf> {
    let wasm = match detect(dir) {
        Some(Lang::Rust) => cargo_build(dir)?,
        Some(Lang::TypeScript) => npm_build(dir)?,
        Some(Lang::Python) => componentize_py(dir)?,
        None => bail!(
            "{}: no Cargo.toml, package.json or pyproject.toml, so nothing to build",
            dir.display()
        ),
    };
    to_dist(dir, &wasm).await
}

/// A tool that could not be started: what to install when it is missing.
fn spawn_error(tool: &str, dir: &Path, install: &str, e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!(
                "{tool} is not installed: {install}, then run `corral plugin build` again"
            )
        }
        _ => anyhow::anyhow!("running {tool} in {}: {e}", dir.display()),
    }
}

/// `npm run build` (the SDK's esbuild and componentize-js build) in `dir`: the component
/// it wrote, `dist/<corral.id or name>.wasm`.
fn npm_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let id = package_id(dir)?;
    let wasm = dist_dir(dir)?.join(format!("{id}.wasm"));
    // A build that writes nothing must not pass off the previous component as new.
    remove_stale(&wasm)?;
    if !dir.join("node_modules").is_dir() {
        bail!(
            "{}: the project's packages are not installed: run `npm install` there (or `npm ci` with a package-lock.json), then `corral plugin build` again",
            dir.display()
        );
    }
    let status = Command::new("npm")
        .args(["run", "build"])
        .current_dir(dir)
        .status()
        .map_err(|e| spawn_error("npm", dir, "install Node.js 20 or later with npm", e))?;
    if !status.success() {
        bail!("npm run build failed in {} ({status})", dir.display());
    }
    if !wasm.is_file() {
        bail!("{}: npm run build wrote no component", wasm.display());
    }
    Ok(wasm)
}

/// `dir/dist`, created if missing; refused when it is a symbolic link, so a build never
/// writes (or removes) through a link a checkout planted.
fn dist_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let dist = dir.join("dist");
    if std::fs::symlink_metadata(&dist).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{}: is a symbolic link; corral writes components only into a real directory",
            dist.display()
        );
    }
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    Ok(dist)
}

/// Removes a previous build's file (or a link in its place).
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The plugin id a TypeScript project names: `corral.id` in package.json, else its name.
fn package_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let pkg: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let id = pkg["corral"]["id"].as_str().or(pkg["name"].as_str());
    match id {
        Some(id) if is_plain_id(id) => Ok(id.to_string()),
        _ => bail!(
            "{}: needs a plugin id in \"corral\": {{\"id\": \"…\"}} (else \"name\"): 1-64 of a-z, 0-9 and -, starting with a letter or digit",
            path.display()
        ),
    }
}

fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `componentize-py` (the project's `.venv`, else on PATH) against the SDK's vendored WIT:
/// the module `app` as a component, `dist/.build.wasm` until its id is read.
fn componentize_py(dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join(".venv/bin/componentize-py");
    let tool = if venv.is_file() {
        venv
    } else {
        PathBuf::from("componentize-py")
    };
    if !dir.join("corral_sdk/wit/corral.wit").is_file() {
        bail!(
            "{}: no corral_sdk/wit/corral.wit: the SDK is built from the project's own copy (`corral plugin new --lang python` writes it)",
            dir.display()
        );
    }
    let out = dist_dir(dir)?.join(".build.wasm");
    remove_stale(&out)?;
    // componentize-py reads `-d` and `-p` from its working directory: the project's.
    let status = Command::new(&tool)
        .args([
            "-d",
            "corral_sdk/wit",
            "-w",
            "plugin",
            "componentize",
            "app",
            "-p",
            ".",
        ])
        .arg("-o")
        .arg(Path::new("dist").join(".build.wasm"))
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status();
    let status = status.map_err(|e| {
        spawn_error(
            "componentize-py",
            dir,
            "run `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` in the project",
            e,
        )
    })?;
    if !status.success() {
        bail!("componentize-py failed in {} ({status})", dir.display());
    }
    Ok(out)
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

/// Loads the component as the host would (refusing one it would refuse) and puts it at
/// `dir/dist/<its id>.wasm`.
async fn to_dist(dir: &Path, wasm: &Path) -> anyhow::Result<PathBuf> {
    let plugin = Runtime::new()?
        .load_file(wasm)
        .await
        .with_context(|| format!("{}: the built component", wasm.display()))?;
    let to = dist_dir(dir)?.join(format!("{}.wasm", plugin.manifest.id));
    if wasm == to {
        return Ok(to);
    }
    // Written beside, then renamed over: a link at `to` is replaced, never followed.
    let partial = to.with_extension("wasm.partial");
    remove_stale(&partial)?;
    std::fs::copy(wasm, &partial).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &to).with_context(|| format!("writing {}", to.display()))?;
    if wasm.file_name().is_some_and(|n| n == ".build.wasm") {
        let _ = std::fs::remove_file(wasm);
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_language_is_told_by_the_project_file() {
        for (file, lang) in [
            ("Cargo.toml", Lang::Rust),
            ("package.json", Lang::TypeScript),
            ("pyproject.toml", Lang::Python),
        ] {
            assert_eq!(detect(project(&[(file, "")]).path()), Some(lang), "{file}");
        }
        assert_eq!(detect(project(&[("README.md", "")]).path()), None);
    }

    #[test]
    fn a_typescript_plugin_id_is_checked_before_it_names_a_file() {
        let id = |json: &str| package_id(project(&[("package.json", json)]).path());
        assert_eq!(
            id(r#"{"name": "acme", "corral": {"id": "acme-ts"}}"#).unwrap(),
            "acme-ts"
        );
        assert_eq!(id(r#"{"name": "acme"}"#).unwrap(), "acme");
        let long = format!(r#"{{"name": "{}"}}"#, "a".repeat(65));
        for bad in [
            r#"{"name": "../../etc/x"}"#,
            r#"{"corral": {"id": "-x"}}"#,
            r#"{"corral": {"id": "Acme"}}"#,
            r#"{"name": 7}"#,
            long.as_str(),
        ] {
            let e = id(bad).unwrap_err().to_string();
            assert!(e.contains("needs a plugin id"), "{bad}: {e}");
        }
        assert!(id("not json").unwrap_err().to_string().contains("not JSON"));
    }

    /// A checkout's `dist` link would have the build write (or remove) where it points.
    #[test]
    fn a_symlinked_dist_is_refused_before_anything_runs() {
        let dir = project(&[("package.json", r#"{"name": "acme"}"#)]);
        std::fs::create_dir(dir.path().join("node_modules")).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("dist")).unwrap();
        let e = npm_build(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        let py = project(&[("pyproject.toml", "")]);
        std::fs::create_dir_all(py.path().join("corral_sdk/wit")).unwrap();
        std::fs::write(py.path().join("corral_sdk/wit/corral.wit"), "").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), py.path().join("dist")).unwrap();
        let e = componentize_py(py.path()).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_typescript_project_without_its_packages_says_what_to_run() {
        let dir = project(&[("package.json", r#"{"name": "acme"}"#)]);
        let e = npm_build(dir.path()).unwrap_err().to_string();
        assert!(e.contains("run `npm install` there"), "{e}");
    }
}
