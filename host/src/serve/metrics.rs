//! Prometheus metrics of the long-running host, rendered as text on `GET /metrics`.

use crate::delivery::history::RunStatus;
use crate::lock::LockExt;
use crate::run::RunReport;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the run-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Default)]
struct PluginCounters {
    runs: BTreeMap<&'static str, u64>,
    requests: u64,
    denials: u64,
    limit_hits: u64,
    entities: u64,
    relationships: u64,
    duration_buckets: [u64; DURATION_BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
}

/// Reads one counter of a plugin, for rendering.
type Getter = fn(&PluginCounters) -> u64;

#[derive(Default)]
struct Counters {
    /// By (plugin id, version).
    plugins: BTreeMap<(String, String), PluginCounters>,
    /// By (plugin id, outcome) for dropped-in candidates.
    candidates: BTreeMap<(String, &'static str), u64>,
    rollbacks: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

/// Gauges read at render time.
pub struct Gauges {
    pub runs_in_flight: usize,
    /// (plugin id, current generation)
    pub generations: Vec<(String, u64)>,
}

impl Metrics {
    pub fn record_run(&self, report: &RunReport, status: RunStatus) {
        let mut c = self.counters.locked();
        let key = (report.plugin_id.clone(), report.plugin_version.clone());
        let p = c.plugins.entry(key).or_default();
        // Saturating: a cluster worker's report is read from a file, not counted here.
        let runs = p.runs.entry(status.as_str()).or_default();
        *runs = runs.saturating_add(1);
        p.requests = p.requests.saturating_add(report.requests);
        p.denials = p.denials.saturating_add(report.denials.len() as u64);
        p.limit_hits = p.limit_hits.saturating_add(report.limit_hits.len() as u64);
        p.entities = p
            .entities
            .saturating_add(report.graph.entity_count() as u64);
        p.relationships = p
            .relationships
            .saturating_add(report.graph.relationship_count() as u64);
        let secs = report.duration.as_secs_f64();
        for (bucket, bound) in p.duration_buckets.iter_mut().zip(DURATION_BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        p.duration_sum += secs;
        p.duration_count += 1;
    }

    /// A run that ended before the plugin ran (not loaded, bad config, shutdown).
    pub fn record_unstarted(&self, plugin: &str, version: &str, status: RunStatus) {
        let mut c = self.counters.locked();
        let p = c
            .plugins
            .entry((plugin.to_string(), version.to_string()))
            .or_default();
        *p.runs.entry(status.as_str()).or_default() += 1;
    }

    pub fn record_candidate(&self, plugin: &str, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        let mut c = self.counters.locked();
        *c.candidates
            .entry((plugin.to_string(), outcome))
            .or_default() += 1;
    }

    pub fn record_rollback(&self, plugin: &str) {
        *self
            .counters
            .locked()
            .rollbacks
            .entry(plugin.to_string())
            .or_default() += 1;
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let c = self.counters.locked();
        let mut out = String::new();
        let pv = |(id, version): &(String, String)| {
            format!("plugin=\"{}\",version=\"{}\"", escape(id), escape(version))
        };
        header(
            &mut out,
            "corral_runs_total",
            "counter",
            "Runs finished, by plugin, version and status.",
        );
        for (key, p) in &c.plugins {
            for (status, n) in &p.runs {
                let _ = writeln!(
                    out,
                    "corral_runs_total{{{},status=\"{status}\"}} {n}",
                    pv(key)
                );
            }
        }
        let simple: [(&str, &str, Getter); 5] = [
            (
                "corral_requests_total",
                "HTTP requests the plugin's runs sent.",
                |p| p.requests,
            ),
            (
                "corral_denials_total",
                "Policy denials in the plugin's runs.",
                |p| p.denials,
            ),
            (
                "corral_limit_hits_total",
                "Limits the plugin's runs reached.",
                |p| p.limit_hits,
            ),
            (
                "corral_entities_total",
                "Entities the plugin's runs stored.",
                |p| p.entities,
            ),
            (
                "corral_relationships_total",
                "Relationships the plugin's runs stored.",
                |p| p.relationships,
            ),
        ];
        for (name, help, get) in simple {
            header(&mut out, name, "counter", help);
            for (key, p) in &c.plugins {
                let _ = writeln!(out, "{name}{{{}}} {}", pv(key), get(p));
            }
        }
        header(
            &mut out,
            "corral_run_duration_seconds",
            "histogram",
            "Wall time of runs.",
        );
        for (key, p) in &c.plugins {
            let labels = pv(key);
            for (bound, n) in DURATION_BUCKETS.iter().zip(p.duration_buckets) {
                let _ = writeln!(
                    out,
                    "corral_run_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "corral_run_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                p.duration_count
            );
            let _ = writeln!(
                out,
                "corral_run_duration_seconds_sum{{{labels}}} {}",
                p.duration_sum
            );
            let _ = writeln!(
                out,
                "corral_run_duration_seconds_count{{{labels}}} {}",
                p.duration_count
            );
        }
        header(
            &mut out,
            "corral_plugin_candidates_total",
            "counter",
            "Dropped-in components examined, by outcome.",
        );
        for ((id, outcome), n) in &c.candidates {
            let _ = writeln!(
                out,
                "corral_plugin_candidates_total{{plugin=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(id)
            );
        }
        header(
            &mut out,
            "corral_plugin_rollbacks_total",
            "counter",
            "Rollbacks, on request or automatic.",
        );
        for (id, n) in &c.rollbacks {
            let _ = writeln!(
                out,
                "corral_plugin_rollbacks_total{{plugin=\"{}\"}} {n}",
                escape(id)
            );
        }
        header(
            &mut out,
            "corral_plugin_generation",
            "gauge",
            "The generation serving new runs.",
        );
        for (id, g) in &gauges.generations {
            let _ = writeln!(
                out,
                "corral_plugin_generation{{plugin=\"{}\"}} {g}",
                escape(id)
            );
        }
        header(
            &mut out,
            "corral_runs_in_flight",
            "gauge",
            "Runs queued or running.",
        );
        let _ = writeln!(out, "corral_runs_in_flight {}", gauges.runs_in_flight);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
