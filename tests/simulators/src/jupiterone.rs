//! A mock JupiterOne persister (`/persister/synchronization/jobs`): the job lifecycle,
//! uploads, events, finalize and abort as `../shared/jupiterone-sync.md` describes them.
//! It checks the headers (401 without a Bearer key or an account), answers 413 to a body
//! over its limit, keeps a live graph per scope so finalize can count what it created,
//! updated and deleted (sparing the partial types), and records every batch for tests.

use crate::server::{Provider, SimRequest, SimResponse, SimServer};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const JOBS_PATH: &str = "/persister/synchronization/jobs";
/// JupiterOne's body limit.
pub const DEFAULT_MAX_BODY: usize = 5_000_000;

#[derive(Debug, Clone)]
pub struct PersisterConfig {
    pub api_key: String,
    pub account: String,
    pub max_body: usize,
}

impl Default for PersisterConfig {
    fn default() -> Self {
        PersisterConfig {
            api_key: "j1-test-api-key".into(),
            account: "j1-test-account".into(),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// One upload as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub job: String,
    /// `entities` or `relationships`.
    pub kind: String,
    pub correlation_id: Option<String>,
    pub bytes: usize,
    /// 200, or the error it was answered with (413 over the limit, an injected fault);
    /// then its objects were not kept and `keys` is empty.
    pub status: u16,
    pub keys: Vec<String>,
}

/// A job and everything sent to it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub integration_instance_id: String,
    pub status: String,
    pub start_timestamp: u64,
    pub entities: BTreeMap<String, Value>,
    pub relationships: BTreeMap<String, Value>,
    pub events: Vec<Value>,
    pub partial_types: Option<Vec<String>>,
    pub abort_reason: Option<String>,
    pub counts: BTreeMap<String, u64>,
}

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    /// The live graph per integration instance: key → object.
    scopes: BTreeMap<String, BTreeMap<String, Value>>,
    batches: Vec<Batch>,
}

pub struct MockPersister {
    pub config: PersisterConfig,
    max_body: AtomicUsize,
    state: Mutex<State>,
    /// Injected failures: the call (`entities`, `relationships`, `finalize`, …), the
    /// status, and how many more times.
    faults: Mutex<Vec<(String, u16, u32)>>,
}

impl MockPersister {
    pub fn new(config: PersisterConfig) -> Arc<Self> {
        Arc::new(MockPersister {
            max_body: AtomicUsize::new(config.max_body),
            config,
            state: Mutex::default(),
            faults: Mutex::default(),
        })
    }

    pub async fn start(self: &Arc<Self>, port: u16) -> anyhow::Result<SimServer> {
        SimServer::start(self.clone(), port).await
    }

    /// Changes the body limit (tests force a 413 with it).
    pub fn set_max_body(&self, bytes: usize) {
        self.max_body.store(bytes, Ordering::SeqCst);
    }

    /// Answers the next `times` calls named `call` (the last path segment:
    /// `entities`, `relationships`, `events`, `finalize`, `abort`, or `jobs` for job
    /// creation) with `status`. Failed uploads are recorded as batches with that status.
    pub fn inject(&self, call: &str, status: u16, times: u32) {
        self.faults
            .lock()
            .unwrap()
            .push((call.to_string(), status, times));
    }

    fn take_fault(&self, call: &str) -> Option<u16> {
        let mut faults = self.faults.lock().unwrap();
        let hit = faults.iter_mut().find(|(c, _, n)| c == call && *n > 0)?;
        hit.2 -= 1;
        Some(hit.1)
    }

    pub fn jobs(&self) -> Vec<Job> {
        self.state.lock().unwrap().jobs.clone()
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.state.lock().unwrap().batches.clone()
    }

    /// The live graph of an integration instance after the finalized jobs.
    pub fn scope(&self, integration_instance_id: &str) -> BTreeMap<String, Value> {
        let state = self.state.lock().unwrap();
        state
            .scopes
            .get(integration_instance_id)
            .cloned()
            .unwrap_or_default()
    }

    fn route(&self, req: &SimRequest) -> SimResponse {
        let Some(rest) = req.path.strip_prefix(JOBS_PATH) else {
            return error(404, "NOT_FOUND", "no such route");
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        if req.method == "POST" {
            let call = parts
                .last()
                .copied()
                .filter(|_| parts.len() > 1)
                .unwrap_or("jobs");
            if let Some(status) = self.take_fault(call) {
                self.record_refused(req, &parts, status);
                return error(status, "INJECTED", &format!("injected fault {status}"));
            }
            if req.body.len() > self.max_body.load(Ordering::SeqCst) {
                self.record_refused(req, &parts, 413);
                return error(413, "REQUEST_ENTITY_TOO_LARGE", "request entity too large");
            }
        }
        let body: Value = if req.method == "POST" {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return error(400, "BAD_REQUEST", &format!("body is not JSON: {e}")),
            }
        } else {
            Value::Null
        };
        let mut state = self.state.lock().unwrap();
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", []) => create_job(&mut state, &body),
            ("GET", [id]) => with_job(&mut state, id, |job| Ok(job_json(job))),
            ("POST", [id, kind @ ("entities" | "relationships")]) => {
                upload(&mut state, id, kind, req, &body)
            }
            ("POST", [id, "events"]) => with_job(&mut state, id, |job| {
                let events = body["events"].as_array().ok_or("no events array")?;
                job.events.extend(events.iter().cloned());
                Ok(job_json(job))
            }),
            ("POST", [id, "finalize"]) => finalize(&mut state, id, &body),
            ("POST", [id, "abort"]) => with_job(&mut state, id, |job| {
                awaiting(job)?;
                job.status = "ABORTED".into();
                job.abort_reason = body["reason"].as_str().map(String::from);
                Ok(job_json(job))
            }),
            _ => error(404, "NOT_FOUND", "no such route"),
        }
    }

    /// Records an upload that was answered with an error.
    fn record_refused(&self, req: &SimRequest, parts: &[&str], status: u16) {
        if let [job, kind @ ("entities" | "relationships")] = parts {
            self.state.lock().unwrap().batches.push(Batch {
                job: job.to_string(),
                kind: kind.to_string(),
                correlation_id: correlation(req),
                bytes: req.body.len(),
                status,
                keys: Vec::new(),
            });
        }
    }
}

impl Provider for MockPersister {
    fn authorized(&self, req: &SimRequest) -> bool {
        let bearer = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "));
        let account = req
            .header("jupiterone-account")
            .or_else(|| req.header("lifeomic-account"));
        bearer == Some(self.config.api_key.as_str()) && account == Some(&self.config.account)
    }

    fn unauthorized(&self) -> SimResponse {
        error(
            401,
            "UNAUTHORIZED",
            "a Bearer API key and an account are required",
        )
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        self.route(req)
    }
}

fn error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

fn correlation(req: &SimRequest) -> Option<String> {
    req.header("jupiterone-correlation-id").map(String::from)
}

fn create_job(state: &mut State, body: &Value) -> SimResponse {
    let source = body["source"].as_str().unwrap_or("");
    let Some(scope) = body["integrationInstanceId"].as_str() else {
        return error(400, "BAD_REQUEST", "integrationInstanceId is required");
    };
    if !matches!(source, "integration-managed" | "integration-external") {
        return error(
            400,
            "BAD_REQUEST",
            &format!("unsupported source {source:?}"),
        );
    }
    let job = Job {
        id: format!("job-{:04}", state.jobs.len() + 1),
        integration_instance_id: scope.to_string(),
        status: "AWAITING_UPLOADS".into(),
        start_timestamp: 1_700_000_000_000 + state.jobs.len() as u64,
        entities: BTreeMap::new(),
        relationships: BTreeMap::new(),
        events: Vec::new(),
        partial_types: None,
        abort_reason: None,
        counts: BTreeMap::new(),
    };
    let answer = job_json(&job);
    state.jobs.push(job);
    answer
}

fn with_job(
    state: &mut State,
    id: &str,
    f: impl FnOnce(&mut Job) -> Result<SimResponse, &'static str>,
) -> SimResponse {
    match state.jobs.iter_mut().find(|j| j.id == id) {
        None => error(404, "NOT_FOUND", &format!("no job {id}")),
        Some(job) => f(job).unwrap_or_else(|m| {
            if m == "JOB_NOT_AWAITING_UPLOADS" {
                error(400, m, "the job is not awaiting uploads")
            } else {
                error(400, "BAD_REQUEST", m)
            }
        }),
    }
}

fn awaiting(job: &Job) -> Result<(), &'static str> {
    (job.status == "AWAITING_UPLOADS")
        .then_some(())
        .ok_or("JOB_NOT_AWAITING_UPLOADS")
}

fn upload(state: &mut State, id: &str, kind: &str, req: &SimRequest, body: &Value) -> SimResponse {
    let mut keys = Vec::new();
    let answer = with_job(state, id, |job| {
        awaiting(job)?;
        let objects = body[kind].as_array().ok_or("no array of objects")?;
        let target = if kind == "entities" {
            &mut job.entities
        } else {
            &mut job.relationships
        };
        for o in objects {
            let key = o["_key"].as_str().ok_or("an object has no _key")?;
            keys.push(key.to_string());
            target.insert(key.to_string(), o.clone());
        }
        *job.counts.entry(uploaded(kind).into()).or_insert(0) += objects.len() as u64;
        Ok(job_json(job))
    });
    if answer.status == 200 {
        state.batches.push(Batch {
            job: id.to_string(),
            kind: kind.to_string(),
            correlation_id: correlation(req),
            bytes: req.body.len(),
            status: 200,
            keys,
        });
    }
    answer
}

fn uploaded(kind: &str) -> &'static str {
    if kind == "entities" {
        "numEntitiesUploaded"
    } else {
        "numRelationshipsUploaded"
    }
}

/// Replaces the scope's live graph with what the job sent, keeping objects of the
/// partial types that were not sent again, and counts the differences.
fn finalize(state: &mut State, id: &str, body: &Value) -> SimResponse {
    let Some(job) = state.jobs.iter_mut().find(|j| j.id == id) else {
        return error(404, "NOT_FOUND", &format!("no job {id}"));
    };
    if awaiting(job).is_err() {
        return error(
            400,
            "JOB_NOT_AWAITING_UPLOADS",
            "the job is not awaiting uploads",
        );
    }
    let partial: BTreeSet<String> = body["partialDatasets"]["types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    job.partial_types = Some(partial.iter().cloned().collect());
    let live = state
        .scopes
        .entry(job.integration_instance_id.clone())
        .or_default();
    for (kind, sent) in [
        ("Entities", &job.entities),
        ("Relationships", &job.relationships),
    ] {
        let is_kind = |o: &Value| o.get("_fromEntityKey").is_some() == (kind == "Relationships");
        let mut counts = [0u64; 3];
        for (key, o) in sent {
            match live.insert(key.clone(), o.clone()) {
                None => counts[0] += 1,
                Some(old) if old != *o => counts[1] += 1,
                Some(_) => {}
            }
        }
        let gone: Vec<String> = live
            .iter()
            .filter(|(k, o)| is_kind(o) && !sent.contains_key(*k))
            .filter(|(_, o)| !partial.contains(o["_type"].as_str().unwrap_or("")))
            .map(|(k, _)| k.clone())
            .collect();
        counts[2] = gone.len() as u64;
        for k in gone {
            live.remove(&k);
        }
        for (name, n) in ["Created", "Updated", "Deleted"].iter().zip(counts) {
            job.counts.insert(format!("num{kind}{name}"), n);
        }
    }
    job.status = "FINISHED".into();
    job_json(job)
}

fn job_json(job: &Job) -> SimResponse {
    let mut fields = Map::new();
    fields.insert("id".into(), json!(job.id));
    fields.insert("source".into(), json!("integration-managed"));
    fields.insert("scope".into(), Value::Null);
    fields.insert(
        "integrationInstanceId".into(),
        json!(job.integration_instance_id),
    );
    fields.insert("integrationJobId".into(), Value::Null);
    fields.insert("status".into(), json!(job.status));
    fields.insert("startTimestamp".into(), json!(job.start_timestamp));
    for kind in ["Entities", "Relationships"] {
        for n in ["Uploaded", "Created", "Updated", "Deleted"] {
            let name = format!("num{kind}{n}");
            let v = job.counts.get(&name).copied().unwrap_or(0);
            fields.insert(name, json!(v));
        }
    }
    SimResponse::json(200, &json!({ "job": fields }))
}
