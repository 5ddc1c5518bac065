//! `corral sync`: upload an instance's last collected graph to JupiterOne.

use super::load_instance;
use crate::cli::oneshot::SyncTarget;
use crate::config::{CorralConfig, InstanceConfig};
use crate::delivery::jupiterone::JupiterOne;
use anyhow::Context as _;
use corral_core::text::escape_lines;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The JupiterOne client and each instance's integration instance id, or an error
/// naming what the config lacks.
pub fn sync_target(
    config: &CorralConfig,
    instances: &[&InstanceConfig],
) -> anyhow::Result<SyncTarget> {
    let path = config.path.display();
    let j1 = config.jupiterone.as_ref().with_context(|| {
        format!("{path}: syncing needs a [jupiterone] table (api_base_url, account, api_key)")
    })?;
    let client = JupiterOne::new(j1).with_context(|| path.to_string())?;
    let integration_instance_ids = instances
        .iter()
        .map(|i| {
            i.integration_instance_id.clone().with_context(|| {
                format!(
                    "{path}: instance {:?}: syncing needs integration_instance_id",
                    i.id
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(SyncTarget {
        client,
        integration_instance_ids,
    })
}

/// `corral sync`: exit 0 when the job was finalized, 1 when it was aborted.
pub async fn sync(path: &Path, id: &str, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    let inst = load_instance(&config, id)?;
    let target = sync_target(&config, &[inst])?;
    let dir = out.unwrap_or_else(|| config.data_dir.join("out")).join(id);
    let graph = crate::delivery::jupiterone::read_collected(&dir)?;
    match crate::delivery::sync::sync_collected(
        &target.client,
        &target.integration_instance_ids[0],
        graph,
    )
    .await
    {
        Ok(synced) => {
            println!("{id}: {}", synced.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "{}",
                escape_lines(&format!("error: {id}: sync failed: {e:#}"))
            );
            Ok(ExitCode::from(1))
        }
    }
}
