//! `corral serve` as a process: SIGTERM drains runs in flight and exits 0, a second
//! signal exits at once, and a run in flight when the process is killed is marked failed
//! at the next start.

use corral::delivery::history::{History, RunStatus};
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "serve-cli-token-90be13";

mod common;
use common::scratch;

/// Starts `corral serve` on a config with one Kandji instance; returns the child and
/// the admin base URL it printed.
async fn serve(dir: &Path, api: &str) -> (Child, String) {
    let config = dir.join("corral.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"state\"\n[serve]\nshutdown_grace_seconds = 60\n\n[[instance]]\nid = \"kc\"\nplugin = \"kandji\"\n\
             [instance.config]\napiUrl = \"{api}\"\naccessToken = {{ env = \"CORRAL_SERVE_TOKEN\" }}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--admin",
            "127.0.0.1:0",
        ])
        .env("CORRAL_SERVE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("a first line");
    let base = line
        .strip_prefix("corral serve: admin API on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, base)
}

async fn start_run(base: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/instances/kc/runs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    body["runId"].as_str().unwrap().to_string()
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A slow tenant: each run takes seconds, so it is in flight when the signal comes.
async fn slow_kandji() -> (corral_simulators::SimServer, String) {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 3,
        devices: 40,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    server.set_delay(Duration::from_millis(60));
    let api = format!("{}{API_PREFIX}", server.origin());
    (server, api)
}

async fn wait_for_requests(server: &corral_simulators::SimServer) {
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_runs_in_flight_finish_then_exits_zero() {
    let (server, api) = slow_kandji().await;
    let dir = scratch("sigterm");
    let (mut child, base) = serve(&dir, &api).await;
    let run = start_run(&base).await;
    wait_for_requests(&server).await;
    signal(&child, "TERM");
    // No new runs are admitted while draining (once the signal has been handled, which
    // /healthz turning 503 shows).
    let client = reqwest::Client::new();
    loop {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().as_u16() == 200 => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            _ => break,
        }
    }
    let refused = client
        .post(format!("{base}/instances/kc/runs"))
        .send()
        .await;
    if let Ok(r) = refused {
        assert_eq!(r.status().as_u16(), 503);
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
    let (history, recovered) = History::open(&dir.join("state")).unwrap();
    assert_eq!(recovered, 0, "nothing was left in flight");
    let record = history.get(&run).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{record:?}");
    assert!(record.counts.unwrap().entities > 40);
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(!stderr.contains(TOKEN), "the token leaked: {stderr}");
    for file in ["corral.db", "corral.db-wal"] {
        let bytes = std::fs::read(dir.join("state").join(file)).unwrap_or_default();
        let leaked = bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
        assert!(!leaked, "the token is in {file}");
    }
    assert!(
        stderr.contains("corral serve: stopping; waiting up to 60 s for 1 run(s) in flight"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_the_run_is_marked_failed() {
    let (server, api) = slow_kandji().await;
    let dir = scratch("second-signal");
    let (mut child, base) = serve(&dir, &api).await;
    let run = start_run(&base).await;
    wait_for_requests(&server).await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, "INT");
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(1));
    let (history, recovered) = History::open(&dir.join("state")).unwrap();
    assert_eq!(recovered, 0, "the second signal marked it already");
    let record = history.get(&run).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        record.errors,
        ["corral was stopped by a second signal during the run"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_flight_at_a_crash_is_marked_failed_at_the_next_start() {
    let (server, api) = slow_kandji().await;
    let dir = scratch("sigkill");
    let (mut child, base) = serve(&dir, &api).await;
    let run = start_run(&base).await;
    wait_for_requests(&server).await;
    signal(&child, "KILL");
    child.wait().await.unwrap();

    let (mut child, base) = serve(&dir, &api).await;
    let body: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("{base}/runs/{run}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(
        body["errors"],
        serde_json::json!(["corral stopped while this run was in flight"])
    );
    signal(&child, "TERM");
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}
