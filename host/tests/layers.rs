//! The host's layers point one way: `cli` → `serve` → `delivery` → `run` → `plugin` →
//! `capabilities` → `engine`, `net`, `lock`, `stderr_log` and `corral-core`. This reads
//! every source file and fails, naming the file and the path, when a module reaches a
//! layer above its own (tests inside a file are left out: they may build what they test
//! from anywhere).

use std::path::{Path, PathBuf};

/// A layer's rank: a module may use its own rank and those below.
fn rank(layer: &str) -> Option<u32> {
    Some(match layer {
        "cli" => 6,
        "serve" => 5,
        "delivery" => 4,
        "run" => 3,
        "plugin" => 2,
        "capabilities" => 1,
        "engine" | "net" | "lock" | "stderr_log" => 0,
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

/// The layers `crate::…` paths name in `text`, before any `#[cfg(test)]` module.
fn used_layers(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
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
        for used in used_layers(&text) {
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
    let text = "use crate::run::RunReport;\n#[cfg(test)]\nmod tests {\n use crate::cli::x;\n}\n";
    assert_eq!(used_layers(text), ["run"]);
    assert!(rank("run").unwrap() > rank("plugin").unwrap());
    assert_eq!(rank("somewhere"), None);
}
