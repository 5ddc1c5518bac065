//! What the runZero plugin declares: config fields, steps with their handlers and types,
//! requested capabilities.

use crate::convert::{ACCOUNT_TYPE, ASSET_TYPE, ORG_TYPE, SITE_TYPE, USER_PERSON_TYPE, USER_TYPE};
use crate::steps;
use corral_sdk::Result;
use corral_sdk::capabilities::{Capabilities, Limit};
use corral_sdk::connector::{Connector, Field, Step};

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

const API: &str = "{{config.baseUrl}}/*";

pub struct RunZero;

impl Connector for RunZero {
    const ID: &'static str = "runzero";
    const NAME: &'static str = "runZero";
    const DESCRIPTION: &'static str =
        "Account, organizations, sites, users and assets from runZero";

    fn config() -> Vec<Field> {
        vec![
            Field::secret(
                "accountAPIKey",
                "Account API key (all organizations); set this or exportToken",
            )
            .optional(),
            Field::secret(
                "exportToken",
                "One organization's export token; set this or accountAPIKey",
            )
            .optional(),
            Field::text("baseUrl", "API base URL of a self-hosted console")
                .optional()
                .default(DEFAULT_BASE_URL),
        ]
    }

    /// GET to the console's API only; each credential only to it.
    fn capabilities() -> Capabilities {
        Capabilities::new()
            .http(&["GET"], API)
            .secret("accountAPIKey", API)
            .secret("exportToken", API)
            .graph("type:rumble_*")
            .limit(Limit::MaxConcurrentRequests, 4.0)
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::new(FETCH_ACCOUNT, "Fetch Account Details", steps::fetch_account).entity(
                "Account",
                ACCOUNT_TYPE,
                "Account",
            ),
            Step::new(FETCH_ORGS, "Fetch Organizations Details", steps::fetch_orgs)
                .entity("Organization", ORG_TYPE, "Organization")
                .relationship("HAS", ACCOUNT_TYPE, ORG_TYPE)
                .after(&[FETCH_ACCOUNT]),
            Step::new(FETCH_USERS, "Fetch User Details", steps::fetch_users)
                .entity("User", USER_TYPE, "User")
                .relationship("HAS", ACCOUNT_TYPE, USER_TYPE)
                .mapped(USER_PERSON_TYPE, "IS", USER_TYPE, "Person")
                .after(&[FETCH_ACCOUNT]),
            Step::new(
                USER_ORG,
                "Build User Organization Relationships",
                steps::build_user_orgs,
            )
            .relationship("ASSIGNED", USER_TYPE, ORG_TYPE)
            .after(&[FETCH_USERS, FETCH_ORGS]),
            Step::new(FETCH_SITES, "Fetch Sites Details", steps::fetch_sites)
                .entity("Site", SITE_TYPE, "Site"),
            Step::new(
                ORG_SITE,
                "Build Organization Site Relationships",
                steps::org_site,
            )
            .relationship("HAS", ORG_TYPE, SITE_TYPE)
            .after(&[FETCH_SITES, FETCH_ORGS]),
            Step::new(
                SITE_ACCOUNT,
                "Build Account Site Relationships",
                steps::build_account_sites,
            )
            .relationship("HAS", ACCOUNT_TYPE, SITE_TYPE)
            .after(&[FETCH_SITES, FETCH_ACCOUNT]),
            Step::new(FETCH_ASSETS, "Fetch Asset Details", steps::fetch_assets)
                .entity("Asset", ASSET_TYPE, "Device"),
            Step::new(
                SITE_ASSET,
                "Build Site Asset Relationships",
                steps::site_asset,
            )
            .relationship("HAS", SITE_TYPE, ASSET_TYPE)
            .after(&[FETCH_SITES, FETCH_ASSETS]),
        ]
    }

    fn validate() -> Result<()> {
        steps::validate()
    }

    fn disabled_steps() -> Vec<String> {
        steps::disabled_steps()
    }
}
