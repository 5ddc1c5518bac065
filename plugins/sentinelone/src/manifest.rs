//! What the SentinelOne plugin declares: config fields, steps and types, capabilities.

use crate::convert::{ACCOUNT_TYPE, AGENT_TYPE, GROUP_TYPE, PROTECTS_TYPE};
use corral_sdk::entity::relationship_type;
use corral_sdk::{ConfigField, EntityType, PluginManifest, RelationshipType, Step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_GROUPS: &str = "fetch-groups";
pub const FETCH_AGENTS: &str = "fetch-agents";

/// GET to the console's API only; the token only to that API.
const CAPABILITIES: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.serverUrl}}/web/api/v2.1/*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:apiToken"],
      "condition": { "stringLike": { "http:url": "{{config.serverUrl}}/web/api/v2.1/*" } } },
    { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
      "resources": ["type:sentinelone_*"] }
  ],
  "limits": { "maxConcurrentRequests": 4 }
}"#;

fn entity(resource: &str, type_name: &str, class: &str) -> EntityType {
    EntityType {
        resource_name: resource.into(),
        type_name: type_name.into(),
        class_name: class.into(),
    }
}

fn has(source: &str, target: &str) -> RelationshipType {
    RelationshipType {
        type_name: relationship_type("HAS", source, target),
        class_name: "HAS".into(),
        source_type: source.into(),
        target_type: target.into(),
        mapped: false,
    }
}

pub fn manifest() -> PluginManifest {
    PluginManifest {
        id: "sentinelone".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: "SentinelOne".into(),
        description: "Account, groups and agents from a SentinelOne console".into(),
        config_fields: vec![
            ConfigField {
                name: "serverUrl".into(),
                secret: false,
                optional: false,
                description: "Management console URL, e.g. https://usea1-partners.sentinelone.net"
                    .into(),
                default_value: None,
            },
            ConfigField {
                name: "apiToken".into(),
                secret: true,
                optional: false,
                description: "API token (sent as `ApiToken …`)".into(),
                default_value: None,
            },
        ],
        steps: vec![
            Step {
                id: FETCH_ACCOUNT.into(),
                name: "Fetch Account".into(),
                entities: vec![entity("Account", ACCOUNT_TYPE, "Account")],
                relationships: vec![],
                depends_on: vec![],
            },
            Step {
                id: FETCH_GROUPS.into(),
                name: "Fetch Groups".into(),
                entities: vec![entity("Group", GROUP_TYPE, "Group")],
                relationships: vec![has(ACCOUNT_TYPE, GROUP_TYPE)],
                depends_on: vec![FETCH_ACCOUNT.into()],
            },
            Step {
                id: FETCH_AGENTS.into(),
                name: "Fetch Agents".into(),
                entities: vec![entity("Agent", AGENT_TYPE, "HostAgent")],
                relationships: vec![
                    has(GROUP_TYPE, AGENT_TYPE),
                    RelationshipType {
                        type_name: PROTECTS_TYPE.into(),
                        class_name: "PROTECTS".into(),
                        source_type: AGENT_TYPE.into(),
                        target_type: "user_endpoint".into(),
                        mapped: true,
                    },
                ],
                depends_on: vec![FETCH_GROUPS.into()],
            },
        ],
        capabilities: CAPABILITIES.into(),
    }
}
