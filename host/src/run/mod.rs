//! Running an instance: resolve its config and grant, `validate`, then the steps as a
//! DAG by `dependsOn`, each step in a fresh instance from the plugin's `InstancePre`.
//! Independent steps run at once; a failed step's dependents still run and are marked
//! partial, as JupiterOne does.

use crate::capabilities::graph::{GraphStore, StepObjects};
use crate::capabilities::lift;
use crate::capabilities::log::{LogRecord, MAX_LINE_BYTES, clip_redacted, now_ms};
use crate::capabilities::{Event, RunContext};
use crate::config::InstanceConfig;
use crate::engine::instance_gate;
use crate::lock::LockExt;
use crate::net::address::StaticHosts;
use crate::plugin::guest::{GuestInstance, guest_call};
use crate::plugin::wit::connector::StepError;
use crate::plugin::{LoadedPlugin, Manifest, StepInfo};
use crate::policy::{Grant, Policy};
use crate::secrets::{SecretValue, Secrets};
use anyhow::{Context as _, bail};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// An instance ready to run: its plugin, config split into plain values and secrets,
/// and its grant.
pub struct ResolvedInstance {
    pub id: String,
    pub name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub config: BTreeMap<String, String>,
    pub secrets: Secrets,
    pub grant: Grant,
    pub policy_path: Option<PathBuf>,
    /// `host:port` of the URLs the operator wrote in this instance's config: without an
    /// operator policy, only these may be restricted addresses the plugin reaches.
    pub operator_hosts: BTreeSet<String>,
    /// The instance's graph as its previous run left it (set by whoever keeps the
    /// state: `corral run`, `corral demo`, `corral serve`).
    pub previous: Option<Arc<dyn crate::capabilities::graph::PreviousGraph>>,
    /// Who keeps the shared provider quotas, when not this process (a cluster
    /// worker's coordinator).
    pub quota_keeper: Option<Arc<dyn crate::capabilities::http::quota::QuotaKeeper>>,
    /// What the instance's previous successful run cost (from the run history).
    pub expected: Expected,
    /// Where the run's HTTP exchanges are recorded (`corral run --record`).
    pub recorder: Option<Arc<crate::capabilities::http::tape::Recorder>>,
    /// Recorded answers the run is given instead of the network (`--replay`).
    pub tape: Option<Arc<crate::capabilities::http::tape::Tape>>,
}

/// What an instance's previous successful run cost: estimates, never limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Requests: a run past its quotas is warned up front that it will be spread.
    pub requests: Option<u64>,
    /// Objects (entities and relationships): the run's key index is sized for them.
    pub objects: Option<u64>,
}

/// Splits the config into values and secrets (reading `{ env = … }`), checks it against
/// the manifest's fields, and builds the grant from the manifest and the operator policy.
pub fn resolve_instance(
    cfg: &InstanceConfig,
    plugin: Arc<LoadedPlugin>,
) -> anyhow::Result<ResolvedInstance> {
    let policy = read_policy(cfg)?;
    resolve_with_policy(cfg, plugin, policy)
}

/// The operator policy file of an instance as (text, source name), if it names one.
pub fn read_policy(cfg: &InstanceConfig) -> anyhow::Result<Option<(String, String)>> {
    let Some(path) = &cfg.policy else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read policy", path.display()))?;
    Ok(Some((text, path.display().to_string())))
}

/// As [`resolve_instance`], with the operator policy given as (text, source name).
pub fn resolve_with_policy(
    cfg: &InstanceConfig,
    plugin: Arc<LoadedPlugin>,
    policy: Option<(String, String)>,
) -> anyhow::Result<ResolvedInstance> {
    let (config, secrets) = split_config(cfg, &plugin.manifest, Secrecy::Read)?;
    let operator_set = operator_values(cfg, &config);
    let grant = build_grant(&plugin.manifest, &config, &operator_set, policy)?;
    Ok(ResolvedInstance {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        plugin,
        operator_hosts: url_hosts(operator_set.values()),
        config,
        secrets,
        grant,
        policy_path: cfg.policy.clone(),
        previous: None,
        quota_keeper: None,
        expected: Expected::default(),
        recorder: None,
        tape: None,
    })
}

/// `host:port` of the values that are URLs, as `url` writes them (`[::1]:80`).
fn url_hosts<'a>(values: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    values
        .filter_map(|v| url::Url::parse(v).ok())
        .filter_map(|u| crate::net::address::host_port(&u))
        .collect()
}

/// Whether secret values are read (to run) or left alone (to explain a policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    Read,
    Skip,
}

/// The instance's non-secret config values and its secrets, checked against the
/// manifest: every field declared, every required field present.
pub fn split_config(
    cfg: &InstanceConfig,
    m: &Manifest,
    secrecy: Secrecy,
) -> anyhow::Result<(BTreeMap<String, String>, Secrets)> {
    let secret_fields = m.secret_fields();
    let mut config = BTreeMap::new();
    let mut secrets = Secrets::default();
    for (name, value) in &cfg.config {
        if !m.config_fields.iter().any(|f| &f.name == name) {
            let known: Vec<&str> = m.config_fields.iter().map(|f| f.name.as_str()).collect();
            bail!(
                "config field {name} is not declared by plugin {} (its fields: {})",
                m.id,
                known.join(", ")
            );
        }
        let secret = secret_fields.contains(name);
        // The operator decides what is secret: a value from the environment (or marked
        // `{ secret = … }`) is one, and a plugin that would read it is refused.
        if value.is_secret() && !secret {
            bail!(
                "config field {name} is a secret (set from the environment or marked secret), but plugin {} declares it non-secret, so the plugin could read it; write the value as plain text if it is not secret",
                m.id
            );
        }
        if secret && secrecy == Secrecy::Skip {
            continue;
        }
        let text = value
            .resolve()
            .with_context(|| format!("config field {name}"))?;
        if secret {
            secrets.insert(name.clone(), SecretValue::new(text));
        } else {
            config.insert(name.clone(), text);
        }
    }
    for f in &m.config_fields {
        if let (Some(default), false) = (&f.default, config.contains_key(&f.name)) {
            config.insert(f.name.clone(), default.clone());
        }
    }
    for f in m.config_fields.iter().filter(|f| !f.optional) {
        let skipped = f.secret && secrecy == Secrecy::Skip;
        if !skipped && !config.contains_key(&f.name) && !secrets.contains(&f.name) {
            bail!(
                "config field {} is required by plugin {} ({})",
                f.name,
                m.id,
                f.description
            );
        }
    }
    Ok((config, secrets))
}

/// The config values the operator wrote for the instance, without plugin defaults: the
/// only values an operator policy's `{{config.FIELD}}` may take.
pub fn operator_values(
    cfg: &InstanceConfig,
    config: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(name, _)| cfg.config.contains_key(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The manifest's request templated with the whole config (plugin defaults included),
/// and the operator's policy templated only with what the operator set (`operator_set`,
/// see [`operator_values`]): a plugin's default must not widen the operator's rules.
pub fn build_grant(
    m: &Manifest,
    config: &BTreeMap<String, String>,
    operator_set: &BTreeMap<String, String>,
    policy: Option<(String, String)>,
) -> anyhow::Result<Grant> {
    let requested = Policy::parse(
        &m.capabilities,
        &format!("manifest of plugin {}", m.id),
        config,
    )?;
    let operator = match policy {
        None => None,
        Some((text, source)) => Some(Policy::parse_operator(
            &text,
            &source,
            operator_set,
            config,
        )?),
    };
    Ok(Grant::new(requested, operator))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Success,
    Failure,
    PartialSuccessDueToDependencyFailure,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub info: StepInfo,
    pub status: StepStatus,
    pub duration: Duration,
    pub error: Option<String>,
}

/// Everything a run produced, for the output writer and the console.
pub struct RunReport {
    pub instance_id: String,
    pub instance_name: String,
    pub plugin_id: String,
    pub plugin_version: String,
    pub plugin_digest: String,
    pub plugin_source: String,
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    pub duration: Duration,
    /// `Err(reason)` when validation failed; then no step ran.
    pub validation: Result<(), String>,
    pub steps: Vec<StepResult>,
    pub graph: GraphStore,
    pub log: Vec<LogRecord>,
    pub log_dropped: u64,
    pub requests: u64,
    pub warnings: u64,
    pub denials: Vec<Event>,
    pub limit_hits: Vec<Event>,
    pub rejections: Vec<Event>,
    /// Per step, the types of objects the host refused: partial though the step succeeded.
    pub rejected_types: BTreeMap<String, BTreeSet<String>>,
}

impl StepStatus {
    /// Failed, or ran after a failed dependency: what it declares may be incomplete.
    pub fn is_partial(self) -> bool {
        matches!(
            self,
            StepStatus::Failure | StepStatus::PartialSuccessDueToDependencyFailure
        )
    }
}

impl RunReport {
    /// True only if validation passed and every step succeeded (disabled steps count).
    pub fn succeeded(&self) -> bool {
        self.validation.is_ok()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.status, StepStatus::Success | StepStatus::Disabled))
    }

    /// Types JupiterOne (and the local change set) must not delete old data of: those of
    /// failed and partial steps, and those of objects the host refused.
    pub fn partial_types(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .steps
            .iter()
            .flat_map(|s| self.step_partial_types(s))
            .collect();
        set.into_iter().collect()
    }

    /// One step's partial types: all it declares if it failed, else those of its
    /// refused objects.
    pub fn step_partial_types(&self, step: &StepResult) -> Vec<String> {
        if step.status.is_partial() {
            return step.info.declared_types();
        }
        let rejected = self.rejected_types.get(&step.info.id);
        rejected.map_or_else(Vec::new, |t| t.iter().cloned().collect())
    }
}

/// What a run tells an observer as it goes (`corral run --sync` uploads from this).
#[derive(Debug)]
pub enum StepEvent {
    Started {
        id: String,
        name: String,
    },
    /// A step ended; the objects it emitted come with it (or why they could not).
    Finished {
        result: StepResult,
        objects: Result<StepObjects, String>,
    },
}

pub type StepObserver = tokio::sync::mpsc::UnboundedSender<StepEvent>;

/// Runs one instance to the end and reports what happened. Never panics on guest
/// behaviour: traps, timeouts and refusals become step errors.
pub async fn run_instance(inst: &ResolvedInstance, hosts: StaticHosts) -> RunReport {
    run_instance_observed(inst, hosts, None).await
}

/// [`run_instance`], telling `observer` when each step starts and ends.
pub async fn run_instance_observed(
    inst: &ResolvedInstance,
    hosts: StaticHosts,
    observer: Option<StepObserver>,
) -> RunReport {
    use futures::FutureExt as _;
    let started = Instant::now();
    let started_at_ms = now_ms();
    // A host panic on this run's path ends this run as failed; other instances of the
    // process (`corral run` joins them in one task) keep theirs.
    std::panic::AssertUnwindSafe(run_unguarded(inst, hosts, observer))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| crashed(inst, started, started_at_ms, panic_text(&*panic)))
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into());
    format!("the host failed during the run: {text}")
}

/// The report of a run the host itself failed (a bug, not the plugin's doing).
fn crashed(
    inst: &ResolvedInstance,
    started: Instant,
    started_at_ms: u64,
    reason: String,
) -> RunReport {
    tracing::error!(instance = %inst.id, "{reason}");
    bare_report(inst, Err(reason), Vec::new(), started, started_at_ms)
}

/// A report with the run's identity and outcome and nothing collected.
fn bare_report(
    inst: &ResolvedInstance,
    validation: Result<(), String>,
    steps: Vec<StepResult>,
    started: Instant,
    started_at_ms: u64,
) -> RunReport {
    RunReport {
        instance_id: inst.id.clone(),
        instance_name: inst.name.clone(),
        plugin_id: inst.plugin.manifest.id.clone(),
        plugin_version: inst.plugin.manifest.version.clone(),
        plugin_digest: inst.plugin.digest.clone(),
        plugin_source: inst.plugin.source.to_string(),
        started_at_ms,
        ended_at_ms: now_ms(),
        duration: started.elapsed(),
        validation,
        steps,
        graph: GraphStore::default(),
        log: Vec::new(),
        log_dropped: 0,
        requests: 0,
        warnings: 0,
        denials: Vec::new(),
        limit_hits: Vec::new(),
        rejections: Vec::new(),
        rejected_types: BTreeMap::new(),
    }
}

async fn run_unguarded(
    inst: &ResolvedInstance,
    hosts: StaticHosts,
    observer: Option<StepObserver>,
) -> RunReport {
    let started = Instant::now();
    let started_at_ms = now_ms();
    let m = &inst.plugin.manifest;
    let mut context = RunContext::new(
        &inst.id,
        &inst.name,
        inst.grant.clone(),
        inst.secrets.clone(),
        inst.config.clone(),
        m.secret_fields(),
        hosts,
    );
    context.graph.mapped_types = m.mapped_types();
    context.graph.declared_types = m.steps.iter().flat_map(|s| s.declared_types()).collect();
    if let Some(objects) = inst.expected.objects {
        context.graph.store.locked().reserve(objects);
    }
    context.http.operator_hosts = inst.operator_hosts.clone();
    context.http.quota_scope = m.id.clone();
    context.graph.previous = inst.previous.clone();
    context.http.quota_keeper = inst.quota_keeper.clone();
    context.http.recorder = inst.recorder.clone();
    context.http.tape = inst.tape.clone();
    let run = Arc::new(context);
    warn_of_quota(inst, &run);
    let validation = guest_call!(&inst.plugin.guest, &run, "validate", |p, s| p.validate(s))
        .and_then(|r| r.map_err(|e| describe_step_error(&e)))
        .map_err(|e| clip_redacted(&run, &e, MAX_LINE_BYTES));
    let steps = match &validation {
        Ok(()) => run_steps(inst, &run, observer.as_ref()).await,
        Err(reason) => {
            run.log.host(
                &run,
                "validate",
                "error",
                &format!("validation failed: {reason}"),
            );
            Vec::new()
        }
    };
    finish(inst, run, validation, steps, started, started_at_ms)
}

/// Says up front, in the run's log, when the run is expected to need more requests than
/// its quotas allow at once (so it will be spread, not failed).
fn warn_of_quota(inst: &ResolvedInstance, run: &RunContext) {
    let l = &inst.grant.limits;
    let line = inst.expected.requests.and_then(|n| {
        crate::capabilities::http::quota_estimate(
            n,
            l.requests_per_second,
            l.requests_per_minute,
            l.requests_per_hour,
        )
    });
    if let Some(line) = line {
        run.log.host(run, "quota", "warn", &line);
    }
}

fn finish(
    inst: &ResolvedInstance,
    run: Arc<RunContext>,
    validation: Result<(), String>,
    steps: Vec<StepResult>,
    started: Instant,
    started_at_ms: u64,
) -> RunReport {
    if let Some(r) = run.http.recorder.as_ref().filter(|r| r.incomplete()) {
        let line = format!(
            "{}: the recording is incomplete (past {} bytes, or a write failed)",
            r.path().display(),
            crate::capabilities::http::tape::MAX_RECORDED_BYTES
        );
        run.log.host(&run, "record", "warn", &line);
    }
    let take = |l: &std::sync::Mutex<Vec<Event>>| std::mem::take(&mut *l.locked());
    let mut graph = std::mem::take(&mut *run.graph.store.locked());
    if let Err(e) = graph.seal() {
        let reason = format!("the host could not store the run's graph: {e}");
        return crashed(inst, started, started_at_ms, reason);
    }
    RunReport {
        graph,
        log: run.log.records(),
        log_dropped: run.log.dropped(),
        requests: run.stats.requests.load(Ordering::Relaxed),
        warnings: run.stats.warnings.load(Ordering::Relaxed),
        denials: take(&run.stats.denials),
        limit_hits: take(&run.stats.limit_hits),
        rejections: take(&run.stats.rejections),
        rejected_types: rejected_types(&run, &inst.plugin.manifest),
        ..bare_report(inst, validation, steps, started, started_at_ms)
    }
}

/// Per step, the types its refused objects would have carried (a refused object with no
/// declared type stands for all the step declares).
fn rejected_types(run: &RunContext, m: &Manifest) -> BTreeMap<String, BTreeSet<String>> {
    let partial = run.stats.partial.locked();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (step, type_name) in partial.iter() {
        let types = out.entry(step.clone()).or_default();
        match type_name {
            Some(t) => {
                types.insert(t.clone());
            }
            None => {
                let declared = m.steps.iter().filter(|s| &s.id == step);
                types.extend(declared.flat_map(|s| s.declared_types()));
            }
        }
    }
    add_relationships_of_rejected_entities(&mut out, m);
    out
}

/// A rejected entity also takes the relationships that would have started or ended at
/// it, in any later step (steps only link entities that are in the graph): every declared
/// relationship type touching a rejected entity type is partial too.
fn add_relationships_of_rejected_entities(
    partial: &mut BTreeMap<String, BTreeSet<String>>,
    m: &Manifest,
) {
    let entity_types: BTreeSet<&str> = m
        .steps
        .iter()
        .flat_map(|s| &s.entities)
        .map(|e| e.type_name.as_str())
        .collect();
    let rejected: BTreeSet<String> = partial
        .values()
        .flatten()
        .filter(|t| entity_types.contains(t.as_str()))
        .cloned()
        .collect();
    for s in &m.steps {
        for r in &s.relationships {
            if rejected.contains(&r.source_type) || rejected.contains(&r.target_type) {
                let types = partial.entry(s.id.clone()).or_default();
                types.insert(r.type_name.clone());
            }
        }
    }
}

/// A guest's step error: its kind and message (cut to 4 KiB, once redacted, by the caller).
pub fn describe_step_error(e: &StepError) -> String {
    use StepError as E;
    match e {
        E::Authentication(m) => format!("authentication error: {m}"),
        E::Config(m) => format!("config error: {m}"),
        E::Provider(m) => format!("provider error: {m}"),
        E::Other(m) => m.clone(),
    }
}

async fn disabled_steps(
    inst: &ResolvedInstance,
    run: &Arc<RunContext>,
) -> Result<BTreeSet<String>, String> {
    // At most `caps::STEPS` ids and `memoryMiB` bytes, refused before copying.
    let list = guest_call!(&inst.plugin.guest, run, "disabled-steps", |p, s| {
        lift::disabled_steps(p.disabled_steps, s)
    })??;
    Ok(list.into_iter().collect())
}

async fn run_steps(
    inst: &ResolvedInstance,
    run: &Arc<RunContext>,
    observer: Option<&StepObserver>,
) -> Vec<StepResult> {
    let steps = &inst.plugin.manifest.steps;
    let disabled = match disabled_steps(inst, run).await {
        Ok(d) => d,
        Err(e) => {
            run.log.host(run, "disabled-steps", "error", &e);
            BTreeSet::new()
        }
    };
    let slots = step_slots(run, &inst.plugin);
    let mut done: HashMap<String, StepResult> = HashMap::new();
    let mut running: HashMap<tokio::task::Id, StepInfo> = HashMap::new();
    let mut set = JoinSet::new();
    loop {
        for s in steps {
            if running.len() >= slots {
                break;
            }
            let busy = running.values().any(|r| r.id == s.id);
            if busy || done.contains_key(&s.id) {
                continue;
            }
            if !s.depends_on.iter().all(|d| done.contains_key(d)) {
                continue;
            }
            let deps: Vec<&StepResult> = s.depends_on.iter().filter_map(|d| done.get(d)).collect();
            if disabled.contains(&s.id) || deps.iter().any(|d| d.status == StepStatus::Disabled) {
                done.insert(s.id.clone(), not_run(s, StepStatus::Disabled, None));
                continue;
            }
            let upstream_failed = deps.iter().any(|d| d.status.is_partial());
            if let Some(o) = observer {
                let _ = o.send(StepEvent::Started {
                    id: s.id.clone(),
                    name: s.name.clone(),
                });
            }
            let (info, run, plugin) = (s.clone(), run.clone(), inst.plugin.clone());
            let handle =
                set.spawn(async move { run_step(info, run, plugin, upstream_failed).await });
            running.insert(handle.id(), s.clone());
        }
        let Some(joined) = set.join_next_with_id().await else {
            break;
        };
        let result = match joined {
            Ok((id, result)) => {
                running.remove(&id);
                result
            }
            // A host panic while running one step fails that step, not the run.
            Err(e) => {
                let Some(info) = running.remove(&e.id()) else {
                    continue;
                };
                let reason = format!("the host failed while running this step: {e}");
                run.log.host(run, &info.id, "error", &reason);
                not_run(&info, StepStatus::Failure, Some(reason))
            }
        };
        if let Some(o) = observer {
            let _ = o.send(finished_event(run, &result));
        }
        done.insert(result.info.id.clone(), result);
        // Disabled steps may have completed the DAG without anything running.
        if set.is_empty() && done.len() == steps.len() {
            break;
        }
    }
    steps.iter().filter_map(|s| done.remove(&s.id)).collect()
}

/// Steps of this run that may execute at once: the policy's `maxConcurrentSteps`, and
/// no more than the run's share of the engine's instance pool.
fn step_slots(run: &RunContext, plugin: &LoadedPlugin) -> usize {
    let share = instance_gate(plugin.guest.engine()).per_run;
    (run.grant.limits.max_concurrent_steps as usize).clamp(1, share.max(1))
}

fn not_run(info: &StepInfo, status: StepStatus, error: Option<String>) -> StepResult {
    StepResult {
        info: info.clone(),
        status,
        duration: Duration::ZERO,
        error,
    }
}

/// The step's result with copies of the objects it emitted.
fn finished_event(run: &RunContext, result: &StepResult) -> StepEvent {
    let objects = run.graph.store.locked().step_objects(&result.info.id);
    StepEvent::Finished {
        result: result.clone(),
        objects: objects.map_err(|e| {
            format!(
                "the host could not read step {}'s objects: {e:#}",
                result.info.id
            )
        }),
    }
}

async fn run_step(
    info: StepInfo,
    run: Arc<RunContext>,
    plugin: Arc<LoadedPlugin>,
    upstream_failed: bool,
) -> StepResult {
    let started = Instant::now();
    let id = info.id.clone();
    let outcome = guest_call!(&plugin.guest, &run, &id, |p, s| p.run_step(s, &id))
        .and_then(|r| r.map_err(|e| describe_step_error(&e)))
        .map_err(|e| clip_redacted(&run, &e, MAX_LINE_BYTES));
    let (status, error) = match outcome {
        Ok(()) if upstream_failed => (StepStatus::PartialSuccessDueToDependencyFailure, None),
        Ok(()) => (StepStatus::Success, None),
        Err(e) => {
            run.log
                .host(&run, &id, "error", &format!("step failed: {e}"));
            (StepStatus::Failure, Some(e))
        }
    };
    StepResult {
        info,
        status,
        duration: started.elapsed(),
        error,
    }
}

/// Times `iterations` instantiations of `plugin` from its `InstancePre` (store creation
/// included), with nothing granted; for the benchmarks.
pub async fn measure_instantiation(plugin: &LoadedPlugin, iterations: usize) -> Vec<Duration> {
    let run = Arc::new(RunContext::new(
        "bench",
        "bench",
        Grant::new(Policy::nothing("benchmark"), None),
        Secrets::default(),
        BTreeMap::new(),
        BTreeSet::new(),
        StaticHosts::default(),
    ));
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let instance = GuestInstance::new(&plugin.guest, &run, "bench").await;
        times.push(started.elapsed());
        assert!(instance.is_ok(), "instantiation failed");
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{EntityType, RelationshipType};

    fn step(id: &str, entities: &[&str], relationships: &[(&str, &str, &str)]) -> StepInfo {
        StepInfo {
            id: id.into(),
            name: id.into(),
            entities: entities
                .iter()
                .map(|t| EntityType {
                    resource_name: "R".into(),
                    type_name: t.to_string(),
                    class_name: "Device".into(),
                })
                .collect(),
            relationships: relationships
                .iter()
                .map(|(t, from, to)| RelationshipType {
                    type_name: t.to_string(),
                    class_name: "HAS".into(),
                    source_type: from.to_string(),
                    target_type: to.to_string(),
                    mapped: false,
                })
                .collect(),
            depends_on: Vec::new(),
        }
    }

    #[test]
    fn a_rejected_entity_type_makes_the_relationships_touching_it_partial() {
        let m = Manifest {
            id: "k".into(),
            version: "1".into(),
            name: "K".into(),
            description: String::new(),
            config_fields: Vec::new(),
            steps: vec![
                step(
                    "devices",
                    &["k_device"],
                    &[("k_account_has_device", "k_account", "k_device")],
                ),
                step(
                    "apps",
                    &["k_app"],
                    &[("k_device_has_app", "k_device", "k_app")],
                ),
                step(
                    "users",
                    &["k_user"],
                    &[("k_account_has_user", "k_account", "k_user")],
                ),
            ],
            capabilities: String::new(),
        };
        let mut partial = BTreeMap::from([(
            "devices".to_string(),
            BTreeSet::from(["k_device".to_string()]),
        )]);
        add_relationships_of_rejected_entities(&mut partial, &m);
        assert_eq!(
            partial,
            BTreeMap::from([
                (
                    "devices".to_string(),
                    BTreeSet::from(["k_account_has_device".to_string(), "k_device".to_string()])
                ),
                (
                    "apps".to_string(),
                    BTreeSet::from(["k_device_has_app".to_string()])
                ),
            ])
        );
    }
}
