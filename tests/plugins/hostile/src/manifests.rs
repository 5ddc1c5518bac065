//! Hostile manifests. A manifest is read with nothing granted and no config, so the
//! variant is chosen by bytes a test patches into the built component: the marker below
//! is kept whole in the data section, and `corral_e2e::hostile_variant` rewrites it to
//! `corral-hostile-manifest:<variant>` padded with dots to the same length.

use corral_sdk::{EntityType, PluginManifest, RelationshipType, Step};

#[used]
static VARIANT: [u8; 64] = *b"corral-hostile-manifest:default.................................";

fn variant() -> String {
    // Read through a volatile pointer so the optimiser cannot fold the default in.
    let bytes: [u8; 64] = unsafe { std::ptr::read_volatile(&VARIANT) };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let name = text
        .strip_prefix("corral-hostile-manifest:")
        .unwrap_or("default");
    name.trim_end_matches('.').to_string()
}

pub const CAPABILITIES: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.baseUrl}}*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:token"],
      "condition": { "stringLike": { "http:url": "{{config.baseUrl}}api/*" } } },
    { "effect": "ALLOW", "actions": ["graph:*"], "resources": ["type:hostile_*"] }
  ],
  "limits": { "memoryMiB": 32, "timeoutSeconds": 3, "maxResponseBytes": 1048576 }
}"#;

fn step(id: &str, depends_on: Vec<String>) -> Step {
    Step {
        id: id.into(),
        name: "Attack".into(),
        entities: vec![EntityType {
            resource_name: "Thing".into(),
            type_name: "hostile_thing".into(),
            class_name: "Resource".into(),
        }],
        relationships: vec![
            RelationshipType {
                type_name: "hostile_thing_has_thing".into(),
                class_name: "HAS".into(),
                source_type: "hostile_thing".into(),
                target_type: "hostile_thing".into(),
                mapped: false,
            },
            RelationshipType {
                type_name: "hostile_mapped".into(),
                class_name: "IS".into(),
                source_type: "hostile_thing".into(),
                target_type: "person".into(),
                mapped: true,
            },
        ],
        depends_on,
    }
}

fn limits(extra: &str) -> String {
    CAPABILITIES.replace(
        r#""maxResponseBytes": 1048576 }"#,
        &format!(r#""maxResponseBytes": 1048576, {extra} }}"#),
    )
}

/// The manifest of the variant patched in (`default` when none is).
pub fn manifest(base: PluginManifest) -> PluginManifest {
    let variant = variant();
    let mut m = PluginManifest {
        steps: vec![step("attack", vec![])],
        capabilities: CAPABILITIES.into(),
        ..base
    };
    match variant.as_str() {
        "step-traversal" => m.steps = vec![step("../../victim/graph/s", vec![])],
        "step-absolute" => m.steps = vec![step("/tmp/corral-hostile-abs", vec![])],
        "type-traversal" => m.steps[0].entities[0].type_name = "../../../x".into(),
        "chain" => {
            m.steps = (0..100_000)
                .map(|i| {
                    let deps = if i == 0 {
                        vec![]
                    } else {
                        vec![format!("s{}", i - 1)]
                    };
                    step(&format!("s{i}"), deps)
                })
                .collect()
        }
        "wide" => {
            m.steps = (0..64)
                .map(|i| step(&format!("attack-{i}"), vec![]))
                .collect();
            m.capabilities =
                limits(r#""timeoutSeconds": 120"#).replace(r#""timeoutSeconds": 3, "#, "");
        }
        "timeout-max" => m.capabilities = limits(r#""timeoutSeconds": 18446744073709551615"#),
        "concurrency-max" => {
            m.capabilities = limits(r#""maxConcurrentRequests": 18446744073709551615"#)
        }
        "rate-tiny" => m.capabilities = limits(r#""requestsPerSecond": 1e-30"#),
        // A default the operator never wrote: an operator rule `{{config.baseUrl}}*` that
        // took it would send the token to the plugin's own host.
        "default-base" => {
            for f in m.config_fields.iter_mut().filter(|f| f.name == "baseUrl") {
                f.optional = true;
                f.default_value = Some("http://evil.example/".into());
            }
        }
        // Asks for the metadata service and loopback by literal address, hoping no
        // operator policy stands in the way.
        "metadata" => {
            m.capabilities = CAPABILITIES.replace(
                r#"{ "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.baseUrl}}*"] },"#,
                r#"{ "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.baseUrl}}*", "http://169.254.169.254/*", "http://127.0.0.1:*/*"] },"#,
            )
        }
        "control-name" => m.name = "Hostile\n\u{1b}[32mkandji-beside succeeded".into(),
        _ => {}
    }
    m
}
