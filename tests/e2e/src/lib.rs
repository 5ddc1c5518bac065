//! Helpers for the end-to-end tests: running the real host on the built plugins against
//! the simulators, and the key sets a graph must have, derived from the simulator's data
//! with the provider spec's formulas (not with the connector's code).

use corral::config::{ConfigValue, InstanceConfig, PollingInterval};
use corral::engine::PoolSize;
use corral::plugin::{self, LoadedPlugin, PluginError, PluginSource};
use corral::run::{RunReport, resolve_with_policy, run_instance};
use corral::runtime::Runtime;
use corral_simulators::kandji::KandjiData;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub type KeysByType = BTreeMap<String, BTreeSet<String>>;

/// A runtime with a small pool: tests run several in one process.
pub fn runtime() -> Runtime {
    Runtime::with_pool(&PoolSize { instances: 16 }).expect("runtime")
}

pub fn kandji_instance(id: &str, api_url: &str, token: ConfigValue) -> InstanceConfig {
    InstanceConfig {
        id: id.into(),
        name: format!("{id} name"),
        description: None,
        plugin: "kandji".into(),
        policy: None,
        polling_interval: PollingInterval::Disabled,
        tag_account_name: false,
        config: BTreeMap::from([
            ("apiUrl".into(), ConfigValue::Text(api_url.into())),
            ("accessToken".into(), token),
        ]),
    }
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
        tag_account_name: false,
        config: BTreeMap::from([
            ("attack".into(), ConfigValue::Text(attack.into())),
            ("baseUrl".into(), ConfigValue::Text(base_url.into())),
            ("target".into(), ConfigValue::Text(target.into())),
            ("token".into(), ConfigValue::Text(token.into())),
        ]),
    }
}

/// Every `_key` the run stored, by `_type`.
pub fn keys_by_type(report: &RunReport) -> KeysByType {
    let mut out = KeysByType::new();
    for o in report
        .graph
        .entities
        .iter()
        .chain(&report.graph.relationships)
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
