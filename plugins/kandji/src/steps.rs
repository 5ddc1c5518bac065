//! The steps' I/O: requests through the host, entities out through the graph.

use crate::convert::{self, ACCOUNT_KEY, APP_TYPE, DEVICE_TYPE};
use corral_sdk::carry::{self, Carry};
use corral_sdk::config;
use corral_sdk::graph::{self, Emitter};
use corral_sdk::http::{self, Request, RequestExt, Response, ResponseExt, Retry};
use corral_sdk::serde_json::Value;
use corral_sdk::{Error, Result, kv, log};
use std::collections::{BTreeSet, HashMap, HashSet};

const TOKEN: &str = "accessToken";
/// The reference's page of the device list.
const PAGE_SIZE: usize = 100;
/// Kandji's largest page of the device list ("a hard upper limit is set at 300 device
/// records returned per request"): an incremental run, which otherwise makes about one
/// request per changed device, lists in these to spend less of the hourly quota.
const INCREMENTAL_PAGE_SIZE: usize = 300;
/// Devices whose details or apps are requested in one batch.
const BATCH: usize = 100;
/// Where `fetch-devices` tells `fetch-device-apps` which devices it took from the
/// previous graph (their apps are taken from there too).
const UNCHANGED_KEY: &str = "kandji/unchanged-devices";

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

/// Devices, incrementally: a device whose list entry is as the previous run left it is
/// re-emitted from the previous graph, without its details request; the others are
/// fetched. The first run (an empty previous graph) fetches every device.
pub fn fetch_devices() -> Result<()> {
    let base = api_url()?;
    let has_account = graph::has_key(ACCOUNT_KEY);
    let mut seen = HashSet::new();
    let mut unchanged: Vec<String> = Vec::new();
    // Off unless the instance asks: a change to a device's details alone (its list
    // entry as it was) is then not seen until the device checks in.
    let incremental = corral_sdk::connector::is_on("incremental");
    let mut previous_readable = incremental;
    let limit = if incremental {
        INCREMENTAL_PAGE_SIZE
    } else {
        PAGE_SIZE
    };
    let mut fetched = 0usize;
    let mut out = Emitter::new();
    // What the apps and users steps read of each stored device.
    let mut carry = Carry::new(DEVICE_TYPE, convert::CARRIED_FIELDS);
    http::for_each_offset_page(
        |offset| {
            let url = format!("{base}devices?offset={offset}&limit={limit}");
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
            let reused: Vec<Option<corral_sdk::entity::Object>> = fresh
                .iter()
                .map(|d| previous_device(d, &mut previous_readable))
                .collect();
            let changed: Vec<&Value> = fresh
                .iter()
                .zip(&reused)
                .filter(|(_, r)| r.is_none())
                .map(|(d, _)| d)
                .collect();
            fetched += changed.len();
            let mut details = fetch_details(&base, &changed)?.into_iter();
            // In list order, as a full run emits them (later steps take the first device
            // of an app or a user in this order).
            let mut entities = Vec::with_capacity(fresh.len());
            for (d, prev) in fresh.iter().zip(reused) {
                entities.push(match prev {
                    Some(prev) => {
                        unchanged.push(prev["_key"].as_str().unwrap_or_default().to_string());
                        prev
                    }
                    None => match details.next().flatten() {
                        Some(x) => match convert::device_entity(d, x) {
                            Ok(e) => e,
                            Err(reason) => {
                                log::warn("skipping device", &[("reason", &reason)]);
                                continue;
                            }
                        },
                        None => continue,
                    },
                });
            }
            let stored = out.entities_now(&entities)?;
            for (entity, stored) in entities.iter().zip(stored) {
                if stored {
                    carry.add(entity);
                }
                if has_account {
                    let key = entity["_key"].as_str().unwrap_or_default();
                    out.relationship(convert::account_device_relationship(key))?;
                }
            }
            Ok(())
        },
    )?;
    // The unchanged devices first: the carry saves reads, the list saves requests
    // against the tenant's quota, so when the store has no room for both the carry
    // gives way.
    let mut kept = kv::set_json(UNCHANGED_KEY, &unchanged);
    if kept.is_err() {
        carry.abandon("the store's room is needed for the unchanged devices");
        kept = kv::set_json(UNCHANGED_KEY, &unchanged);
    } else {
        carry.finish();
    }
    if let Err(e) = kept {
        // The apps step then fetches every device's apps: more requests, same graph.
        log::warn(
            "the unchanged devices could not be kept for the apps step",
            &[("reason", &e.to_string())],
        );
    }
    // What this run costs the tenant's quota: the details requests made, and as many
    // apps requests to come (at most; an app's first device may add a few).
    log::typed(
        "info",
        "devices listed",
        &[
            ("fetched", fetched.into()),
            ("unchanged", unchanged.len().into()),
            ("appsRequestsToCome", fetched.into()),
        ],
    );
    Ok(())
}

/// The previous run's entity of list item `d` when the item is as it was then.
fn previous_device(d: &Value, readable: &mut bool) -> Option<corral_sdk::entity::Object> {
    if !*readable {
        return None;
    }
    let id = device_id(d)?;
    match graph::previous_object(id) {
        Ok(Some(prev)) if convert::list_unchanged(&prev, d) => Some(prev),
        Ok(_) => None,
        Err(e) => {
            // Not readable (say, a run of this instance emitted a secret value): every
            // device is fetched, as on a first run.
            *readable = false;
            log::warn(
                "the previous graph is not read; every device is fetched",
                &[("reason", &e.to_string())],
            );
            None
        }
    }
}

/// The details of `devices`, in their order (`None`: gone since it was listed).
fn fetch_details(base: &str, devices: &[&Value]) -> Result<Vec<Option<Value>>> {
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|d| device_id(d).unwrap_or("")).collect();
        for answer in fetch_per_device(base, &ids, "details")? {
            out.push(answer.map(|r| r.json()).transpose()?);
        }
    }
    Ok(out)
}

/// `GET devices/{id}/{what}` for each id, concurrently: the 2xx answers. A device that
/// answers 404 was deleted since it was listed: a warning and `None`, not a failed step.
fn fetch_per_device(base: &str, ids: &[&str], what: &str) -> Result<Vec<Option<Response>>> {
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
            other => other?.error_for_status().map(Some),
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
    carry::stored(DEVICE_TYPE, convert::ID_FIELDS)?
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

/// Apps. For the devices `fetch-devices` fetched, each device's installs are fetched; for
/// those it took from the previous graph, the previous installs are re-emitted. An app
/// entity is its first device's install (in device order), as in a full run: taken from
/// the previous graph only when that graph's entity is that very device's install, else
/// every device's apps are fetched.
pub fn fetch_device_apps() -> Result<()> {
    let base = api_url()?;
    let ids = stored_device_ids()?;
    let reused: HashSet<String> = kv::get_json::<Vec<String>>(UNCHANGED_KEY)?
        .unwrap_or_default()
        .into_iter()
        .collect();
    let changed: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !reused.contains(*id))
        .collect();
    // Mostly changed (a first run among them): fetching everything costs about as much,
    // and more changed devices than the step may hold at once are fetched a batch at a
    // time too.
    if reused.is_empty() || changed.len() > reused.len() || changed.len() > MAX_HELD_DEVICES {
        return emit_every_install(&base, &ids);
    }
    match apps_reusing(&base, &ids, reused, &changed) {
        Err(Error::Graph(reason)) => {
            // The previous graph could not be read after all (say, the operator's
            // policy denies reading apps): every device's apps are fetched.
            log::warn(
                "the previous apps are not read; every device's apps are fetched",
                &[("reason", &reason)],
            );
            emit_every_install(&base, &ids)
        }
        Ok(Reused::TooMany) => emit_every_install(&base, &ids),
        other => other.map(|_| ()),
    }
}

/// Devices whose installs the apps step holds at once while it works out which app
/// entities the previous graph may give: a device's installs are tens of KiB, and the
/// guest's memory is the policy's `memoryMiB` (64 by default).
const MAX_HELD_DEVICES: usize = 400;

/// Every device's apps, fetched and emitted a batch at a time (in device order, so an
/// app entity is its first device's install).
fn emit_every_install(base: &str, ids: &[String]) -> Result<()> {
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (mut seen, mut out) = (Seen::default(), Emitter::new());
    for chunk in all.chunks(BATCH) {
        emit_installs(&fetch_installs(base, chunk)?, &mut seen, &mut out)?;
    }
    Ok(())
}

/// How the apps step went when it reused the previous graph.
enum Reused {
    Done,
    /// More devices' installs were needed than the step may hold: nothing was emitted.
    TooMany,
}

/// The apps step when some devices are taken from the previous graph.
fn apps_reusing(
    base: &str,
    ids: &[String],
    mut reused: HashSet<String>,
    changed: &[&str],
) -> Result<Reused> {
    let order = positions(ids);
    let mut installs = fetch_installs(base, changed)?;
    // An app whose first device is a reused one is taken from the previous graph only if
    // that graph's entity is that device's install; otherwise that device's apps are
    // fetched too (say, the app's first device of the previous run is gone), and the
    // first devices are worked out again.
    let mut rounds = 0;
    let previous_apps = loop {
        match previous_winners(&order, &reused, &installs)? {
            Winners::Apps(apps) => break apps,
            Winners::Refetch(devices) => {
                rounds += 1;
                let devices: Vec<String> = if rounds < MAX_ROUNDS {
                    devices
                } else {
                    reused.iter().cloned().collect()
                };
                if installs.len() + devices.len() > MAX_HELD_DEVICES {
                    return Ok(Reused::TooMany);
                }
                for d in &devices {
                    reused.remove(d);
                }
                let refs: Vec<&str> = devices.iter().map(String::as_str).collect();
                installs.extend(fetch_installs(base, &refs)?);
                installs.sort_by_key(|d| order.get(d.device_id.as_str()).copied());
            }
        }
    };
    let mut seen = Seen::default();
    let mut out = Emitter::new();
    for app in previous_apps {
        let key = app["_key"].as_str().unwrap_or_default().to_string();
        seen.apps.insert(key);
        out.entity(app)?;
    }
    emit_installs(&installs, &mut seen, &mut out)?;
    reemit_edges(&reused, &mut seen, &mut out)?;
    Ok(Reused::Done)
}

/// Rounds of finding apps' first devices before every remaining device is fetched.
const MAX_ROUNDS: usize = 4;

/// What the previous graph gives the apps step.
enum Winners {
    /// The app entities to take from it.
    Apps(Vec<corral_sdk::entity::Object>),
    /// Reused devices whose apps must be fetched after all.
    Refetch(Vec<String>),
}

/// App keys already emitted by this step. Install keys are deduplicated per device: an
/// install's key starts with its device's, so two devices never share one, and a set
/// over every install (about ten per device) would grow with the tenant.
#[derive(Default)]
struct Seen {
    apps: HashSet<String>,
}

/// Each id's place in `ids`.
fn positions(ids: &[String]) -> HashMap<&str, usize> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect()
}

/// A device's installs (its answer's `apps`), each with only what its edge and its
/// app's key read (`convert::INSTALL_FIELDS`): an install is built whole only for an app
/// entity the step has not emitted yet, whose `_rawData` it is.
struct DeviceApps {
    device_id: String,
    installs: Vec<Value>,
    answer: Response,
}

impl DeviceApps {
    /// The app entity of install `i`, from the install whole: `whole` holds every install
    /// of the device whole once one was needed.
    fn app_entity(
        &self,
        i: usize,
        whole: &mut Option<Vec<Value>>,
    ) -> Result<Option<corral_sdk::entity::Object>> {
        if whole.is_none() {
            *whole = Some(self.whole()?);
        }
        Ok(whole
            .as_ref()
            .and_then(|w| w.get(i))
            .and_then(convert::app_entity))
    }

    /// Every install whole, in the same order. An answer that only the full parse
    /// refuses (what `json_items` lets through in what it reads past) fails the step
    /// here, when one of its apps is first needed.
    fn whole(&self) -> Result<Vec<Value>> {
        Ok(match self.answer.json::<Value>()? {
            Value::Object(mut body) => match body.remove("apps") {
                Some(Value::Array(apps)) => apps,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }
}

/// Each device's installs, in the order of `ids`; a device gone since it was listed
/// (404) has none.
fn fetch_installs(base: &str, ids: &[&str]) -> Result<Vec<DeviceApps>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH) {
        let answers = fetch_per_device(base, chunk, "apps")?;
        for (device_id, answer) in chunk.iter().zip(answers) {
            let Some(answer) = answer else { continue };
            out.push(DeviceApps {
                device_id: device_id.to_string(),
                installs: answer.json_items("apps", convert::INSTALL_FIELDS)?,
                answer,
            });
        }
    }
    Ok(out)
}

fn emit_installs(installs: &[DeviceApps], seen: &mut Seen, out: &mut Emitter) -> Result<()> {
    for device in installs {
        let (mut edges, mut whole) = (HashSet::new(), None);
        for i in 0..device.installs.len() {
            emit_app(device, i, &mut whole, &mut seen.apps, &mut edges, out)?;
        }
    }
    Ok(())
}

/// Install `i` of `device`. First seen wins for the app entity; each distinct edge key is
/// emitted once.
fn emit_app(
    device: &DeviceApps,
    i: usize,
    whole: &mut Option<Vec<Value>>,
    apps_seen: &mut HashSet<String>,
    edges_seen: &mut HashSet<String>,
    out: &mut Emitter,
) -> Result<()> {
    let device_id = device.device_id.as_str();
    // The edge's `_toEntityKey` is the app's key (`convert::app_key`).
    let Some((edge, key)) = device
        .installs
        .get(i)
        .and_then(|install| convert::device_app_relationship(device_id, install))
        .and_then(|edge| {
            let key = edge.get("_toEntityKey")?.as_str()?.to_string();
            Some((edge, key))
        })
    else {
        log::warn("skipping app without an id", &[("device_id", device_id)]);
        return Ok(());
    };
    // Most installs are of an app an earlier device has: its entity is built only once.
    if apps_seen.insert(key)
        && let Some(entity) = device.app_entity(i, whole)?
    {
        out.entity(entity)?;
    }
    let edge_key = edge["_key"].as_str().unwrap_or_default().to_string();
    if edges_seen.insert(edge_key) {
        out.relationship(edge)?;
    }
    Ok(())
}

fn device_app_type() -> String {
    corral_sdk::entity::relationship_type("HAS", DEVICE_TYPE, APP_TYPE)
}

/// The first device (position in `ids`) of each app, and the unchanged device's
/// previous install key when the first is one.
type FirstDevices = HashMap<String, (usize, Option<(String, String)>)>;

/// The app entities whose first device (by `order`) is a reused one, from the previous
/// graph; or the reused devices whose previous app entities are not their own installs.
fn previous_winners(
    order: &HashMap<&str, usize>,
    reused: &HashSet<String>,
    installs: &[DeviceApps],
) -> Result<Winners> {
    let mut first = FirstDevices::new();
    let mut offer = |app: String, at: usize, previous: Option<(String, String)>| {
        let entry = first.entry(app).or_insert((usize::MAX, None));
        if at < entry.0 {
            *entry = (at, previous);
        }
    };
    for device in installs {
        let at = order
            .get(device.device_id.as_str())
            .copied()
            .unwrap_or(usize::MAX);
        for app in &device.installs {
            if let Some(key) = convert::app_key(app) {
                offer(key, at, None);
            }
        }
    }
    for edge in graph::previous_of_type(&device_app_type()) {
        let edge = edge?;
        let from = edge["_fromEntityKey"].as_str().unwrap_or_default();
        let (true, Some(&at)) = (reused.contains(from), order.get(from)) else {
            continue;
        };
        let to = edge["_toEntityKey"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = edge["_key"].as_str().unwrap_or_default().to_string();
        offer(to, at, Some((from.to_string(), key)));
    }
    let mut apps = Vec::new();
    let mut refetch = BTreeSet::new();
    for (app_key, (_, previous)) in first {
        let Some((device, install_key)) = previous else {
            continue;
        };
        match graph::previous_object(&app_key)? {
            Some(app) if is_install_of(&app, &device, &install_key) => apps.push(app),
            _ => {
                refetch.insert(device);
            }
        }
    }
    Ok(if refetch.is_empty() {
        Winners::Apps(apps)
    } else {
        Winners::Refetch(refetch.into_iter().collect())
    })
}

/// Whether app entity `app` was built from `device`'s install keyed `install_key`.
fn is_install_of(app: &corral_sdk::entity::Object, device: &str, install_key: &str) -> bool {
    let raw = corral_sdk::entity::raw_data(app).unwrap_or(&Value::Null);
    convert::device_app_relationship(device, raw)
        .is_some_and(|e| e["_key"].as_str() == Some(install_key))
}

/// The previous graph's installs of the reused devices (unique by key there, and none
/// of them a fetched device's).
fn reemit_edges(reused: &HashSet<String>, seen: &mut Seen, out: &mut Emitter) -> Result<()> {
    for edge in graph::previous_of_type(&device_app_type()) {
        let edge = edge?;
        let from = edge["_fromEntityKey"].as_str().unwrap_or_default();
        let to = edge["_toEntityKey"].as_str().unwrap_or_default();
        if !reused.contains(from) || !seen.apps.contains(to) {
            continue;
        }
        out.relationship(edge)?;
    }
    Ok(())
}

pub fn fetch_device_users() -> Result<()> {
    let mut users_seen = HashSet::new();
    let mut out = Emitter::new();
    for device in carry::stored(DEVICE_TYPE, convert::USER_FIELDS)? {
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
