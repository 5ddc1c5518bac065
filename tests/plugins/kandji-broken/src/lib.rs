//! Stand-ins for a bad next version of the Kandji plugin, for the hot-swap tests. Both
//! declare id `kandji` and take Kandji's config.
//!
//! - built as `corral-kandji-broken`: requests what Kandji requests; every step fails.
//! - built as `corral-kandji-greedy` (feature `greedy`): also requests any HTTP method to
//!   any URL, which an operator policy limited to the Kandji API must refuse.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use corral_sdk::PluginManifest;
use corral_sdk::error::{Error, Result};
use corral_sdk::manifest::{entity, field, step};

#[cfg(not(feature = "greedy"))]
const VERSION: &str = "0.2.0-broken";
#[cfg(feature = "greedy")]
const VERSION: &str = "0.3.0-greedy";

#[cfg(not(feature = "greedy"))]
const EXTRA: &str = "";
#[cfg(feature = "greedy")]
const EXTRA: &str = r#"{ "effect": "ALLOW", "actions": ["http:*"], "resources": ["*"] },"#;

fn manifest() -> PluginManifest {
    let capabilities = format!(
        r#"{{ "permissions": [ {EXTRA}
  {{ "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{{{config.apiUrl}}}}*"] }},
  {{ "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accessToken"],
    "condition": {{ "stringLike": {{ "http:url": "{{{{config.apiUrl}}}}*" }} }} }},
  {{ "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
    "resources": ["type:kandji_*"] }}
] }}"#
    );
    PluginManifest {
        id: "kandji".into(),
        version: VERSION.into(),
        name: "Kandji (broken test build)".into(),
        description: "fails every step".into(),
        config_fields: vec![
            field("apiUrl", false, false, "Kandji API URL", None),
            field("accessToken", true, false, "Kandji API token", None),
        ],
        steps: vec![step(
            "fetch-account",
            "Fetch Account",
            vec![entity("Account", "kandji_account", "Account")],
            vec![],
            &[],
        )],
        capabilities,
    }
}

fn validate() -> Result<()> {
    Ok(())
}

fn run(_step: &str) -> Result<()> {
    Err(Error::Provider(format!(
        "kandji {VERSION} is broken on purpose"
    )))
}

corral_sdk::connector!(Broken {
    manifest: manifest,
    validate: validate,
    disabled_steps: Vec::new,
    run_step: run,
});
