//! The `corral` command line: `run`, `demo`, `plugin inspect`, `simulate`.

use crate::config::CorralConfig;
use crate::output;
use crate::plugin::LoadedPlugin;
use crate::run::{self, RunReport};
use crate::runtime::Runtime;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "Runs graph-integration connectors as sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run instances once and write each one's graph to DIR/<id>/.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Run only these instances (default: all).
        #[arg(long = "instance")]
        instances: Vec<String>,
        /// Output directory (default: data_dir/out).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run as a service: instances on their schedules, plugins swapped as they are
    /// dropped into plugin_dir, and the admin API.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Address of the admin API, e.g. 127.0.0.1:7070 (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:7070")]
        admin: std::net::SocketAddr,
    },
    /// Start the built-in provider simulators and run the connectors against them.
    Demo {
        /// Output directory.
        #[arg(long, default_value = ".corral/out")]
        out: PathBuf,
        /// Simulated devices in the Kandji tenant.
        #[arg(long, default_value_t = 200)]
        devices: usize,
    },
    /// Plugin tools.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// What an instance's grant allows.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Serve a provider simulator on 127.0.0.1 until interrupted.
    Simulate {
        /// Provider: kandji, sentinelone, runzero or circleci.
        provider: String,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Devices (kandji) or agents (sentinelone).
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The token the simulator accepts.
        #[arg(long, default_value = "sim-token")]
        token: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// The effective grants and limits of an instance, in plain words.
    Explain {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        instance: String,
    },
    /// Allow or deny for one action on one resource, and the statement that decided.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        instance: String,
        /// e.g. http:GET, graph:EmitEntity, secret:Use
        action: String,
        /// e.g. https://host/path, type:kandji_device, secret:accessToken
        resource: String,
        /// The request URL, for `secret:Use` and conditions on `http:url`.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// The data-model tables (entities, relationships) in JupiterOne's docs format.
    Document {
        /// A .wasm file, or a plugin id.
        plugin: String,
        /// Also look in this config's plugin_dir.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manifest, steps, declared types and requested capabilities of a plugin.
    Inspect {
        /// A .wasm file, or a plugin id.
        plugin: String,
        /// Also look in this config's plugin_dir.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Run {
            config,
            instances,
            out,
        } => run_command(&config, &instances, out).await,
        Command::Serve { config, admin } => serve(&config, admin).await,
        Command::Demo { out, devices } => crate::demo::run_demo(&out, devices).await,
        Command::Plugin {
            command:
                PluginCommand::Inspect {
                    plugin,
                    config,
                    json,
                },
        } => inspect(&plugin, config.as_deref(), json).await,
        Command::Plugin {
            command: PluginCommand::Document { plugin, config },
        } => {
            let found = find_plugin(&plugin, config.as_deref()).await?;
            print!("{}", found.manifest.document());
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command: PolicyCommand::Explain { config, instance },
        } => {
            let (grant, plugin) = instance_grant(&config, &instance).await?;
            print!("{}", crate::explain::explain(&instance, &plugin, &grant));
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command:
                PolicyCommand::Check {
                    config,
                    instance,
                    action,
                    resource,
                    url,
                },
        } => {
            let (grant, _) = instance_grant(&config, &instance).await?;
            let url = url
                .map(|u| url::Url::parse(&u).with_context(|| format!("--url {u:?}")))
                .transpose()?;
            let d = crate::explain::check(&grant, &action, &resource, url.as_ref());
            let word = if d.allowed { "allow" } else { "deny" };
            println!("{word}: {action} {resource}: {}", d.rule);
            Ok(if d.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Simulate {
            provider,
            port,
            devices,
            seed,
            token,
        } => crate::demo::simulate(&provider, port, devices, seed, &token).await,
    }
}

/// `corral serve`: runs until SIGTERM or SIGINT, then drains runs in flight within
/// `serve.shutdown_grace_seconds` and exits 0; a second signal exits at once (status 1),
/// marking the runs still in flight failed.
async fn serve(path: &Path, admin: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = CorralConfig::load(path)?;
    let grace = std::time::Duration::from_secs(config.serve.shutdown_grace_seconds);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let handle = crate::serve::start(config, admin).await?;
    // Tools that start corral read this line for the bound address.
    println!("corral serve: admin API on http://{}", handle.admin_addr);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let daemon = handle.daemon.clone();
    eprintln!(
        "corral serve: stopping; waiting up to {} s for {} run(s) in flight (signal again to stop now)",
        grace.as_secs(),
        daemon.runs_in_flight()
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = daemon
            .history
            .fail_unfinished("corral was stopped by a second signal during the run");
        eprintln!("corral serve: second signal; exiting now");
        std::process::exit(1);
    });
    let report = handle.shutdown(grace).await;
    if report.abandoned > 0 {
        eprintln!(
            "corral serve: {} run(s) did not finish within {} s and were marked failed",
            report.abandoned,
            grace.as_secs()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A runtime with `plugin_dir` loaded; plugin files that fail are reported, not fatal.
pub async fn runtime_for(config: &CorralConfig) -> anyhow::Result<Runtime> {
    let rt = Runtime::new()?;
    if let Some(dir) = &config.plugin_dir {
        for failure in rt.load_plugin_dir(dir).await? {
            eprintln!("warning: plugin refused: {failure}");
        }
    }
    Ok(rt)
}

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
    let grant = run::build_grant(&plugin.manifest, &values, run::read_policy(inst)?)
        .with_context(context)?;
    let label = format!("{} {}", plugin.manifest.id, plugin.manifest.version);
    Ok((grant, label))
}

async fn run_command(
    path: &Path,
    only: &[String],
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    for id in only {
        if config.instance(id).is_none() {
            bail!("{}: no instance with id {id:?}", path.display());
        }
    }
    let selected: Vec<_> = config
        .instances
        .iter()
        .filter(|i| only.is_empty() || only.contains(&i.id))
        .collect();
    if selected.is_empty() {
        bail!("{}: no instances to run", path.display());
    }
    let rt = runtime_for(&config).await?;
    // Resolve every instance before running any, so bad input stops the run before
    // anything is written.
    let mut resolved = Vec::new();
    for inst in &selected {
        let plugin = rt
            .plugin(&inst.plugin)
            .await
            .with_context(|| format!("{}: instance {:?}", path.display(), inst.id))?;
        let r = run::resolve_instance(inst, plugin)
            .with_context(|| format!("{}: instance {:?}", path.display(), inst.id))?;
        resolved.push(r);
    }
    let out = out.unwrap_or_else(|| config.data_dir.join("out"));
    let reports = run_all(&rt, &resolved).await;
    report_all(&out, &reports)
}

/// Runs instances concurrently.
pub async fn run_all(rt: &Runtime, instances: &[run::ResolvedInstance]) -> Vec<RunReport> {
    futures::future::join_all(
        instances
            .iter()
            .map(|i| run::run_instance(i, rt.hosts.clone())),
    )
    .await
}

/// Writes each report (not when validation failed: nothing is presented as a result)
/// and prints its summary; exit status 0 only when every run succeeded.
pub fn report_all(out: &Path, reports: &[RunReport]) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    for report in reports {
        let dest = match report.validation {
            Ok(()) => Some(output::write_run(out, report)?),
            Err(_) => None,
        };
        print!("{}", output::console_summary(report, dest.as_deref()));
        ok &= report.succeeded();
    }
    if reports.len() > 1 {
        print!("\n{}", output::summary_table(reports));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A plugin by file path, or by id among the first-party ones and `plugin_dir`.
async fn find_plugin(target: &str, config: Option<&Path>) -> anyhow::Result<Arc<LoadedPlugin>> {
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

async fn inspect(target: &str, config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let plugin = find_plugin(target, config).await?;
    if json {
        let mut v = serde_json::to_value(&plugin.manifest)?;
        v["digest"] = plugin.digest.clone().into();
        v["source"] = plugin.source.to_string().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", describe_plugin(&plugin));
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest in plain words.
pub fn describe_plugin(p: &Arc<LoadedPlugin>) -> String {
    let m = &p.manifest;
    let mut s = format!(
        "{} {} ({})\n  {}\n  source: {}\n  sha256: {}\n",
        m.id, m.version, m.name, m.description, p.source, p.digest
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
    // Keep `{{config.X}}` visible: each field stands in for itself.
    let placeholders = m
        .config_fields
        .iter()
        .map(|f| (f.name.clone(), format!("{{{{config.{}}}}}", f.name)))
        .collect();
    match crate::policy::Policy::parse(&m.capabilities, "manifest", &placeholders) {
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
