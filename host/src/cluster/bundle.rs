//! A run's result as one file: the report (steps, log, counts) as a JSON header, then
//! the graph's records. A worker writes it and puts it in the results object store; the
//! coordinator reads it back into a [`RunReport`] and delivers it as if it ran locally.
//!
//! Layout: `corral-result/1\n | header length (u32 LE) | header JSON | graph records`.

use crate::capabilities::Event;
use crate::capabilities::graph::{GraphMeta, GraphStore};
use crate::capabilities::log::{FieldValue, LogRecord};
use crate::run::{RunReport, StepResult, StepStatus};
use corral_core::manifest::StepInfo;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::time::Duration;

const MAGIC: &[u8] = b"corral-result/1\n";
/// The largest header read: the log (at most 8 MiB of text, JSON-escaped) dominates.
const MAX_HEADER_BYTES: u32 = 64 << 20;

#[derive(Serialize, Deserialize)]
struct Header {
    report: ReportWire,
    graph: GraphMeta,
}

#[derive(Serialize, Deserialize)]
struct ReportWire {
    instance_id: String,
    instance_name: String,
    plugin_id: String,
    plugin_version: String,
    plugin_digest: String,
    plugin_source: String,
    started_at_ms: u64,
    ended_at_ms: u64,
    duration_ms: u64,
    validation_error: Option<String>,
    steps: Vec<StepWire>,
    log: Vec<LogWire>,
    log_dropped: u64,
    requests: u64,
    warnings: u64,
    denials: Vec<Event>,
    limit_hits: Vec<Event>,
    rejections: Vec<Event>,
    rejected_types: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Serialize, Deserialize)]
struct StepWire {
    info: StepInfo,
    status: StepStatus,
    duration_ms: u64,
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LogWire {
    time: u64,
    level: String,
    origin: String,
    step: String,
    message: String,
    fields: Vec<(String, FieldValue)>,
}

/// Writes `report` (its graph sealed) to `out`.
pub fn write(report: &RunReport, out: impl Write) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(256 << 10, out);
    let header = serde_json::to_vec(&Header {
        report: wire(report),
        graph: report.graph.meta(),
    })?;
    let len = u32::try_from(header.len())
        .ok()
        .filter(|&n| n <= MAX_HEADER_BYTES)
        .ok_or_else(|| anyhow::anyhow!("the run's summary is {} bytes", header.len()))?;
    out.write_all(MAGIC)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&header)?;
    report.graph.write_records(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Reads a result [`write`] wrote; the graph goes to a fresh spool.
pub fn read(input: impl Read) -> anyhow::Result<RunReport> {
    let mut input = BufReader::with_capacity(256 << 10, input);
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic)?;
    anyhow::ensure!(
        magic == MAGIC,
        "not a corral run result (bad leading bytes)"
    );
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    anyhow::ensure!(
        len <= MAX_HEADER_BYTES,
        "the result's summary is {len} bytes (at most {MAX_HEADER_BYTES})"
    );
    let mut header = vec![0u8; len as usize];
    input.read_exact(&mut header)?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|e| anyhow::anyhow!("the result's summary is malformed: {e}"))?;
    let graph = GraphStore::read_records(header.graph, &mut input)?;
    Ok(unwire(header.report, graph))
}

fn wire(r: &RunReport) -> ReportWire {
    ReportWire {
        instance_id: r.instance_id.clone(),
        instance_name: r.instance_name.clone(),
        plugin_id: r.plugin_id.clone(),
        plugin_version: r.plugin_version.clone(),
        plugin_digest: r.plugin_digest.clone(),
        plugin_source: r.plugin_source.clone(),
        started_at_ms: r.started_at_ms,
        ended_at_ms: r.ended_at_ms,
        duration_ms: r.duration.as_millis() as u64,
        validation_error: r.validation.clone().err(),
        steps: r
            .steps
            .iter()
            .map(|s| StepWire {
                info: s.info.clone(),
                status: s.status,
                duration_ms: s.duration.as_millis() as u64,
                error: s.error.clone(),
            })
            .collect(),
        log: r
            .log
            .iter()
            .map(|l| LogWire {
                time: l.time,
                level: l.level.to_string(),
                origin: l.origin.to_string(),
                step: l.step.clone(),
                message: l.message.clone(),
                fields: l.fields.clone(),
            })
            .collect(),
        log_dropped: r.log_dropped,
        requests: r.requests,
        warnings: r.warnings,
        denials: r.denials.clone(),
        limit_hits: r.limit_hits.clone(),
        rejections: r.rejections.clone(),
        rejected_types: r.rejected_types.clone(),
    }
}

fn unwire(w: ReportWire, graph: GraphStore) -> RunReport {
    RunReport {
        instance_id: w.instance_id,
        instance_name: w.instance_name,
        plugin_id: w.plugin_id,
        plugin_version: w.plugin_version,
        plugin_digest: w.plugin_digest,
        plugin_source: w.plugin_source,
        started_at_ms: w.started_at_ms,
        ended_at_ms: w.ended_at_ms,
        duration: Duration::from_millis(w.duration_ms),
        validation: w.validation_error.map_or(Ok(()), Err),
        steps: w
            .steps
            .into_iter()
            .map(|s| StepResult {
                info: s.info,
                status: s.status,
                duration: Duration::from_millis(s.duration_ms),
                error: s.error,
            })
            .collect(),
        graph,
        log: w
            .log
            .into_iter()
            .map(|l| LogRecord {
                time: l.time,
                level: one_of(&l.level, &["debug", "info", "warn", "error"]),
                origin: one_of(&l.origin, &["guest", "stdout", "stderr", "host"]),
                step: l.step,
                message: l.message,
                fields: l.fields,
            })
            .collect(),
        log_dropped: w.log_dropped,
        requests: w.requests,
        warnings: w.warnings,
        denials: w.denials,
        limit_hits: w.limit_hits,
        rejections: w.rejections,
        rejected_types: w.rejected_types,
    }
}

/// The log's level and origin are a few known words; anything else reads as `unknown`.
fn one_of(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("unknown")
}
