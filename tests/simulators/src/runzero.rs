//! The runZero API simulator under `/api/v1.0`: `/account/orgs|users|sites` (account API
//! key), `/export/org/assets.jsonl` and `/export/org/sites.json` (an organization's export
//! token, which `/account/orgs` hands out), bearer auth answering runZero's 401 body.
//!
//! Edge cases from the spec: an organization without an export token, a site of an
//! unknown organization, an asset of an unknown site, users whose `org_roles` name an
//! unknown organization or are empty (client admins), assets without names, with tags,
//! never seen (`last_seen: 0`) or without MACs, epoch-second times; records whose name
//! fields are `""`, blank or `null`: organization 1, sites `…01`, users with neither
//! first nor last name (some without an email), assets with no usable `names` or `hw`
//! (some without addresses, or MACs, too); one asset per site whose tags break the host's
//! property rules (`expiresOn: "never"`, 5,000-character `note` and `name`). The asset
//! export honours `fields`.

use crate::rng::Rng;
use crate::server::{Provider, SimRequest, SimResponse, SimServer};
use serde_json::{Value, json};
use std::sync::Arc;

pub const API_PREFIX: &str = "/api/v1.0";

#[derive(Debug, Clone)]
pub struct RunZeroConfig {
    pub seed: u64,
    pub orgs: usize,
    pub sites_per_org: usize,
    pub users: usize,
    pub assets_per_site: usize,
    pub account_key: String,
}

impl Default for RunZeroConfig {
    fn default() -> Self {
        RunZeroConfig {
            seed: 42,
            orgs: 3,
            sites_per_org: 2,
            users: 40,
            assets_per_site: 60,
            account_key: "rz-account-key".into(),
        }
    }
}

pub struct RunZeroSim {
    pub account_key: String,
    pub client_id: String,
    pub orgs: Vec<Value>,
    pub users: Vec<Value>,
    pub sites: Vec<Value>,
    pub assets: Vec<Value>,
}

fn epoch(r: &mut Rng) -> u64 {
    1_640_000_000 + r.below(60_000_000)
}

impl RunZeroSim {
    pub fn new(c: &RunZeroConfig) -> Arc<Self> {
        let mut r = Rng::for_item(c.seed, "rz-client", 0);
        let client_id = r.uuid();
        let orgs: Vec<Value> = (0..c.orgs as u64)
            .map(|i| org(c.seed, i, &client_id))
            .collect();
        let org_ids: Vec<String> = orgs
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        let mut sites = Vec::new();
        for (n, org_id) in org_ids.iter().enumerate() {
            for s in 0..c.sites_per_org as u64 {
                sites.push(site(c.seed, n as u64 * 100 + s, &client_id, org_id));
            }
        }
        // A site whose organization the account does not list.
        sites.push(site(
            c.seed,
            9_999,
            &client_id,
            "00000000-dead-4000-8000-000000000000",
        ));
        let users = (0..c.users as u64)
            .map(|i| user(c.seed, i, &client_id, &org_ids))
            .collect();
        let mut assets = Vec::new();
        for (n, s) in sites
            .iter()
            .enumerate()
            .filter(|(_, s)| org_ids.iter().any(|o| s["organization_id"] == *o))
        {
            for a in 0..c.assets_per_site as u64 {
                assets.push(asset(c.seed, n as u64 * 10_000 + a, s));
            }
        }
        // An asset of a site that does not exist.
        let mut orphan = asset(c.seed, 99_999, &sites[0]);
        orphan["site_id"] = json!("00000000-beef-4000-8000-000000000000");
        assets.push(orphan);
        Arc::new(RunZeroSim {
            account_key: c.account_key.clone(),
            client_id,
            orgs,
            users,
            sites,
            assets,
        })
    }

    pub async fn start(self: &Arc<Self>, port: u16) -> anyhow::Result<SimServer> {
        SimServer::start(self.clone(), port).await
    }

    /// The organization whose export token this request carries.
    fn org_of(&self, req: &SimRequest) -> Option<&Value> {
        let token = req.header("authorization")?.strip_prefix("Bearer ")?;
        self.orgs.iter().find(|o| {
            o["export_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty() && t == token)
        })
    }

    /// The org's assets as JSONL; with `fields` (comma-separated), only those fields of
    /// each asset, as runZero's export gives them.
    fn export_assets(&self, org: &Value, fields: Option<&str>) -> SimResponse {
        let wanted: Option<Vec<&str>> = fields.map(|f| f.split(',').map(str::trim).collect());
        let only = |a: &Value| match (&wanted, a.as_object()) {
            (Some(w), Some(m)) => Value::Object(
                m.iter()
                    .filter(|(k, _)| w.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => a.clone(),
        };
        let lines: String = self
            .assets
            .iter()
            .filter(|a| a["organization_id"] == org["id"])
            .map(|a| format!("{}\n", only(a)))
            .collect();
        let mut resp = SimResponse::json(200, &Value::Null);
        resp.headers = vec![("content-type".into(), "application/x-ndjson".into())];
        resp.body = lines.into_bytes();
        resp
    }
}

fn org(seed: u64, i: u64, client_id: &str) -> Value {
    let mut r = Rng::for_item(seed, "rz-org", i);
    let id = r.uuid();
    let token = if i == 2 {
        String::new()
    } else {
        format!("ET{}", r.alnum(30))
    };
    let mut o = json!({
        "id": id, "created_at": epoch(&mut r), "created_by": "first.last@example.com", "updated_at": epoch(&mut r),
        "client_id": client_id, "download_token": format!("DT{}", r.alnum(30)), "download_token_created_at": epoch(&mut r),
        "demo": false, "project": i == 1, "parent_id": if i == 0 { "00000000-0000-0000-0000-000000000000".to_string() } else { r.uuid() },
        "name": format!("Org {i}"), "description": if i == 1 { Value::Null } else { json!("") },
        "inactive": false, "deactivated_at": 0, "service_count": r.below(500), "service_count_tcp": 10, "service_count_udp": 5,
        "service_count_arp": 3, "service_count_icmp": 2, "asset_count": r.below(500), "live_asset_count": 10, "recent_asset_count": 10,
        "software_count": 0, "vulnerability_count": 0, "export_token": token, "export_token_created_at": if i == 2 { 0 } else { epoch(&mut r) },
        "export_token_last_used_at": 0, "export_token_last_used_by": "", "export_token_counter": 0,
        "expiration_assets_stale": 365, "expiration_assets_offline": 365, "expiration_scans": 365, "expiration_warning_last_sent": 0,
    });
    if i == 1 {
        o["name"] = json!("");
    }
    o
}

fn site(seed: u64, i: u64, client_id: &str, org_id: &str) -> Value {
    let mut r = Rng::for_item(seed, "rz-site", i);
    let mut s = json!({
        "id": r.uuid(), "created_at": epoch(&mut r), "updated_at": epoch(&mut r), "client_id": client_id, "organization_id": org_id,
        "name": format!("Site {i}"), "description": if i.is_multiple_of(2) { json!("") } else { Value::Null }, "scope": "10.0.0.0/24",
        "excludes": "", "inactive": false, "deactivated_at": 0, "service_count": 0, "service_count_tcp": 0, "service_count_udp": 0,
        "service_count_arp": 0, "service_count_icmp": 0, "asset_count": 0, "live_asset_count": 0, "recent_asset_count": 0,
        "software_count": 0, "vulnerability_count": 0, "subnets": { "10.0.0.0/24": { "description": "office" } },
        "asset_address_count": 0, "asset_address_extra_count": 0, "last_task_id": Value::Null, "last_task_at": 0,
        "last_task_by": Value::Null, "last_task_duration": 0,
    });
    if i % 100 == 1 {
        s["name"] = if (i / 100).is_multiple_of(2) {
            json!("")
        } else {
            Value::Null
        };
    }
    s
}

fn user(seed: u64, i: u64, client_id: &str, orgs: &[String]) -> Value {
    let mut r = Rng::for_item(seed, "rz-user", i);
    let roles = match i % 5 {
        0 => json!({}),
        1 => json!({ orgs[0].clone(): "admin", orgs[1 % orgs.len()].clone(): "none" }),
        2 => json!({ orgs[0].clone(): "viewer", "00000000-cafe-4000-8000-000000000000": "user" }),
        _ => json!({ orgs[(i as usize) % orgs.len()].clone(): "user" }),
    };
    let mut u = json!({
        "id": r.uuid(), "client_id": client_id, "created_at": epoch(&mut r), "updated_at": epoch(&mut r),
        "name": format!("User {i}"), "first_name": if i % 7 == 3 { Value::Null } else { json!(format!("First{i}")) },
        "last_name": format!("Last{i}"), "email": format!("user{i}@example.com"), "client_admin": i.is_multiple_of(5),
        "org_default_role": if i.is_multiple_of(3) { "admin" } else { "viewer" }, "org_roles": roles,
        "reset_token_expiration": 0, "invite_token_expiration": 0, "last_login_ip": "203.0.113.9", "last_login_at": epoch(&mut r),
        "last_login_ua": Value::Null, "last_activity_at": epoch(&mut r), "sso_only": false, "login_failures": 0,
        "actions": r.below(1000), "last_action_at": epoch(&mut r), "sso_group_mappings": [],
    });
    // No usable first or last name; every other one without an email either.
    if i % 11 == 6 {
        u["first_name"] = json!("");
        u["last_name"] = json!("  ");
        if i % 22 == 17 {
            u["email"] = Value::Null;
        }
    }
    u
}

fn asset(seed: u64, i: u64, site: &Value) -> Value {
    let mut r = Rng::for_item(seed, "rz-asset", i);
    let (os, vendor, product, version) = *r.pick(&[
        ("Ubuntu Linux 20.04", "Ubuntu", "Linux", "20.04"),
        ("Microsoft Windows 10", "Microsoft", "Windows", "10"),
        (
            "Microsoft Windows Server 2012 R2",
            "Microsoft",
            "Windows Server",
            "2012 R2",
        ),
        ("Apple macOS", "Apple", "macOS", "14.1"),
        ("", "", "", ""),
    ]);
    // Windows desktops on a spread of builds, so "which assets run an old build" has
    // an answer.
    let (os, version) = match product {
        "Windows" => {
            let build = [19041, 19044, 19045, 22631][i as usize % 4];
            let name = if build >= 22000 {
                "Microsoft Windows 11"
            } else {
                os
            };
            (name, format!("10.0.{build}"))
        }
        _ => (os, version.to_string()),
    };
    let tags = match i % 6 {
        0 => {
            json!({ "owner": "Alice@Example.com", "critical": "true", "name": format!("tagged-{i}") })
        }
        1 => json!({ "env": "prod", "rack": "12", "weight": "1.5", "flag": "" }),
        // One asset per site with tags the host would reject as properties: a `…On` key
        // whose value is no epoch-ms time, over-long values, an over-long `name`.
        _ if i % 10_000 == 3 => json!({
            "expiresOn": "never", "reviewedOn": "1700000000000", "note": "n".repeat(5000),
            "name": "x".repeat(5000), "env": "lab",
        }),
        _ => json!({}),
    };
    let mut a = json!({
        "id": r.uuid(), "created_at": epoch(&mut r), "updated_at": epoch(&mut r),
        "organization_id": site["organization_id"], "site_id": site["id"], "alive": r.chance(80),
        "first_seen": epoch(&mut r), "last_seen": if i % 9 == 4 { 0 } else { epoch(&mut r) },
        "detected_by": "arp", "type": *r.pick(&["Server", "Desktop", "Laptop", "Router"]),
        "os": os, "os_vendor": vendor, "os_product": product, "os_version": version,
        "hw": if i % 4 == 1 { json!("Dell PowerEdge R640") } else { json!("") }, "hw_vendor": "Dell", "hw_product": "PowerEdge", "hw_version": "",
        "addresses": [format!("10.0.{}.{}", r.below(256), r.below(256))], "addresses_extra": [],
        "macs": if i % 5 == 2 { json!([]) } else { json!([format!("a0:36:9f:{:02x}:{:02x}:{:02x}", r.below(256), r.below(256), r.below(256))]) },
        "mac_vendors": ["Intel Corporate"], "names": if i % 4 == 1 { json!([]) } else { json!([format!("HOST-{i}")]) },
        "domains": [], "tags": tags,
        "services": { "10.0.0.1/80/tcp/": { "protocol": "http", "http.body": "<html>secret page</html>" } },
        "credentials": {}, "rtts": {}, "attributes": {}, "foreign_attributes": {}, "subnets": {},
        "service_count": 1, "software_count": 0, "vulnerability_count": 0, "lowest_ttl": 64, "lowest_rtt": 1000,
        "last_agent_id": "", "last_task_id": r.uuid(), "newest_mac": "a0:36:9f:50:77:d8", "newest_mac_vendor": "Intel Corporate",
        "newest_mac_age": 1_580_000_000_000_000_000u64, "service_ports_tcp": ["80"], "service_ports_udp": [],
        "service_protocols": ["http"], "service_products": [], "scanned": true, "source_ids": [1], "sources": ["runZero"],
        "eol_os": 0, "eol_os_ext": 0, "outlier_score": 0, "outlier_raw": 0, "org_name": "Org", "site_name": site["name"],
        "agent_name": Value::Null, "agent_external_ip": Value::Null, "hosted_zone_name": Value::Null,
    });
    // Nothing to name it by but its addresses; then its MACs; then its id alone.
    if i % 8 == 5 {
        a["names"] = json!([""]);
        a["hw"] = json!(" ");
        if i % 24 == 13 {
            a["addresses"] = json!([]);
            if i % 48 == 37 {
                a["macs"] = json!([]);
            }
        }
    }
    a
}

impl Provider for RunZeroSim {
    fn authorized(&self, req: &SimRequest) -> bool {
        let path = req.path.strip_prefix(API_PREFIX).unwrap_or(&req.path);
        if path.starts_with("/account/") {
            req.header("authorization") == Some(&format!("Bearer {}", self.account_key))
        } else {
            self.org_of(req).is_some()
        }
    }

    fn unauthorized(&self) -> SimResponse {
        SimResponse::json(
            401,
            &json!({
                "provided_token_type": "", "possible_token_types": ["client", "organization", "export"],
                "error": "token is undefined or invalid: not authorized",
            }),
        )
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let path = req.path.strip_prefix(API_PREFIX).unwrap_or("");
        let usage = |r: SimResponse| r.with_header("x-api-usage-limit", "5000");
        match path {
            "/account/orgs" => usage(SimResponse::json(200, &json!(self.orgs))),
            "/account/users" => usage(SimResponse::json(200, &json!(self.users))),
            "/account/sites" => usage(SimResponse::json(200, &json!(self.sites))),
            "/export/org/assets.jsonl" => self.org_of(req).map_or_else(
                || self.unauthorized(),
                |o| self.export_assets(o, req.query_param("fields")),
            ),
            "/export/org/sites.json" => match self.org_of(req) {
                Some(o) => {
                    let sites: Vec<&Value> = self
                        .sites
                        .iter()
                        .filter(|s| s["organization_id"] == o["id"])
                        .collect();
                    SimResponse::json(200, &json!(sites))
                }
                None => self.unauthorized(),
            },
            _ => SimResponse::json(404, &json!({ "error": "not found" })),
        }
    }
}
