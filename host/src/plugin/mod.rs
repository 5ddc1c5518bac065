//! Plugins: compiling a component once, linking it against the host's imports into an
//! `InstancePre`, and reading its manifest from an instance that has nothing granted.

pub mod builtin;
pub mod compiled_cache;
pub mod guest;
pub mod runtime;
pub mod wit;

use crate::capabilities::StepCtx;
pub use corral_core::manifest::{
    ConfigField, EntityType, Manifest, ManifestError, RelationshipType, StepInfo,
};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wit::connector::GuestPre;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Builtin => f.write_str("builtin"),
            PluginSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Error)]
pub enum PluginError {
    #[error("{source_name}: not a WebAssembly component: {reason}")]
    NotComponent { source_name: String, reason: String },
    #[error("{source_name}: cannot link: {reason}")]
    Link { source_name: String, reason: String },
    #[error("{source_name}: cannot read the manifest: {reason}")]
    Manifest { source_name: String, reason: String },
    #[error(
        "{source_name}: declares id {id:?}, but a file in plugin_dir must be named after its id ({id}.wasm)"
    )]
    Misnamed { source_name: String, id: String },
}

/// A compiled, linked plugin with its manifest; runs instantiate from `pre`.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    pub source: PluginSource,
    /// Linked, with its connector export found; runs instantiate from it.
    pub guest: GuestPre,
    /// What the component says built it (its `corral:sdk` section): shown, never trusted.
    pub built_with: Option<String>,
    pub compile_time: std::time::Duration,
}

/// The linker every plugin is checked against: WASI p2 (nothing granted) plus corral's
/// imports in every WIT version this host offers (see `wit`).
pub fn build_linker(engine: &Engine) -> anyhow::Result<Linker<StepCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Compiles and links `bytes`, then reads and checks the manifest.
pub async fn load(
    engine: &Engine,
    linker: &Linker<StepCtx>,
    bytes: &[u8],
    source: PluginSource,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    let compiled = compile(engine, bytes, &source)?;
    link(linker, compiled, source).await
}

/// A component compiled but not yet linked: the CPU-heavy half of loading.
pub struct Compiled {
    component: Component,
    built_with: Option<String>,
    digest: String,
    compile_time: std::time::Duration,
}

/// Checks the header and compiles. Synchronous and CPU-bound: a long-running host calls
/// it on a blocking thread so runs in flight are not slowed.
pub fn compile(
    engine: &Engine,
    bytes: &[u8],
    source: &PluginSource,
) -> Result<Compiled, PluginError> {
    let source_name = source.to_string();
    check_component_header(bytes).map_err(|reason| PluginError::NotComponent {
        source_name: source_name.clone(),
        reason,
    })?;
    let started = Instant::now();
    let digest = digest(bytes);
    let component =
        crate::plugin::compiled_cache::compile(engine, bytes, &digest).map_err(|e| {
            PluginError::NotComponent {
                source_name: source_name.clone(),
                reason: format!("{e:#}"),
            }
        })?;
    Ok(Compiled {
        component,
        built_with: sdk_stamp(bytes),
        digest,
        compile_time: started.elapsed(),
    })
}

/// The custom section the SDK writes into a component's module.
pub const SDK_SECTION: &str = "corral:sdk";
/// The longest stamp shown.
const MAX_STAMP_BYTES: usize = 256;

/// What a component says built it: the text of the first `corral:sdk` custom section of
/// any of its modules (`corral-sdk 0.2.0; corral:integration@0.2.0`). Any component can
/// write anything there, so only short printable text is kept, and only for display.
pub fn sdk_stamp(bytes: &[u8]) -> Option<String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Err(_) => return None,
            Ok(wasmparser::Payload::CustomSection(s)) if s.name() == SDK_SECTION => {
                let text = std::str::from_utf8(s.data()).ok()?;
                let plain = text.len() <= MAX_STAMP_BYTES
                    && text.chars().all(|c| c == ' ' || c.is_ascii_graphic());
                return plain.then(|| text.to_string());
            }
            Ok(_) => {}
        }
    }
    None
}

/// sha256 of component bytes, hex: a plugin's identity in run records.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Links a compiled component against the host's imports, then reads and checks the
/// manifest in an instance that has nothing granted.
pub async fn link(
    linker: &Linker<StepCtx>,
    compiled: Compiled,
    source: PluginSource,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    let source_name = source.to_string();
    let pre = linker
        .instantiate_pre(&compiled.component)
        .map_err(|e| PluginError::Link {
            source_name: source_name.clone(),
            reason: explain_link_error(&e),
        })?;
    let guest = GuestPre::new(pre).map_err(|reason| PluginError::Link {
        source_name: source_name.clone(),
        reason,
    })?;
    let manifest = guest::read_manifest(&guest)
        .await
        .and_then(|m| {
            corral_core::manifest::check(&m)
                .map_err(|e| anyhow::anyhow!("invalid manifest: {e}"))?;
            Ok(m)
        })
        .map_err(|e| PluginError::Manifest {
            source_name: source_name.clone(),
            reason: format!("{e:#}"),
        })?;
    Ok(Arc::new(LoadedPlugin {
        manifest,
        digest: compiled.digest,
        source,
        guest,
        built_with: compiled.built_with,
        compile_time: compiled.compile_time,
    }))
}

/// Largest component file read when no other cap is configured (`serve.max_plugin_bytes`
/// has the same default).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Why a component file could not be read.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Unreadable(String),
    #[error("not a regular file (a FIFO, device or directory is never read)")]
    NotAFile,
    #[error("{0} bytes or more is over the {1} byte limit")]
    TooLarge(u64, u64),
}

/// Reads a component file: only a regular file (after symlinks: a link to `/dev/zero` or
/// a FIFO would never end), and never more than `max` bytes, whatever its size claims.
pub fn read_component_file(path: &std::path::Path, max: u64) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| FileError::Unreadable(e.to_string());
    if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
        return Err(FileError::NotAFile);
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(FileError::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// Components and core modules share the magic; the layer field tells them apart.
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err("the file does not start with the wasm magic bytes".into());
    }
    if bytes[6..8] == [0, 0] {
        return Err("this is a core wasm module; build a component (target wasm32-wasip2)".into());
    }
    Ok(())
}

fn explain_link_error(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    let offered = wit::offered();
    let known = wit::Version::ALL
        .iter()
        .any(|v| text.contains(&format!("@{}", v.number())));
    if text.contains("corral:integration/") && !known {
        return format!(
            "built against a WIT version this host does not offer (this host offers {offered}): {text}"
        );
    }
    format!(
        "imports something this host does not offer (this host offers {offered} and WASI p2): {text}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_stamp_is_read_from_a_built_component_and_only_plain_text_is_kept() {
        let kandji = crate::plugin::builtin::component("kandji").unwrap();
        assert_eq!(
            sdk_stamp(kandji).as_deref(),
            Some("corral-sdk 0.2.0; corral:integration@0.2.0")
        );
        let stamped = |text: &str| {
            let wat = format!(
                "(component (core module (@custom \"corral:sdk\" {})))",
                serde_json::to_string(text).unwrap()
            );
            sdk_stamp(&wat::parse_str(&wat).unwrap())
        };
        assert_eq!(stamped("my-sdk 2").as_deref(), Some("my-sdk 2"));
        assert_eq!(stamped("forged\nline"), None);
        assert_eq!(stamped(&"x".repeat(MAX_STAMP_BYTES + 1)), None);
        assert_eq!(sdk_stamp(b"\0asm\x0d\0\x01\0garbage"), None);
        assert_eq!(sdk_stamp(b""), None);
    }
}
