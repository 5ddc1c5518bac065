//! A plugin's manifest as the host keeps it, and the checks it must pass before anything
//! of the plugin runs: every identifier a plugin supplies against a strict grammar (they
//! become directory and file names, policy resources and console text), the shape
//! within documented caps, and the step graph ordered without recursion.

use crate::policy::Policy;
use crate::text::is_control;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use thiserror::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigField {
    pub name: String,
    pub secret: bool,
    pub optional: bool,
    pub description: String,
    #[serde(rename = "default", default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntityType {
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    #[serde(rename = "_type")]
    pub type_name: String,
    #[serde(rename = "_class")]
    pub class_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Caps on a manifest's shape, enforced before anything else looks at it.
pub mod caps {
    pub const STEPS: usize = 256;
    pub const DEPENDS_ON_PER_STEP: usize = 64;
    pub const EDGES: usize = 4096;
    pub const TYPES_PER_STEP: usize = 128;
    pub const TYPES: usize = 1024;
    pub const CONFIG_FIELDS: usize = 64;
    pub const CAPABILITIES_BYTES: usize = 64 << 10;
    /// All of the manifest's strings together.
    pub const MANIFEST_BYTES: usize = 1 << 20;
    pub const NAME_CHARS: usize = 128;
    pub const DESCRIPTION_CHARS: usize = 4096;
    pub const DEFAULT_VALUE_CHARS: usize = 4096;
}

/// Why a manifest was refused: where in it (`steps[3].id`) and what was wrong.
#[derive(Debug, Error, PartialEq)]
#[error("{path}: {message}")]
pub struct ManifestError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ManifestError {
    ManifestError {
        path: path.into(),
        message: message.into(),
    }
}

/// An identifier grammar: allowed first and following bytes, and a length.
struct Grammar {
    what: &'static str,
    max: usize,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
    described: &'static str,
}

impl Grammar {
    fn check(&self, path: &str, value: &str) -> Result<(), ManifestError> {
        let b = value.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= self.max
            && (self.first)(b[0])
            && b[1..].iter().all(|&c| (self.rest)(c));
        if ok {
            return Ok(());
        }
        Err(err(
            path,
            format!(
                "{} {} is refused: {} must be 1-{} characters of {}",
                self.what,
                shown(value),
                self.what,
                self.max,
                self.described
            ),
        ))
    }
}

fn lower_or_digit(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}
fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `a-z 0-9 - _`, starting with a letter or digit: names files and directories.
pub const PLUGIN_ID: &str = "plugin id";
const PLUGIN_ID_GRAMMAR: Grammar = Grammar {
    what: PLUGIN_ID,
    max: 64,
    first: lower_or_digit,
    rest: |b| lower_or_digit(b) || b == b'-' || b == b'_',
    described: "a-z, 0-9, '-', '_', starting with a letter or digit",
};
const STEP_ID_GRAMMAR: Grammar = Grammar {
    what: "step id",
    max: 100,
    first: alnum,
    rest: |b| alnum(b) || b == b'-' || b == b'_',
    described: "A-Z, a-z, 0-9, '-', '_', starting with a letter or digit",
};
const TYPE_GRAMMAR: Grammar = Grammar {
    what: "_type",
    max: 128,
    first: lower_or_digit,
    rest: |b| lower_or_digit(b) || b == b'_',
    described: "a-z, 0-9, '_', starting with a letter or digit",
};
/// A relationship's target: a `_type`, or for a mapped one a class-like name (`Person`).
const TARGET_TYPE_GRAMMAR: Grammar = Grammar {
    what: "targetType",
    max: 128,
    first: alnum,
    rest: |b| alnum(b) || b == b'_',
    described: "A-Z, a-z, 0-9, '_', starting with a letter or digit",
};
const ENTITY_CLASS_GRAMMAR: Grammar = Grammar {
    what: "entity _class",
    max: 64,
    first: |b| b.is_ascii_uppercase(),
    rest: alnum,
    described: "A-Z, a-z, 0-9, starting with an upper-case letter",
};
const RELATIONSHIP_CLASS_GRAMMAR: Grammar = Grammar {
    what: "relationship _class",
    max: 64,
    first: |b| b.is_ascii_uppercase(),
    rest: |b| b.is_ascii_uppercase() || b == b'_',
    described: "A-Z and '_', starting with a letter",
};
const FIELD_GRAMMAR: Grammar = Grammar {
    what: "config field name",
    max: 64,
    first: |b| b.is_ascii_alphabetic(),
    rest: |b| alnum(b) || b == b'_',
    described: "A-Z, a-z, 0-9, '_', starting with a letter",
};
const VERSION_GRAMMAR: Grammar = Grammar {
    what: "version",
    max: 64,
    first: alnum,
    rest: |b| alnum(b) || matches!(b, b'.' | b'-' | b'+'),
    described: "A-Z, a-z, 0-9, '.', '-', '+', starting with a letter or digit",
};

/// Checks a plugin id against the grammar a file name needs.
pub fn check_plugin_id(id: &str) -> Result<(), ManifestError> {
    PLUGIN_ID_GRAMMAR.check("id", id)
}

/// Checks an emitted object's `_type` against the grammar a file name needs.
pub fn check_type_name(type_name: &str) -> Result<(), ManifestError> {
    TYPE_GRAMMAR.check("_type", type_name)
}

/// A value quoted for an error message: at most 80 characters, controls escaped.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

/// Free text a person reads (names, descriptions): bounded, no control characters.
fn check_text(path: &str, value: &str, max: usize, required: bool) -> Result<(), ManifestError> {
    if required && value.trim().is_empty() {
        return Err(err(path, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(err(path, format!("is longer than {max} characters")));
    }
    if let Some(c) = value.chars().find(|&c| is_control(c)) {
        return Err(err(
            path,
            format!(
                "{} holds the control character U+{:04X}; plugin text is shown on consoles and logs",
                shown(value),
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A manifest the host can run: identifiers in their grammar, the shape within
/// [`caps`], unique steps whose dependencies exist and form no cycle, and a capability
/// request that parses.
pub fn check(m: &Manifest) -> Result<(), ManifestError> {
    check_shape(m)?;
    PLUGIN_ID_GRAMMAR.check("id", &m.id)?;
    VERSION_GRAMMAR.check("version", &m.version)?;
    check_text("name", &m.name, caps::NAME_CHARS, true)?;
    check_text(
        "description",
        &m.description,
        caps::DESCRIPTION_CHARS,
        false,
    )?;
    check_config_fields(&m.config_fields)?;
    check_steps(&m.steps)?;
    topological_order(&m.steps)?;
    check_capabilities(m)
}

/// Counts and sizes first, so no later check runs on an unbounded manifest.
fn check_shape(m: &Manifest) -> Result<(), ManifestError> {
    let over = |path: &str, n: usize, cap: usize, what: &str| {
        if n > cap {
            Err(err(path, format!("{n} {what}: at most {cap} are allowed")))
        } else {
            Ok(())
        }
    };
    over("steps", m.steps.len(), caps::STEPS, "steps")?;
    over(
        "configFields",
        m.config_fields.len(),
        caps::CONFIG_FIELDS,
        "config fields",
    )?;
    let mut edges = 0usize;
    let mut types = 0usize;
    for (i, s) in m.steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        over(
            &format!("{path}.dependsOn"),
            s.depends_on.len(),
            caps::DEPENDS_ON_PER_STEP,
            "dependencies",
        )?;
        let declared = s.entities.len() + s.relationships.len();
        over(&path, declared, caps::TYPES_PER_STEP, "declared types")?;
        edges += s.depends_on.len();
        types += declared;
    }
    over(
        "steps[*].dependsOn",
        edges,
        caps::EDGES,
        "dependencies in all",
    )?;
    over("steps[*]", types, caps::TYPES, "declared types in all")?;
    over(
        "capabilities",
        m.capabilities.len(),
        caps::CAPABILITIES_BYTES,
        "bytes",
    )?;
    over("$", total_bytes(m), caps::MANIFEST_BYTES, "bytes of text")
}

fn total_bytes(m: &Manifest) -> usize {
    let fields: usize = m
        .config_fields
        .iter()
        .map(|f| f.name.len() + f.description.len() + f.default.as_ref().map_or(0, String::len))
        .sum();
    let steps: usize = m
        .steps
        .iter()
        .map(|s| {
            s.id.len()
                + s.name.len()
                + s.depends_on.iter().map(String::len).sum::<usize>()
                + s.entities
                    .iter()
                    .map(|e| e.resource_name.len() + e.type_name.len() + e.class_name.len())
                    .sum::<usize>()
                + s.relationships
                    .iter()
                    .map(|r| {
                        r.type_name.len()
                            + r.class_name.len()
                            + r.source_type.len()
                            + r.target_type.len()
                    })
                    .sum::<usize>()
        })
        .sum();
    m.id.len()
        + m.version.len()
        + m.name.len()
        + m.description.len()
        + m.capabilities.len()
        + fields
        + steps
}

fn check_config_fields(fields: &[ConfigField]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, f) in fields.iter().enumerate() {
        let path = format!("configFields[{i}]");
        FIELD_GRAMMAR.check(&format!("{path}.name"), &f.name)?;
        if !seen.insert(f.name.as_str()) {
            return Err(err(
                format!("{path}.name"),
                format!("config field {} is declared twice", f.name),
            ));
        }
        check_text(
            &format!("{path}.description"),
            &f.description,
            caps::DESCRIPTION_CHARS,
            false,
        )?;
        if let Some(d) = &f.default {
            check_text(
                &format!("{path}.default"),
                d,
                caps::DEFAULT_VALUE_CHARS,
                false,
            )?;
        }
    }
    Ok(())
}

fn check_steps(steps: &[StepInfo]) -> Result<(), ManifestError> {
    // Lower-cased: step ids become directory names, and two that differ only in case
    // would share one on a case-insensitive file system.
    let mut ids = BTreeSet::new();
    for (i, s) in steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        STEP_ID_GRAMMAR.check(&format!("{path}.id"), &s.id)?;
        if !ids.insert(s.id.to_ascii_lowercase()) {
            return Err(err(
                format!("{path}.id"),
                format!(
                    "step {:?} is declared twice (step ids are compared ignoring case)",
                    s.id
                ),
            ));
        }
        check_text(&format!("{path}.name"), &s.name, caps::NAME_CHARS, true)?;
        check_step_types(&path, s)?;
    }
    let exact: BTreeSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for (i, s) in steps.iter().enumerate() {
        for (j, d) in s.depends_on.iter().enumerate() {
            if !exact.contains(d.as_str()) {
                return Err(err(
                    format!("steps[{i}].dependsOn[{j}]"),
                    format!("step {:?} depends on unknown step {}", s.id, shown(d)),
                ));
            }
        }
    }
    Ok(())
}

fn check_step_types(path: &str, s: &StepInfo) -> Result<(), ManifestError> {
    for (j, e) in s.entities.iter().enumerate() {
        let p = format!("{path}.entities[{j}]");
        check_text(
            &format!("{p}.resourceName"),
            &e.resource_name,
            caps::NAME_CHARS,
            true,
        )?;
        TYPE_GRAMMAR.check(&format!("{p}._type"), &e.type_name)?;
        ENTITY_CLASS_GRAMMAR.check(&format!("{p}._class"), &e.class_name)?;
    }
    for (j, r) in s.relationships.iter().enumerate() {
        let p = format!("{path}.relationships[{j}]");
        TYPE_GRAMMAR.check(&format!("{p}._type"), &r.type_name)?;
        RELATIONSHIP_CLASS_GRAMMAR.check(&format!("{p}._class"), &r.class_name)?;
        TYPE_GRAMMAR.check(&format!("{p}.sourceType"), &r.source_type)?;
        TARGET_TYPE_GRAMMAR.check(&format!("{p}.targetType"), &r.target_type)?;
    }
    Ok(())
}

/// The request must parse; templates are filled per instance, so here every non-secret
/// field stands in for a base URL of its own (`{{config.apiUrl}}*`) or, failing that, for
/// a host label (`https://{{config.subdomain}}.example.com/*`).
fn check_capabilities(m: &Manifest) -> Result<(), ManifestError> {
    let source = format!("manifest of plugin {}", m.id);
    let with = |value: &dyn Fn(&str) -> String| {
        let placeholders: BTreeMap<String, String> = m
            .config_fields
            .iter()
            .filter(|f| !f.secret)
            .map(|f| (f.name.clone(), value(&f.name.to_lowercase())))
            .collect();
        Policy::parse(&m.capabilities, &source, &placeholders).map(|_| ())
    };
    with(&|name| format!("https://{name}.invalid/"))
        .or_else(|first| with(&|name| format!("{name}-invalid")).map_err(|_| first))
        .map_err(|e| err("capabilities", e.to_string()))
}

/// The order steps can run in (Kahn's algorithm: no recursion, O(steps + edges)), or
/// an error naming a step on a cycle. Dependencies on unknown steps are ignored here.
pub fn topological_order(steps: &[StepInfo]) -> Result<Vec<usize>, ManifestError> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut waiting_on = vec![0usize; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                waiting_on[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| waiting_on[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &k in &dependents[i] {
            waiting_on[k] -= 1;
            if waiting_on[k] == 0 {
                ready.push(k);
            }
        }
    }
    match (0..steps.len()).find(|&i| waiting_on[i] > 0) {
        Some(blocked) => {
            let i = step_on_cycle(steps, &index, &waiting_on, blocked);
            Err(err(
                format!("steps[{i}].dependsOn"),
                format!("steps form a dependency cycle through {:?}", steps[i].id),
            ))
        }
        None => Ok(order),
    }
}

/// From a step that never became ready, follows unfinished dependencies until one
/// repeats: that one is on a cycle.
fn step_on_cycle(
    steps: &[StepInfo],
    index: &HashMap<&str, usize>,
    waiting_on: &[usize],
    mut i: usize,
) -> usize {
    let mut seen = vec![false; steps.len()];
    while !seen[i] {
        seen[i] = true;
        let next = steps[i]
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .find(|&j| waiting_on[j] > 0);
        match next {
            Some(j) => i = j,
            None => break,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> StepInfo {
        StepInfo {
            id: id.into(),
            name: format!("Step {id}"),
            entities: vec![EntityType {
                resource_name: "Thing".into(),
                type_name: "acme_thing".into(),
                class_name: "Resource".into(),
            }],
            relationships: vec![],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn manifest(steps: Vec<StepInfo>) -> Manifest {
        Manifest {
            id: "acme".into(),
            version: "1.0.0".into(),
            name: "Acme".into(),
            description: String::new(),
            config_fields: vec![ConfigField {
                name: "baseUrl".into(),
                secret: false,
                optional: false,
                description: String::new(),
                default: None,
            }],
            steps,
            capabilities: r#"{"permissions":[{"effect":"ALLOW","actions":["http:GET"],"resources":["{{config.baseUrl}}*"]}]}"#.into(),
        }
    }

    #[test]
    fn a_plain_manifest_passes() {
        let m = manifest(vec![step("fetch-a", &[]), step("fetch-b", &["fetch-a"])]);
        assert_eq!(check(&m), Ok(()));
        assert_eq!(topological_order(&m.steps), Ok(vec![0, 1]));
    }

    #[test]
    fn identifiers_that_would_reach_the_file_system_are_refused() {
        for bad in [
            "../../../x",
            "/etc/x",
            "a/b",
            "..",
            ".",
            "",
            "a\\b",
            "a b",
            "-x",
            "x\0",
        ] {
            let e = check(&manifest(vec![step(bad, &[])])).unwrap_err();
            assert_eq!(e.path, "steps[0].id", "{bad:?}: {e}");
            assert!(e.message.starts_with("step id "), "{e}");
        }
        let mut m = manifest(vec![step("ok", &[])]);
        m.steps[0].entities[0].type_name = "../victim".into();
        assert_eq!(check(&m).unwrap_err().path, "steps[0].entities[0]._type");
        let mut m = manifest(vec![step("ok", &[])]);
        m.id = "../kandji".into();
        assert_eq!(
            check(&m).unwrap_err().to_string(),
            "id: plugin id \"../kandji\" is refused: plugin id must be 1-64 characters of a-z, 0-9, '-', '_', starting with a letter or digit"
        );
        let mut m = manifest(vec![step("ok", &[])]);
        m.config_fields[0].name = "base Url".into();
        assert_eq!(check(&m).unwrap_err().path, "configFields[0].name");
    }

    #[test]
    fn templates_may_stand_for_a_base_url_or_a_host_label() {
        let mut m = manifest(vec![step("ok", &[])]);
        m.capabilities = r#"{"permissions":[{"effect":"ALLOW","actions":["http:GET"],"resources":["https://{{config.baseUrl}}.example.com/*"]}]}"#.into();
        assert_eq!(check(&m), Ok(()));
        m.capabilities = r#"{"permissions":[{"effect":"ALLOW","actions":["http:GET"],"resources":["{{config.nope}}*"]}]}"#.into();
        assert_eq!(check(&m).unwrap_err().path, "capabilities");
    }

    #[test]
    fn steps_differing_only_in_case_collide() {
        let e = check(&manifest(vec![step("Fetch", &[]), step("fetch", &[])])).unwrap_err();
        assert_eq!(e.path, "steps[1].id");
    }

    #[test]
    fn control_characters_in_shown_text_are_refused() {
        let mut m = manifest(vec![step("ok", &[])]);
        m.name = "Acme\n\u{1b}[32mkandji-prod succeeded".into();
        let e = check(&m).unwrap_err();
        assert_eq!(e.path, "name");
        assert!(e.message.contains("U+000A"), "{e}");
        let mut m = manifest(vec![step("ok", &[])]);
        m.steps[0].name = "a\u{7}".into();
        assert_eq!(check(&m).unwrap_err().path, "steps[0].name");
    }

    #[test]
    fn a_long_chain_is_ordered_without_recursion_and_a_huge_one_is_capped() {
        let chain: Vec<StepInfo> = (0..100_000)
            .map(|i| {
                let prev = format!("s{}", i.max(1) - 1);
                let deps: &[&str] = if i == 0 { &[] } else { &[prev.as_str()] };
                step(&format!("s{i}"), deps)
            })
            .collect();
        let order = topological_order(&chain).unwrap();
        assert_eq!(order.len(), 100_000);
        assert_eq!(order[0], 0);
        assert_eq!(order[99_999], 99_999);
        let e = check(&manifest(chain)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "steps: 100000 steps: at most 256 are allowed"
        );
    }

    #[test]
    fn a_cycle_is_named_by_a_step_on_it() {
        let steps = vec![
            step("a", &[]),
            step("b", &["c"]),
            step("c", &["b"]),
            step("d", &["b"]),
        ];
        let e = topological_order(&steps).unwrap_err();
        assert!(
            e.message.ends_with("cycle through \"c\"")
                || e.message.ends_with("cycle through \"b\""),
            "{e}"
        );
    }

    #[test]
    fn caps_on_edges_types_and_text() {
        let deps: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        let mut steps: Vec<StepInfo> = (0..65).map(|i| step(&format!("s{i}"), &[])).collect();
        steps.push(StepInfo {
            depends_on: deps,
            ..step("last", &[])
        });
        assert_eq!(
            check(&manifest(steps)).unwrap_err().path,
            "steps[65].dependsOn"
        );
        let mut m = manifest(vec![step("ok", &[])]);
        m.capabilities = " ".repeat(caps::CAPABILITIES_BYTES + 1);
        assert_eq!(check(&m).unwrap_err().path, "capabilities");
        let mut m = manifest(vec![step("ok", &[])]);
        m.description = "x".repeat(caps::MANIFEST_BYTES);
        assert_eq!(check(&m).unwrap_err().path, "$");
    }
}
