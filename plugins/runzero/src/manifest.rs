//! What the runZero plugin declares: config fields, steps and types, capabilities.

use crate::convert::{ACCOUNT_TYPE, ASSET_TYPE, ORG_TYPE, SITE_TYPE, USER_PERSON_TYPE, USER_TYPE};
use corral_sdk::PluginManifest;
use corral_sdk::manifest::{entity, field, mapped, relationship as rel, step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_ORGS: &str = "fetch-organization";
pub const FETCH_USERS: &str = "fetch-users";
pub const USER_ORG: &str = "build-user-organization-relationships";
pub const FETCH_SITES: &str = "fetch-sites";
pub const ORG_SITE: &str = "build-organization-site-relationships";
pub const SITE_ACCOUNT: &str = "build-site-account-relationships";
pub const FETCH_ASSETS: &str = "fetch-assets";
pub const SITE_ASSET: &str = "build-site-asset-relationships";

/// Steps that need the account API key: disabled in export-token mode.
pub const ACCOUNT_KEY_STEPS: &[&str] = &[FETCH_USERS, FETCH_ORGS, USER_ORG, ORG_SITE];

pub const DEFAULT_BASE_URL: &str = "https://console.runzero.com/api/v1.0";

/// GET to the console's API only; each credential only to it.
const CAPABILITIES: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.baseUrl}}/*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accountAPIKey", "secret:exportToken"],
      "condition": { "stringLike": { "http:url": "{{config.baseUrl}}/*" } } },
    { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
      "resources": ["type:rumble_*"] }
  ],
  "limits": { "maxConcurrentRequests": 4 }
}"#;

pub fn manifest() -> PluginManifest {
    let person = mapped(USER_PERSON_TYPE, "IS", USER_TYPE, "Person");
    PluginManifest {
        id: "runzero".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: "runZero".into(),
        description: "Account, organizations, sites, users and assets from runZero".into(),
        config_fields: vec![
            field(
                "accountAPIKey",
                true,
                true,
                "Account API key (all organizations); set this or exportToken",
                None,
            ),
            field(
                "exportToken",
                true,
                true,
                "One organization's export token; set this or accountAPIKey",
                None,
            ),
            field(
                "baseUrl",
                false,
                true,
                "API base URL of a self-hosted console",
                Some(DEFAULT_BASE_URL),
            ),
        ],
        steps: vec![
            step(
                FETCH_ACCOUNT,
                "Fetch Account Details",
                vec![entity("Account", ACCOUNT_TYPE, "Account")],
                vec![],
                &[],
            ),
            step(
                FETCH_ORGS,
                "Fetch Organizations Details",
                vec![entity("Organization", ORG_TYPE, "Organization")],
                vec![rel("HAS", ACCOUNT_TYPE, ORG_TYPE)],
                &[FETCH_ACCOUNT],
            ),
            step(
                FETCH_USERS,
                "Fetch User Details",
                vec![entity("User", USER_TYPE, "User")],
                vec![rel("HAS", ACCOUNT_TYPE, USER_TYPE), person],
                &[FETCH_ACCOUNT],
            ),
            step(
                USER_ORG,
                "Build User Organization Relationships",
                vec![],
                vec![rel("ASSIGNED", USER_TYPE, ORG_TYPE)],
                &[FETCH_USERS, FETCH_ORGS],
            ),
            step(
                FETCH_SITES,
                "Fetch Sites Details",
                vec![entity("Site", SITE_TYPE, "Site")],
                vec![],
                &[],
            ),
            step(
                ORG_SITE,
                "Build Organization Site Relationships",
                vec![],
                vec![rel("HAS", ORG_TYPE, SITE_TYPE)],
                &[FETCH_SITES, FETCH_ORGS],
            ),
            step(
                SITE_ACCOUNT,
                "Build Account Site Relationships",
                vec![],
                vec![rel("HAS", ACCOUNT_TYPE, SITE_TYPE)],
                &[FETCH_SITES, FETCH_ACCOUNT],
            ),
            step(
                FETCH_ASSETS,
                "Fetch Asset Details",
                vec![entity("Asset", ASSET_TYPE, "Device")],
                vec![],
                &[],
            ),
            step(
                SITE_ASSET,
                "Build Site Asset Relationships",
                vec![],
                vec![rel("HAS", SITE_TYPE, ASSET_TYPE)],
                &[FETCH_SITES, FETCH_ASSETS],
            ),
        ],
        capabilities: CAPABILITIES.into(),
    }
}
