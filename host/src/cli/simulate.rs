//! `corral simulate`: one provider simulator on loopback until Ctrl-C.

use anyhow::bail;
use corral_simulators::SimServer;
use corral_simulators::circleci::{self, CircleCiConfig, CircleCiSim};
use corral_simulators::jupiterone::{MockPersister, PersisterConfig};
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use corral_simulators::runzero::{self, RunZeroConfig, RunZeroSim};
use corral_simulators::sentinelone::{SentinelOneConfig, SentinelOneSim};
use std::process::ExitCode;

/// `corral simulate`: serves a simulator until Ctrl-C.
pub async fn simulate(
    provider: &str,
    port: u16,
    size: usize,
    seed: u64,
    token: &str,
    latency: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let (server, what): (SimServer, String) = match provider {
        "kandji" => {
            let sim = KandjiSim::new(&KandjiConfig {
                seed,
                devices: size,
                token: token.into(),
            });
            let server = sim.start(port).await?;
            let what = format!(
                "apiUrl {}{} ({size} devices)",
                server.origin(),
                kandji::API_PREFIX
            );
            (server, what)
        }
        "sentinelone" => {
            let sim = SentinelOneSim::new(&SentinelOneConfig {
                seed,
                groups: size.div_ceil(10),
                agents: size,
                token: token.into(),
            });
            let server = sim.start(port).await?;
            let what = format!("serverUrl {} ({size} agents)", server.origin());
            (server, what)
        }
        "runzero" => {
            let sim = RunZeroSim::new(&RunZeroConfig {
                seed,
                assets_per_site: size / 6,
                account_key: token.into(),
                ..RunZeroConfig::default()
            });
            let server = sim.start(port).await?;
            let what = format!(
                "baseUrl {}{} (accountAPIKey is the token)",
                server.origin(),
                runzero::API_PREFIX
            );
            (server, what)
        }
        "circleci" => {
            let sim = CircleCiSim::new(&CircleCiConfig {
                seed,
                pipelines_per_org: size.max(1),
                token: token.into(),
                ..CircleCiConfig::default()
            });
            let server = sim.start(port).await?;
            let what = format!(
                "baseUrl {}{} (login octocat, userId {})",
                server.origin(),
                circleci::API_PREFIX,
                sim.me["id"]
            );
            (server, what)
        }
        "jupiterone" => {
            let mock = MockPersister::new(PersisterConfig {
                api_key: token.into(),
                ..PersisterConfig::default()
            });
            let server = mock.start(port).await?;
            let what = format!(
                "api_base_url {}, account {:?} (api_key is the token)",
                server.origin(),
                mock.config.account
            );
            (server, what)
        }
        other => bail!(
            "unknown provider {other:?} (available: kandji, sentinelone, runzero, circleci, jupiterone)"
        ),
    };
    server.set_delay(latency);
    println!("{provider} simulator: {what}, seed {seed}, token {token:?}; Ctrl-C stops it");
    tokio::signal::ctrl_c().await?;
    println!("served {} requests", server.requests().len());
    Ok(ExitCode::SUCCESS)
}
