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
