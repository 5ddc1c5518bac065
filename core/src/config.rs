//! `corral.toml`: plugin and data directories and the instances to run.
//!
//! Errors name the file, the line and the field. Relative paths are resolved against
//! the directory of the config file.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone)]
pub struct CorralConfig {
    pub path: PathBuf,
    pub plugin_dir: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub serve: ServeConfig,
    pub jupiterone: Option<JupiterOneConfig>,
    pub alerts: Vec<crate::alerts::AlertRule>,
    pub instances: Vec<InstanceConfig>,
}

/// `[jupiterone]`: the account `corral sync` and `corral run --sync` upload to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JupiterOneConfig {
    #[serde(default = "default_j1_base")]
    pub api_base_url: String,
    pub account: String,
    /// The API key: `{ env = "NAME" }` (or a literal, not recommended).
    pub api_key: ConfigValue,
}

fn default_j1_base() -> String {
    "https://api.us.jupiterone.io".into()
}

/// `[serve]`: how `corral serve` runs; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Runs executing at once; more wait as `queued`.
    pub max_concurrent_runs: usize,
    /// How long SIGTERM waits for runs in flight before marking them failed.
    pub shutdown_grace_seconds: u64,
    /// A dropped-in component larger than this is refused before compiling (bounds the
    /// compiler's memory).
    pub max_plugin_bytes: u64,
    /// A candidate still compiling after this is refused.
    pub compile_timeout_seconds: u64,
    /// Quiet time after the last change to a file before it is read.
    pub watch_debounce_ms: u64,
    /// Generations of each plugin kept loaded for rollback besides the current one.
    pub rollback_generations: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_concurrent_runs: 32,
            shutdown_grace_seconds: 120,
            max_plugin_bytes: 64 << 20,
            compile_timeout_seconds: 60,
            watch_debounce_ms: 300,
            rollback_generations: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    plugin_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    serve: ServeConfig,
    jupiterone: Option<JupiterOneConfig>,
    #[serde(default, rename = "alert")]
    alerts: Vec<crate::alerts::RawAlert>,
    #[serde(default, rename = "instance")]
    instances: Vec<RawInstance>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    id: String,
    name: Option<String>,
    description: Option<String>,
    plugin: String,
    policy: Option<PathBuf>,
    #[serde(default)]
    polling_interval: PollingInterval,
    polling_interval_seconds: Option<u64>,
    integration_instance_id: Option<String>,
    #[serde(default)]
    tag_account_name: bool,
    #[serde(default)]
    config: BTreeMap<String, ConfigValue>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PollingInterval {
    #[default]
    Disabled,
    FifteenMinutes,
    OneHour,
    FourHours,
    TwelveHours,
    OneDay,
    OneWeek,
}

impl PollingInterval {
    pub fn seconds(self) -> Option<u64> {
        match self {
            PollingInterval::Disabled => None,
            PollingInterval::FifteenMinutes => Some(900),
            PollingInterval::OneHour => Some(3600),
            PollingInterval::FourHours => Some(4 * 3600),
            PollingInterval::TwelveHours => Some(12 * 3600),
            PollingInterval::OneDay => Some(86_400),
            PollingInterval::OneWeek => Some(7 * 86_400),
        }
    }
}

/// A config value: a literal, `{ env = "NAME" }` read from the environment when the
/// instance runs (so secrets need not live in the file), or `{ secret = "…" }`, a
/// literal the operator marks secret. Both of the latter are secrets whatever the
/// plugin's manifest says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Text(String),
    Bool(bool),
    Integer(i64),
    Float(f64),
    Env { env: String },
    Secret { secret: String },
}

impl ConfigValue {
    /// Whether the operator made this value a secret (from the environment, or marked).
    pub fn is_secret(&self) -> bool {
        matches!(self, ConfigValue::Env { .. } | ConfigValue::Secret { .. })
    }

    /// The value as text, reading `{ env = "NAME" }` now; the error names the variable
    /// (the caller adds which field).
    pub fn resolve(&self) -> anyhow::Result<String> {
        Ok(match self {
            ConfigValue::Text(s) => s.clone(),
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Integer(i) => i.to_string(),
            ConfigValue::Float(f) => f.to_string(),
            ConfigValue::Env { env } => std::env::var(env)
                .map_err(|_| anyhow::anyhow!("environment variable {env} is not set"))?,
            ConfigValue::Secret { secret } => secret.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub plugin: String,
    pub policy: Option<PathBuf>,
    pub polling_interval: PollingInterval,
    /// Overrides `polling_interval` with any number of seconds (short cadences for tests,
    /// odd ones for operators).
    pub polling_interval_seconds: Option<u64>,
    /// The JupiterOne integration instance this instance's graph syncs to.
    pub integration_instance_id: Option<String>,
    pub tag_account_name: bool,
    pub config: BTreeMap<String, ConfigValue>,
}

impl InstanceConfig {
    /// How often `corral serve` runs the instance; `None`: only on request.
    pub fn interval(&self) -> Option<std::time::Duration> {
        self.polling_interval_seconds
            .or_else(|| self.polling_interval.seconds())
            .map(std::time::Duration::from_secs)
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: [[alert]] {name:?}: {message}")]
    Alert {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("{path}: instance {id:?}: {message}")]
    Instance {
        path: PathBuf,
        id: String,
        message: String,
    },
}

impl CorralConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut seen = std::collections::HashSet::new();
        let mut instances = Vec::new();
        for r in raw.instances {
            let fail = |message: String| ConfigError::Instance {
                path: path.to_path_buf(),
                id: r.id.clone(),
                message,
            };
            if !valid_id(&r.id) {
                return Err(fail(
                    "id must be 1-64 characters of a-z, 0-9, '-' or '_' (it names directories)"
                        .into(),
                ));
            }
            if !seen.insert(r.id.clone()) {
                return Err(fail("duplicate instance id".into()));
            }
            if r.polling_interval_seconds == Some(0) {
                return Err(fail("polling_interval_seconds must be at least 1".into()));
            }
            if r.polling_interval_seconds.is_some()
                && r.polling_interval != PollingInterval::Disabled
            {
                return Err(fail(
                    "set polling_interval or polling_interval_seconds, not both".into(),
                ));
            }
            instances.push(InstanceConfig {
                name: r.name.clone().unwrap_or_else(|| r.id.clone()),
                id: r.id,
                description: r.description,
                plugin: r.plugin,
                policy: r.policy.map(resolve),
                polling_interval: r.polling_interval,
                polling_interval_seconds: r.polling_interval_seconds,
                integration_instance_id: r.integration_instance_id,
                tag_account_name: r.tag_account_name,
                config: r.config,
            });
        }
        Ok(CorralConfig {
            path: path.to_path_buf(),
            plugin_dir: raw.plugin_dir.map(resolve),
            data_dir: resolve(raw.data_dir.unwrap_or_else(|| PathBuf::from(".corral"))),
            serve: raw.serve,
            jupiterone: raw.jupiterone,
            alerts: check_alerts(path, raw.alerts)?,
            instances,
        })
    }

    pub fn instance(&self, id: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.id == id)
    }
}

fn check_alerts(
    path: &Path,
    raw: Vec<crate::alerts::RawAlert>,
) -> Result<Vec<crate::alerts::AlertRule>, ConfigError> {
    raw.into_iter()
        .map(|r| {
            let name = r.name.clone();
            crate::alerts::AlertRule::new(r).map_err(|message| ConfigError::Alert {
                path: path.to_path_buf(),
                name,
                message,
            })
        })
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A TOML error as `file:line:column: message`, the message naming the field.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => line_col(text, span.start),
        None => (0, 0),
    };
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
plugin_dir = "plugins.d"
data_dir = ".corral"

[[instance]]
id = "kandji-prod"
name = "Acme Kandji"
description = "Production MDM"
plugin = "kandji"
policy = "policies/kandji.json"
polling_interval = "DISABLED"
tag_account_name = false
[instance.config]
apiUrl = "https://acme.api.kandji.io/api/v1/"
accessToken = { env = "KANDJI_TOKEN" }
"#;

    #[test]
    fn design_example_parses() {
        let c = CorralConfig::parse(EXAMPLE, Path::new("/etc/corral/corral.toml")).unwrap();
        assert_eq!(c.plugin_dir, Some(PathBuf::from("/etc/corral/plugins.d")));
        assert_eq!(c.data_dir, PathBuf::from("/etc/corral/.corral"));
        let i = &c.instances[0];
        assert_eq!(
            (i.id.as_str(), i.name.as_str(), i.plugin.as_str()),
            ("kandji-prod", "Acme Kandji", "kandji")
        );
        assert_eq!(
            i.policy,
            Some(PathBuf::from("/etc/corral/policies/kandji.json"))
        );
        assert_eq!(i.polling_interval, PollingInterval::Disabled);
        assert_eq!(
            i.config["accessToken"],
            ConfigValue::Env {
                env: "KANDJI_TOKEN".into()
            }
        );
        assert_eq!(
            i.config["apiUrl"],
            ConfigValue::Text("https://acme.api.kandji.io/api/v1/".into())
        );
    }

    #[test]
    fn name_defaults_to_id_and_every_interval_parses() {
        for (text, secs) in [
            ("DISABLED", None),
            ("FIFTEEN_MINUTES", Some(900)),
            ("ONE_HOUR", Some(3600)),
            ("FOUR_HOURS", Some(14400)),
            ("TWELVE_HOURS", Some(43200)),
            ("ONE_DAY", Some(86400)),
            ("ONE_WEEK", Some(604800)),
        ] {
            let toml = format!(
                "[[instance]]\nid = \"a\"\nplugin = \"kandji\"\npolling_interval = \"{text}\"\n"
            );
            let c = CorralConfig::parse(&toml, Path::new("c.toml")).unwrap();
            assert_eq!(c.instances[0].name, "a");
            assert_eq!(c.instances[0].polling_interval.seconds(), secs);
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = "[[instance]]\nid = \"a\"\nplugin = \"kandji\"\npolling = \"ONE_DAY\"\n";
        let e = CorralConfig::parse(bad, Path::new("corral.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("corral.toml:4:1: unknown field `polling`"),
            "{e}"
        );
        let bad = "[[instance]]\nid = \"a\"\nplugin = \"kandji\"\npolling_interval = \"HOURLY\"\n";
        let e = CorralConfig::parse(bad, Path::new("corral.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("corral.toml:4:20: unknown variant `HOURLY`"),
            "{e}"
        );
        let bad = "[[instance]]\nid = \"a\"\n";
        let e = CorralConfig::parse(bad, Path::new("corral.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `plugin`"), "{e}");
        let dup =
            "[[instance]]\nid = \"a\"\nplugin = \"k\"\n[[instance]]\nid = \"a\"\nplugin = \"k\"\n";
        let e = CorralConfig::parse(dup, Path::new("corral.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "corral.toml: instance \"a\": duplicate instance id");
    }

    #[test]
    fn serve_table_and_second_intervals() {
        let text = "[serve]\nmax_concurrent_runs = 4\n[[instance]]\nid = \"a\"\nplugin = \"k\"\npolling_interval_seconds = 2\n";
        let c = CorralConfig::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(c.serve.max_concurrent_runs, 4);
        assert_eq!(c.serve.shutdown_grace_seconds, 120);
        assert_eq!(
            c.instances[0].interval(),
            Some(std::time::Duration::from_secs(2))
        );
        let both = "[[instance]]\nid = \"a\"\nplugin = \"k\"\npolling_interval = \"ONE_DAY\"\npolling_interval_seconds = 2\n";
        let e = CorralConfig::parse(both, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "c.toml: instance \"a\": set polling_interval or polling_interval_seconds, not both"
        );
        let bad = "[serve]\nmax_runs = 4\n";
        let e = CorralConfig::parse(bad, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:2:1: unknown field `max_runs`"), "{e}");
    }
}
