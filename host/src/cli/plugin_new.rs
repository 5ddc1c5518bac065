//! `corral plugin new NAME --lang rust`: a connector project that builds and passes its
//! own replay test straight away, with the SDK and its WIT vendored so it builds outside
//! this repository.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The SDK as this corral was built with it, by path within `vendor/corral-sdk/`.
pub const SDK_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
    ),
    (
        "wit/corral.wit",
        include_str!("../../../plugins/sdk/wit/corral.wit"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/capabilities.rs",
        include_str!("../../../plugins/sdk/src/capabilities.rs"),
    ),
    (
        "src/connector.rs",
        include_str!("../../../plugins/sdk/src/connector.rs"),
    ),
    (
        "src/entity.rs",
        include_str!("../../../plugins/sdk/src/entity.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../plugins/sdk/src/error.rs"),
    ),
    (
        "src/graph.rs",
        include_str!("../../../plugins/sdk/src/graph.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    ("src/kv.rs", include_str!("../../../plugins/sdk/src/kv.rs")),
    (
        "src/log.rs",
        include_str!("../../../plugins/sdk/src/log.rs"),
    ),
    (
        "src/manifest.rs",
        include_str!("../../../plugins/sdk/src/manifest.rs"),
    ),
    (
        "src/props.rs",
        include_str!("../../../plugins/sdk/src/props.rs"),
    ),
    (
        "src/standard.rs",
        include_str!("../../../plugins/sdk/src/standard.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../plugins/sdk/src/testing.rs"),
    ),
    (
        "src/time.rs",
        include_str!("../../../plugins/sdk/src/time.rs"),
    ),
];

/// The Rust project, by path, with `__ID__`, `__NAME__`, `__PREFIX__` and `__ENV__` to
/// fill in.
const RUST_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml.tmpl"),
    ),
    // The versions the SDK was tested with, pinned.
    (
        "Cargo.lock",
        include_str!("../../templates/rust/Cargo.lock.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../templates/rust/rust-toolchain.toml.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/rust/gitignore.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../templates/rust/README.md.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/rust/src/lib.rs.tmpl"),
    ),
    (
        "corral-test.toml",
        include_str!("../../templates/rust/corral-test.toml.tmpl"),
    ),
    (
        "recordings/__ID__-example.jsonl",
        include_str!("../../templates/rust/recording.jsonl.tmpl"),
    ),
    (
        "snapshots/__ID__-example.json",
        include_str!("../../templates/rust/snapshot.json.tmpl"),
    ),
];

/// Names cargo or Rust keep for themselves (a crate so named does not build), and the
/// SDK's own.
const RESERVED: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "self",
    "super",
    "crate",
    "async",
    "await",
    "dyn",
    "fn",
    "impl",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "static",
    "struct",
    "trait",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "corral-sdk",
    "corral",
];

/// A plugin id: a lower-case letter, then lower-case letters, digits and `-`, at most 40
/// (it names the crate, the `.wasm`, the entity types and the test instance).
fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = (1..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !RESERVED.contains(&id);
    if !ok {
        bail!(
            "{id:?} is not a plugin id: a lower-case letter, then lower-case letters, digits and `-`, at most 40"
        );
    }
    Ok(())
}

/// The text of a template with the id and its derived names filled in.
fn fill(template: &str, id: &str) -> String {
    let name: String = id
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    template
        .replace("__ID__", id)
        .replace("__NAME__", &name)
        .replace("__PREFIX__", &id.replace('-', "_"))
        .replace("__ENV__", &id.replace('-', "_").to_ascii_uppercase())
}

/// Writes the project for `id` in `lang` into `dir` (default `./<id>`), which must not
/// exist or be empty.
pub fn new(id: &str, lang: &str, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    check_id(id)?;
    if lang != "rust" {
        bail!(
            "--lang {lang}: this corral scaffolds Rust connectors only (`--lang rust`); TypeScript and Python are not built yet"
        );
    }
    let dir: PathBuf = dir.map_or_else(|| PathBuf::from(id), Path::to_path_buf);
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{}: exists and is not empty", dir.display());
    }
    for (path, text) in RUST_TEMPLATE {
        write(&dir.join(fill(path, id)), &fill(text, id))?;
    }
    for (path, text) in SDK_FILES {
        write(&dir.join("vendor/corral-sdk").join(path), text)?;
    }
    println!(
        "{}: the {id} connector (Rust). Next:\n  cd {}\n  corral plugin build\n  corral plugin test",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the SDK is vendored: one added to `plugins/sdk` and not listed here
    /// would leave scaffolded projects unbuildable.
    #[test]
    fn the_vendored_sdk_is_the_whole_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
        let mut on_disk = Vec::new();
        for sub in ["", "src", "wit"] {
            for e in std::fs::read_dir(root.join(sub)).unwrap().flatten() {
                if e.path().is_file() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    on_disk.push(if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    });
                }
            }
        }
        on_disk.sort();
        let mut vendored: Vec<String> = SDK_FILES.iter().map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(vendored, on_disk);
    }

    #[test]
    fn ids_are_checked_and_names_derived() {
        for bad in [
            "",
            "test",
            "corral-sdk",
            "async",
            "Kandji",
            "1abc",
            "a_b",
            "a-",
            &"a".repeat(41),
            "a/b",
            "a..b",
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        check_id("acme-assets").unwrap();
        assert_eq!(
            fill("__ID__ __NAME__ __PREFIX__ __ENV__", "acme-assets"),
            "acme-assets Acme Assets acme_assets ACME_ASSETS"
        );
    }
}
