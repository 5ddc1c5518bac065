//! The `log` import and the run log: every line a guest or the host writes about an
//! instance, scrubbed of secrets, capped in count and size.

use super::{RunContext, StepCtx};
use crate::lock::LockExt;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::{ComponentType, Lift, Linker, Lower};

/// Lines a run may log before further guest lines are dropped (counted, not kept).
pub const MAX_LINES: u64 = 20_000;
/// Longest message or field value kept, in bytes.
pub const MAX_LINE_BYTES: usize = 4096;
/// Bytes of messages and fields a run may log before further lines are dropped.
pub const MAX_TOTAL_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(enum)]
#[repr(u8)]
pub enum Level {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}

/// A field's value: text from every WIT version, typed values from 0.2 on. In
/// `log.jsonl` each is a JSON string, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl FieldValue {
    /// A float that JSON cannot hold (not a number, an infinity) is kept as text.
    pub fn float(f: f64) -> Self {
        if f.is_finite() {
            FieldValue::Float(f)
        } else {
            FieldValue::Text(f.to_string())
        }
    }

    /// Bytes it counts against the run's log budget.
    fn size(&self) -> usize {
        match self {
            FieldValue::Text(s) => s.len(),
            _ => 8,
        }
    }
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Text(s) => f.write_str(s),
            FieldValue::Integer(n) => write!(f, "{n}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl PartialEq<str> for FieldValue {
    fn eq(&self, other: &str) -> bool {
        matches!(self, FieldValue::Text(s) if s == other)
    }
}

impl PartialEq<String> for FieldValue {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// How a WIT version's `log` passes field values.
#[derive(Debug, Clone, Copy)]
pub enum Fields {
    /// `list<tuple<string, string>>` (0.1)
    Text,
    /// `list<tuple<string, field-value>>` (0.2)
    Typed,
}

/// Registers `log` under `interface`; the call's message and fields are lifted within
/// its caps by `lift`.
pub fn add_to_linker(
    linker: &mut Linker<StepCtx>,
    interface: &str,
    fields: Fields,
) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    super::lift::add_log(&mut inst, fields)
}

#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    /// Milliseconds since the epoch.
    pub time: u64,
    pub level: &'static str,
    /// `guest`, `stdout`, `stderr` or `host`.
    pub origin: &'static str,
    pub step: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, FieldValue)>,
}

#[derive(Default)]
pub struct LogSink {
    records: Mutex<Vec<LogRecord>>,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

impl LogSink {
    pub fn records(&self) -> Vec<LogRecord> {
        self.records.locked().clone()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts a guest line refused before it was read (see `capabilities::lift`).
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A line from the host about this run (denials, rejections, step outcomes).
    pub fn host(&self, run: &RunContext, step: &str, level: &'static str, message: &str) {
        self.push(run, step, level, "host", message, Vec::new());
    }

    pub fn guest_stdio(&self, run: &RunContext, step: &str, stream: &'static str, line: &str) {
        self.push(run, step, "info", stream, line, Vec::new());
    }

    /// Keeps the line unless the run already logged `MAX_LINES` lines or
    /// `MAX_TOTAL_BYTES`; past that, lines are only counted (a guest provoking denials
    /// must not flood the host either).
    fn push(
        &self,
        run: &RunContext,
        step: &str,
        level: &'static str,
        origin: &'static str,
        message: &str,
        fields: Vec<(String, FieldValue)>,
    ) {
        let mut records = self.records.locked();
        if records.len() as u64 >= MAX_LINES
            || self.bytes.load(Ordering::Relaxed) >= MAX_TOTAL_BYTES
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let clean = |s: &str| clip_redacted(run, s, MAX_LINE_BYTES);
        let record = LogRecord {
            time: now_ms(),
            level,
            origin,
            step: step.to_string(),
            message: clean(message),
            fields: fields
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        FieldValue::Text(t) => FieldValue::Text(clean(&t)),
                        // A number or a boolean is scrubbed as its text: a secret of
                        // digits logged as an integer is no less a secret.
                        typed => {
                            let text = typed.to_string();
                            let scrubbed = clean(&text);
                            if scrubbed == text {
                                typed
                            } else {
                                FieldValue::Text(scrubbed)
                            }
                        }
                    };
                    (clean(&k), v)
                })
                .collect(),
        };
        let size = record.message.len()
            + record
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.size())
                .sum::<usize>();
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        emit_tracing(&run.instance_id, &record);
        records.push(record);
    }
}

/// One record, one line on stderr: what the plugin wrote is shown with its control
/// characters escaped.
fn emit_tracing(instance: &str, r: &LogRecord) {
    use corral_core::text::escape_controls as esc;
    let fields = r
        .fields
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(&v.to_string())))
        .collect::<Vec<_>>()
        .join(" ");
    let message = esc(&r.message);
    match r.level {
        "error" => {
            tracing::error!(instance, step = %r.step, origin = r.origin, "{} {fields}", message)
        }
        "warn" => {
            tracing::warn!(instance, step = %r.step, origin = r.origin, "{} {fields}", message)
        }
        "info" => {
            tracing::info!(instance, step = %r.step, origin = r.origin, "{} {fields}", message)
        }
        _ => tracing::debug!(instance, step = %r.step, origin = r.origin, "{} {fields}", message),
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `s` scrubbed of secrets, then cut at `max` bytes: redacting first, so a secret that
/// straddles the cut cannot leave its prefix behind. Only what can reach the cut (plus
/// the longest spelling of a secret) is scrubbed, so a huge text costs no more.
pub fn clip_redacted(run: &RunContext, s: &str, max: usize) -> String {
    let window = truncate(s, max.saturating_add(run.redactor.max_span()));
    truncate(&run.redactor.redact(window), max).to_string()
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl StepCtx {
    /// A line the guest logged (its fields past the first 32 are dropped).
    pub fn guest_log(&mut self, level: Level, message: String, fields: Vec<(String, FieldValue)>) {
        let level = match level {
            Level::Trace | Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        if level == "warn" {
            self.run.stats.warnings.fetch_add(1, Ordering::Relaxed);
        }
        let fields = fields.into_iter().take(32).collect();
        self.run
            .log
            .push(&self.run, &self.step, level, "guest", &message, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::tests::context_granted;
    use crate::policy::{Grant, Policy};
    use crate::secrets::{REDACTED, SecretValue};

    #[test]
    fn typed_values_keep_their_type_and_a_secret_in_any_type_is_scrubbed() {
        let grant = Grant::new(Policy::nothing("unit test"), None);
        let run = context_granted(grant, &[], &[]);
        // A run whose secret is all digits.
        let mut secrets = crate::secrets::Secrets::default();
        secrets.insert("pin", SecretValue::new("8675309123"));
        let run = std::sync::Arc::new(RunContext {
            redactor: secrets.redactor(),
            secrets,
            ..std::sync::Arc::try_unwrap(run).ok().unwrap()
        });
        let mut ctx = StepCtx::new(run.clone(), "s");
        ctx.guest_log(
            Level::Info,
            "m".into(),
            vec![
                ("n".into(), FieldValue::Integer(42)),
                ("x".into(), FieldValue::float(f64::NAN)),
                ("ok".into(), FieldValue::Boolean(true)),
                ("pin".into(), FieldValue::Integer(8_675_309_123)),
            ],
        );
        let records = run.log.records();
        assert_eq!(
            records[0].fields,
            vec![
                ("n".to_string(), FieldValue::Integer(42)),
                ("x".to_string(), FieldValue::Text("NaN".into())),
                ("ok".to_string(), FieldValue::Boolean(true)),
                ("pin".to_string(), FieldValue::Text(REDACTED.into())),
            ]
        );
        let line = serde_json::to_string(&records[0]).unwrap();
        assert!(line.contains(r#"["n",42]"#), "{line}");
        assert!(!line.contains("8675309123"), "{line}");
    }
}
