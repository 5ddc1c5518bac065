//! What the SentinelOne plugin declares: config fields, steps with their handlers and
//! types, requested capabilities.

use crate::convert::{ACCOUNT_TYPE, AGENT_TYPE, GROUP_TYPE, PROTECTS_TYPE};
use crate::steps;
use corral_sdk::Result;
use corral_sdk::capabilities::{Capabilities, Limit};
use corral_sdk::connector::{Connector, Field, Step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_GROUPS: &str = "fetch-groups";
pub const FETCH_AGENTS: &str = "fetch-agents";

const API: &str = "{{config.serverUrl}}/web/api/v2.1/*";

pub struct SentinelOne;

impl Connector for SentinelOne {
    const ID: &'static str = "sentinelone";
    const NAME: &'static str = "SentinelOne";
    const DESCRIPTION: &'static str = "Account, groups and agents from a SentinelOne console";

    fn config() -> Vec<Field> {
        vec![
            Field::text(
                "serverUrl",
                "Management console URL, e.g. https://usea1-partners.sentinelone.net",
            ),
            Field::secret("apiToken", "API token (sent as `ApiToken …`)"),
        ]
    }

    /// GET to the console's API only; the token only to that API.
    fn capabilities() -> Capabilities {
        Capabilities::new()
            .http(&["GET"], API)
            .secret("apiToken", API)
            .graph("type:sentinelone_*")
            .limit(Limit::MaxConcurrentRequests, 4.0)
            // No published figure: the host's default rate, shared by the tenant's instances.
            .limit(Limit::RequestsPerMinute, 1_200.0)
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::new(FETCH_ACCOUNT, "Fetch Account", steps::fetch_account).entity(
                "Account",
                ACCOUNT_TYPE,
                "Account",
            ),
            Step::new(FETCH_GROUPS, "Fetch Groups", steps::fetch_groups)
                .entity("Group", GROUP_TYPE, "Group")
                .relationship("HAS", ACCOUNT_TYPE, GROUP_TYPE)
                .after(&[FETCH_ACCOUNT]),
            Step::new(FETCH_AGENTS, "Fetch Agents", steps::fetch_agents)
                .entity("Agent", AGENT_TYPE, "HostAgent")
                .relationship("HAS", GROUP_TYPE, AGENT_TYPE)
                .mapped(PROTECTS_TYPE, "PROTECTS", AGENT_TYPE, "user_endpoint")
                .after(&[FETCH_GROUPS]),
        ]
    }

    fn validate() -> Result<()> {
        steps::validate()
    }
}
