//! The graph commands through the binary: `run --sync`, `sync`, `changes` and `query`
//! with the mock persister; the documented vulnerable-OS query; SIGKILL during a run
//! leaves the previous state whole. No credential in any output or file.

use corral::delivery::state::GraphState;
use corral_simulators::SimServer;
use corral_simulators::jupiterone::{MockPersister, PersisterConfig};
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use corral_simulators::runzero::{self, RunZeroConfig, RunZeroSim};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{files, scratch, text};

const TOKEN: &str = "graph-cli-kandji-token-0d9e";
const J1_KEY: &str = "graph-cli-j1-key-77aa51";

async fn corral(args: &[&str]) -> Output {
    command(args).output().await.unwrap()
}

fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_corral"));
    cmd.args(args)
        .env("CORRAL_LOG", "debug")
        .env("CORRAL_TEST_TOKEN", TOKEN)
        .env("CORRAL_TEST_J1_KEY", J1_KEY);
    cmd
}

/// `corral changes --json` for the Kandji instance: the output and the document.
async fn latest_changes(cfg: &str) -> (Output, Value) {
    let out = corral(&[
        "changes",
        "--config",
        cfg,
        "--instance",
        "kandji-graph",
        "--json",
    ])
    .await;
    assert_ok(&out, "changes");
    let doc = serde_json::from_slice(&out.stdout).unwrap();
    (out, doc)
}

async fn kandji_tenant(seed: u64, devices: usize) -> (Arc<KandjiSim>, SimServer) {
    let sim = KandjiSim::new(&KandjiConfig {
        seed,
        devices,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    (sim, server)
}

fn kandji_config(dir: &Path, api_url: &str, j1: &str) -> PathBuf {
    let text = format!(
        "data_dir = \"state\"\n\n\
         [jupiterone]\napi_base_url = \"{j1}\"\naccount = \"j1-test-account\"\n\
         api_key = {{ env = \"CORRAL_TEST_J1_KEY\" }}\n\n\
         [[instance]]\nid = \"kandji-graph\"\nname = \"Kandji\"\nplugin = \"kandji\"\n\
         integration_instance_id = \"ii-graph-1\"\n\
         [instance.config]\napiUrl = \"{api_url}\"\naccessToken = {{ env = \"CORRAL_TEST_TOKEN\" }}\n"
    );
    let path = dir.join("corral.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// No secret in this output or in any file under `dir`.
fn assert_no_secret(dir: &Path, outputs: &[&Output]) {
    for o in outputs {
        for secret in [TOKEN, J1_KEY] {
            assert!(!text(&o.stdout).contains(secret) && !text(&o.stderr).contains(secret));
        }
    }
    for p in files(dir) {
        let bytes = std::fs::read(&p).unwrap();
        for secret in [TOKEN, J1_KEY] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                p.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sync_then_sync_changes_and_query() {
    let (sim, server) = kandji_tenant(5, 12).await;
    let mock = MockPersister::new(PersisterConfig {
        api_key: J1_KEY.into(),
        ..PersisterConfig::default()
    });
    let j1 = mock.start(0).await.unwrap();
    let dir = scratch("graph-sync");
    let api = format!("{}{}", server.origin(), kandji::API_PREFIX);
    let config = kandji_config(&dir, &api, &j1.origin());
    let cfg = config.to_str().unwrap();

    let run = corral(&["run", "--config", cfg, "--sync"]).await;
    assert_ok(&run, "run --sync");
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("synced to JupiterOne (job job-0001)"),
        "{stdout}"
    );
    assert!(stdout.contains("changes (first run: baseline)"), "{stdout}");
    let devices = sim.data().device_ids().len();
    let scope = mock.scope("ii-graph-1");
    assert_eq!(
        scope
            .values()
            .filter(|o| o["_type"] == "kandji_device")
            .count(),
        devices
    );

    let sync = corral(&["sync", "--config", cfg, "--instance", "kandji-graph"]).await;
    assert_ok(&sync, "sync");
    let jobs = mock.jobs();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].status, "FINISHED");
    assert_eq!(
        jobs[1].counts["numEntitiesCreated"], 0,
        "the same graph again"
    );
    assert_eq!(jobs[1].counts["numEntitiesDeleted"], 0);

    let (changes, doc) = latest_changes(cfg).await;
    assert_eq!(doc["baseline"], true);
    assert_eq!(
        doc["types"]["kandji_device"]["created"]
            .as_array()
            .unwrap()
            .len(),
        devices
    );

    let unencrypted: BTreeSet<String> = sim
        .data()
        .details
        .iter()
        .filter(|(_, d)| d["filevault"]["filevault_enabled"] == false)
        .map(|(id, _)| id.clone())
        .collect();
    let query = corral(&[
        "query",
        "--config",
        cfg,
        "--type",
        "kandji_dev*",
        "--where",
        "encrypted = false",
        "--json",
    ])
    .await;
    assert_ok(&query, "query");
    let found: BTreeSet<String> = text(&query.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(found, unencrypted);

    let no_runs = corral(&[
        "changes",
        "--config",
        cfg,
        "--instance",
        "kandji-graph",
        "--run",
        "run-999",
    ])
    .await;
    assert_eq!(no_runs.status.code(), Some(2));
    assert!(text(&no_runs.stderr).contains("no recorded changes for run \"run-999\""));
    let bad_filter = corral(&["query", "--config", cfg, "--where", "encrypted false"]).await;
    assert_eq!(bad_filter.status.code(), Some(2));
    assert!(text(&bad_filter.stderr).contains("--where: filter \"encrypted false\""));

    // A wrong API key: sync exits 1, names the 401, shows no key.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("CORRAL_TEST_J1_KEY", "CORRAL_TEST_WRONG_KEY"),
    )
    .unwrap();
    let mut wrong = command(&["sync", "--config", cfg, "--instance", "kandji-graph"]);
    wrong.env("CORRAL_TEST_WRONG_KEY", "not-the-key-1234567");
    let wrong = wrong.output().await.unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("401"),
        "{}",
        text(&wrong.stderr)
    );
    assert!(!text(&wrong.stderr).contains("not-the-key-1234567"));
    assert_no_secret(&dir, &[&run, &sync, &changes, &query, &wrong]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_vulnerable_os_query_lists_old_windows_builds() {
    let sim = RunZeroSim::new(&RunZeroConfig {
        account_key: TOKEN.into(),
        ..RunZeroConfig::default()
    });
    let server = sim.start(0).await.unwrap();
    let dir = scratch("graph-vulnerable-os");
    let config = dir.join("corral.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"state\"\n\n[[instance]]\nid = \"runzero\"\nname = \"runZero\"\nplugin = \"runzero\"\n\
             [instance.config]\nbaseUrl = \"{}{}\"\naccountAPIKey = {{ env = \"CORRAL_TEST_TOKEN\" }}\n",
            server.origin(),
            runzero::API_PREFIX
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    assert_ok(&corral(&["run", "--config", cfg]).await, "run");
    // The README's example, word for word.
    let query = corral(&[
        "query",
        "--config",
        cfg,
        "--type",
        "rumble_asset",
        "--where",
        "osName = Windows",
        "--where",
        "osVersion < 10.0.19045",
    ])
    .await;
    assert_ok(&query, "query");
    let table = text(&query.stdout);
    let expected: BTreeSet<&str> = sim
        .assets
        .iter()
        .filter(|a| a["os_product"] == "Windows")
        .filter(|a| ["10.0.19041", "10.0.19044"].contains(&a["os_version"].as_str().unwrap()))
        // Assets of organizations with an export token are the ones collected.
        .filter(|a| {
            sim.orgs
                .iter()
                .any(|o| o["id"] == a["organization_id"] && o["export_token"] != "")
        })
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(!expected.is_empty(), "premise: old builds exist");
    let listed: BTreeSet<&str> = table
        .lines()
        .filter(|l| l.starts_with("runzero "))
        .filter_map(|l| expected.iter().copied().find(|id| l.contains(id)))
        .collect();
    assert_eq!(listed, expected, "{table}");
    assert!(
        table.ends_with(&format!("{} objects\n", expected.len())),
        "{table}"
    );
    assert!(table.lines().next().unwrap().contains("osVersion"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_run_leaves_the_previous_state_and_the_next_run_works() {
    let (sim, server) = kandji_tenant(9, 10).await;
    let dir = scratch("graph-sigkill");
    let api = format!("{}{}", server.origin(), kandji::API_PREFIX);
    let config = kandji_config(&dir, &api, "http://127.0.0.1:9");
    let cfg = config.to_str().unwrap();
    assert_ok(&corral(&["run", "--config", cfg]).await, "first run");
    let data_dir = dir.join("state");
    let state_before = GraphState::open(&data_dir)
        .unwrap()
        .objects("kandji-graph")
        .unwrap();
    assert!(!state_before.is_empty());

    // A device goes; the next run is slowed and killed before it ends.
    let gone = sim.data().device_ids()[0].clone();
    sim.data_mut().remove(&gone);
    server.set_delay(Duration::from_millis(150));
    server.clear_requests();
    let mut child = command(&["run", "--config", cfg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.requests().len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    assert!(!child.wait().await.unwrap().success());

    let state = GraphState::open(&data_dir).unwrap();
    assert_eq!(state.objects("kandji-graph").unwrap(), state_before);
    let latest = state.changes("kandji-graph", None).unwrap().unwrap();
    assert_eq!(latest["runId"], "run-1");
    drop(state);

    server.set_delay(Duration::ZERO);
    let next = corral(&["run", "--config", cfg]).await;
    assert_ok(&next, "the run after the kill");
    let (_, doc) = latest_changes(cfg).await;
    assert_eq!(doc["runId"], "run-3", "the killed run kept its id");
    assert_eq!(
        doc["types"]["kandji_device"]["deleted"],
        serde_json::json!([gone])
    );
    let (history, _) = corral::delivery::history::History::open(&data_dir).unwrap();
    let killed = history.get("run-2").unwrap().unwrap();
    assert_eq!(killed.status, corral::delivery::history::RunStatus::Failed);
    assert_eq!(
        killed.errors,
        ["corral stopped while this run was in flight"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
