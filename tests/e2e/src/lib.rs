//! Helpers for the end-to-end tests: running the real host on the built plugins against
//! the simulators, and the key sets a graph must have, derived from the simulator's data
//! with the provider spec's formulas (not with the connector's code).

pub mod cluster;
pub mod daemon;

use corral::config::{ConfigValue, InstanceConfig, PollingInterval};
use corral::engine::PoolSize;
use corral::plugin::runtime::Runtime;
use corral::plugin::{self, LoadedPlugin, PluginError, PluginSource};
use corral::run::{RunReport, resolve_with_policy, run_instance};
use corral_simulators::kandji::KandjiData;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub type KeysByType = BTreeMap<String, BTreeSet<String>>;

/// A runtime with a small pool: tests run several in one process.
pub fn runtime() -> Runtime {
    Runtime::with_pool(&PoolSize { instances: 16 }).expect("runtime")
}

/// An instance of `plugin` with these config values.
pub fn plugin_instance(id: &str, plugin: &str, config: Vec<(&str, ConfigValue)>) -> InstanceConfig {
    InstanceConfig {
        id: id.into(),
        name: format!("{id} name"),
        description: None,
        plugin: plugin.into(),
        policy: None,
        polling_interval: PollingInterval::Disabled,
        polling_interval_seconds: None,
        integration_instance_id: None,
        tag_account_name: false,
        config: config
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

pub fn kandji_instance(id: &str, api_url: &str, token: ConfigValue) -> InstanceConfig {
    plugin_instance(
        id,
        "kandji",
        vec![
            ("apiUrl", ConfigValue::Text(api_url.into())),
            ("accessToken", token),
        ],
    )
}

/// The adversarial test plugins, built by this crate's build script.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/test_plugins.rs"));

    pub fn get(name: &str) -> &'static [u8] {
        TEST_PLUGINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .expect("a built test plugin")
    }
}

/// The hostile component with its manifest marker rewritten to `variant` (see
/// `tests/plugins/hostile/src/manifests.rs`): one build, many hostile manifests.
pub fn hostile_variant(variant: &str) -> Vec<u8> {
    const MARKER: &[u8] = b"corral-hostile-manifest:default";
    let mut bytes = components::get("hostile").to_vec();
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("the hostile component carries its manifest marker");
    let mut patch = format!("corral-hostile-manifest:{variant}").into_bytes();
    assert!(patch.len() <= 64, "variant name too long");
    patch.resize(64, b'.');
    bytes[at..at + 64].copy_from_slice(&patch);
    bytes
}

/// Compiles and links component bytes as if dropped in as `name`.
pub async fn load_component(
    rt: &Runtime,
    bytes: &[u8],
    name: &str,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    plugin::load(
        &rt.engine,
        &rt.linker,
        bytes,
        PluginSource::File(name.into()),
    )
    .await
}

/// Runs the first-party Kandji plugin once, under `policy` if given.
pub async fn run_kandji(
    rt: &Runtime,
    instance: &InstanceConfig,
    policy: Option<&str>,
) -> RunReport {
    let plugin = rt.plugin("kandji").await.expect("the kandji plugin loads");
    run_plugin(rt, plugin, instance, policy).await
}

/// Runs `plugin` once for `instance`, under `policy` if given.
pub async fn run_plugin(
    rt: &Runtime,
    plugin: Arc<LoadedPlugin>,
    instance: &InstanceConfig,
    policy: Option<&str>,
) -> RunReport {
    let policy = policy.map(|p| (p.to_string(), "test policy".to_string()));
    let resolved = resolve_with_policy(instance, plugin, policy).expect("instance resolves");
    run_instance(&resolved, rt.hosts.clone()).await
}

/// An instance of the hostile plugin carrying out `attack`.
pub fn hostile_instance(attack: &str, base_url: &str, target: &str, token: &str) -> InstanceConfig {
    InstanceConfig {
        id: format!("hostile-{attack}"),
        name: format!("hostile {attack}"),
        description: None,
        plugin: "hostile".into(),
        policy: None,
        polling_interval: PollingInterval::Disabled,
        polling_interval_seconds: None,
        integration_instance_id: None,
        tag_account_name: false,
        config: BTreeMap::from([
            ("attack".into(), ConfigValue::Text(attack.into())),
            ("baseUrl".into(), ConfigValue::Text(base_url.into())),
            ("target".into(), ConfigValue::Text(target.into())),
            ("token".into(), ConfigValue::Text(token.into())),
        ]),
    }
}

/// The run succeeded; if not, the failure shows each step's error.
pub fn assert_run_succeeded(report: &RunReport) {
    assert!(
        report.succeeded(),
        "{:?} {:?}",
        report.validation,
        report
            .steps
            .iter()
            .map(|s| (&s.info.id, &s.error))
            .collect::<Vec<_>>()
    );
}

/// Every object the run stored, entities and relationships, as (`_key`, `_type`,
/// object) in key order: what two runs are compared by, object for object.
pub fn all_objects(
    report: &RunReport,
) -> Vec<(String, String, serde_json::Map<String, serde_json::Value>)> {
    let mut all: Vec<_> = report
        .graph
        .entities()
        .into_iter()
        .chain(report.graph.relationships())
        .map(|s| (s.key, s.type_name, s.object))
        .collect();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    all
}

/// Every `_key` the run stored, by `_type`.
pub fn keys_by_type(report: &RunReport) -> KeysByType {
    let mut out = KeysByType::new();
    for o in report
        .graph
        .entities()
        .iter()
        .chain(&report.graph.relationships())
    {
        out.entry(o.type_name.clone())
            .or_default()
            .insert(o.key.clone());
    }
    out
}

/// The keys the Kandji spec's formulas give for this tenant.
pub fn expected_kandji_keys(data: &KandjiData) -> KeysByType {
    let mut out = KeysByType::new();
    let mut add = |t: &str, k: String| {
        out.entry(t.to_string()).or_default().insert(k);
    };
    add("kandji_account", "kandji-account".into());
    for d in &data.devices {
        let id = d["device_id"].as_str().unwrap();
        add("kandji_device", id.into());
        add(
            "kandji_account_has_device",
            format!("kandji-account|has|{id}"),
        );
        if let Some(uid) = d["user"].get("id").and_then(Value::as_u64) {
            add("kandji_user", format!("kandji_user:{uid}"));
            add(
                "kandji_device_has_user",
                format!("{id}|has|kandji_user:{uid}"),
            );
        }
        for app in &data.apps[id] {
            let app_id = app["app_id"].as_str().unwrap();
            let key_id = match app["bundle_id"].as_str() {
                Some(b) if !b.is_empty() && b != "No value" => b,
                _ => app_id,
            };
            add("kandji_app", format!("kandji_app:{key_id}"));
            add(
                "kandji_device_has_app",
                format!("{id}|has|kandji_app:{app_id}"),
            );
        }
    }
    out
}

/// A provider string a person can read as a name: not empty, not only whitespace.
fn readable(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// The `name` (and `displayName`) of each Kandji device, user and app of this tenant, by
/// `_key`: the provider's name, else the fallbacks the connector's README documents
/// (device: `serial_number`, then `device_id`; user: email, then id; app: `process`,
/// `bundle_id` unless `"No value"`, `path`, then the key id). Apps and users shared by
/// several devices keep what the first device in list order gives (the spec's "first
/// seen wins").
pub fn expected_kandji_names(data: &KandjiData) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for d in &data.devices {
        let id = d["device_id"].as_str().unwrap();
        let name = readable(&d["device_name"])
            .or_else(|| readable(&d["serial_number"]))
            .unwrap_or(id);
        out.insert(id.to_string(), name.to_string());
        if let Some(uid) = d["user"].get("id").and_then(Value::as_u64) {
            let name = readable(&d["user"]["name"])
                .or_else(|| readable(&d["user"]["email"]))
                .map_or_else(|| uid.to_string(), String::from);
            out.entry(format!("kandji_user:{uid}")).or_insert(name);
        }
        for app in &data.apps[id] {
            let bundle = readable(&app["bundle_id"]).filter(|b| *b != "No value");
            let key_id = bundle.or_else(|| readable(&app["app_id"])).unwrap();
            let name = readable(&app["app_name"])
                .or_else(|| readable(&app["process"]))
                .or(bundle)
                .or_else(|| readable(&app["path"]))
                .unwrap_or(key_id);
            out.entry(format!("kandji_app:{key_id}"))
                .or_insert_with(|| name.to_string());
        }
    }
    out
}

/// Each entity's `name` by `_key`, for the entities of `types`; panics if an entity's
/// `displayName` is not its name.
pub fn names_by_key(report: &RunReport, types: &[&str]) -> BTreeMap<String, String> {
    report
        .graph
        .entities()
        .iter()
        .filter(|e| types.contains(&e.type_name.as_str()))
        .map(|e| {
            let name = e.object["name"]
                .as_str()
                .expect("a string name")
                .to_string();
            assert_eq!(
                e.object.get("displayName").and_then(Value::as_str),
                Some(name.as_str()),
                "{} displayName",
                e.key
            );
            (e.key.clone(), name)
        })
        .collect()
}

/// What the load scenario produced.
pub struct LoadOutcome {
    pub kandji: Vec<RunReport>,
    pub hostile: Vec<RunReport>,
    pub expected: KeysByType,
}

/// Attacks the load scenario mixes in beside the well-behaved runs.
pub const LOAD_ATTACKS: &[&str] = &[
    "infinite-loop",
    "memory-bomb",
    "deep-recursion",
    "panic",
    "fetch-outside",
    "log-flood",
    "big-response",
    "foreign-type",
    "secret-exfiltration",
    "entity-flood",
];

/// `well_behaved` Kandji instances (20 devices each, one simulator) and `hostile` runs of
/// the hostile plugin, all at once in one runtime.
pub async fn load_scenario(well_behaved: usize, hostile: usize) -> LoadOutcome {
    use corral_simulators::SimServer;
    use corral_simulators::attack::AttackSim;
    use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};

    let token = "load-test-token-value";
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 9,
        devices: 20,
        token: token.into(),
    });
    let server = sim.start(0).await.expect("kandji simulator");
    let attack_server = SimServer::start(Arc::new(AttackSim), 0)
        .await
        .expect("attack simulator");
    let rt = Arc::new(Runtime::with_pool(&PoolSize { instances: 200 }).expect("runtime"));
    let kandji = rt.plugin("kandji").await.expect("kandji loads");
    let hostile_plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .expect("hostile loads");

    let url = format!("{}{API_PREFIX}", server.origin());
    let mut good = Vec::new();
    for n in 0..well_behaved {
        let (rt, plugin, inst) = (
            rt.clone(),
            kandji.clone(),
            kandji_instance(
                &format!("kandji-{n}"),
                &url,
                ConfigValue::Text(token.into()),
            ),
        );
        good.push(tokio::spawn(async move {
            run_plugin(&rt, plugin, &inst, None).await
        }));
    }
    let mut bad = Vec::new();
    let base = format!("{}/", attack_server.origin());
    for n in 0..hostile {
        let attack = LOAD_ATTACKS[n % LOAD_ATTACKS.len()];
        let mut inst = hostile_instance(
            attack,
            &base,
            "https://evil.example/",
            "hostile-load-secret",
        );
        inst.id = format!("hostile-{n}");
        let (rt, plugin) = (rt.clone(), hostile_plugin.clone());
        bad.push(tokio::spawn(async move {
            run_plugin(&rt, plugin, &inst, None).await
        }));
    }
    let mut outcome = LoadOutcome {
        kandji: Vec::new(),
        hostile: Vec::new(),
        expected: expected_kandji_keys(&sim.data()),
    };
    for t in good {
        outcome
            .kandji
            .push(t.await.expect("a run task does not panic"));
    }
    for t in bad {
        outcome
            .hostile
            .push(t.await.expect("a run task does not panic"));
    }
    outcome
}

/// Peak resident set size of this process, from /proc (Linux), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) this process has used so far, in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here), in
    // clock ticks of 1/100 s on Linux.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Runs the first-party plugin `id` once for `instance`, in a fresh runtime, with no
/// operator policy.
pub async fn run_builtin(id: &str, instance: &InstanceConfig) -> RunReport {
    let rt = runtime();
    let plugin = rt.plugin(id).await.expect("the first-party plugin loads");
    run_plugin(&rt, plugin, instance, None).await
}

/// Runs `npm ARGS` in `dir`: its output, asserting it succeeded (Node.js 20 and npm are
/// needed).
pub fn npm(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("npm")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("npm runs (Node.js 20 and npm are needed for this test)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "npm {args:?} in {}: {said}",
        dir.display()
    );
    said
}

/// `dir/node_modules`, installed from its lock file (`npm ci`) unless `marker`, a package
/// the lock installs, is there already. One install at a time, across threads and
/// processes: `npm ci` first deletes `node_modules`, so a second install beside it broke
/// the first (two tests of one binary on a fresh clone).
pub fn npm_installed(dir: &std::path::Path, marker: &str) {
    // Outside the tree: `dir` may be one that `plugin new` vendors file by file.
    let name: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = std::env::temp_dir().join(format!("corral-npm{name}.lock"));
    let lock = std::fs::File::create(&path)
        .unwrap_or_else(|e| panic!("the lock file {}: {e}", path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}'s install: {e}", dir.display()));
    if !dir.join("node_modules").join(marker).exists() {
        npm(dir, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
}
