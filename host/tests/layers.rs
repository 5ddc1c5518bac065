//! The host's layers point one way: `cli` → `serve` → `cluster` → `delivery` → `run` →
//! `plugin` → `capabilities` → `engine`, `net`, `lock`, `malloc`, `ownership`, `stderr_log`
//! and `corral-core`. This reads every source file and fails, naming the file and the path, when a module reaches a
//! layer above its own (tests inside a file are left out: they may build what they test
//! from anywhere).

use std::path::{Path, PathBuf};

/// A layer's rank: a module may use its own rank and those below.
fn rank(layer: &str) -> Option<u32> {
    Some(match layer {
        "cli" => 7,
        "serve" => 6,
        "cluster" => 5,
        "delivery" => 4,
        "run" => 3,
        "plugin" => 2,
        "capabilities" => 1,
        "engine" | "net" | "lock" | "malloc" | "ownership" | "stderr_log" => 0,
        // corral-core, re-exported at the crate root
        "changes" | "config" | "datamodel" | "explain" | "policy" | "query" | "secrets" => 0,
        _ => return None,
    })
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a source file belongs to: its first directory under `src`, or its stem.
fn layer_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// `text` without its `#[cfg(test)] mod … { … }` blocks (matched by braces) and without
/// comment lines.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else {
            rest = "";
            break;
        };
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names following `prefix` in `code`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            code[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The layers a file's code names: `crate::X`, and `super::X` in a layer's root file
/// (`<layer>/mod.rs`), where `super` is the crate root.
fn used_layers(text: &str, layer_root: bool) -> Vec<String> {
    let code = code_of(text);
    let mut used = names_after(&code, "crate::");
    if layer_root {
        used.extend(names_after(&code, "super::"));
    }
    used
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 40, "premise: the host's sources are found");
    let mut wrong = Vec::new();
    for file in &files {
        let layer = layer_of(&src, file);
        let Some(own) = rank(&layer) else {
            // lib.rs and main.rs sit above every layer.
            assert!(
                matches!(layer.as_str(), "lib" | "main"),
                "{}: a module outside the layers",
                file.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let layer_root = file.ends_with(format!("{layer}/mod.rs"));
        for used in used_layers(&text, layer_root) {
            match rank(&used) {
                Some(r) if r <= own => {}
                _ => wrong.push(format!("{} ({layer}) uses crate::{used}", file.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_path_into_a_higher_layer_is_caught() {
    let text = "use crate::run::RunReport;\n#[cfg(test)]\nmod tests {\n use crate::cli::x;\n fn f() { if true {} }\n}\n/// see crate::serve\nuse crate::delivery::x;\n";
    assert_eq!(used_layers(text, false), ["run", "delivery"]);
    assert_eq!(used_layers("use super::serve::Daemon;", true), ["serve"]);
    assert!(used_layers("use super::store::X;", false).is_empty());
    assert!(rank("run").unwrap() > rank("plugin").unwrap());
    assert_eq!(rank("somewhere"), None);
}
