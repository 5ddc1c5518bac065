//! The steps' I/O: cursor-paged lists through the host, entities out through the graph.

use crate::convert;
use corral_sdk::config;
use corral_sdk::graph::{self, Emitter, Repeats};
use corral_sdk::http::{self, Request, RequestExt, ResponseExt, Retry};
use corral_sdk::serde_json::Value;
use corral_sdk::{Error, Result, log};
use std::time::Duration;

const PAGE: usize = 100;

fn missing_config() -> Error {
    Error::Config("Config requires all of {serverUrl, apiToken}".into())
}

/// `serverUrl + /web/api/v2.1`, without the double slash a trailing `/` would give.
fn api_base() -> Result<String> {
    let url = config::get("serverUrl")
        .ok()
        .flatten()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(missing_config)?;
    Ok(format!("{}/web/api/v2.1", url.trim_end_matches('/')))
}

fn get(url: String) -> Request {
    http::get(url).header("Authorization", "ApiToken {{secret:apiToken}}")
}

/// 429 and 5xx retried with backoff, at most 5 attempts; 401/403 never.
fn retry() -> Retry {
    Retry {
        max_attempts: 5,
        base_delay: Duration::from_millis(500),
        ..Retry::default()
    }
}

pub fn validate() -> Result<()> {
    let base = api_base()?;
    if !config::has_secret("apiToken") {
        return Err(missing_config());
    }
    // A 404 passes, as in the reference (its status helper treats 404 as empty).
    let passes = |s: u16| (200..300).contains(&s) || s == 404;
    http::check_credentials(&get(format!("{base}/system/info")), &retry(), passes)?;
    Ok(())
}

/// Whether a 404 answer means "no such list, so nothing in it": only for the first page,
/// as the reference treats it. A 404 for a cursor (an expired or unknown one) is a
/// failure: read as the list's end, it would leave out every later page, and the step
/// would look complete, so the objects on those pages would be deleted downstream.
fn not_found_is_empty(cursor: Option<&str>) -> bool {
    cursor.is_none()
}

/// Every item of a cursor-paged list; a 404 on the first page is an empty list, as in
/// the reference; on a later page it fails the step ([`not_found_is_empty`]).
fn each_page(resource: &str, mut each: impl FnMut(Vec<Value>) -> Result<()>) -> Result<()> {
    let base = api_base()?;
    http::for_each_cursor_page(
        |cursor| {
            let url = match cursor {
                None => format!("{base}/{resource}?limit={PAGE}"),
                Some(c) => format!(
                    "{base}/{resource}?limit={PAGE}&cursor={}",
                    http::encode_query_value(c)
                ),
            };
            let resp = http::fetch(&get(url), &retry())?;
            if resp.status == 404 && not_found_is_empty(cursor) {
                return Ok((Vec::new(), None));
            }
            let mut body: Value = resp.error_for_status()?.json()?;
            let next = body
                .pointer("/pagination/nextCursor")
                .and_then(Value::as_str)
                .map(String::from);
            // Taken out of the page, not copied: the page is most of a step's memory.
            let data = match body.get_mut("data").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            Ok((data, next))
        },
        &mut each,
    )
}

pub fn fetch_account() -> Result<()> {
    let mut out = Emitter::new();
    out.entity(convert::account_entity(
        &config::instance_id(),
        &config::instance_name(),
    ))?;
    Ok(())
}

pub fn fetch_groups() -> Result<()> {
    let account = convert::account_key(&config::instance_id());
    let mut seen = Repeats::new();
    let mut out = Emitter::new();
    each_page("groups", |groups| {
        for g in groups {
            let Some(entity) = convert::group_entity(g) else {
                log::warn("skipping group without an id", &[]);
                continue;
            };
            let key = entity["_key"].as_str().unwrap_or_default().to_string();
            if !seen.seen(&key, &mut out)? {
                out.entity(entity)?;
                out.relationship(convert::account_group(&account, &key))?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

pub fn fetch_agents() -> Result<()> {
    let mut seen = Repeats::new();
    let mut out = Emitter::new();
    each_page("agents", |agents| {
        for d in agents {
            let group = d
                .get("groupId")
                .and_then(Value::as_str)
                .map(convert::group_key);
            let Some((entity, warning)) = convert::agent_entity(d) else {
                log::warn("skipping agent without an id", &[]);
                continue;
            };
            let key = entity["_key"].as_str().unwrap_or_default().to_string();
            if let Some(w) = warning {
                log::warn(&w, &[("agent", &key)]);
            }
            if seen.seen(&key, &mut out)? {
                continue;
            }
            let mapped = convert::protects_device(&entity);
            out.entity(entity)?;
            // Agents in an unknown group are kept, with no edge.
            if let Some(group) = group.filter(|g| graph::has_key(g)) {
                out.relationship(convert::group_agent(&group, &key))?;
            }
            if let Some(m) = mapped {
                out.relationship(m)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_sdk::testing;

    #[test]
    fn an_agent_a_later_page_repeats_is_emitted_once() {
        testing::reset();
        testing::config("serverUrl", "https://s1.test/");
        testing::secret("apiToken");
        let api = "https://s1.test/web/api/v2.1/agents?limit=100";
        let agent = |id: &str| format!(r#"{{"id":"{id}","computerName":"host-{id}"}}"#);
        let page = |ids: &[&str], next: &str| {
            let data: Vec<String> = ids.iter().map(|id| agent(id)).collect();
            format!(
                r#"{{"data":[{}],"pagination":{{"nextCursor":{next}}}}}"#,
                data.join(",")
            )
        };
        // "2" repeats across pages, "3" within one; the host refuses "4", repeated too.
        testing::answer("GET", api, 200, page(&["1", "2", "4"], r#""c1""#));
        let second = format!("{api}&cursor=c1");
        testing::answer("GET", &second, 200, page(&["2", "3", "3", "4"], "null"));
        let refused_key = convert::agent_entity(serde_json::json!({"id": "4"}))
            .unwrap()
            .0["_key"]
            .as_str()
            .unwrap()
            .to_string();
        testing::refuse(&refused_key, "breaks the data model");
        fetch_agents().unwrap();
        let keys: Vec<String> = testing::entities()
            .iter()
            .map(|e| e["_key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        // No repeat reached the host: it refused "4" once and nothing as a duplicate.
        assert_eq!(
            testing::rejected(),
            [(refused_key, "breaks the data model".to_string())]
        );
        assert_eq!(testing::requests().len(), 2);
    }

    #[test]
    fn a_404_is_an_empty_list_only_on_the_first_page() {
        assert!(not_found_is_empty(None), "no cursor sent yet: no such list");
        assert!(
            !not_found_is_empty(Some("YXJn+100/b2Zmc2V0==")),
            "a later page: the step fails"
        );
    }
}
