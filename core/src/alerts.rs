//! Alert rules (`[[alert]]` in `corral.toml`): which changes match (kinds, instance,
//! `_type` or `_class` glob, property filters) and what happens (a log line, or a JSON
//! POST to a webhook; the host delivers them).

use crate::changes::{Change, ChangeKind};
use crate::policy::glob_match;
use crate::query::Filter;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Log,
    Webhook,
}

/// An `[[alert]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub name: String,
    #[serde(default = "every_kind")]
    pub on: Vec<ChangeKind>,
    /// Glob over instance ids (default: every instance).
    pub instance: Option<String>,
    #[serde(rename = "type")]
    pub type_glob: Option<String>,
    pub class: Option<String>,
    /// Property filters, `PROPERTY OP VALUE` (see `query.rs`); all must match.
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub action: Action,
    pub webhook: Option<String>,
    #[serde(default)]
    pub allow_private_networks: bool,
}

fn every_kind() -> Vec<ChangeKind> {
    vec![
        ChangeKind::Created,
        ChangeKind::Updated,
        ChangeKind::Deleted,
    ]
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub raw: RawAlert,
    pub filters: Vec<Filter>,
    pub webhook: Option<url::Url>,
}

impl AlertRule {
    /// Checks a rule; the error says what is wrong (the caller adds where).
    pub fn new(raw: RawAlert) -> Result<AlertRule, String> {
        if raw.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if raw.type_glob.is_none() && raw.class.is_none() {
            return Err("give `type` (a _type glob) or `class` (a _class glob)".into());
        }
        let filters = raw
            .when
            .iter()
            .map(|w| Filter::parse(w))
            .collect::<Result<_, _>>()?;
        let webhook = match (raw.action, &raw.webhook) {
            (Action::Webhook, None) => {
                return Err("action = \"webhook\" needs `webhook = URL`".into());
            }
            (Action::Log, Some(_)) => {
                return Err(
                    "`webhook` is set but action is \"log\"; set action = \"webhook\"".into(),
                );
            }
            (_, Some(u)) => {
                let url = url::Url::parse(u).map_err(|e| format!("webhook {u:?}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("webhook {u:?}: only http and https"));
                }
                Some(url)
            }
            (Action::Log, None) => None,
        };
        Ok(AlertRule {
            raw,
            filters,
            webhook,
        })
    }

    pub fn matches(&self, instance: &str, change: &Change) -> bool {
        let r = &self.raw;
        r.on.contains(&change.kind)
            && r.instance
                .as_deref()
                .is_none_or(|g| glob_match(g, instance))
            && r.type_glob
                .as_deref()
                .is_none_or(|g| glob_match(g, &change.object.type_name))
            && r.class
                .as_deref()
                .is_none_or(|g| change.object.classes().iter().any(|c| glob_match(g, c)))
            && self
                .filters
                .iter()
                .all(|f| f.matches(&change.object.object))
    }
}
