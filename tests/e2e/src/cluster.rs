//! Helpers for the cluster tests: a `nats-server -js` on a free loopback port with a
//! temporary store, and `corral serve --cluster` / `corral worker` as real processes
//! (so one can be killed with SIGKILL).

use crate::{all_objects, plugin_instance, run_builtin};
use corral::config::ConfigValue;
use corral_simulators::SimServer;
use corral_simulators::circleci::{self, CircleCiConfig, CircleCiSim};
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use corral_simulators::runzero::{self, RunZeroConfig, RunZeroSim};
use corral_simulators::sentinelone::{SentinelOneConfig, SentinelOneSim};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KANDJI_TOKEN: &str = "cluster-kandji-token-5e1f0a";
pub const S1_TOKEN: &str = "cluster-s1-token-77c2d9";
pub const RZ_KEY: &str = "cluster-runzero-key-0b8e44";
pub const CCI_TOKEN: &str = "cluster-circleci-token-a93f17";

/// The secrets, as each worker's environment holds them.
pub const WORKER_ENV: [(&str, &str); 4] = [
    ("KANDJI_TOKEN", KANDJI_TOKEN),
    ("S1_TOKEN", S1_TOKEN),
    ("RZ_KEY", RZ_KEY),
    ("CCI_TOKEN", CCI_TOKEN),
];

/// A connector's instance settings: (plugin, [(field, value, env var if secret)]).
pub type Connector = (
    &'static str,
    Vec<(&'static str, String, Option<&'static str>)>,
);

/// The id (and name) of the reference runs: an instance's graph names its instance (the
/// account entity), so the reference is compared with this replaced by the instance's.
pub const REFERENCE_ID: &str = "corral-reference-instance";

pub struct Tenants {
    _servers: Vec<SimServer>,
    connectors: Vec<Connector>,
}

impl Tenants {
    pub async fn start() -> Tenants {
        let kandji = KandjiSim::new(&KandjiConfig {
            seed: 3,
            devices: 12,
            token: KANDJI_TOKEN.into(),
        })
        .start(0)
        .await
        .unwrap();
        let s1 = SentinelOneSim::new(&SentinelOneConfig {
            seed: 3,
            groups: 4,
            agents: 30,
            token: S1_TOKEN.into(),
        })
        .start(0)
        .await
        .unwrap();
        let rz = RunZeroSim::new(&RunZeroConfig {
            seed: 3,
            orgs: 1,
            sites_per_org: 2,
            users: 5,
            assets_per_site: 10,
            account_key: RZ_KEY.into(),
        })
        .start(0)
        .await
        .unwrap();
        let cci = CircleCiSim::new(&CircleCiConfig {
            seed: 3,
            projects_per_org: 3,
            pipelines_per_org: 6,
            token: CCI_TOKEN.into(),
        });
        let user_id = cci.me["id"].as_str().unwrap_or_default().to_string();
        let cci_server = cci.start(0).await.unwrap();
        let connectors = vec![
            (
                "kandji",
                vec![
                    (
                        "apiUrl",
                        format!("{}{}", kandji.origin(), kandji::API_PREFIX),
                        None,
                    ),
                    ("accessToken", KANDJI_TOKEN.into(), Some("KANDJI_TOKEN")),
                ],
            ),
            (
                "sentinelone",
                vec![
                    ("serverUrl", s1.origin(), None),
                    ("apiToken", S1_TOKEN.into(), Some("S1_TOKEN")),
                ],
            ),
            (
                "runzero",
                vec![
                    (
                        "baseUrl",
                        format!("{}{}", rz.origin(), runzero::API_PREFIX),
                        None,
                    ),
                    ("accountAPIKey", RZ_KEY.into(), Some("RZ_KEY")),
                ],
            ),
            (
                "circleci",
                vec![
                    (
                        "baseUrl",
                        format!("{}{}", cci_server.origin(), circleci::API_PREFIX),
                        None,
                    ),
                    ("apiKey", CCI_TOKEN.into(), Some("CCI_TOKEN")),
                    ("login", "octocat".into(), None),
                    ("userId", user_id, None),
                ],
            ),
        ];
        Tenants {
            _servers: vec![kandji, s1, rz, cci_server],
            connectors,
        }
    }

    pub fn connector(&self, plugin: &str) -> &Connector {
        self.connectors.iter().find(|c| c.0 == plugin).unwrap()
    }

    /// `[[instance]]` text: secrets as `{ env = … }`, never their values.
    pub fn toml(&self, id: &str, plugin: &str) -> String {
        let (_, fields) = self.connector(plugin);
        let mut out =
            format!("[[instance]]\nid = \"{id}\"\nplugin = \"{plugin}\"\n[instance.config]\n");
        for (k, v, env) in fields {
            match env {
                Some(var) => out.push_str(&format!("{k} = {{ env = \"{var}\" }}\n")),
                None => out.push_str(&format!("{k} = \"{v}\"\n")),
            }
        }
        out + "\n"
    }

    /// The instance's objects as a run in this process stores them: the reference.
    pub async fn reference(&self, plugin: &str) -> Vec<(String, String, Map<String, Value>)> {
        let (_, fields) = self.connector(plugin);
        let config = fields
            .iter()
            .map(|(k, v, _)| (*k, ConfigValue::Text(v.clone())))
            .collect();
        let mut instance = plugin_instance(REFERENCE_ID, plugin, config);
        instance.name = REFERENCE_ID.into();
        let report = run_builtin(plugin, &instance).await;
        assert!(report.succeeded(), "the reference {plugin} run succeeds");
        all_objects(&report)
    }
}

/// `corral.toml` for a process with its own data directory.
pub fn write_config(
    dir: &Path,
    name: &str,
    plugin_dir: Option<&Path>,
    instances: &str,
) -> std::path::PathBuf {
    let data = dir.join(name);
    let mut text = format!("data_dir = \"{}\"\n", data.display());
    if let Some(p) = plugin_dir {
        text.push_str(&format!("plugin_dir = \"{}\"\n", p.display()));
    }
    text.push('\n');
    text.push_str(instances);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Admin {
    pub base: String,
    pub http: reqwest::Client,
}

impl Admin {
    /// `GET path` on the admin API, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.base)).send();
        json(&response.await.unwrap().text().await.unwrap())
    }

    /// `POST path` on the admin API, as JSON.
    pub async fn post(&self, path: &str) -> Value {
        let response = self.http.post(format!("{}{path}", self.base)).send();
        json(&response.await.unwrap().text().await.unwrap())
    }

    pub async fn start_run(&self, instance: &str) -> String {
        let r = self.post(&format!("/instances/{instance}/runs")).await;
        r["runId"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    }

    pub async fn run(&self, id: &str) -> Value {
        self.get(&format!("/runs/{id}")).await
    }

    pub async fn runs(&self) -> Vec<Value> {
        let all = self.get("/runs?limit=10000").await;
        all.as_array().cloned().unwrap_or_default()
    }

    pub async fn plugin_digest(&self, id: &str) -> Value {
        let all = self.get("/plugins").await;
        let list = all.as_array().cloned().unwrap_or_default();
        list.into_iter()
            .find(|p| p["id"] == id)
            .map(|p| p["digest"].clone())
            .unwrap_or(Value::Null)
    }

    /// Waits until every run in `ids` is finished; returns them by id.
    pub async fn finished(&self, ids: &[String], within: Duration) -> BTreeMap<String, Value> {
        let deadline = Instant::now() + within;
        loop {
            let mut done = BTreeMap::new();
            for id in ids {
                let run = self.run(id).await;
                if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                    done.insert(id.clone(), run);
                }
            }
            if done.len() == ids.len() {
                return done;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} runs finished in {within:?}",
                done.len(),
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// SIGKILL, as a crashed machine would stop.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("the process exits")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Nats {
    pub url: String,
    pub port: u16,
    pub store: PathBuf,
    pub proc: Proc,
}

impl Nats {
    /// `nats-server -js` on a free port, its store under `dir` (`.ci/run` installs it).
    pub fn start(dir: &Path) -> Nats {
        Nats::start_on(free_port(), &dir.join("jetstream"))
    }

    /// Starts (or restarts) the server on `port` with the store at `store`.
    pub fn start_on(port: u16, store: &Path) -> Nats {
        install_nats_server();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (Debian package nats-server; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: store.to_path_buf(),
            proc: Proc { child },
        }
    }
}

/// Installs Debian's `nats-server` on first use, as the other tests install their npm
/// and PyPI packages (it needs apt and root; `.ci/run` does the same up front).
fn install_nats_server() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = |cmd: &str| {
            Command::new(cmd)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if present("nats-server") {
            return;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !apt(&["install", "-y", "nats-server"]) {
            apt(&["update"]);
            apt(&["install", "-y", "nats-server"]);
        }
        assert!(
            present("nats-server"),
            "the cluster tests need nats-server (Debian: apt-get install nats-server)"
        );
    });
}

/// The `corral` binary of this build: the workspace's `cargo test` builds it beside the
/// test binaries (`target/<profile>/corral`); `CORRAL_BIN` names another (the benchmark
/// uses the release build).
pub fn corral_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CORRAL_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("corral");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's `cargo test` (it builds the corral binary)",
        bin.display()
    );
    bin
}

/// Where a process's log goes: beside its config (`<name>.log`, appended), read when a
/// test fails.
fn log_file(config: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// `corral serve --cluster`; returns it with its admin API's base URL.
pub fn coordinator(config: &Path, nats: &str) -> (Proc, String) {
    let mut child = Command::new(corral_bin())
        .args([
            "serve",
            "--admin",
            "127.0.0.1:0",
            "--cluster",
            nats,
            "--config",
        ])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(log_file(config))
        .spawn()
        .expect("corral serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("corral serve prints its admin address");
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("not the admin line: {line:?}"))
        .to_string();
    (Proc { child }, base)
}

/// `corral worker` with `env` (its secrets) in its environment; returns once it takes runs.
pub fn worker(config: &Path, nats: &str, name: &str, slots: usize, env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(corral_bin())
        .args([
            "worker",
            "--nats",
            nats,
            "--name",
            name,
            "--slots",
            &slots.to_string(),
            "--config",
        ])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log_file(config))
        .spawn()
        .expect("corral worker starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("corral worker prints that it is ready");
    assert!(line.contains("taking runs"), "{line:?}");
    Proc { child }
}
