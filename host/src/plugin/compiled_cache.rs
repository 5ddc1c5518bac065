//! Compiled components kept between processes, so a `corral` command reads a plugin's
//! native code back instead of compiling it again (about 0.8 s of CPU for a first-party
//! connector). Artifacts live in the user's cache directory, named by the component's
//! sha256 and the engine's settings.
//!
//! Loading an artifact runs its machine code, so the cache is trusted only as far as it
//! is the user's own: the directory and each file must be owned by this user and
//! writable by no one else, files are opened without following links, and written
//! under a fresh random name then renamed into place. Anything else is ignored and the
//! component compiled.

use crate::ownership::{private, user};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where artifacts are kept, once a command turns the cache on; otherwise (the
/// library, tests) every process compiles.
static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Artifacts kept at most: older ones are removed (hot swaps add one each).
const KEPT: usize = 64;

/// The largest artifact read back: a damaged or planted file of any size costs at most
/// this much memory (a first-party connector's artifact is a few MiB).
const MAX_ARTIFACT_BYTES: u64 = 512 << 20;

/// Keeps compiled components in the user's cache directory: `$CORRAL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/corral`, else `~/.cache/corral` (not the data directory: a command
/// refused for bad input writes nothing there). `CORRAL_CACHE_DIR=off` turns it off.
pub fn enable() {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = match env("CORRAL_CACHE_DIR") {
        Some(d) if d.as_os_str() == "off" => return,
        Some(d) => d,
        None => match env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache"))) {
            Some(base) => base.join("corral"),
            None => return,
        },
    };
    let _ = DIR.set(dir.join("compiled"));
}

/// `bytes` compiled, or read back from the cache when this engine compiled them before.
pub fn compile(engine: &Engine, bytes: &[u8], digest: &str) -> wasmtime::Result<Component> {
    let Some(dir) = DIR.get() else {
        return Component::new(engine, bytes);
    };
    let path = dir.join(format!("{digest}-{:016x}.cwasm", engine_hash(engine)));
    if let Some(artifact) = read_trusted(dir, &path) {
        // SAFETY: deserializing runs the artifact's machine code. It was read from a
        // file this user owns, in a directory this user owns, neither writable by
        // anyone else (`read_trusted`), named by the component's digest and the engine's
        // settings; wasmtime checks its header and engine compatibility before use.
        match unsafe { Component::deserialize(engine, &artifact) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!("{}: compiling again: {e:#}", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    let kept = match component.serialize() {
        Ok(artifact) => store(dir, &path, &artifact).map_err(|e| format!("{e:#}")),
        Err(e) => Err(format!("{e:#}")),
    };
    if let Err(e) = kept {
        tracing::warn!(
            "{}: cannot keep the compiled component: {e}",
            path.display()
        );
    }
    Ok(component)
}

fn engine_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// The artifact at `path`, if it and `dir` are this user's own (see the module's doc).
fn read_trusted(dir: &Path, path: &Path) -> Option<Vec<u8>> {
    let user = user()?;
    if !private(&std::fs::symlink_metadata(dir).ok()?, user) {
        tracing::warn!("{}: not private to this user; compiling", dir.display());
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || !private(&meta, user) {
        tracing::warn!("{}: not private to this user; compiling", path.display());
        return None;
    }
    if meta.len() > MAX_ARTIFACT_BYTES {
        tracing::warn!("{}: larger than any artifact; compiling", path.display());
        return None;
    }
    let mut artifact = Vec::new();
    file.take(MAX_ARTIFACT_BYTES)
        .read_to_end(&mut artifact)
        .ok()?;
    Some(artifact)
}

/// Writes the artifact under a fresh random name in a directory only this user can
/// enter, renames it into place (a reader never sees part of one), then removes the
/// oldest beyond [`KEPT`].
fn store(dir: &Path, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let user = user().ok_or_else(|| anyhow::anyhow!("cannot tell this process's user"))?;
    anyhow::ensure!(
        private(&std::fs::symlink_metadata(dir)?, user),
        "{}: not private to this user",
        dir.display()
    );
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(artifact)?;
    tmp.persist(path)?;
    prune(dir)
}

fn prune(dir: &Path) -> anyhow::Result<()> {
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if kept.len() > KEPT {
        kept.sort();
        for (_, old) in &kept[..kept.len() - KEPT] {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    #[test]
    fn only_artifacts_private_to_this_user_are_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("compiled");
        let path = dir.join("a.cwasm");
        store(&dir, &path, b"artifact").unwrap();
        assert_eq!(read_trusted(&dir, &path).unwrap(), b"artifact");

        // A file others may write is not trusted, nor a directory others may write.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_trusted(&dir, &path).is_none());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(read_trusted(&dir, &path).is_none());
        assert!(store(&dir, &path, b"other").is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        // A file of any size costs at most the cap to look at (a sparse 4 GiB file here).
        let huge = dir.join("c.cwasm");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&huge)
            .unwrap();
        f.set_len(4 << 30).unwrap();
        assert!(read_trusted(&dir, &huge).is_none());

        // A link is not followed.
        let elsewhere = root.path().join("elsewhere.cwasm");
        std::fs::write(&elsewhere, b"planted").unwrap();
        let link = dir.join("b.cwasm");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(read_trusted(&dir, &link).is_none());
    }
}
