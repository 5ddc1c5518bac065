//! `corral plugin new NAME --lang rust|typescript|python`: a connector project that builds
//! and passes its own tests straight away, with the SDK and its WIT vendored so it builds
//! outside this repository. Every language's project talks to the same example API and
//! has the same recording and snapshot: the graph does not depend on the language.

use super::templates::{self, Files};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

/// A language's project template, where its SDK goes, and what to run next.
struct Lang {
    name: &'static str,
    template: Files,
    sdk: Files,
    sdk_dir: &'static str,
    next: &'static str,
}

const LANGS: &[(&str, Lang)] = &[
    (
        "rust",
        Lang {
            name: "Rust",
            template: templates::RUST,
            sdk: templates::RUST_SDK,
            sdk_dir: "vendor/corral-sdk",
            next: "corral plugin build\n  corral plugin test",
        },
    ),
    (
        "typescript",
        Lang {
            name: "TypeScript",
            template: templates::TYPESCRIPT,
            sdk: templates::TYPESCRIPT_SDK,
            sdk_dir: "vendor/corral-sdk",
            next: "npm install\n  corral plugin build\n  corral plugin test",
        },
    ),
    (
        "python",
        Lang {
            name: "Python",
            template: templates::PYTHON,
            sdk: templates::PYTHON_SDK,
            sdk_dir: "corral_sdk",
            next: "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n  corral plugin build\n  corral plugin test",
        },
    ),
];

/// A template's path in the project: `.tmpl` dropped, `gitignore` as `.gitignore`.
fn project_path(template: &str, id: &str) -> String {
    let path = template.strip_suffix(".tmpl").unwrap_or(template);
    let path = if path == "gitignore" {
        ".gitignore"
    } else {
        path
    };
    fill(path, id)
}

/// Writes the project for `id` in `lang` into `dir` (default `./<id>`), which must not
/// exist or be empty.
pub fn new(id: &str, lang: &str, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    check_id(id)?;
    let Some((_, lang)) = LANGS.iter().find(|(key, _)| *key == lang) else {
        bail!("--lang {lang}: not a language corral scaffolds (rust, typescript or python)");
    };
    let dir: PathBuf = dir.map_or_else(|| PathBuf::from(id), Path::to_path_buf);
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{}: exists and is not empty", dir.display());
    }
    for (path, text) in templates::COMMON.iter().chain(lang.template) {
        write(&dir.join(project_path(path, id)), &fill(text, id))?;
    }
    for (path, text) in lang.sdk {
        write(&dir.join(lang.sdk_dir).join(path), text)?;
    }
    println!(
        "{}: the {id} connector ({}). Next:\n  cd {}\n  {}",
        dir.display(),
        lang.name,
        dir.display(),
        lang.next
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

    /// Every file under `root` (not what a build or an install leaves), by relative path.
    fn files_under(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // What an install or a build leaves, and the SDK's own lock and ignore files.
                let skipped = [
                    "node_modules",
                    "__pycache__",
                    ".corral-test",
                    "dist",
                    "target",
                    "package-lock.json",
                    ".gitignore",
                ];
                if skipped.contains(&name.as_str()) {
                    continue;
                }
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else if e.path().is_file() {
                    let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        out.sort();
        out
    }

    /// Every file of each SDK and template is in its table: one added and not listed
    /// would leave scaffolded projects unbuildable (`templates.rs` lists them).
    #[test]
    fn the_vendored_sdks_and_templates_are_whole() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (table, dir) in [
            (templates::RUST_SDK, "plugins/sdk"),
            (templates::TYPESCRIPT_SDK, "plugins/sdk-ts"),
            (templates::PYTHON_SDK, "plugins/sdk-py/corral_sdk"),
            (templates::COMMON, "host/templates/common"),
            (templates::RUST, "host/templates/rust"),
            (templates::TYPESCRIPT, "host/templates/typescript"),
            (templates::PYTHON, "host/templates/python"),
        ] {
            let mut listed: Vec<String> = table.iter().map(|(p, _)| p.to_string()).collect();
            listed.sort();
            assert_eq!(listed, files_under(&repo.join(dir)), "{dir}");
        }
    }

    #[test]
    fn template_paths_become_project_paths() {
        assert_eq!(project_path("gitignore.tmpl", "acme"), ".gitignore");
        assert_eq!(
            project_path("recordings/__ID__-example.jsonl.tmpl", "acme"),
            "recordings/acme-example.jsonl"
        );
        assert_eq!(project_path("src/index.ts.tmpl", "acme"), "src/index.ts");
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
