//! `corral demo`: the built-in simulators on loopback, the first-party connectors run
//! against them under the demo policies, the graph written, a readable summary.

use crate::cli::{report_all, run_all};
use crate::config::{ConfigValue, InstanceConfig, PollingInterval};
use crate::run::resolve_with_policy;
use crate::runtime::Runtime;
use anyhow::bail;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The operator policy the demo runs the Kandji connector under.
pub const KANDJI_DEMO_POLICY: &str = include_str!("../demo/kandji-policy.json");

pub async fn run_demo(out: &Path, devices: usize) -> anyhow::Result<ExitCode> {
    let rt = Runtime::new()?;
    let sim_config = KandjiConfig {
        devices,
        ..KandjiConfig::default()
    };
    let sim = KandjiSim::new(&sim_config);
    let server = sim.start(0).await?;
    let instance = InstanceConfig {
        id: "kandji-demo".into(),
        name: "Demo Kandji".into(),
        description: Some("Kandji simulator on loopback".into()),
        plugin: "kandji".into(),
        policy: None,
        polling_interval: PollingInterval::Disabled,
        tag_account_name: false,
        config: BTreeMap::from([
            (
                "apiUrl".into(),
                ConfigValue::Text(format!("{}{API_PREFIX}", server.origin())),
            ),
            (
                "accessToken".into(),
                ConfigValue::Text(sim_config.token.clone()),
            ),
        ]),
    };
    println!(
        "corral demo: Kandji simulator with {devices} devices on {}",
        server.origin()
    );
    let plugin = rt.plugin("kandji").await?;
    let policy = Some((
        KANDJI_DEMO_POLICY.to_string(),
        "demo policy kandji-policy.json".to_string(),
    ));
    let resolved = vec![resolve_with_policy(&instance, plugin, policy)?];
    let reports = run_all(&rt, &resolved).await;
    println!("simulator saw {} requests\n", server.requests().len());
    report_all(out, &reports)
}

/// `corral simulate`: serves a simulator until Ctrl-C.
pub async fn simulate(
    provider: &str,
    port: u16,
    devices: usize,
    seed: u64,
    token: &str,
) -> anyhow::Result<ExitCode> {
    if provider != "kandji" {
        bail!("unknown provider {provider:?} (available: kandji)");
    }
    let sim = KandjiSim::new(&KandjiConfig {
        seed,
        devices,
        token: token.into(),
    });
    let server = sim.start(port).await?;
    println!(
        "kandji simulator: apiUrl {}{API_PREFIX} ({devices} devices, seed {seed}); Ctrl-C stops it",
        server.origin()
    );
    tokio::signal::ctrl_c().await?;
    println!("served {} requests", server.requests().len());
    Ok(ExitCode::SUCCESS)
}
