//! `corral demo`: the built-in simulators on loopback, the first-party connectors run
//! against them at once under the demo policies, the graph written, a readable summary.

use crate::config::{ConfigValue, InstanceConfig, PollingInterval};
use crate::delivery::Delivery;
use crate::delivery::history::History;
use crate::plugin::runtime::Runtime;
use crate::run::resolve_with_policy;
use corral_simulators::SimServer;
use corral_simulators::circleci::{self, CircleCiConfig, CircleCiSim};
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use corral_simulators::runzero::{self, RunZeroConfig, RunZeroSim};
use corral_simulators::sentinelone::{SentinelOneConfig, SentinelOneSim};
use std::path::Path;
use std::process::ExitCode;

/// The operator policies the demo runs the connectors under.
pub const KANDJI_DEMO_POLICY: &str = include_str!("../../demo/kandji-policy.json");
pub const SENTINELONE_DEMO_POLICY: &str = include_str!("../../demo/sentinelone-policy.json");
pub const RUNZERO_DEMO_POLICY: &str = include_str!("../../demo/runzero-policy.json");
pub const CIRCLECI_DEMO_POLICY: &str = include_str!("../../demo/circleci-policy.json");

/// One demo instance: its plugin, policy and config.
struct Demo {
    id: &'static str,
    plugin: &'static str,
    policy: (&'static str, &'static str),
    config: Vec<(&'static str, String)>,
}

impl Demo {
    fn instance(&self) -> InstanceConfig {
        InstanceConfig {
            id: self.id.into(),
            name: format!("Demo {}", self.plugin),
            description: Some(format!("{} simulator on loopback", self.plugin)),
            plugin: self.plugin.into(),
            policy: None,
            polling_interval: PollingInterval::Disabled,
            polling_interval_seconds: None,
            integration_instance_id: None,
            tag_account_name: false,
            config: self
                .config
                .iter()
                .map(|(k, v)| (k.to_string(), ConfigValue::Text(v.clone())))
                .collect(),
        }
    }
}

/// The four simulators on loopback with the demo instances pointed at them. Dropping
/// it stops the simulators.
pub struct DemoTenants {
    _servers: Vec<SimServer>,
    demos: Vec<Demo>,
    /// What `corral demo` prints about the simulators.
    pub summary: String,
}

/// One demo instance with its operator policy (text, source name).
pub struct DemoInstance {
    pub config: InstanceConfig,
    pub policy: (&'static str, &'static str),
}

impl DemoTenants {
    /// Starts the simulators (`devices` Kandji devices, the others at their defaults).
    pub async fn start(devices: usize) -> anyhow::Result<Self> {
        let kandji_config = KandjiConfig {
            devices,
            ..KandjiConfig::default()
        };
        let kandji_server = KandjiSim::new(&kandji_config).start(0).await?;
        let s1_config = SentinelOneConfig::default();
        let s1_server = SentinelOneSim::new(&s1_config).start(0).await?;
        let rz_config = RunZeroConfig::default();
        let rz_server = RunZeroSim::new(&rz_config).start(0).await?;
        let cci_config = CircleCiConfig::default();
        let cci = CircleCiSim::new(&cci_config);
        let cci_server = cci.start(0).await?;
        let summary = format!(
            "corral demo: simulators on loopback\n  kandji       {} ({devices} devices)\n  sentinelone  {} ({} groups, {} agents)\n  runzero      {} ({} organizations, {} assets per site)\n  circleci     {} ({} pipelines)\n",
            kandji_server.origin(),
            s1_server.origin(),
            s1_config.groups,
            s1_config.agents,
            rz_server.origin(),
            rz_config.orgs,
            rz_config.assets_per_site,
            cci_server.origin(),
            cci.pipelines.len()
        );
        let demos = [
            Demo {
                id: "kandji-demo",
                plugin: "kandji",
                policy: (KANDJI_DEMO_POLICY, "demo policy kandji-policy.json"),
                config: vec![
                    (
                        "apiUrl",
                        format!("{}{}", kandji_server.origin(), kandji::API_PREFIX),
                    ),
                    ("accessToken", kandji_config.token.clone()),
                ],
            },
            Demo {
                id: "sentinelone-demo",
                plugin: "sentinelone",
                policy: (
                    SENTINELONE_DEMO_POLICY,
                    "demo policy sentinelone-policy.json",
                ),
                config: vec![
                    ("serverUrl", s1_server.origin()),
                    ("apiToken", s1_config.token.clone()),
                ],
            },
            Demo {
                id: "runzero-demo",
                plugin: "runzero",
                policy: (RUNZERO_DEMO_POLICY, "demo policy runzero-policy.json"),
                config: vec![
                    (
                        "baseUrl",
                        format!("{}{}", rz_server.origin(), runzero::API_PREFIX),
                    ),
                    ("accountAPIKey", rz_config.account_key.clone()),
                ],
            },
            Demo {
                id: "circleci-demo",
                plugin: "circleci",
                policy: (CIRCLECI_DEMO_POLICY, "demo policy circleci-policy.json"),
                config: vec![
                    (
                        "baseUrl",
                        format!("{}{}", cci_server.origin(), circleci::API_PREFIX),
                    ),
                    ("apiKey", cci_config.token.clone()),
                    ("login", "octocat".into()),
                    ("userId", cci.me["id"].as_str().unwrap_or_default().into()),
                ],
            },
        ];
        Ok(DemoTenants {
            _servers: vec![kandji_server, s1_server, rz_server, cci_server],
            demos: demos.into(),
            summary,
        })
    }

    pub fn instances(&self) -> Vec<DemoInstance> {
        self.demos
            .iter()
            .map(|d| DemoInstance {
                config: d.instance(),
                policy: d.policy,
            })
            .collect()
    }
}

pub async fn run_demo(out: &Path, data_dir: &Path, devices: usize) -> anyhow::Result<ExitCode> {
    let rt = Runtime::new()?;
    let tenants = DemoTenants::start(devices).await?;
    print!("{}", tenants.summary);
    let mut resolved = Vec::new();
    for d in tenants.instances() {
        let plugin = rt.plugin(&d.config.plugin).await?;
        let policy = Some((d.policy.0.to_string(), d.policy.1.to_string()));
        resolved.push(resolve_with_policy(&d.config, plugin, policy)?);
    }
    println!();
    let (history, _) = History::open(data_dir)?;
    let delivery = Delivery::open(data_dir, out.to_path_buf(), Vec::new(), rt.hosts.clone())?;
    crate::cli::oneshot::run_and_report(&rt, &mut resolved, &history, &delivery, None).await
}
