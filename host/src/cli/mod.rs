//! The `corral` command line: `run`, `serve`, `demo`, `sync`, `changes`, `query`,
//! `plugin`, `policy`, `simulate`.

pub mod changes;
pub mod demo;
pub mod oneshot;
pub mod plugin;
pub mod plugin_build;
pub mod plugin_new;
pub mod plugin_test;
pub mod policy;
pub mod query;
pub mod run;
pub mod serve;
pub mod simulate;
pub mod sync;
pub mod templates;
pub mod worker;

use crate::config::{CorralConfig, InstanceConfig};
use crate::plugin::runtime::Runtime;
use anyhow::Context;
use clap::{Parser, Subcommand};
use corral_core::text::escape_lines;
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Write every HTTP exchange of each run to DIR/<instance>.jsonl, as the plugin
        /// saw it: no secret value, in any encoding the host scrubs.
        #[arg(long, value_name = "DIR", conflicts_with = "replay")]
        record: Option<PathBuf>,
        /// Answer each run's requests from DIR/<instance>.jsonl instead of the network;
        /// a request with no recording fails, naming it. Not with --sync; no alert
        /// fires (the graph is the recording's, not the provider's now).
        #[arg(long, value_name = "DIR", conflicts_with = "sync")]
        replay: Option<PathBuf>,
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
        /// Coordinate a cluster: queue runs on this NATS JetStream server
        /// (nats://HOST:PORT) for `corral worker`s instead of running them here.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Execute runs queued by a `corral serve --cluster` coordinator.
    Worker {
        #[arg(long)]
        config: PathBuf,
        /// The coordinator's NATS JetStream server, nats://HOST:PORT.
        #[arg(long)]
        nats: String,
        /// This worker's name in the run history (default: host name and process id).
        #[arg(long)]
        name: Option<String>,
        /// Runs executed at once, at most.
        #[arg(long, default_value_t = 4)]
        slots: usize,
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
    /// Builds DIR (when it is a project: a Cargo.toml, package.json or pyproject.toml), replays the runs of
    /// DIR/corral-test.toml from DIR/recordings (no network) and compares each graph
    /// with DIR/snapshots/<instance>.json.
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Write the snapshots from these runs instead of comparing.
        #[arg(long)]
        update: bool,
        /// Test the component already in DIR/dist.
        #[arg(long)]
        no_build: bool,
    },
    /// A new connector project: a manifest, one step that pages a list, a recorded
    /// fixture, a snapshot and a README; it builds and passes its test as written.
    New {
        /// The plugin id: lower-case letters, digits and `-`.
        name: String,
        /// rust, typescript or python.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where (default ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Compiles the project in DIR to DIR/dist/<id>.wasm: Rust with cargo (a Cargo.toml),
    /// TypeScript with `npm run build` (esbuild and componentize-js; a package.json),
    /// Python with componentize-py (a pyproject.toml).
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every command keeps and reuses compiled components (`plugin inspect` and `plugin
    // build` too: a build compiles once for the runs that follow).
    crate::plugin::compiled_cache::enable();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // `TOKIO_WORKER_THREADS`, when set, is the operator's choice and tokio reads it.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none()
        && let Command::Run {
            config, instances, ..
        } = &cli.command
        && let Some(n) = run::worker_threads(config, instances)
    {
        builder.worker_threads(n);
    }
    let rt = builder
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
            record,
            replay,
        } => {
            let tapes = run::Tapes { record, replay };
            run::run_command(&config, &instances, out, sync, &tapes).await
        }
        Command::Sync {
            config,
            instance,
            out,
        } => sync::sync(&config, &instance, out).await,
        Command::Changes {
            config,
            instance,
            run,
            json,
        } => changes::changes(&config, &instance, run.as_deref(), json),
        Command::Query {
            config,
            instance,
            type_glob,
            filters,
            json,
        } => query::query(
            &config,
            instance.as_deref(),
            type_glob.as_deref(),
            &filters,
            json,
        ),
        Command::Serve {
            config,
            admin,
            cluster,
        } => serve::serve(&config, admin, cluster.as_deref()).await,
        Command::Worker {
            config,
            nats,
            name,
            slots,
        } => worker::worker(&config, &nats, name, slots).await,
        Command::Demo {
            out,
            devices,
            data_dir,
        } => crate::cli::demo::run_demo(&out, &data_dir, devices).await,
        Command::Plugin {
            command:
                PluginCommand::Inspect {
                    plugin,
                    config,
                    json,
                },
        } => plugin::inspect(&plugin, config.as_deref(), json).await,
        Command::Plugin {
            command: PluginCommand::Document { plugin, config },
        } => plugin::document(&plugin, config.as_deref()).await,
        Command::Plugin {
            command:
                PluginCommand::Test {
                    dir,
                    update,
                    no_build,
                },
        } => {
            if !no_build && plugin_build::detect(&dir).is_some() {
                plugin_build::build_project(&dir).await?;
            }
            plugin_test::test(&dir, update).await
        }
        Command::Plugin {
            command: PluginCommand::New { name, lang, dir },
        } => plugin_new::new(&name, &lang, dir.as_deref()),
        Command::Plugin {
            command: PluginCommand::Build { dir },
        } => plugin_build::build(&dir).await,
        Command::Policy {
            command: PolicyCommand::Explain { config, instance },
        } => policy::explain(&config, &instance).await,
        Command::Policy {
            command:
                PolicyCommand::Check {
                    config,
                    instance,
                    action,
                    resource,
                    url,
                },
        } => policy::check(&config, &instance, &action, &resource, url).await,
        Command::Simulate {
            provider,
            port,
            devices,
            seed,
            token,
            latency_ms,
        } => {
            let latency = std::time::Duration::from_millis(latency_ms);
            simulate::simulate(&provider, port, devices, seed, &token, latency).await
        }
    }
}

/// A runtime with `plugin_dir` loaded; plugin files that fail are reported, not fatal.
pub async fn runtime_for(config: &CorralConfig) -> anyhow::Result<Runtime> {
    crate::plugin::compiled_cache::enable();
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

pub fn load_instance<'a>(config: &'a CorralConfig, id: &str) -> anyhow::Result<&'a InstanceConfig> {
    config
        .instance(id)
        .with_context(|| format!("{}: no instance with id {id:?}", config.path.display()))
}
