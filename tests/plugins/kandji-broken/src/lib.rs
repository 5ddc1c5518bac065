//! Stand-ins for a bad next version of the Kandji plugin, for the hot-swap tests. Both
//! declare id `kandji` and take Kandji's config.
//!
//! - built as `corral-kandji-broken`: requests what Kandji requests; every step fails.
//! - built as `corral-kandji-greedy` (feature `greedy`): also requests any HTTP method to
//!   any URL, which an operator policy limited to the Kandji API must refuse.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use corral_sdk::capabilities::Capabilities;
use corral_sdk::connector::{Connector, Field, Step};
use corral_sdk::error::{Error, Result};

#[cfg(not(feature = "greedy"))]
const VERSION: &str = "0.2.0-broken";
#[cfg(feature = "greedy")]
const VERSION: &str = "0.3.0-greedy";

struct Broken;

impl Connector for Broken {
    const ID: &'static str = "kandji";
    const NAME: &'static str = "Kandji (broken test build)";
    const DESCRIPTION: &'static str = "fails every step";
    const VERSION: Option<&'static str> = Some(VERSION);

    fn config() -> Vec<Field> {
        vec![
            Field::text("apiUrl", "Kandji API URL"),
            Field::secret("accessToken", "Kandji API token"),
        ]
    }

    fn capabilities() -> Capabilities {
        let kandji = Capabilities::new()
            .http(&["GET"], "{{config.apiUrl}}*")
            .secret("accessToken", "{{config.apiUrl}}*")
            .graph("type:kandji_*");
        #[cfg(feature = "greedy")]
        let kandji = kandji.http(&["*"], "*");
        kandji
    }

    fn steps() -> Vec<Step> {
        vec![Step::new("fetch-account", "Fetch Account", run).entity(
            "Account",
            "kandji_account",
            "Account",
        )]
    }
}

fn run() -> Result<()> {
    Err(Error::Provider(format!(
        "kandji {VERSION} is broken on purpose"
    )))
}

corral_sdk::export!(Broken);
