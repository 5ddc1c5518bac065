//! The steps' I/O: requests through the host, entities out through the graph.

use crate::convert::{self, ACCOUNT_KEY, DEVICE_TYPE};
use corral_sdk::config;
use corral_sdk::graph::{self, Emitter};
use corral_sdk::http::{self, Request, RequestExt, Response, ResponseExt, Retry};
use corral_sdk::serde_json::Value;
use corral_sdk::{Error, Result, log};
use std::collections::HashSet;

const TOKEN: &str = "accessToken";
const PAGE_SIZE: usize = 100;
/// Devices whose details or apps are requested in one batch.
const BATCH: usize = 100;

/// `apiUrl`, with the trailing slash the reference silently requires.
fn api_url() -> Result<String> {
    let url = config::get("apiUrl")
        .map_err(|_| Error::Config("apiUrl must not be a secret".into()))?
        .filter(|u| !u.trim().is_empty());
    match url {
        Some(u) if u.ends_with('/') => Ok(u),
        Some(u) => Ok(format!("{u}/")),
        None => Err(missing_config()),
    }
}

fn missing_config() -> Error {
    Error::Config(
        "Config requires all of {apiUrl, accessToken}, you can check this via access page in \
         settings or contact support."
            .into(),
    )
}

fn get(url: String) -> Request {
    http::get(url).bearer(TOKEN)
}

pub fn validate() -> Result<()> {
    let base = api_url()?;
    if !config::has_secret(TOKEN) {
        return Err(missing_config());
    }
    let url = format!("{base}devices?limit=1");
    http::check_credentials(&get(url), &Retry::default(), |s| (200..300).contains(&s))?;
    Ok(())
}

pub fn fetch_account() -> Result<()> {
    let mut out = Emitter::new();
    out.entity(convert::account_entity())?;
    Ok(())
}

pub fn fetch_devices() -> Result<()> {
    let base = api_url()?;
    let has_account = graph::has_key(ACCOUNT_KEY);
    let mut seen = HashSet::new();
    let mut out = Emitter::new();
    http::for_each_offset_page(
        PAGE_SIZE,
        |offset| {
            let url = format!("{base}devices?offset={offset}&limit={PAGE_SIZE}");
            let page: Value = ok_json(http::fetch(&get(url), &Retry::default())?)?;
            match page {
                Value::Array(items) => Ok(items),
                _ => Err(Error::Provider("devices: expected a JSON array".into())),
            }
        },
        |page| {
            // Offset paging over a changing list can repeat a device. A device without an
            // id has no key that could not collide with another's: a warning, no request.
            let fresh: Vec<Value> = page
                .into_iter()
                .filter(|d| match device_id(d) {
                    Some(id) => seen.insert(id.to_string()),
                    None => {
                        log::warn("skipping device without a device_id", &[]);
                        false
                    }
                })
                .collect();
            emit_devices(&base, &fresh, has_account, &mut out)
        },
    )?;
    Ok(())
}

/// Fetches details for one page of devices at once and emits what answered.
fn emit_devices(base: &str, devices: &[Value], has_account: bool, out: &mut Emitter) -> Result<()> {
    for chunk in devices.chunks(BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|d| device_id(d).unwrap_or("")).collect();
        let details = fetch_per_device(base, &ids, "details")?;
        for (d, x) in chunk.iter().zip(details) {
            let Some(x) = x else { continue };
            let entity = match convert::device_entity(d, &x) {
                Ok(e) => e,
                Err(reason) => {
                    log::warn("skipping device", &[("reason", &reason)]);
                    continue;
                }
            };
            let key = entity["_key"].as_str().unwrap_or_default().to_string();
            out.entity(entity)?;
            if has_account {
                out.relationship(convert::account_device_relationship(&key))?;
            }
        }
    }
    Ok(())
}

/// `GET devices/{id}/{what}` for each id, concurrently. A device that answers 404 was
/// deleted since it was listed: a warning and `None`, not a failed step.
fn fetch_per_device(base: &str, ids: &[&str], what: &str) -> Result<Vec<Option<Value>>> {
    let reqs: Vec<Request> = ids
        .iter()
        .map(|id| {
            get(format!(
                "{base}devices/{}/{what}",
                http::encode_query_value(id)
            ))
        })
        .collect();
    let results = http::fetch_all(&reqs, &Retry::default());
    ids.iter()
        .zip(results)
        .map(|(id, result)| match result {
            Ok(r) if r.status == 404 => {
                log::warn(
                    "device disappeared during the run; skipped",
                    &[("device_id", id), ("url", &r.url), ("what", what)],
                );
                Ok(None)
            }
            other => ok_json(other?).map(Some),
        })
        .collect()
}

fn ok_json(r: Response) -> Result<Value> {
    r.error_for_status()?.json()
}

/// The device's id, unless it is missing, empty or blank.
fn device_id(d: &Value) -> Option<&str> {
    d.get("device_id")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty())
}

/// Every stored device's id, in emission order.
fn stored_device_ids() -> Result<Vec<String>> {
    graph::entities_of_type(DEVICE_TYPE)
        .map(|e| {
            Ok(e?
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string())
        })
        .filter(|id: &Result<String>| id.as_ref().map_or(true, |s| !s.is_empty()))
        .collect()
}

pub fn fetch_device_apps() -> Result<()> {
    let base = api_url()?;
    let ids = stored_device_ids()?;
    let mut apps_seen = HashSet::new();
    let mut edges_seen = HashSet::new();
    let mut out = Emitter::new();
    for chunk in ids.chunks(BATCH) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let answers = fetch_per_device(&base, &refs, "apps")?;
        for (device_id, answer) in refs.iter().zip(answers) {
            let Some(body) = answer else { continue };
            let apps = body
                .get("apps")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for app in &apps {
                emit_app(device_id, app, &mut apps_seen, &mut edges_seen, &mut out)?;
            }
        }
    }
    Ok(())
}

/// First seen wins for the app entity; each distinct edge key is emitted once.
fn emit_app(
    device_id: &str,
    app: &Value,
    apps_seen: &mut HashSet<String>,
    edges_seen: &mut HashSet<String>,
    out: &mut Emitter,
) -> Result<()> {
    let (Some(entity), Some(edge)) = (
        convert::app_entity(app),
        convert::device_app_relationship(device_id, app),
    ) else {
        log::warn("skipping app without an id", &[("device_id", device_id)]);
        return Ok(());
    };
    let key = entity["_key"].as_str().unwrap_or_default().to_string();
    if apps_seen.insert(key) {
        out.entity(entity)?;
    }
    let edge_key = edge["_key"].as_str().unwrap_or_default().to_string();
    if edges_seen.insert(edge_key) {
        out.relationship(edge)?;
    }
    Ok(())
}

pub fn fetch_device_users() -> Result<()> {
    let mut users_seen = HashSet::new();
    let mut out = Emitter::new();
    for device in graph::entities_of_type(DEVICE_TYPE) {
        let device = device?;
        let Some(user) = convert::user_entity(&device) else {
            continue;
        };
        let user_key = user["_key"].as_str().unwrap_or_default().to_string();
        let device_key = device["_key"].as_str().unwrap_or_default().to_string();
        if users_seen.insert(user_key.clone()) {
            out.entity(user)?;
        }
        out.relationship(convert::device_user_relationship(&device_key, &user_key))?;
    }
    Ok(())
}
