//! The steps' I/O: the two auth modes, the JSONL export read as it streams, and the
//! relationship steps that read back what earlier steps stored.

use crate::convert::{self, ACCOUNT_TYPE, ASSET_TYPE, ORG_TYPE, SITE_TYPE, USER_TYPE};
use crate::manifest::*;
use corral_sdk::config;
use corral_sdk::entity::Object;
use corral_sdk::graph::{self, Emitter};
use corral_sdk::http::{self, Request, RequestExt, ResponseExt, Retry};
use corral_sdk::serde_json::{self, Value};
use corral_sdk::{Error, Result, kv, log};
use std::collections::HashSet;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    AccountKey,
    ExportToken,
}

fn mode() -> Result<Mode> {
    match (
        config::has_secret("accountAPIKey"),
        config::has_secret("exportToken"),
    ) {
        (true, false) => Ok(Mode::AccountKey),
        (false, true) => Ok(Mode::ExportToken),
        (false, false) => Err(Error::Config(
            "Config requires either Account API Key or Export Token".into(),
        )),
        (true, true) => Err(Error::Config(
            "Config requires either an Account API Key or an Export Token, but not both".into(),
        )),
    }
}

fn base() -> String {
    let url = config::get("baseUrl")
        .ok()
        .flatten()
        .unwrap_or_else(|| DEFAULT_BASE_URL.into());
    url.trim_end_matches('/').to_string()
}

fn request(path: &str) -> Request {
    http::get(format!("{}{path}", base())).header("Accept", "application/json")
}

fn with_account_key(path: &str) -> Request {
    request(path).bearer("accountAPIKey")
}

fn with_export_token(path: &str) -> Request {
    request(path).bearer("exportToken")
}

/// The library defaults the reference relies on: a couple of retries with backoff.
fn retry() -> Retry {
    Retry {
        max_attempts: 3,
        ..Retry::default()
    }
}

fn get_json(req: &Request) -> Result<Value> {
    http::fetch(req, &retry())?.error_for_status()?.json()
}

fn list(req: &Request) -> Result<Vec<Value>> {
    match get_json(req)? {
        Value::Array(items) => Ok(items),
        _ => Err(Error::Provider(format!(
            "{}: expected a JSON array",
            req.url
        ))),
    }
}

/// Where the run keeps the organizations it fetched once (`kv`): validation reads them,
/// and the steps that need them (account, organizations, assets) take them from there.
const ORGS_KEY: &str = "account/orgs";

pub fn validate() -> Result<()> {
    let passes = |s: u16| (200..300).contains(&s);
    match mode()? {
        Mode::AccountKey => {
            let resp =
                http::check_credentials(&with_account_key("/account/orgs"), &retry(), passes)?;
            // A body that is no list is the steps' error to report, not validation's.
            if let Ok(Value::Array(orgs)) = resp.json() {
                kv::set_json(ORGS_KEY, &orgs)?;
            }
            Ok(())
        }
        Mode::ExportToken => {
            http::check_credentials(
                &with_export_token("/export/org/sites.json"),
                &retry(),
                passes,
            )?;
            Ok(())
        }
    }
}

/// The account's organizations: as validation read them, else fetched (and kept).
fn orgs() -> Result<Vec<Value>> {
    if let Some(orgs) = kv::get_json::<Vec<Value>>(ORGS_KEY)? {
        return Ok(orgs);
    }
    let orgs = orgs()?;
    kv::set_json(ORGS_KEY, &orgs)?;
    Ok(orgs)
}

pub fn disabled_steps() -> Vec<String> {
    match mode() {
        Ok(Mode::ExportToken) => {
            log::info(
                "The integration is using an Export Token for data collection. Users and Organizations will not be ingested.",
                &[],
            );
            ACCOUNT_KEY_STEPS.iter().map(|s| s.to_string()).collect()
        }
        _ => Vec::new(),
    }
}

pub fn org_site() -> Result<()> {
    build_parent_edges(SITE_TYPE, "organization_id", ORG_TYPE, |org, site| {
        convert::org_has_site(org, site)
    })
}

pub fn site_asset() -> Result<()> {
    build_parent_edges(ASSET_TYPE, "site_id", SITE_TYPE, |site, asset| {
        convert::site_has_asset(site, asset)
    })
}

/// The first usable `client_id` (the runZero account id) among `items`: one that is
/// `""` or blank would make a key shorter than the minimum, or shared.
fn client_id(items: &[Value]) -> Option<String> {
    items
        .iter()
        .find_map(|i| corral_sdk::props::readable(i.get("client_id")))
}

pub fn fetch_account() -> Result<()> {
    let instance = config::instance_id();
    let fallback = || format!("rumble_account-{instance}");
    let key = match mode()? {
        Mode::AccountKey => {
            let orgs = orgs()?;
            if orgs.is_empty() {
                return Err(Error::Provider(
                    "the account has no organizations, so no account id".into(),
                ));
            }
            client_id(&orgs).unwrap_or_else(fallback)
        }
        // The reference uses the instance id; the account's own id (which every site
        // carries) keeps one key across both modes and meets the key-length rule.
        Mode::ExportToken => {
            client_id(&list(&with_export_token("/export/org/sites.json"))?).unwrap_or_else(fallback)
        }
    };
    let mut out = Emitter::new();
    out.entity(convert::account_entity(
        &key,
        &config::instance_name(),
        &instance,
    ))?;
    Ok(())
}

/// The account entity's key, from the graph.
fn account_key() -> Result<String> {
    graph::entities_of_type(ACCOUNT_TYPE)
        .only(&["_key"])
        .next()
        .transpose()?
        .and_then(|a| a.get("_key").and_then(Value::as_str).map(String::from))
        .ok_or_else(|| Error::Graph("no rumble_account in this run".into()))
}

/// Emits an entity per item, and an edge from the account to each.
fn emit_under_account(
    items: &[Value],
    to_type: &str,
    convert: fn(&Value) -> Option<Object>,
    extra: fn(&Object) -> Option<Object>,
) -> Result<()> {
    let account = account_key()?;
    let mut seen = HashSet::new();
    let mut out = Emitter::new();
    for item in items {
        let Some(entity) = convert(item) else {
            log::warn("skipping a record without an id", &[("type", to_type)]);
            continue;
        };
        let key = entity["_key"].as_str().unwrap_or_default().to_string();
        if !seen.insert(key.clone()) {
            continue;
        }
        let more = extra(&entity);
        out.entity(entity)?;
        out.relationship(convert::account_has(&account, &key, to_type))?;
        if let Some(m) = more {
            out.relationship(m)?;
        }
    }
    Ok(())
}

pub fn fetch_orgs() -> Result<()> {
    let orgs = orgs()?;
    emit_under_account(&orgs, ORG_TYPE, convert::org_entity, |_| None)
}

pub fn fetch_users() -> Result<()> {
    let users = list(&with_account_key("/account/users"))?;
    emit_under_account(
        &users,
        USER_TYPE,
        convert::user_entity,
        convert::user_is_person,
    )
}

fn raw<'a>(entity: &'a Object, field: &str) -> Option<&'a Value> {
    corral_sdk::entity::raw_data(entity)?.get(field)
}

pub fn build_user_orgs() -> Result<()> {
    let mut out = Emitter::new();
    for user in graph::entities_of_type(USER_TYPE)
        .only(&["_key"])
        .raw_fields(&["org_roles"])
    {
        let user = user?;
        let user_key = user["_key"].as_str().unwrap_or_default().to_string();
        let Some(roles) = raw(&user, "org_roles").and_then(Value::as_object) else {
            continue;
        };
        for (org, role) in roles {
            if !graph::has_key(org) {
                log::warn(
                    "user names an organization that is not in the account; skipped",
                    &[("user", &user_key), ("organization", org)],
                );
                continue;
            }
            out.relationship(convert::user_assigned_org(
                &user_key,
                org,
                role.as_str().unwrap_or_default(),
            ))?;
        }
    }
    Ok(())
}

pub fn fetch_sites() -> Result<()> {
    let sites = match mode()? {
        Mode::AccountKey => list(&with_account_key("/account/sites"))?,
        Mode::ExportToken => list(&with_export_token("/export/org/sites.json"))?,
    };
    let mut seen = HashSet::new();
    let mut out = Emitter::new();
    for site in &sites {
        match convert::site_entity(site) {
            Some(e) if seen.insert(e["_key"].as_str().unwrap_or_default().to_string()) => {
                out.entity(e)?
            }
            Some(_) => {}
            None => log::warn("skipping a site without an id", &[]),
        }
    }
    Ok(())
}

pub fn build_account_sites() -> Result<()> {
    let account = account_key()?;
    let mut out = Emitter::new();
    for site in graph::entities_of_type(SITE_TYPE).only(&["_key"]) {
        let site = site?;
        out.relationship(convert::account_has(
            &account,
            site["_key"].as_str().unwrap_or_default(),
            SITE_TYPE,
        ))?;
    }
    Ok(())
}

/// An edge from each `child_type` entity's parent (named by `parent_field` in its raw
/// record) to it; a parent that is not in the run is a warning, not a failed step.
fn build_parent_edges(
    child_type: &str,
    parent_field: &str,
    parent_type: &str,
    make: fn(&str, &str) -> Object,
) -> Result<()> {
    let mut out = Emitter::new();
    let parent_fields = [parent_field];
    let children = graph::entities_of_type(child_type)
        .only(&["_key"])
        .raw_fields(&parent_fields);
    for child in children {
        let child = child?;
        let key = child["_key"].as_str().unwrap_or_default().to_string();
        let parent = raw(&child, parent_field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if graph::has_key(&parent) {
            out.relationship(make(&parent, &key))?;
        } else {
            log::warn(
                "parent not in this run; no edge",
                &[
                    ("entity", &key),
                    ("parent", &parent),
                    ("parentType", parent_type),
                ],
            );
        }
    }
    Ok(())
}

pub fn fetch_assets() -> Result<()> {
    let mut seen = HashSet::new();
    let mut out = Emitter::new();
    match mode()? {
        Mode::ExportToken => export_assets(
            &with_export_token(&assets_export_path()),
            &mut seen,
            &mut out,
        )?,
        Mode::AccountKey => {
            for org in orgs()? {
                let name = org
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match org
                    .get("export_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    // The organization's own token, as the API handed it out; it is sent
                    // only to the console and never stored.
                    Some(token) => {
                        let req = request(&assets_export_path())
                            .header("Authorization", &format!("Bearer {token}"));
                        export_assets(&req, &mut seen, &mut out)?;
                    }
                    None => log::warn(
                        "Organization does not have export token. Asset, Services, and Wireless data for this organization won't be loaded.",
                        &[("organization", &name)],
                    ),
                }
            }
        }
    }
    Ok(())
}

/// The asset export, asking only for the fields this connector maps or keeps
/// (`fields`, comma-separated, as runZero's API documents it): the whole export must fit
/// the host's `maxResponseBytes`, and service banners are most of it.
fn assets_export_path() -> String {
    format!(
        "/export/org/assets.jsonl?fields={}",
        http::encode_query_value(&convert::EXPORT_FIELDS.join(","))
    )
}

/// One org's JSONL export, converted and emitted a line at a time.
fn export_assets(req: &Request, seen: &mut HashSet<String>, out: &mut Emitter) -> Result<()> {
    let (head, body) = http::fetch_streaming(req, &retry())?;
    if !(200..300).contains(&head.status) {
        return Err(Error::provider_status(&head.url, head.status));
    }
    for line in http::Lines::new(body) {
        let asset: Value = serde_json::from_str(&line?)
            .map_err(|e| Error::Provider(format!("{}: a line that is not JSON: {e}", head.url)))?;
        match convert::asset_entity(asset) {
            Some(e) if seen.insert(e["_key"].as_str().unwrap_or_default().to_string()) => {
                out.entity(e)?
            }
            Some(_) => {}
            None => log::warn("skipping an asset without an id", &[]),
        }
    }
    Ok(())
}
