//! What the Kandji plugin declares: config fields, steps with their handlers and types,
//! requested capabilities.

use crate::convert::{ACCOUNT_TYPE, APP_TYPE, DEVICE_TYPE, USER_TYPE};
use crate::steps;
use corral_sdk::Result;
use corral_sdk::capabilities::{Capabilities, Limit};
use corral_sdk::connector::{Connector, Field, Step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_DEVICES: &str = "fetch-devices";
pub const FETCH_DEVICE_APPS: &str = "fetch-device-apps";
pub const FETCH_DEVICE_USERS: &str = "fetch-device-users";

pub struct Kandji;

impl Connector for Kandji {
    const ID: &'static str = "kandji";
    const NAME: &'static str = "Kandji";
    const DESCRIPTION: &'static str = "Devices, apps and users from the Kandji Apple MDM API";

    fn config() -> Vec<Field> {
        vec![
            Field::text(
                "apiUrl",
                "Organisation API URL, e.g. https://acme.api.kandji.io/api/v1/",
            ),
            Field::secret("accessToken", "Kandji API token (bearer)"),
            Field::text(
                "incremental",
                "\"true\": a device whose list entry is unchanged since the previous run is taken from the previous graph, its details and apps not fetched again",
            )
            .optional()
            .default("false"),
        ]
    }

    /// GET to the configured API only; the token only to that API.
    fn capabilities() -> Capabilities {
        let capabilities = Capabilities::new()
            .http(&["GET"], "{{config.apiUrl}}*")
            .secret("accessToken", "{{config.apiUrl}}*")
            .graph("type:kandji_*")
            .limit(Limit::MaxConcurrentRequests, 8.0);
        if cfg!(feature = "unthrottled") {
            return capabilities;
        }
        capabilities
            .limit(Limit::RequestsPerSecond, 50.0)
            .limit(Limit::RequestsPerHour, 10_000.0)
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::new(FETCH_ACCOUNT, "Fetch Account", steps::fetch_account).entity(
                "Account",
                ACCOUNT_TYPE,
                "Account",
            ),
            Step::new(FETCH_DEVICES, "Fetch Devices", steps::fetch_devices)
                .entity("Device", DEVICE_TYPE, "Device")
                .relationship("HAS", ACCOUNT_TYPE, DEVICE_TYPE)
                .after(&[FETCH_ACCOUNT]),
            Step::new(
                FETCH_DEVICE_APPS,
                "Fetch Device Apps",
                steps::fetch_device_apps,
            )
            .entity("App", APP_TYPE, "Application")
            .relationship("HAS", DEVICE_TYPE, APP_TYPE)
            .after(&[FETCH_DEVICES]),
            Step::new(
                FETCH_DEVICE_USERS,
                "Fetch Device Users",
                steps::fetch_device_users,
            )
            .entity("User", USER_TYPE, "User")
            .relationship("HAS", DEVICE_TYPE, USER_TYPE)
            .after(&[FETCH_DEVICES]),
        ]
    }

    fn validate() -> Result<()> {
        steps::validate()
    }
}
