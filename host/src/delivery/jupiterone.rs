//! Uploading a graph to a JupiterOne account with its synchronization protocol
//! (`../shared/jupiterone-sync.md`): a job per upload, entity and relationship batches of
//! at most 5,000,000 bytes with a correlation id each, 413 answered by shrinking
//! `_rawData`, retries with backoff, events, and finalize with the partial types so a
//! failed step never deletes live data. The API key is sent as a header and never appears
//! in an error or a log line.

use crate::config::JupiterOneConfig;
use crate::lock::LockExt;
use crate::secrets::{SecretValue, Secrets};
use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The most a request body may hold, in bytes.
pub const BATCH_LIMIT: usize = 5_000_000;
/// Batch uploads in flight at once (as JupiterOne's SDK).
const UPLOADS_IN_FLIGHT: usize = 6;
/// Attempts for uploads and finalize; other calls get [`CALL_ATTEMPTS`].
const UPLOAD_ATTEMPTS: u32 = 5;
const CALL_ATTEMPTS: u32 = 3;
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
const SYNC_PATH: &str = "persister/synchronization/jobs";

/// Entities or relationships (the upload's field is [`Kind::plural`]).
pub use crate::capabilities::graph::Kind;

/// A client for one account.
pub struct JupiterOne {
    client: reqwest::Client,
    base: String,
    account: String,
    key: SecretValue,
    redactor: Secrets,
}

/// What an upload did, for the console and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncStats {
    pub entities: u64,
    pub relationships: u64,
    pub batches: u64,
    pub bytes: u64,
    /// Retries after 5xx, 429 or a transport error.
    pub retries: u64,
    /// `_rawData` fields truncated after a 413.
    pub truncated: u64,
    /// Objects too large to send even without `_rawData`, by key.
    pub skipped: Vec<String>,
    /// Their `_type`s: partial at finalize, so JupiterOne keeps what it has of them.
    pub skipped_types: std::collections::BTreeSet<String>,
}

/// An open synchronization job.
pub struct SyncJob<'a> {
    j1: &'a JupiterOne,
    pub id: String,
    stats: Mutex<SyncStats>,
    retries: AtomicU64,
}

impl JupiterOne {
    /// A client from `[jupiterone]`; reads the API key from its source now.
    pub fn new(cfg: &JupiterOneConfig) -> anyhow::Result<Self> {
        let key = cfg.api_key.resolve().context("[jupiterone] api_key")?;
        anyhow::ensure!(!key.is_empty(), "[jupiterone] api_key is empty");
        let base = url::Url::parse(&cfg.api_base_url)
            .with_context(|| format!("[jupiterone] api_base_url {:?}", cfg.api_base_url))?;
        let key = SecretValue::new(key);
        let mut redactor = Secrets::default();
        redactor.insert("jupiterone-api-key", key.clone());
        Ok(JupiterOne {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .user_agent(concat!("corral/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: format!("{}/{SYNC_PATH}", base.as_str().trim_end_matches('/')),
            account: cfg.account.clone(),
            key,
            redactor,
        })
    }

    /// Creates a job for an integration instance.
    pub async fn start_job(&self, integration_instance_id: &str) -> anyhow::Result<SyncJob<'_>> {
        let body = json!({
            "source": "integration-managed",
            "integrationInstanceId": integration_instance_id,
        });
        let job = self
            .call(
                &self.base,
                &body.to_string(),
                None,
                CALL_ATTEMPTS,
                &AtomicU64::new(0),
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the sync job: {e}"))?;
        let id = job["job"]["id"]
            .as_str()
            .context("creating the sync job: the answer has no job.id")?
            .to_string();
        Ok(SyncJob {
            j1: self,
            id,
            stats: Mutex::default(),
            retries: AtomicU64::new(0),
        })
    }

    /// One POST with retries on 5xx, 429 and transport errors. The body is sent as is
    /// each attempt, with the same correlation id.
    async fn call(
        &self,
        url: &str,
        body: &str,
        correlation: Option<&str>,
        attempts: u32,
        retries: &AtomicU64,
    ) -> Result<Value, CallError> {
        let mut last = CallError::Other(String::new());
        for attempt in 0..attempts {
            if attempt > 0 {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut req = self
                .client
                .post(url)
                .header("authorization", format!("Bearer {}", self.key.expose()))
                .header("jupiterone-account", &self.account)
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(c) = correlation {
                req = req.header("jupiterone-correlation-id", c);
            }
            match req.send().await {
                Err(e) => {
                    last = CallError::Retryable(self.redactor.redact(&crate::net::error_chain(&e)))
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = read_capped(r, MAX_ANSWER_BYTES).await;
                    let text = self.redactor.redact(&text);
                    match status {
                        200..=299 => {
                            return serde_json::from_str(&text).map_err(|e| {
                                CallError::Other(format!(
                                    "answer is not JSON ({e}): {}",
                                    head(&text)
                                ))
                            });
                        }
                        413 => return Err(CallError::TooLarge),
                        _ if text
                            .to_ascii_lowercase()
                            .contains("request entity too large") =>
                        {
                            return Err(CallError::TooLarge);
                        }
                        429 | 500..=599 => {
                            last = CallError::Retryable(format!("{status}: {}", head(&text)))
                        }
                        _ if text.contains("JOB_NOT_AWAITING_UPLOADS") => {
                            return Err(CallError::Other(format!(
                                "the job has ended ({status}: {})",
                                head(&text)
                            )));
                        }
                        _ => return Err(CallError::Other(format!("{status}: {}", head(&text)))),
                    }
                }
            }
        }
        Err(match last {
            CallError::Retryable(m) => CallError::Other(format!("{m} (after {attempts} attempts)")),
            other => other,
        })
    }
}

#[derive(Debug)]
enum CallError {
    Retryable(String),
    TooLarge,
    Other(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Retryable(m) | CallError::Other(m) => f.write_str(m),
            CallError::TooLarge => f.write_str("413 request entity too large"),
        }
    }
}

/// Exponential from 200 ms, capped at 10 s, with jitter (50–150%) so batches retried
/// together do not hit the server together again.
fn backoff(attempt: u32) -> Duration {
    let d = BACKOFF_START
        .saturating_mul(1 << attempt.min(8))
        .min(BACKOFF_CAP);
    let percent = 50 + (uuid::Uuid::new_v4().as_u128() % 101) as u32;
    (d * percent / 100).min(BACKOFF_CAP)
}

fn head(text: &str) -> &str {
    let end = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

impl SyncJob<'_> {
    fn url(&self, call: &str) -> String {
        format!("{}/{}/{call}", self.j1.base, self.id)
    }

    pub fn stats(&self) -> SyncStats {
        let mut stats = self.stats.locked().clone();
        stats.retries = self.retries.load(Ordering::Relaxed);
        stats
    }

    /// Uploads `objects` in batches of at most [`BATCH_LIMIT`] bytes, several at once.
    pub async fn upload(&self, kind: Kind, objects: Vec<RawObject>) -> anyhow::Result<()> {
        self.upload_with_limit(kind, objects, BATCH_LIMIT).await
    }

    pub async fn upload_with_limit(
        &self,
        kind: Kind,
        objects: Vec<RawObject>,
        limit: usize,
    ) -> anyhow::Result<()> {
        let (batches, skipped) = batches(kind, objects, limit);
        {
            let mut stats = self.stats.locked();
            for (key, type_name) in skipped {
                stats.skipped.push(key);
                stats.skipped_types.insert(type_name);
            }
        }
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(batches)
            .map(|b| self.send_batch(kind, b))
            .buffer_unordered(UPLOADS_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Sends one batch; on 413 truncates the largest `_rawData` field and tries again.
    async fn send_batch(&self, kind: Kind, mut batch: Vec<RawObject>) -> anyhow::Result<()> {
        let correlation = uuid::Uuid::new_v4().to_string();
        loop {
            let body = batch_body(kind, &batch);
            match self
                .j1
                .call(
                    &self.url(kind.plural()),
                    &body,
                    Some(&correlation),
                    UPLOAD_ATTEMPTS,
                    &self.retries,
                )
                .await
            {
                Ok(_) => {
                    let mut s = self.stats.locked();
                    s.batches += 1;
                    s.bytes += body.len() as u64;
                    match kind {
                        Kind::Entity => s.entities += batch.len() as u64,
                        Kind::Relationship => s.relationships += batch.len() as u64,
                    }
                    return Ok(());
                }
                Err(CallError::TooLarge) => {
                    if !truncate_largest_raw_text(&mut batch) {
                        bail!(
                            "uploading {}: the server refused a batch of {} objects ({} bytes) as too large, with no _rawData left to truncate",
                            kind.plural(),
                            batch.len(),
                            body.len()
                        );
                    }
                    self.stats.locked().truncated += 1;
                }
                Err(e) => bail!("uploading {}: {e}", kind.plural()),
            }
        }
    }

    /// One call on this job; the error names what was being done.
    async fn post(
        &self,
        call: &str,
        body: Value,
        attempts: u32,
        doing: &str,
    ) -> anyhow::Result<Value> {
        self.j1
            .call(
                &self.url(call),
                &body.to_string(),
                None,
                attempts,
                &self.retries,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{doing} job {}: {e}", self.id))
    }

    /// Posts one job event (step start, end, failure).
    pub async fn event(&self, name: &str, description: &str) -> anyhow::Result<()> {
        let body = json!({ "events": [{ "name": name, "description": description }] });
        self.post("events", body, CALL_ATTEMPTS, "posting an event to")
            .await?;
        Ok(())
    }

    /// The types finalize keeps: `partial_types` and those of objects skipped as too
    /// large (a skipped object must not be deleted for its absence).
    pub fn partial_with_skipped(&self, partial_types: &[String]) -> Vec<String> {
        let stats = self.stats.locked();
        let mut all: std::collections::BTreeSet<String> = partial_types.iter().cloned().collect();
        all.extend(stats.skipped_types.iter().cloned());
        all.into_iter().collect()
    }

    /// Finalizes: the server deletes what was not sent again, except the partial types
    /// ([`SyncJob::partial_with_skipped`]).
    pub async fn finalize(&self, partial_types: &[String]) -> anyhow::Result<Value> {
        let body =
            json!({ "partialDatasets": { "types": self.partial_with_skipped(partial_types) } });
        self.post("finalize", body, UPLOAD_ATTEMPTS, "finalizing")
            .await
    }

    /// Aborts the job, so nothing it uploaded is finalized.
    pub async fn abort(&self, reason: &str) -> anyhow::Result<()> {
        self.post(
            "abort",
            json!({ "reason": reason }),
            CALL_ATTEMPTS,
            "aborting",
        )
        .await?;
        Ok(())
    }
}

/// An object left out of the upload: (`_key`, `_type`).
pub type Skipped = (String, String);

/// Most of an upload answer read: JupiterOne's answers are small JSON documents; an
/// endless or huge body from a hostile endpoint must not fill the host's memory.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The body as text, at most `max` bytes of it (the rest is not read).
async fn read_capped(mut r: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        let room = max.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Splits `objects` into batches whose body stays within `limit` bytes. An object too
/// large alone loses its `_rawData`; if still too large it is skipped (returned as
/// (key, `_type`)).
pub fn batches(
    kind: Kind,
    objects: Vec<RawObject>,
    limit: usize,
) -> (Vec<Vec<RawObject>>, Vec<Skipped>) {
    // `{"entities":[` … `]}`
    let wrapper = kind.plural().len() + 7;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let (mut batch, mut size) = (Vec::new(), wrapper);
    for mut o in objects {
        if wrapper + o.get().len() > limit {
            match without_raw_data(&o) {
                Ok(smaller) if wrapper + smaller.get().len() <= limit => o = smaller,
                _ => {
                    skipped.push(key_and_type(&o));
                    continue;
                }
            }
        }
        let len = o.get().len();
        let comma = usize::from(!batch.is_empty());
        if size + comma + len > limit {
            out.push(std::mem::take(&mut batch));
            size = wrapper;
        }
        size += len + usize::from(!batch.is_empty());
        batch.push(o);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    (out, skipped)
}

/// One object as JSON text: uploads pass objects through without parsing them, but for
/// the rare one that must lose `_rawData`.
pub type RawObject = Box<RawValue>;

/// Objects as [`RawObject`]s (tests, and callers holding parsed objects).
pub fn raw_objects(objects: Vec<Map<String, Value>>) -> Vec<RawObject> {
    objects
        .into_iter()
        .filter_map(|o| serde_json::value::to_raw_value(&o).ok())
        .collect()
}

fn parse(o: &RawObject) -> serde_json::Result<Map<String, Value>> {
    serde_json::from_str(o.get())
}

fn without_raw_data(o: &RawObject) -> serde_json::Result<RawObject> {
    let mut parsed = parse(o)?;
    parsed.remove("_rawData");
    serde_json::value::to_raw_value(&parsed)
}

fn key_and_type(o: &RawObject) -> Skipped {
    let parsed = parse(o).unwrap_or_default();
    let text = |field: &str| {
        parsed
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    (text("_key"), text("_type"))
}

/// `{"<kind>":[…]}` from the objects' text.
fn batch_body(kind: Kind, batch: &[RawObject]) -> String {
    let len: usize = batch.iter().map(|o| o.get().len() + 1).sum();
    let mut body = String::with_capacity(len + 32);
    body.push_str("{\"");
    body.push_str(kind.plural());
    body.push_str("\":[");
    for (i, o) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(o.get());
    }
    body.push_str("]}");
    body
}

/// [`truncate_largest_raw`] on objects kept as text: parsed, truncated, written back.
fn truncate_largest_raw_text(batch: &mut [RawObject]) -> bool {
    // An object that does not parse as a map is never replaced by a lesser one.
    let Ok(mut parsed) = batch
        .iter()
        .map(parse)
        .collect::<serde_json::Result<Vec<_>>>()
    else {
        return false;
    };
    if !truncate_largest_raw(&mut parsed) {
        return false;
    }
    for (slot, o) in batch.iter_mut().zip(parsed) {
        if let Ok(raw) = serde_json::value::to_raw_value(&o) {
            *slot = raw;
        }
    }
    true
}

/// Replaces the largest top-level field of the largest `_rawData` entry in the batch
/// with `"TRUNCATED"`; false when there is nothing left to truncate.
fn truncate_largest_raw(batch: &mut [Map<String, Value>]) -> bool {
    let mut best: Option<(usize, usize, usize)> = None; // (size, object, entry)
    for (i, o) in batch.iter().enumerate() {
        let Some(Value::Array(entries)) = o.get("_rawData") else {
            continue;
        };
        for (j, e) in entries.iter().enumerate() {
            let size = serde_json::to_vec(&e["rawData"]).map_or(0, |v| v.len());
            if size > "\"TRUNCATED\"".len() && best.is_none_or(|(s, _, _)| size > s) {
                best = Some((size, i, j));
            }
        }
    }
    let Some((_, i, j)) = best else {
        return false;
    };
    let entry = &mut batch[i]["_rawData"][j]["rawData"];
    match entry {
        Value::Object(fields) => {
            let largest = fields
                .iter()
                .filter(|(_, v)| v.as_str() != Some("TRUNCATED"))
                .max_by_key(|(_, v)| serde_json::to_vec(v).map_or(0, |b| b.len()))
                .map(|(k, _)| k.clone());
            match largest {
                Some(k) => fields.insert(k, Value::from("TRUNCATED")),
                None => return false,
            };
        }
        other => *other = Value::from("TRUNCATED"),
    }
    true
}

/// A collected graph as `corral run` wrote it: its object files and partial types,
/// read a few files at a time so an upload holds a bounded part of the graph.
pub struct Collected {
    files: Vec<(Kind, PathBuf)>,
    pub partial_types: Vec<String>,
}

impl Collected {
    /// The objects of `kind` in chunks of about `max_bytes` of file text each, in file
    /// order; a file that is not the collect layout's is an error naming it.
    pub fn chunks(
        &self,
        kind: Kind,
        max_bytes: u64,
    ) -> impl Iterator<Item = anyhow::Result<Vec<RawObject>>> + '_ {
        let mut files = self
            .files
            .iter()
            .filter(move |(k, _)| *k == kind)
            .peekable();
        std::iter::from_fn(move || {
            files.peek()?;
            let mut chunk = Vec::new();
            let mut bytes = 0u64;
            while let Some((_, path)) = files.next_if(|_| bytes < max_bytes) {
                match read_object_file(kind, path) {
                    Ok((items, size)) => {
                        chunk.extend(items);
                        bytes += size;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(chunk))
        })
    }

    /// Every object of `kind` (tests and small graphs: this holds them all).
    pub fn load(&self, kind: Kind) -> anyhow::Result<Vec<RawObject>> {
        let mut out = Vec::new();
        for chunk in self.chunks(kind, u64::MAX) {
            out.extend(chunk?);
        }
        Ok(out)
    }
}

fn read_object_file(kind: Kind, path: &Path) -> anyhow::Result<(Vec<RawObject>, u64)> {
    let text = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut doc: HashMap<String, Vec<RawObject>> = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not the collect layout's object file", path.display()))?;
    let field = kind.plural();
    let Some(items) = doc.remove(field) else {
        bail!("{}: no {field:?} array", path.display());
    };
    if let Some(i) = items.iter().position(|o| !o.get().starts_with('{')) {
        bail!("{}: {field}[{i}] is not an object", path.display());
    }
    Ok((items, text.len() as u64))
}

/// Opens `DIR/<id>/` (the collect layout and `summary.json`).
pub fn read_collected(dir: &Path) -> anyhow::Result<Collected> {
    let summary_path = dir.join("summary.json");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&summary_path).with_context(|| {
            format!(
                "{}: no collected graph here (run the instance first)",
                summary_path.display()
            )
        })?)
        .with_context(|| format!("{}: not JSON", summary_path.display()))?;
    let partial_types = summary["metadata"]["partialDatasets"]["types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let graph = dir.join("graph");
    let steps =
        std::fs::read_dir(&graph).with_context(|| format!("{}: cannot read", graph.display()))?;
    let mut files = Vec::new();
    for step in steps.flatten() {
        for kind in [Kind::Entity, Kind::Relationship] {
            if let Ok(entries) = std::fs::read_dir(step.path().join(kind.plural())) {
                files.extend(entries.flatten().map(|e| (kind, e.path())));
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(Collected {
        files,
        partial_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, raw: usize) -> Map<String, Value> {
        json!({ "_key": key, "_type": "t", "_rawData": [{ "name": "default", "rawData": { "big": "x".repeat(raw), "small": "y" } }] })
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn batches_stay_under_the_limit_and_oversized_objects_lose_raw_data() {
        let objects = raw_objects((0..10).map(|i| obj(&format!("key-{i:06}"), 100)).collect());
        let one = objects[0].get().len();
        let limit = 20 + one * 3 + 2;
        let (split, skipped) = batches(Kind::Entity, objects, limit);
        assert!(skipped.is_empty());
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        for b in &split {
            let body = batch_body(Kind::Entity, b);
            assert!(body.len() <= limit);
            let parsed: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed["entities"].as_array().unwrap().len(), b.len());
        }
        let big = raw_objects(vec![obj("key-big-0001", 1000)]);
        let (split, skipped) = batches(Kind::Entity, big, 300);
        assert!(skipped.is_empty());
        assert!(parse(&split[0][0]).unwrap().get("_rawData").is_none());
        assert_eq!(parse(&split[0][0]).unwrap()["_key"], "key-big-0001");
        let huge = json!({"_key": "key-huge-001", "name": "z".repeat(500)});
        let huge = raw_objects(vec![huge.as_object().unwrap().clone()]);
        let (split, skipped) = batches(Kind::Entity, huge, 300);
        assert!(split.is_empty());
        assert_eq!(skipped, [("key-huge-001".to_string(), "?".to_string())]);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for attempt in 1..12 {
            let base = BACKOFF_START * (1 << attempt.min(8));
            let base = base.min(BACKOFF_CAP);
            for _ in 0..20 {
                let d = backoff(attempt);
                assert!(
                    d >= base / 2 && d <= (base * 3 / 2).min(BACKOFF_CAP),
                    "{attempt}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn truncation_takes_the_largest_field_first() {
        let mut batch = vec![obj("key-000001", 10), obj("key-000002", 50)];
        assert!(truncate_largest_raw(&mut batch));
        assert_eq!(batch[1]["_rawData"][0]["rawData"]["big"], "TRUNCATED");
        assert_eq!(batch[0]["_rawData"][0]["rawData"]["big"], "x".repeat(10));
        assert!(truncate_largest_raw(&mut batch));
        assert_eq!(batch[0]["_rawData"][0]["rawData"]["big"], "TRUNCATED");
    }
}
