//! The documents a third party reads hold what the code does, and point nowhere outside
//! the repository.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `docs/reference.md`'s class table is the host's class list, requirement for
/// requirement.
#[test]
fn the_class_table_is_the_hosts() {
    let doc = read("docs/reference.md");
    let table = doc.split("### Classes").nth(1).expect("a Classes section");
    let base = ["_class", "_key", "_type", "displayName", "name"];
    let documented: Vec<(String, Vec<String>)> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| {
            let (class, rest) = l.split_once('`').unwrap();
            let required = rest
                .split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect();
            (class.to_string(), required)
        })
        .collect();
    let hosts: Vec<(String, Vec<String>)> = corral_core::classes::CLASSES
        .iter()
        .map(|(class, required)| {
            let extra = required
                .iter()
                .filter(|p| !base.contains(p))
                .map(|p| p.to_string())
                .collect();
            (class.to_string(), extra)
        })
        .collect();
    assert_eq!(documented, hosts);
}

/// Each (class, required properties) row of a generated SDK class table: a line
/// holding a class name and a list of quoted property names.
fn sdk_class_rows(path: &str, row: &str) -> Vec<(String, Vec<String>)> {
    let re_row = |l: &str| -> Option<(String, Vec<String>)> {
        let l = l.trim();
        let (class, rest) = l.split_once(row)?;
        let class = class.trim_matches('"').to_string();
        let props = rest
            .split('"')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        Some((class, props))
    };
    read(path).lines().filter_map(re_row).collect()
}

/// The TypeScript and Python SDKs' class tables (what their builders check a `_class`
/// against) are the host's.
#[test]
fn the_sdks_class_tables_are_the_hosts() {
    let hosts: Vec<(String, Vec<String>)> = corral_core::classes::CLASSES
        .iter()
        .map(|(c, r)| (c.to_string(), r.iter().map(|p| p.to_string()).collect()))
        .collect();
    assert_eq!(
        sdk_class_rows("plugins/sdk-ts/src/classes.ts", ": ["),
        hosts,
        "TypeScript"
    );
    assert_eq!(
        sdk_class_rows("plugins/sdk-py/corral_sdk/classes.py", "\": ("),
        hosts,
        "Python"
    );
}

/// A clone of this repository is all a reader has: no document sends them elsewhere.
#[test]
fn no_document_points_outside_the_repository() {
    let mut docs = vec!["README.md".to_string()];
    for dir in [
        "docs",
        "plugins/kandji",
        "plugins/sentinelone",
        "plugins/runzero",
        "plugins/circleci",
        "plugins/kandji-ts",
        "plugins/sdk-ts",
        "plugins/sdk-py",
    ] {
        for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir))
            .unwrap()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") {
                docs.push(format!("{dir}/{name}"));
            }
        }
    }
    for doc in docs {
        let text = read(&doc);
        assert!(!text.contains("../shared"), "{doc} points to ../shared");
    }
}
