//! What the Kandji plugin declares: config fields, steps and types, requested capabilities.

use crate::convert::{ACCOUNT_TYPE, APP_TYPE, DEVICE_TYPE, USER_TYPE};
use corral_sdk::PluginManifest;
use corral_sdk::manifest::{entity, field, relationship, step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_DEVICES: &str = "fetch-devices";
pub const FETCH_DEVICE_APPS: &str = "fetch-device-apps";
pub const FETCH_DEVICE_USERS: &str = "fetch-device-users";

/// HTTPS-or-HTTP GET to the configured API only; the token only to that API.
const CAPABILITIES: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.apiUrl}}*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accessToken"],
      "condition": { "stringLike": { "http:url": "{{config.apiUrl}}*" } } },
    { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
      "resources": ["type:kandji_*"] }
  ],
  "limits": { "requestsPerSecond": 50, "maxConcurrentRequests": 8 }
}"#;

pub fn manifest() -> PluginManifest {
    PluginManifest {
        id: "kandji".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: "Kandji".into(),
        description: "Devices, apps and users from the Kandji Apple MDM API".into(),
        config_fields: vec![
            field(
                "apiUrl",
                false,
                false,
                "Organisation API URL, e.g. https://acme.api.kandji.io/api/v1/",
                None,
            ),
            field(
                "accessToken",
                true,
                false,
                "Kandji API token (bearer)",
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
                FETCH_DEVICES,
                "Fetch Devices",
                vec![entity("Device", DEVICE_TYPE, "Device")],
                vec![relationship("HAS", ACCOUNT_TYPE, DEVICE_TYPE)],
                &[FETCH_ACCOUNT],
            ),
            step(
                FETCH_DEVICE_APPS,
                "Fetch Device Apps",
                vec![entity("App", APP_TYPE, "Application")],
                vec![relationship("HAS", DEVICE_TYPE, APP_TYPE)],
                &[FETCH_DEVICES],
            ),
            step(
                FETCH_DEVICE_USERS,
                "Fetch Device Users",
                vec![entity("User", USER_TYPE, "User")],
                vec![relationship("HAS", DEVICE_TYPE, USER_TYPE)],
                &[FETCH_DEVICES],
            ),
        ],
        capabilities: CAPABILITIES.into(),
    }
}
