//! `corral policy explain` and `corral policy check`: an instance's grant in plain
//! words, or one decision with the rule that made it.

use super::runtime_for;
use crate::config::CorralConfig;
use crate::run;
use anyhow::Context;
use corral_core::text::escape_lines;
use std::path::Path;
use std::process::ExitCode;

/// The grant of one instance, built without reading its secrets.
async fn instance_grant(path: &Path, id: &str) -> anyhow::Result<(crate::policy::Grant, String)> {
    let config = CorralConfig::load(path)?;
    let inst = config
        .instance(id)
        .with_context(|| format!("{}: no instance with id {id:?}", path.display()))?;
    let rt = runtime_for(&config).await?;
    let context = || format!("{}: instance {id:?}", path.display());
    let plugin = rt.plugin(&inst.plugin).await.with_context(context)?;
    let (values, _) =
        run::split_config(inst, &plugin.manifest, run::Secrecy::Skip).with_context(context)?;
    let operator_set = run::operator_values(inst, &values);
    let grant = run::build_grant(
        &plugin.manifest,
        &values,
        &operator_set,
        run::read_policy(inst)?,
    )
    .with_context(context)?;
    let label = format!("{} {}", plugin.manifest.id, plugin.manifest.version);
    Ok((grant, label))
}

/// `corral policy explain`: what the instance may do, in plain words.
pub async fn explain(config: &Path, instance: &str) -> anyhow::Result<ExitCode> {
    let (grant, plugin) = instance_grant(config, instance).await?;
    print!(
        "{}",
        escape_lines(&crate::explain::explain(instance, &plugin, &grant))
    );
    Ok(ExitCode::SUCCESS)
}

/// `corral policy check`: one decision and its rule; exit status 1 when denied.
pub async fn check(
    config: &Path,
    instance: &str,
    action: &str,
    resource: &str,
    url: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (grant, _) = instance_grant(config, instance).await?;
    let url = url
        .map(|u| url::Url::parse(&u).with_context(|| format!("--url {u:?}")))
        .transpose()?;
    let d = crate::explain::check(&grant, action, resource, url.as_ref());
    let word = if d.allowed { "allow" } else { "deny" };
    println!(
        "{}",
        escape_lines(&format!("{word}: {action} {resource}: {}", d.rule))
    );
    Ok(if d.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
