//! The `corral` binary as an operator meets it: exit statuses, the output layout,
//! error messages for bad input, and no secret anywhere it writes.

use corral_simulators::FaultRule;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const TOKEN: &str = "cli-secret-token-5b2e81d4";

mod common;
use common::{files, scratch, text};

fn write_config(dir: &Path, api_url: &str, extra: &str) -> PathBuf {
    let text = format!(
        "data_dir = \"state\"\n\n[[instance]]\nid = \"kandji-cli\"\nname = \"CLI Kandji\"\nplugin = \"kandji\"\n{extra}\
         [instance.config]\napiUrl = \"{api_url}\"\naccessToken = {{ env = \"CORRAL_TEST_TOKEN\" }}\n"
    );
    let path = dir.join("corral.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn corral(args: &[&str], token: Option<&str>) -> Output {
    // One compiled-component cache for the tests, in the target directory.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-cache");
    corral_with(
        args,
        token,
        &[("CORRAL_CACHE_DIR", cache.to_str().unwrap())],
    )
    .await
}

async fn corral_with(args: &[&str], token: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_corral"));
    cmd.args(args)
        .env("CORRAL_LOG", "debug")
        .env_remove("CORRAL_TEST_TOKEN")
        .envs(env.iter().copied());
    if let Some(t) = token {
        cmd.env("CORRAL_TEST_TOKEN", t);
    }
    cmd.output().await.unwrap()
}

/// The `.cwasm` files in a compiled-component cache.
fn cached(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cache.join("compiled"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_kept_and_a_damaged_one_is_compiled_again() {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 5,
        devices: 3,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    let dir = scratch("compile-cache");
    let config = write_config(&dir, &format!("{}{API_PREFIX}", server.origin()), "");
    let cache = dir.join("cache");
    let env = [("CORRAL_CACHE_DIR", cache.to_str().unwrap())];
    let run = ["run", "--config", config.to_str().unwrap()];
    let first = corral_with(&run, Some(TOKEN), &env).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let kept = cached(&cache);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let artifact = std::fs::read(&kept[0]).unwrap();
    assert!(artifact.starts_with(b"\x7fELF"), "a native artifact");

    // A damaged artifact is not loaded: the component is compiled and kept again.
    std::fs::write(&kept[0], b"\x7fELF not really").unwrap();
    let second = corral_with(&run, Some(TOKEN), &env).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(cached(&cache), kept);
    assert_eq!(std::fs::read(&kept[0]).unwrap(), artifact);

    // Off: nothing written.
    let off = dir.join("off");
    let env = [
        ("CORRAL_CACHE_DIR", "off"),
        ("XDG_CACHE_HOME", off.to_str().unwrap()),
    ];
    let third = corral_with(&run, Some(TOKEN), &env).await;
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert!(!off.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_the_collect_layout_and_leaks_no_secret() {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 11,
        devices: 120,
        token: TOKEN.into(),
    });
    let gone = sim.data().device_ids()[0].clone();
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new(&format!("/devices/{gone}/"), 404, u32::MAX));
    server.add_fault(FaultRule::new("/apps", 500, 1));
    let dir = scratch("layout");
    let policy = dir.join("kandji.json");
    std::fs::write(&policy, corral::cli::demo::KANDJI_DEMO_POLICY).unwrap();
    let config = write_config(
        &dir,
        &format!("{}{API_PREFIX}", server.origin()),
        "policy = \"kandji.json\"\n",
    );
    let out = dir.join("out");
    let result = corral(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        Some(TOKEN),
    )
    .await;
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("kandji-cli (plugin kandji 0.1.0): succeeded"),
        "{stdout}"
    );

    let root = out.join("kandji-cli");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("summary.json")).unwrap()).unwrap();
    let steps = summary["integrationStepResults"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "fetch-account",
            "fetch-devices",
            "fetch-device-apps",
            "fetch-device-users"
        ]
    );
    for s in steps {
        assert_eq!(s["status"], "success");
        for field in [
            "name",
            "declaredTypes",
            "encounteredTypes",
            "encounteredTypeCounts",
            "partialTypes",
            "duration",
        ] {
            assert!(s.get(field).is_some(), "{field} missing from step result");
        }
    }
    assert_eq!(steps[1]["encounteredTypeCounts"]["kandji_device"], 119);
    assert_eq!(
        summary["metadata"]["partialDatasets"]["types"],
        serde_json::json!([])
    );

    // graph/<step>/{entities,relationships}/*.json, at most 500 per file, one _type each.
    let mut edges = 0;
    for f in files(&root.join("graph")) {
        let rel = f.strip_prefix(root.join("graph")).unwrap();
        let parts: Vec<_> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(parts.len(), 3, "{rel:?}");
        let kind = parts[1].as_str();
        assert!(kind == "entities" || kind == "relationships", "{rel:?}");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let list = doc[kind].as_array().unwrap();
        assert!(
            !list.is_empty() && list.len() <= 500,
            "{rel:?} holds {}",
            list.len()
        );
        let types: std::collections::BTreeSet<_> =
            list.iter().map(|o| o["_type"].as_str().unwrap()).collect();
        assert_eq!(types.len(), 1, "{rel:?}");
        if parts[0] == "fetch-device-apps" && kind == "relationships" {
            edges += list.len();
        }
    }
    assert!(
        edges > 500,
        "premise: device→app edges span several files ({edges})"
    );

    // The token is nowhere: not in any file written, not on stdout or stderr.
    for f in files(&dir) {
        let content = std::fs::read(&f).unwrap();
        assert!(
            !text(&content).contains(TOKEN),
            "{} holds the token",
            f.display()
        );
    }
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    assert!(
        stderr.contains("device disappeared during the run"),
        "the run log reaches stderr: {stderr}"
    );
}

/// `--record` writes each exchange, without the token in any form; `--replay` runs the
/// instance from them with the provider gone, to the same graph files; a request the
/// recording lacks fails the run, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_without_the_provider() {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 13,
        devices: 30,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    let dir = scratch("record");
    let config = write_config(&dir, &format!("{}{API_PREFIX}", server.origin()), "");
    let (config, tapes) = (config.to_str().unwrap(), dir.join("tapes"));
    let run = |out: &str, flag: &'static str| {
        let out = dir.join(out);
        let tapes = tapes.clone();
        async move {
            let args = [
                "run",
                "--config",
                config,
                "--out",
                out.to_str().unwrap(),
                flag,
                tapes.to_str().unwrap(),
            ];
            (
                corral(&args, Some(TOKEN)).await,
                out.join("kandji-cli/graph"),
            )
        }
    };
    let (recorded, live) = run("out-live", "--record").await;
    assert!(recorded.status.success(), "{}", text(&recorded.stderr));
    let tape = std::fs::read_to_string(tapes.join("kandji-cli.jsonl")).unwrap();
    assert_eq!(tape.lines().count(), server.requests().len());
    assert!(!tape.contains(TOKEN) && !tape.contains("cli-secret"));
    drop(server);

    let (replayed, again) = run("out-replay", "--replay").await;
    assert!(replayed.status.success(), "{}", text(&replayed.stderr));
    let graph = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = files(root)
            .into_iter()
            .map(|f| {
                (
                    f.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&f).unwrap(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let (live, again) = (graph(&live), graph(&again));
    assert!(live.len() > 4, "premise: a graph was written");
    assert!(
        live == again,
        "the replayed graph differs from the recorded run's"
    );
    // A replay never uploads: --sync is refused with it.
    let args = [
        "run",
        "--config",
        config,
        "--replay",
        tapes.to_str().unwrap(),
        "--sync",
    ];
    let refused = corral(&args, Some(TOKEN)).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));

    // Half the recording: the first request without one fails the run, named.
    let half: Vec<&str> = tape.lines().take(tape.lines().count() / 2).collect();
    std::fs::write(tapes.join("kandji-cli.jsonl"), half.join("\n")).unwrap();
    let (short, _) = run("out-short", "--replay").await;
    let all = format!("{}{}", text(&short.stdout), text(&short.stderr));
    assert_eq!(short.status.code(), Some(1), "{all}");
    assert!(
        all.contains("no recording of GET http://127.0.0.1:"),
        "{all}"
    );
}

/// The replay directory of a first-party connector.
fn replay_dir(plugin: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/{plugin}/tests/replay"))
}

/// Each first-party connector's recorded runs replay, with no network and no token, to
/// its committed snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connector_replays_to_its_snapshot() {
    for plugin in ["kandji", "sentinelone", "runzero", "circleci"] {
        let dir = replay_dir(plugin);
        let result = corral(&["plugin", "test", dir.to_str().unwrap()], None).await;
        let out = format!("{}{}", text(&result.stdout), text(&result.stderr));
        assert!(result.status.success(), "{plugin}: {out}");
        assert!(
            out.contains(&format!("{plugin}-replay: "))
                && out.contains("objects as in the snapshot"),
            "{out}"
        );
    }
}

/// A graph that differs from the snapshot fails, naming the object and property; a
/// request with no recording fails, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_differs_fails_naming_what_differs() {
    let dir = scratch("replay-differs");
    for sub in ["recordings", "snapshots"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let from = replay_dir("kandji");
    for f in [
        "corral-test.toml",
        "recordings/kandji-replay.jsonl",
        "snapshots/kandji-replay.json",
    ] {
        std::fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    let snapshot = dir.join("snapshots/kandji-replay.json");
    let mut graph: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let device = graph
        .iter()
        .find(|(_, o)| o["_type"] == "kandji_device")
        .map(|(k, _)| k.clone())
        .unwrap();
    graph[&device]["osVersion"] = Value::from("0.0-edited");
    std::fs::write(&snapshot, serde_json::to_string(&graph).unwrap()).unwrap();
    let test = ["plugin", "test", dir.to_str().unwrap()];
    let result = corral(&test, None).await;
    let out = text(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("changed: {device}: osVersion")),
        "{out}"
    );

    // `--update` takes the run as it is; then it passes.
    let updated = corral(&["plugin", "test", dir.to_str().unwrap(), "--update"], None).await;
    assert!(updated.status.success(), "{}", text(&updated.stdout));
    assert!(corral(&test, None).await.status.success());

    // An answer the run does not ask for is a difference too.
    let tape = dir.join("recordings/kandji-replay.jsonl");
    let recorded = std::fs::read_to_string(&tape).unwrap();
    let extra = recorded
        .lines()
        .next()
        .unwrap()
        .replace("devices?limit=1", "devices?limit=2");
    std::fs::write(&tape, format!("{recorded}{extra}\n")).unwrap();
    let result = corral(&test, None).await;
    let out = text(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{out}");
    assert!(
        out.contains("not requested: GET http://127.0.0.1:47101/api/v1/devices?limit=2"),
        "{out}"
    );
    std::fs::write(&tape, &recorded).unwrap();

    // Without the last recorded exchange, the run fails, naming the request.
    let tape = dir.join("recordings/kandji-replay.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&tape)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    std::fs::write(&tape, lines[..lines.len() - 1].join("\n")).unwrap();
    let result = corral(&test, None).await;
    let out = text(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{out}");
    assert!(
        out.contains("no recording of GET http://127.0.0.1:47101/api/v1/"),
        "{out}"
    );
}

/// `corral plugin new` makes a project that builds (outside this workspace, with the
/// vendored SDK) and passes its own replay test as written; bad names, an occupied
/// directory and a language it cannot scaffold are refused, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connector_builds_and_passes_its_own_test() {
    let dir = scratch("plugin-new");
    let project = dir.join("acme-assets");
    let made = corral(
        &[
            "plugin",
            "new",
            "acme-assets",
            "--dir",
            project.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "README.md",
        "src/lib.rs",
        "corral-test.toml",
        "recordings/acme-assets-example.jsonl",
        "snapshots/acme-assets-example.json",
        "vendor/corral-sdk/wit/corral.wit",
    ] {
        assert!(project.join(f).is_file(), "{f}");
    }
    // One target directory for every run of this test: the SDK's dependencies build once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let env = [("CARGO_TARGET_DIR", target.to_str().unwrap())];
    let tested = corral_with(&["plugin", "test", project.to_str().unwrap()], None, &env).await;
    let out = format!("{}{}", text(&tested.stdout), text(&tested.stderr));
    assert!(tested.status.success(), "{out}");
    assert!(
        out.contains("acme-assets-example: 3 objects as in the snapshot"),
        "{out}"
    );
    assert!(project.join("dist/acme-assets.wasm").is_file());
    // Its unit tests pass natively too, the step's among them (the SDK's fake host).
    let unit = std::process::Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let out = format!("{}{}", text(&unit.stdout), text(&unit.stderr));
    assert!(unit.status.success(), "{out}");
    assert!(out.contains("2 passed"), "{out}");

    let again = corral(
        &[
            "plugin",
            "new",
            "acme-assets",
            "--dir",
            project.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("exists and is not empty"));
    let bad = corral(
        &[
            "plugin",
            "new",
            "Acme_Assets",
            "--dir",
            dir.join("x").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(
        text(&bad.stderr).contains("\"Acme_Assets\" is not a plugin id"),
        "{}",
        text(&bad.stderr)
    );
    let cobol = corral(
        &[
            "plugin",
            "new",
            "acme",
            "--lang",
            "cobol",
            "--dir",
            dir.join("y").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(
        text(&cobol.stderr).contains("--lang cobol: not a language corral scaffolds"),
        "{}",
        text(&cobol.stderr)
    );
    assert!(!dir.join("x").exists() && !dir.join("y").exists());
}

/// Runs `program args` in `dir`; its stdout and stderr, asserting it succeeded.
fn succeeds(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{program} {args:?}: {said}");
    said
}

/// `corral plugin new NAME --lang LANG` in a fresh directory: the project's path.
async fn scaffold(lang: &str, id: &str) -> PathBuf {
    let project = scratch(&format!("plugin-new-{lang}")).join(id);
    let args = [
        "plugin",
        "new",
        id,
        "--lang",
        lang,
        "--dir",
        project.to_str().unwrap(),
    ];
    let made = corral(&args, None).await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    project
}

/// `corral plugin test DIR` builds the project and replays it to its snapshot.
async fn replays_to_its_snapshot(project: &Path, id: &str) {
    let tested = corral(&["plugin", "test", project.to_str().unwrap()], None).await;
    let out = format!("{}{}", text(&tested.stdout), text(&tested.stderr));
    assert!(tested.status.success(), "{out}");
    assert!(
        out.contains(&format!("{id}-example: 3 objects as in the snapshot")),
        "{out}"
    );
    assert!(project.join(format!("dist/{id}.wasm")).is_file());
}

/// A TypeScript project builds with the packages its package.json pins (from npm), passes
/// its native tests (the SDK's fake host) and its replay test: the same snapshot as the
/// Rust project's. Before `npm install`, the build says to run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_typescript_connector_builds_and_passes_its_tests() {
    let project = scaffold("typescript", "acme-ts").await;
    for f in [
        "package.json",
        "tsconfig.json",
        "src/index.ts",
        "test/widgets.test.ts",
        "vendor/corral-sdk/wit/corral.wit",
        "vendor/corral-sdk/types/typescript-plugin.d.ts",
        "snapshots/acme-ts-example.json",
    ] {
        assert!(project.join(f).is_file(), "{f}");
    }
    let early = corral(&["plugin", "build", project.to_str().unwrap()], None).await;
    assert_eq!(early.status.code(), Some(2));
    assert!(
        text(&early.stderr).contains("run `npm install` there"),
        "{}",
        text(&early.stderr)
    );

    succeeds(
        &project,
        "npm",
        &["install", "--no-audit", "--no-fund", "--loglevel=error"],
    );
    succeeds(&project, "npm", &["run", "typecheck"]);
    let unit = succeeds(&project, "npm", &["test"]);
    assert!(
        unit.contains("# pass 2") && unit.contains("# fail 0"),
        "{unit}"
    );
    replays_to_its_snapshot(&project, "acme-ts").await;

    // The build compiles the 12 MB component once and keeps it: a later command reads
    // the native code back instead of compiling again.
    let cache = project.join("target/cache");
    let env = [("CORRAL_CACHE_DIR", cache.to_str().unwrap())];
    let built = corral_with(&["plugin", "build", project.to_str().unwrap()], None, &env).await;
    assert!(built.status.success(), "{}", text(&built.stderr));
    let kept = cached(&cache);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let compiled_at = std::fs::metadata(&kept[0]).unwrap().modified().unwrap();
    let wasm = project.join("dist/acme-ts.wasm");
    let inspected = corral_with(&["plugin", "inspect", wasm.to_str().unwrap()], None, &env).await;
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    assert!(text(&inspected.stdout).contains("acme-ts"));
    assert_eq!(cached(&cache), kept);
    assert_eq!(
        std::fs::metadata(&kept[0]).unwrap().modified().unwrap(),
        compiled_at
    );
}

/// The Python SDK's own tests (its rules shared with the Rust SDK, its builders' checks,
/// retries, paging, streamed lines, what a failed step keeps) pass on its fake host.
#[test]
fn the_python_sdk_passes_its_own_tests() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk-py");
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "tests"])
        .current_dir(&sdk)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Ran 6 tests") && said.contains("\nOK"),
        "{said}"
    );
}

/// A Python project builds with componentize-py from its requirements (from PyPI), passes
/// its native tests and its replay test: the same snapshot as the Rust project's. Without
/// componentize-py, the build says how to install it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_python_connector_builds_and_passes_its_tests() {
    let project = scaffold("python", "acme-py").await;
    for f in [
        "pyproject.toml",
        "requirements.txt",
        "app.py",
        "corral_sdk/wit/corral.wit",
    ] {
        assert!(project.join(f).is_file(), "{f}");
    }
    let early = corral_with(
        &["plugin", "build", project.to_str().unwrap()],
        None,
        &[("PATH", "/nonexistent")],
    )
    .await;
    assert_eq!(early.status.code(), Some(2));
    assert!(
        text(&early.stderr)
            .contains("componentize-py is not installed: run `python3 -m venv .venv"),
        "{}",
        text(&early.stderr)
    );

    let unit = succeeds(
        &project,
        "python3",
        &["-m", "unittest", "discover", "tests"],
    );
    assert!(
        unit.contains("Ran 2 tests") && unit.contains("OK"),
        "{unit}"
    );
    succeeds(&project, "python3", &["-m", "venv", ".venv"]);
    let pip = project.join(".venv/bin/pip");
    succeeds(
        &project,
        pip.to_str().unwrap(),
        &["install", "--quiet", "-r", "requirements.txt"],
    );
    replays_to_its_snapshot(&project, "acme-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_exits_non_zero_and_writes_nothing() {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 1,
        devices: 3,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    let dir = scratch("badtoken");
    let config = write_config(&dir, &format!("{}{API_PREFIX}", server.origin()), "");
    let wrong = "not-the-token-6d1f";
    let result = corral(&["run", "--config", config.to_str().unwrap()], Some(wrong)).await;
    let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
    assert_eq!(result.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("validation failed: authentication error"),
        "{stdout}"
    );
    assert!(!dir.join("state/out/kandji-cli").exists());
    for t in [&stdout, &stderr] {
        assert!(!t.contains(wrong));
    }
}

/// Runs `corral run` on a config that must be refused, returning stderr.
async fn refused(name: &str, config_text: &str, policy_text: Option<&str>) -> String {
    let dir = scratch(name);
    std::fs::write(dir.join("corral.toml"), config_text).unwrap();
    if let Some(p) = policy_text {
        std::fs::write(dir.join("kandji.json"), p).unwrap();
    }
    let config = dir.join("corral.toml");
    let result = corral(&["run", "--config", config.to_str().unwrap()], None).await;
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{name}: {stderr}");
    assert!(
        !dir.join(".corral").exists() && !dir.join("state").exists(),
        "{name}: output was written"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_precisely() {
    let base = "[[instance]]\nid = \"k\"\nplugin = \"kandji\"\n";
    let config = "[instance.config]\napiUrl = \"http://127.0.0.1:9/api/v1/\"\naccessToken = \"x-token-value\"\n";

    let e = refused(
        "typo",
        &format!("{base}polling = \"ONE_DAY\"\n{config}"),
        None,
    )
    .await;
    assert!(
        e.contains("corral.toml:4:1: unknown field `polling`"),
        "{e}"
    );

    let e = refused(
        "variant",
        &format!("{base}polling_interval = \"HOURLY\"\n{config}"),
        None,
    )
    .await;
    assert!(
        e.contains("corral.toml:4:20: unknown variant `HOURLY`"),
        "{e}"
    );

    let policy =
        r#"{"permissions": [{"effect": "Allow", "actions": ["http:GET"], "resources": ["*"]}]}"#;
    let e = refused(
        "policy",
        &format!("{base}policy = \"kandji.json\"\n{config}"),
        Some(policy),
    )
    .await;
    assert!(
        e.contains(
            "kandji.json: $.permissions[0].effect: expected \"ALLOW\" or \"DENY\", found \"Allow\""
        ),
        "{e}"
    );

    let e = refused(
        "policy-json",
        &format!("{base}policy = \"kandji.json\"\n{config}"),
        Some("{\n  \"permissions\": [\n    {,\n"),
    )
    .await;
    assert!(
        e.contains("kandji.json: line 3, column 6: invalid JSON"),
        "{e}"
    );

    let e = refused(
        "plugin",
        &format!("[[instance]]\nid = \"k\"\nplugin = \"nope\"\n{config}"),
        None,
    )
    .await;
    assert!(
        e.contains("instance \"k\": unknown plugin id \"nope\" (available: circleci, kandji, runzero, sentinelone)"),
        "{e}"
    );

    let env_config = "[instance.config]\napiUrl = \"http://127.0.0.1:9/api/v1/\"\naccessToken = { env = \"CORRAL_MISSING_VAR\" }\n";
    let e = refused("env", &format!("{base}{env_config}"), None).await;
    assert!(
        e.contains("config field accessToken: environment variable CORRAL_MISSING_VAR is not set"),
        "{e}"
    );

    let e = refused("missing-field", base, None).await;
    assert!(
        e.contains("config field apiUrl is required by plugin kandji"),
        "{e}"
    );

    let e = refused(
        "unknown-field",
        &format!("{base}{config}apiURL = \"x\"\n"),
        None,
    )
    .await;
    assert!(
        e.contains("config field apiURL is not declared by plugin kandji"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_components_are_refused() {
    let dir = scratch("notcomponent");
    let module = dir.join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"#!/bin/sh\necho hi\n").unwrap();
    let truncated = dir.join("truncated.wasm");
    std::fs::write(&truncated, b"\0asm\x0d\0\x01\0\x01\x02").unwrap();
    for (file, expected) in [
        (
            &module,
            "not a WebAssembly component: this is a core wasm module",
        ),
        (
            &garbage,
            "not a WebAssembly component: the file does not start with the wasm magic bytes",
        ),
        (&truncated, "not a WebAssembly component:"),
    ] {
        let result = corral(&["plugin", "inspect", file.to_str().unwrap()], None).await;
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{}: {expected}", file.display())),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_inspect_shows_the_manifest() {
    let result = corral(&["plugin", "inspect", "kandji", "--json"], None).await;
    assert!(result.status.success(), "{}", text(&result.stderr));
    let m: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(m["id"], "kandji");
    assert_eq!(m["source"], "builtin");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    let steps: Vec<&str> = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "fetch-account",
            "fetch-devices",
            "fetch-device-apps",
            "fetch-device-users"
        ]
    );
    let fields: Vec<(&str, bool)> = m["configFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["secret"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("apiUrl", false),
            ("accessToken", true),
            ("incremental", false)
        ]
    );
    let caps: Value = serde_json::from_str(m["capabilities"].as_str().unwrap()).unwrap();
    assert_eq!(caps["permissions"][1]["resources"][0], "secret:accessToken");

    let human = corral(&["plugin", "inspect", "kandji"], None).await;
    let out = text(&human.stdout);
    assert!(
        out.contains("relationship kandji_device_has_app: kandji_device HAS kandji_app"),
        "{out}"
    );
    assert!(out.contains("accessToken [secret]"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_dir_overrides_first_party_and_refuses_bad_files() {
    let dir = scratch("plugindir");
    let plugins = dir.join("plugins.d");
    std::fs::create_dir_all(&plugins).unwrap();
    let config = dir.join("corral.toml");
    std::fs::write(&config, "plugin_dir = \"plugins.d\"\n").unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let args = [
        "plugin",
        "inspect",
        "kandji",
        "--config",
        config_arg.as_str(),
        "--json",
    ];
    let inspect = || corral(&args, None);

    // A corrupt file is refused with its reason; the first-party plugin still serves.
    std::fs::write(plugins.join("broken.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    let result = inspect().await;
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("warning: plugin refused:")
            && stderr.contains("broken.wasm: not a WebAssembly component"),
        "{stderr}"
    );
    let m: Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(m["source"], "builtin");

    // A component with the same id overrides it.
    let copy = plugins.join("kandji.wasm");
    std::fs::write(&copy, corral::plugin::builtin::component("kandji").unwrap()).unwrap();
    let m: Value = serde_json::from_slice(&inspect().await.stdout).unwrap();
    assert_eq!(m["source"], copy.display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_explain_and_check_for_the_demo_instance() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/corral.toml");
    let result = corral(
        &[
            "policy",
            "explain",
            "--config",
            config,
            "--instance",
            "kandji-prod",
        ],
        None,
    )
    .await;
    let out = text(&result.stdout);
    assert!(result.status.success(), "{}", text(&result.stderr));
    for line in [
        "instance kandji-prod runs plugin kandji 0.1.0",
        "  - HTTP GET to https://acme.api.kandji.io/api/v1/*",
        "  - use the secret accessToken, only when the request URL matches https://acme.api.kandji.io/api/v1/*",
        "  - emit entities, emit relationships, read back entities of type kandji_*",
        "  - any HTTP method to http://169.254.169.254/*",
        "  request rate         50 per second",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    let check = |args: Vec<&'static str>| async move {
        let mut all = vec![
            "policy",
            "check",
            "--config",
            config,
            "--instance",
            "kandji-prod",
        ];
        all.extend(args);
        corral(&all, None).await
    };
    let allowed = check(vec![
        "http:GET",
        "https://acme.api.kandji.io/api/v1/devices",
    ])
    .await;
    assert_eq!(allowed.status.code(), Some(0));
    assert!(
        text(&allowed.stdout)
            .contains("allow: http:GET https://acme.api.kandji.io/api/v1/devices: "),
        "{}",
        text(&allowed.stdout)
    );
    let denied = check(vec![
        "http:POST",
        "https://acme.api.kandji.io/api/v1/devices",
    ])
    .await;
    assert_eq!(denied.status.code(), Some(1));
    assert!(text(&denied.stdout).contains(
        "deny: http:POST https://acme.api.kandji.io/api/v1/devices: not requested by the plugin"
    ));
    let secret = check(vec![
        "secret:Use",
        "secret:accessToken",
        "--url",
        "https://evil.example/",
    ])
    .await;
    assert_eq!(secret.status.code(), Some(1));
}

/// The rows of the markdown table under `heading`, as cells without backticks or bold.
fn table_rows(doc: &str, heading: &str) -> std::collections::BTreeSet<Vec<String>> {
    let section = doc.split(heading).nth(1).unwrap_or_default();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace(['`', '*'], ""))
                .collect()
        })
        .collect()
}

/// (Resources, `_type`, `_class`) or (source `_type`, class, target `_type`).
type Row = (&'static str, &'static str, &'static str);

fn rows(spec: &[Row]) -> std::collections::BTreeSet<Vec<String>> {
    spec.iter()
        .map(|(a, b, c)| vec![a.to_string(), b.to_string(), c.to_string()])
        .collect()
}

/// The data-model tables of the seed documents (the issues' acceptance tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_document_matches_the_seed_data_models() {
    let seeds: [(&str, Vec<Row>, Vec<Row>); 4] = [
        (
            "kandji",
            vec![
                ("Account", "kandji_account", "Account"),
                ("App", "kandji_app", "Application"),
                ("Device", "kandji_device", "Device"),
                ("User", "kandji_user", "User"),
            ],
            vec![
                ("kandji_account", "HAS", "kandji_device"),
                ("kandji_device", "HAS", "kandji_app"),
                ("kandji_device", "HAS", "kandji_user"),
            ],
        ),
        (
            "sentinelone",
            vec![
                ("Account", "sentinelone_account", "Account"),
                ("Agent", "sentinelone_agent", "HostAgent"),
                ("Group", "sentinelone_group", "Group"),
            ],
            vec![
                ("sentinelone_account", "HAS", "sentinelone_group"),
                ("sentinelone_group", "HAS", "sentinelone_agent"),
            ],
        ),
        (
            "runzero",
            vec![
                ("Account", "rumble_account", "Account"),
                ("Asset", "rumble_asset", "Device"),
                ("Organization", "rumble_organization", "Organization"),
                ("Site", "rumble_site", "Site"),
                ("User", "rumble_user", "User"),
            ],
            vec![
                ("rumble_account", "HAS", "rumble_organization"),
                ("rumble_account", "HAS", "rumble_site"),
                ("rumble_account", "HAS", "rumble_user"),
                ("rumble_organization", "HAS", "rumble_site"),
                ("rumble_site", "HAS", "rumble_asset"),
                ("rumble_user", "ASSIGNED", "rumble_organization"),
            ],
        ),
        (
            "circleci",
            vec![
                ("Account", "circleci_account", "Account"),
                ("Context", "circleci_context", "Configuration"),
                (
                    "Context Environment Variable",
                    "circleci_context_environment_variable",
                    "Configuration",
                ),
                ("Pipeline", "circleci_pipeline", "Configuration"),
                ("Pipeline Workflow", "circleci_workflow", "Configuration"),
                ("Project", "circleci_project", "Repository"),
                (
                    "Project Environment Variable",
                    "circleci_project_environment_variable",
                    "Configuration",
                ),
                ("User", "circleci_user", "User"),
                ("UserGroup", "circleci_user_group", "Group"),
                ("Workflow Job", "circleci_job", "Task"),
            ],
            vec![
                ("circleci_account", "HAS", "circleci_user"),
                ("circleci_account", "HAS", "circleci_user_group"),
                (
                    "circleci_context",
                    "HAS",
                    "circleci_context_environment_variable",
                ),
                ("circleci_pipeline", "HAS", "circleci_workflow"),
                (
                    "circleci_project",
                    "USES",
                    "circleci_context_environment_variable",
                ),
                ("circleci_project", "HAS", "circleci_pipeline"),
                (
                    "circleci_project",
                    "HAS",
                    "circleci_project_environment_variable",
                ),
                ("circleci_user_group", "HAS", "circleci_project"),
                ("circleci_user_group", "HAS", "circleci_user"),
                ("circleci_workflow", "HAS", "circleci_job"),
            ],
        ),
    ];
    for (id, entities, relationships) in seeds {
        let result = corral(&["plugin", "document", id], None).await;
        assert!(result.status.success(), "{id}: {}", text(&result.stderr));
        let doc = text(&result.stdout);
        assert_eq!(
            table_rows(&doc, "### Entities"),
            rows(&entities),
            "{id} entities"
        );
        assert_eq!(
            table_rows(&doc, "### Relationships"),
            rows(&relationships),
            "{id} relationships"
        );
    }
}

/// `corral run` on one instance of `plugin` whose config (TOML lines) reads the secret
/// from `CORRAL_TEST_TOKEN`; returns the result and the scratch directory.
async fn run_connector(name: &str, plugin: &str, config: &str, token: &str) -> (Output, PathBuf) {
    let dir = scratch(name);
    let text = format!(
        "[[instance]]\nid = \"{name}\"\nplugin = \"{plugin}\"\n[instance.config]\n{config}"
    );
    std::fs::write(dir.join("corral.toml"), text).unwrap();
    let out = dir.join("out");
    let cfg = dir.join("corral.toml");
    let result = corral(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        Some(token),
    )
    .await;
    (result, dir)
}

/// For the SentinelOne, runZero and CircleCI connectors: a good token gives exit 0 and
/// appears in no file, stdout or stderr; a wrong one gives exit 1 and no output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connector_exits_by_its_result_and_leaks_no_secret() {
    use corral_simulators::circleci::{CircleCiConfig, CircleCiSim};
    use corral_simulators::runzero::{RunZeroConfig, RunZeroSim};
    use corral_simulators::sentinelone::{SentinelOneConfig, SentinelOneSim};
    const GOOD: &str = "connector-cli-token-a61f0c2e";
    let s1 = SentinelOneSim::new(&SentinelOneConfig {
        token: GOOD.into(),
        groups: 5,
        agents: 30,
        ..Default::default()
    })
    .start(0)
    .await
    .unwrap();
    let rz = RunZeroSim::new(&RunZeroConfig {
        account_key: GOOD.into(),
        assets_per_site: 5,
        ..Default::default()
    })
    .start(0)
    .await
    .unwrap();
    let cci_sim = CircleCiSim::new(&CircleCiConfig {
        token: GOOD.into(),
        pipelines_per_org: 5,
        ..Default::default()
    });
    let cci = cci_sim.start(0).await.unwrap();
    let cases = [
        (
            "s1-cli",
            "sentinelone",
            format!(
                "serverUrl = \"{}\"\napiToken = {{ env = \"CORRAL_TEST_TOKEN\" }}\n",
                s1.origin()
            ),
        ),
        (
            "rz-cli",
            "runzero",
            format!(
                "baseUrl = \"{}/api/v1.0\"\naccountAPIKey = {{ env = \"CORRAL_TEST_TOKEN\" }}\n",
                rz.origin()
            ),
        ),
        (
            "cci-cli",
            "circleci",
            format!(
                "baseUrl = \"{}/api/v2/\"\napiKey = {{ env = \"CORRAL_TEST_TOKEN\" }}\nlogin = \"octocat\"\nuserId = {}\n",
                cci.origin(),
                cci_sim.me["id"]
            ),
        ),
    ];
    for (name, plugin, config) in &cases {
        let (result, dir) = run_connector(name, plugin, config, GOOD).await;
        let (stdout, stderr) = (text(&result.stdout), text(&result.stderr));
        assert_eq!(result.status.code(), Some(0), "{name}: {stdout}\n{stderr}");
        let written = files(&dir.join("out").join(name));
        assert!(written.len() > 3, "{name}: {written:?}");
        for f in files(&dir) {
            assert!(
                !text(&std::fs::read(&f).unwrap()).contains(GOOD),
                "{name}: {} holds the token",
                f.display()
            );
        }
        assert!(!stdout.contains(GOOD) && !stderr.contains(GOOD), "{name}");

        let (bad, dir) =
            run_connector(&format!("{name}-bad"), plugin, config, "wrong-token-0000").await;
        assert_eq!(bad.status.code(), Some(1), "{name}: {}", text(&bad.stdout));
        assert!(
            text(&bad.stdout).contains("validation failed: authentication error"),
            "{name}"
        );
        assert!(!dir.join("out").join(format!("{name}-bad")).exists());
    }
}
