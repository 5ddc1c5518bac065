//! The Kandji connector written in TypeScript (`plugins/kandji-ts`, with the TypeScript
//! SDK) against the Rust one: built by `corral plugin build` (npm packages installed from
//! its lock file on first use), it replays the Rust connector's recording to the Rust
//! connector's snapshot, and against the simulator it produces the Rust connector's
//! graph object for object, `_rawData` included, with the same requests, also when the
//! provider answers 429, 500 and 404. Needs Node.js 20 and npm.

use corral::cli::plugin_build::build_project;
use corral::config::ConfigValue;
use corral_e2e::*;
use corral_simulators::FaultRule;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::sync::OnceCell;

const TOKEN: &str = "e2e-kandji-ts-token-51c2";

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/kandji-ts")
}

fn sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk-ts")
}

/// `dir/node_modules`, installed from its lock file once (tests of one folder wait for
/// one another's install).
fn installed(dir: PathBuf) -> PathBuf {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    npm_installed(&dir, "esbuild");
    dir
}

/// The project in `dir` type-checks and passes its `passed` native tests.
fn type_checks_and_passes(dir: &Path, passed: usize) {
    npm(dir, &["run", "typecheck"]);
    let said = npm(dir, &["test"]);
    let counts = format!("# pass {passed}\n# fail 0");
    assert!(said.contains(&counts), "{said}");
}

/// The component `corral plugin build plugins/kandji-ts` writes, built once per process.
async fn component() -> &'static [u8] {
    static BUILT: OnceCell<Vec<u8>> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let dir = installed(project());
            let wasm = build_project(&dir).await.expect("kandji-ts builds");
            assert_eq!(wasm, dir.join("dist/kandji-ts.wasm"));
            std::fs::read(wasm).unwrap()
        })
        .await
}

/// The SDK's own tests (its rules shared with the Rust SDK, its builders' checks,
/// retries, paging, streamed lines, what a failed step keeps) pass on its fake host, and
/// it type-checks.
#[test]
fn the_typescript_sdk_type_checks_and_passes_its_own_tests() {
    type_checks_and_passes(&installed(sdk()), 7);
}

/// Its native tests (the SDK's fake host answering from the recording) pass, and it
/// type-checks against the SDK's types.
#[test]
fn kandji_ts_type_checks_and_passes_its_native_tests() {
    type_checks_and_passes(&installed(project()), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kandji_ts_replays_the_rust_connectors_recording_to_its_snapshot() {
    component().await;
    let code = corral::cli::plugin_test::test(&project(), false)
        .await
        .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kandji_ts_produces_the_rust_connectors_graph() {
    let bytes = component().await;
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 11,
        devices: 260,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    // A rate limit, server errors and a device deleted mid-run: both connectors retry,
    // wait and skip alike.
    server.add_fault(FaultRule::new("/details", 429, 3).retry_after(1));
    server.add_fault(FaultRule::new("/apps", 500, 2));
    let gone = sim.data().devices[5]["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.add_fault(FaultRule::new(
        &format!("/devices/{gone}/apps"),
        404,
        u32::MAX,
    ));
    let api = format!("{}{API_PREFIX}", server.origin());
    let rt = runtime();
    let token = ConfigValue::Text(TOKEN.into());

    let before = server.requests().len();
    let rust = run_kandji(
        &rt,
        &kandji_instance("kandji-rust", &api, token.clone()),
        None,
    )
    .await;
    let rust_requests = server.requests().len() - before;
    assert_run_succeeded(&rust);

    server.add_fault(FaultRule::new("/details", 429, 3).retry_after(1));
    server.add_fault(FaultRule::new("/apps", 500, 2));
    let plugin = load_component(&rt, bytes, "kandji-ts.wasm").await.unwrap();
    assert_eq!(plugin.manifest.id, "kandji-ts");
    let mut inst = kandji_instance("kandji-ts", &api, token);
    inst.plugin = "kandji-ts".into();
    let before = server.requests().len();
    let ts = run_plugin(&rt, plugin, &inst, None).await;
    let ts_requests = server.requests().len() - before;
    assert_run_succeeded(&ts);

    let (rust_objects, ts_objects) = (all_objects(&rust), all_objects(&ts));
    assert_eq!(rust_objects.len(), ts_objects.len());
    for (r, t) in rust_objects.iter().zip(&ts_objects) {
        assert_eq!(r, t, "object {} differs", r.0);
    }
    assert_eq!(
        ts_requests, rust_requests,
        "the same requests, retries included"
    );
    let steps = |r: &corral::run::RunReport| -> Vec<(String, String)> {
        r.steps
            .iter()
            .map(|s| (s.info.id.clone(), format!("{:?}", s.status)))
            .collect()
    };
    assert_eq!(steps(&ts), steps(&rust));
}
