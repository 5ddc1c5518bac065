//! Plugins: compiling a component once, linking it against the host's imports into an
//! `InstancePre`, and reading its manifest from an instance that has nothing granted.

use crate::bindings::{self, PluginPre, connector};
use crate::capabilities::StepCtx;
use crate::policy::Policy;
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

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

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigField {
    pub name: String,
    pub secret: bool,
    pub optional: bool,
    pub description: String,
    #[serde(rename = "default", skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntityType {
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    #[serde(rename = "_type")]
    pub type_name: String,
    #[serde(rename = "_class")]
    pub class_name: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RelationshipType {
    #[serde(rename = "_type")]
    pub type_name: String,
    #[serde(rename = "_class")]
    pub class_name: String,
    #[serde(rename = "sourceType")]
    pub source_type: String,
    #[serde(rename = "targetType")]
    pub target_type: String,
    pub mapped: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepInfo {
    pub id: String,
    pub name: String,
    pub entities: Vec<EntityType>,
    pub relationships: Vec<RelationshipType>,
    #[serde(rename = "dependsOn")]
    pub depends_on: Vec<String>,
}

impl StepInfo {
    /// Every `_type` the step declares, entities then relationships.
    pub fn declared_types(&self) -> Vec<String> {
        self.entities
            .iter()
            .map(|e| e.type_name.clone())
            .chain(self.relationships.iter().map(|r| r.type_name.clone()))
            .collect()
    }
}

/// A plugin's manifest as the host keeps it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "configFields")]
    pub config_fields: Vec<ConfigField>,
    pub steps: Vec<StepInfo>,
    /// The requested capabilities, a policy document with `{{config.*}}` templates.
    pub capabilities: String,
}

impl Manifest {
    pub fn mapped_types(&self) -> BTreeSet<String> {
        self.steps
            .iter()
            .flat_map(|s| &s.relationships)
            .filter(|r| r.mapped)
            .map(|r| r.type_name.clone())
            .collect()
    }

    /// The data-model tables of JupiterOne's integration docs, from the step metadata:
    /// entities (Resources | Entity `_type` | Entity `_class`), then relationships, then
    /// mapped relationships, each sorted as those docs sort them.
    pub fn document(&self) -> String {
        let mut entities: Vec<[String; 3]> = self
            .steps
            .iter()
            .flat_map(|s| &s.entities)
            .map(|e| {
                [
                    e.resource_name.clone(),
                    code(&e.type_name),
                    code(&e.class_name),
                ]
            })
            .collect();
        let (mapped, direct): (Vec<&RelationshipType>, Vec<&RelationshipType>) = self
            .steps
            .iter()
            .flat_map(|s| &s.relationships)
            .partition(|r| r.mapped);
        let row = |r: &&RelationshipType| {
            [
                code(&r.source_type),
                format!("**{}**", r.class_name),
                code(&r.target_type),
            ]
        };
        let mut direct: Vec<[String; 3]> = direct.iter().map(row).collect();
        let mut mapped: Vec<[String; 3]> = mapped.iter().map(row).collect();
        for list in [&mut entities, &mut direct, &mut mapped] {
            list.sort();
            list.dedup();
        }
        let mut out = String::from("### Entities\n\nThe following entities are created:\n\n");
        out.push_str(&markdown_table(
            ["Resources", "Entity `_type`", "Entity `_class`"],
            &entities,
        ));
        if !direct.is_empty() {
            out.push_str("\n### Relationships\n\nThe following relationships are created:\n\n");
            out.push_str(&markdown_table(
                [
                    "Source Entity `_type`",
                    "Relationship `_class`",
                    "Target Entity `_type`",
                ],
                &direct,
            ));
        }
        if !mapped.is_empty() {
            out.push_str(
                "\n### Mapped Relationships\n\nThe following mapped relationships are created:\n\n",
            );
            out.push_str(&markdown_table(
                [
                    "Source Entity `_type`",
                    "Relationship `_class`",
                    "Target Entity `_type`",
                ],
                &mapped,
            ));
        }
        out
    }

    pub fn secret_fields(&self) -> BTreeSet<String> {
        self.config_fields
            .iter()
            .filter(|f| f.secret)
            .map(|f| f.name.clone())
            .collect()
    }
}

fn code(s: &str) -> String {
    format!("`{s}`")
}

/// A markdown table with columns padded to their widest cell.
fn markdown_table(header: [&str; 3], rows: &[[String; 3]]) -> String {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 3]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header);
    out.push_str(&line(
        widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str),
    ));
    for r in rows {
        out.push_str(&line(r.each_ref().map(String::as_str)));
    }
    out
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
    pub pre: PluginPre<StepCtx>,
    pub compile_time: std::time::Duration,
}

/// The linker every plugin is checked against: WASI p2 (nothing granted) plus corral's
/// four imports.
pub fn build_linker(engine: &Engine) -> anyhow::Result<Linker<StepCtx>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::Plugin::add_to_linker::<StepCtx, HasSelf<StepCtx>>(&mut linker, |s| s)?;
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
    let component = Component::new(engine, bytes).map_err(|e| PluginError::NotComponent {
        source_name: source_name.clone(),
        reason: format!("{e:#}"),
    })?;
    Ok(Compiled {
        component,
        digest: digest(bytes),
        compile_time: started.elapsed(),
    })
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
    let pre = PluginPre::new(pre).map_err(|e| PluginError::Link {
        source_name: source_name.clone(),
        reason: format!("does not export corral:integration/connector@0.1.0: {e:#}"),
    })?;
    let manifest = crate::run::read_manifest(&pre)
        .await
        .and_then(|m| convert_manifest(m).context("invalid manifest"))
        .map_err(|e| PluginError::Manifest {
            source_name: source_name.clone(),
            reason: format!("{e:#}"),
        })?;
    Ok(Arc::new(LoadedPlugin {
        manifest,
        digest: compiled.digest,
        source,
        pre,
        compile_time: compiled.compile_time,
    }))
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
    if text.contains("corral:integration/") && !text.contains(bindings::WIT_PACKAGE) {
        return format!(
            "built against a WIT version this host does not offer (this host offers {}): {text}",
            bindings::WIT_PACKAGE
        );
    }
    format!(
        "imports something this host does not offer (this host offers {} and WASI p2): {text}",
        bindings::WIT_PACKAGE
    )
}

fn convert_manifest(m: connector::PluginManifest) -> anyhow::Result<Manifest> {
    let manifest = Manifest {
        id: m.id,
        version: m.version,
        name: m.name,
        description: m.description,
        config_fields: m
            .config_fields
            .into_iter()
            .map(|f| ConfigField {
                name: f.name,
                secret: f.secret,
                optional: f.optional,
                description: f.description,
                default: f.default_value.filter(|_| !f.secret),
            })
            .collect(),
        steps: m
            .steps
            .into_iter()
            .map(|s| StepInfo {
                id: s.id,
                name: s.name,
                entities: s
                    .entities
                    .into_iter()
                    .map(|e| EntityType {
                        resource_name: e.resource_name,
                        type_name: e.type_name,
                        class_name: e.class_name,
                    })
                    .collect(),
                relationships: s
                    .relationships
                    .into_iter()
                    .map(|r| RelationshipType {
                        type_name: r.type_name,
                        class_name: r.class_name,
                        source_type: r.source_type,
                        target_type: r.target_type,
                        mapped: r.mapped,
                    })
                    .collect(),
                depends_on: s.depends_on,
            })
            .collect(),
        capabilities: m.capabilities,
    };
    check_manifest(&manifest)?;
    Ok(manifest)
}

/// A manifest the host can run: a plausible id, unique steps whose dependencies exist
/// and form no cycle, and a capability request that parses.
fn check_manifest(m: &Manifest) -> anyhow::Result<()> {
    let id_ok = !m.id.is_empty()
        && m.id.len() <= 64
        && m.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    anyhow::ensure!(
        id_ok,
        "plugin id {:?} must be 1-64 characters of a-z, 0-9, '-', '_'",
        m.id
    );
    let mut ids = BTreeSet::new();
    for s in &m.steps {
        anyhow::ensure!(
            ids.insert(s.id.as_str()),
            "step {:?} is declared twice",
            s.id
        );
    }
    for s in &m.steps {
        for d in &s.depends_on {
            anyhow::ensure!(
                ids.contains(d.as_str()),
                "step {:?} depends on unknown step {d:?}",
                s.id
            );
        }
    }
    crate::run::topological_order(&m.steps)?;
    // Templates are filled per instance; here every field name stands in for itself.
    let placeholders: BTreeMap<String, String> = m
        .config_fields
        .iter()
        .filter(|f| !f.secret)
        .map(|f| {
            (
                f.name.clone(),
                format!("https://{}.invalid/", f.name.to_lowercase()),
            )
        })
        .collect();
    Policy::parse(
        &m.capabilities,
        &format!("manifest of plugin {}", m.id),
        &placeholders,
    )?;
    Ok(())
}
