//! What the SentinelOne plugin declares: config fields, steps and types, capabilities.

use crate::convert::{ACCOUNT_TYPE, AGENT_TYPE, GROUP_TYPE, PROTECTS_TYPE};
use corral_sdk::PluginManifest;
use corral_sdk::manifest::{entity, field, mapped, relationship, step};

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

pub fn manifest() -> PluginManifest {
    let protects = mapped(PROTECTS_TYPE, "PROTECTS", AGENT_TYPE, "user_endpoint");
    PluginManifest {
        id: "sentinelone".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: "SentinelOne".into(),
        description: "Account, groups and agents from a SentinelOne console".into(),
        config_fields: vec![
            field(
                "serverUrl",
                false,
                false,
                "Management console URL, e.g. https://usea1-partners.sentinelone.net",
                None,
            ),
            field(
                "apiToken",
                true,
                false,
                "API token (sent as `ApiToken …`)",
                None,
            ),
        ],
        steps: vec![
            step(
                FETCH_ACCOUNT,
                "Fetch Account",
                vec![entity("Account", ACCOUNT_TYPE, "Account")],
                vec![],
                &[],
            ),
            step(
                FETCH_GROUPS,
                "Fetch Groups",
                vec![entity("Group", GROUP_TYPE, "Group")],
                vec![relationship("HAS", ACCOUNT_TYPE, GROUP_TYPE)],
                &[FETCH_ACCOUNT],
            ),
            step(
                FETCH_AGENTS,
                "Fetch Agents",
                vec![entity("Agent", AGENT_TYPE, "HostAgent")],
                vec![relationship("HAS", GROUP_TYPE, AGENT_TYPE), protects],
                &[FETCH_GROUPS],
            ),
        ],
        capabilities: CAPABILITIES.into(),
    }
}
