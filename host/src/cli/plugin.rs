//! `corral plugin inspect` and `corral plugin document`: a plugin's manifest, WIT
//! version and what built it, in plain words or as JSON.

use super::runtime_for;
use crate::config::CorralConfig;
use crate::plugin::LoadedPlugin;
use crate::plugin::runtime::Runtime;
use corral_core::text::escape_lines;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// A plugin by file path, or by id among the first-party ones and `plugin_dir`.
pub async fn find_plugin(target: &str, config: Option<&Path>) -> anyhow::Result<Arc<LoadedPlugin>> {
    let path = Path::new(target);
    if path.exists() {
        return Ok(Runtime::new()?.load_file(path).await?);
    }
    let rt = match config {
        Some(c) => runtime_for(&CorralConfig::load(c)?).await?,
        None => Runtime::new()?,
    };
    rt.plugin(target).await
}

pub async fn inspect(target: &str, config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let plugin = find_plugin(target, config).await?;
    if json {
        let mut v = serde_json::to_value(&plugin.manifest)?;
        v["digest"] = plugin.digest.clone().into();
        v["source"] = plugin.source.to_string().into();
        v["wit"] = plugin.guest.version.package().into();
        v["builtWith"] = plugin.built_with.clone().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", escape_lines(&describe_plugin(&plugin)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest in plain words.
pub fn describe_plugin(p: &Arc<LoadedPlugin>) -> String {
    let m = &p.manifest;
    let mut s = format!(
        "{} {} ({})\n  {}\n  source: {}\n  sha256: {}\n  wit: {}\n  built with: {}\n",
        m.id,
        m.version,
        m.name,
        m.description,
        p.source,
        p.digest,
        p.guest.version.package(),
        p.built_with.as_deref().unwrap_or("(not stated)")
    );
    s.push_str("\nconfig fields:\n");
    for f in &m.config_fields {
        let tags = [(f.secret, "secret"), (f.optional, "optional")];
        let tags: Vec<&str> = tags.iter().filter(|(on, _)| *on).map(|(_, t)| *t).collect();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", tags.join(", "))
        };
        s.push_str(&format!("  {}{tags}: {}\n", f.name, f.description));
    }
    s.push_str("\nsteps:\n");
    for st in &m.steps {
        let deps = if st.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", st.depends_on.join(", "))
        };
        s.push_str(&format!("  {} \"{}\"{deps}\n", st.id, st.name));
        for e in &st.entities {
            s.push_str(&format!("    entity {} ({})\n", e.type_name, e.class_name));
        }
        for r in &st.relationships {
            let mapped = if r.mapped { " mapped" } else { "" };
            s.push_str(&format!(
                "    relationship {}: {} {} {}{mapped}\n",
                r.type_name, r.source_type, r.class_name, r.target_type
            ));
        }
    }
    s.push_str(
        "\nrequested capabilities (the grant is this intersected with the operator's policy):\n",
    );
    // Keep `{{config.X}}` visible.
    match crate::policy::Policy::parse_untemplated(&m.capabilities, "manifest") {
        Ok(p) => {
            s.push_str(&crate::explain::describe_policy(&p));
            let limits = crate::policy::Limits::effective(&p.limits, None);
            s.push_str("limits if the operator sets none:\n");
            s.push_str(&crate::explain::describe_limits(&limits));
        }
        Err(e) => s.push_str(&format!("  (unreadable: {e})\n")),
    }
    s
}

/// `corral plugin document`: the manifest as the reference integration's docs table.
pub async fn document(target: &str, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let found = find_plugin(target, config).await?;
    print!("{}", escape_lines(&found.manifest.document()));
    Ok(ExitCode::SUCCESS)
}
