//! The `corral` command line: `run`, `serve`, `demo`, `sync`, `changes`, `query`,
//! `plugin`, `policy`, `simulate`.

use crate::config::CorralConfig;
use crate::deliver::Delivery;
use crate::history::History;
use crate::oneshot;
use crate::plugin::LoadedPlugin;
use crate::run;
use crate::runtime::Runtime;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use corral_core::text::escape_lines;
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
        /// Also upload each graph to JupiterOne while it runs ([jupiterone] and the
        /// instance's integration_instance_id).
        #[arg(long)]
        sync: bool,
    },
    /// Upload an instance's last collected graph to JupiterOne.
    Sync {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        instance: String,
        /// Where `corral run` wrote it (default: data_dir/out).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// What changed in an instance's graph in its last run, or in RUN.
    Changes {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        instance: String,
        /// A run id (`run-<n>`).
        #[arg(long)]
        run: Option<String>,
        /// Print changes.json as it was written.
        #[arg(long)]
        json: bool,
    },
    /// Objects in the local graph state, filtered.
    Query {
        #[arg(long)]
        config: PathBuf,
        /// Only this instance's objects.
        #[arg(long)]
        instance: Option<String>,
        /// A `_type` glob, e.g. rumble_asset or kandji_*.
        #[arg(long = "type")]
        type_glob: Option<String>,
        /// PROPERTY OP VALUE with OP one of = != ~ < <= > >= (repeat: all must hold).
        #[arg(long = "where")]
        filters: Vec<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
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
        /// Where the graph state and run history are kept.
        #[arg(long, default_value = ".corral")]
        data_dir: PathBuf,
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
        /// kandji, sentinelone, runzero, circleci, or jupiterone (a mock persister).
        provider: String,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Devices (kandji) or agents (sentinelone).
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The token the simulator accepts (for jupiterone, the API key).
        #[arg(long, default_value = "sim-token")]
        token: String,
        /// Milliseconds every response waits before it is sent (a slow provider).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
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
            eprintln!("error: {}", escape_lines(&format!("{e:#}")));
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
            sync,
        } => run_command(&config, &instances, out, sync).await,
        Command::Sync {
            config,
            instance,
            out,
        } => crate::graph_commands::sync(&config, &instance, out).await,
        Command::Changes {
            config,
            instance,
            run,
            json,
        } => crate::graph_commands::changes(&config, &instance, run.as_deref(), json),
        Command::Query {
            config,
            instance,
            type_glob,
            filters,
            json,
        } => crate::graph_commands::query(
            &config,
            instance.as_deref(),
            type_glob.as_deref(),
            &filters,
            json,
        ),
        Command::Serve { config, admin } => serve(&config, admin).await,
        Command::Demo {
            out,
            devices,
            data_dir,
        } => crate::demo::run_demo(&out, &data_dir, devices).await,
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
            print!("{}", escape_lines(&found.manifest.document()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command: PolicyCommand::Explain { config, instance },
        } => {
            let (grant, plugin) = instance_grant(&config, &instance).await?;
            print!(
                "{}",
                escape_lines(&crate::explain::explain(&instance, &plugin, &grant))
            );
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
        Command::Simulate {
            provider,
            port,
            devices,
            seed,
            token,
            latency_ms,
        } => {
            let latency = std::time::Duration::from_millis(latency_ms);
            crate::demo::simulate(&provider, port, devices, seed, &token, latency).await
        }
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
    crate::compiled_cache::enable();
    let rt = Runtime::new()?;
    if let Some(dir) = &config.plugin_dir {
        for failure in rt.load_plugin_dir(dir).await? {
            eprintln!(
                "warning: plugin refused: {}",
                escape_lines(&failure.to_string())
            );
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

async fn run_command(
    path: &Path,
    only: &[String],
    out: Option<PathBuf>,
    sync: bool,
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
    let target = if sync {
        Some(crate::graph_commands::sync_target(&config, &selected)?)
    } else {
        None
    };
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
    let (history, _) = History::open(&config.data_dir)?;
    let delivery = Delivery::open(
        &config.data_dir,
        out,
        config.alerts.clone(),
        rt.hosts.clone(),
    )?;
    oneshot::run_and_report(&rt, &resolved, &history, &delivery, target.as_ref()).await
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
