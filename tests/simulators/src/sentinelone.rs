//! The SentinelOne API simulator: `/web/api/v2.1/system/info`, `/groups` and `/agents`
//! with cursor pagination (cursors contain `+`, `/` and `=`, so a client that does not
//! percent-encode them gets a 400), `Authorization: ApiToken …` auth.
//!
//! Edge cases from the spec: agents with no `computerName`, `null` tags, tags that set
//! `name`/`owner`/flags, a `licenseKey` (a secret the connector must drop), agents in an
//! unknown group, interfaces with only private addresses, all-zero and gateway MACs,
//! upper-case IPv6 link-local (public by the reference's rule), groups without `type`;
//! agents whose `computerName` is `""` or blank (some with a `null` serial number too) and
//! groups whose `name` is `""` or `null` (see [`agent_name_case`], [`group_name_case`]).

use crate::rng::Rng;
use crate::server::{Provider, SimRequest, SimResponse, SimServer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const API_PREFIX: &str = "/web/api/v2.1";
const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct SentinelOneConfig {
    pub seed: u64,
    pub groups: usize,
    pub agents: usize,
    pub token: String,
}

impl Default for SentinelOneConfig {
    fn default() -> Self {
        SentinelOneConfig {
            seed: 42,
            groups: 120,
            agents: 250,
            token: "s1-sim-token".into(),
        }
    }
}

pub struct SentinelOneSim {
    pub token: String,
    pub groups: Vec<Value>,
    pub agents: Vec<Value>,
    /// When set, every page requested with a cursor answers 404 (a cursor the console no
    /// longer knows); first pages are answered as usual.
    pub cursors_expire: AtomicBool,
}

impl SentinelOneSim {
    pub fn new(c: &SentinelOneConfig) -> Arc<Self> {
        let groups: Vec<Value> = (0..c.groups as u64).map(|i| group(c.seed, i)).collect();
        let ids: Vec<String> = groups
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect();
        let agents = (0..c.agents as u64)
            .map(|i| agent(c.seed, i, &ids))
            .collect();
        Arc::new(SentinelOneSim {
            token: c.token.clone(),
            groups,
            agents,
            cursors_expire: AtomicBool::new(false),
        })
    }

    pub async fn start(self: &Arc<Self>, port: u16) -> anyhow::Result<SimServer> {
        SimServer::start(self.clone(), port).await
    }

    fn page(&self, items: &[Value], req: &SimRequest) -> SimResponse {
        let limit = req
            .query_param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(10usize)
            .clamp(1, MAX_LIMIT);
        if req.query_param("cursor").is_some() && self.cursors_expire.load(Ordering::Relaxed) {
            return SimResponse::json(404, &json!({ "errors": [{ "title": "Not Found" }] }));
        }
        let offset = match req.query_param("cursor") {
            None => 0,
            Some(c) => match decode_cursor(c) {
                Some(o) => o,
                None => {
                    return SimResponse::json(
                        400,
                        &json!({ "errors": [{ "code": 4000010, "title": "Validation Error", "detail": "invalid cursor" }] }),
                    );
                }
            },
        };
        let end = (offset + limit).min(items.len());
        let next = (end < items.len()).then(|| encode_cursor(end));
        SimResponse::json(
            200,
            &json!({
                "data": &items[offset.min(items.len())..end],
                "errors": null,
                "pagination": { "totalItems": items.len(), "nextCursor": next },
            }),
        )
    }
}

/// Opaque-looking cursors with the characters base64 uses: `+`, `/` and `=`.
pub fn encode_cursor(offset: usize) -> String {
    format!("YXJn+{offset}/b2Zmc2V0==")
}

fn decode_cursor(c: &str) -> Option<usize> {
    c.strip_prefix("YXJn+")?
        .strip_suffix("/b2Zmc2V0==")?
        .parse()
        .ok()
}

fn iso(r: &mut Rng, year: u64) -> String {
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.below(1_000_000)
    )
}

fn numeric_id(r: &mut Rng) -> String {
    format!(
        "{}",
        1_000_000_000_000_000_000u64 + r.below(8_000_000_000_000_000_000)
    )
}

/// How agent `i`'s `computerName` and `serialNumber` are left empty: `None` for a normal
/// agent, else (computerName, serialNumber) to put in place of the generated ones
/// (`None` keeps the generated value).
pub fn agent_name_case(i: u64) -> Option<(Value, Option<Value>)> {
    match i % 19 {
        4 => Some((Value::Null, None)),
        9 if i % 38 == 28 => Some((json!(""), Some(Value::Null))),
        9 => Some((json!(""), None)),
        14 => Some((json!("   "), None)),
        _ => None,
    }
}

/// Group `i`'s `name` when it is left empty: `""`, or `null` for every other one.
pub fn group_name_case(i: u64) -> Option<Value> {
    match i % 13 {
        8 if i % 26 == 21 => Some(Value::Null),
        8 => Some(json!("")),
        _ => None,
    }
}

fn group(seed: u64, i: u64) -> Value {
    let mut r = Rng::for_item(seed, "s1-group", i);
    let kinds = ["static", "dynamic", "pinned"];
    let mut g = json!({
        "id": numeric_id(&mut r), "name": format!("Group {i:03}"), "type": *r.pick(&kinds),
        "siteId": "225494730938493804", "isDefault": i == 0, "inherits": r.chance(50),
        "rank": if r.chance(50) { json!(r.below(10)) } else { Value::Null },
        "totalAgents": r.below(40), "filterId": null, "filterName": null,
        "creator": "Jane Admin", "creatorId": "1150418462123456789",
        "createdAt": iso(&mut r, 2021), "updatedAt": iso(&mut r, 2024),
        "registrationToken": format!("regtoken-{}", r.alnum(24)),
    });
    if i % 17 == 5 {
        g.as_object_mut().unwrap().remove("type");
    }
    if let Some(name) = group_name_case(i) {
        g["name"] = name;
    }
    g
}

fn mac(r: &mut Rng) -> String {
    (0..6)
        .map(|_| format!("{:02x}", r.below(256)))
        .collect::<Vec<_>>()
        .join(":")
}

fn interfaces(r: &mut Rng, i: u64) -> Value {
    let public = json!({ "id": "1", "name": "en0", "physical": mac(r),
        "inet": [format!("10.0.{}.{}", r.below(256), r.below(256))],
        "inet6": [format!("2606:4700:{:x}::{:x}", r.below(65536), r.below(65536))],
        "gatewayIp": "10.0.0.1", "gatewayMacAddress": mac(r) });
    let private = json!({ "id": "2", "name": "en1", "physical": mac(r),
        "inet": [format!("192.168.{}.{}", r.below(256), r.below(256))], "inet6": ["fe80::1"] });
    let zero = json!({ "id": "3", "name": "lo0", "physical": "00:00:00:00:00:00", "inet": ["8.8.8.8"], "inet6": [] });
    let upper = json!({ "id": "4", "name": "utun0", "physical": mac(r), "inet": [], "inet6": ["FE80::abcd"] });
    match i % 4 {
        0 => json!([public, private]),
        1 => json!([private]),
        2 => json!([zero, public]),
        _ => json!([upper]),
    }
}

fn tags(r: &mut Rng, i: u64) -> Value {
    match i % 5 {
        0 => Value::Null,
        1 => json!({ "sentinelone": [] }),
        2 => json!({ "sentinelone": [
            { "id": "1", "key": "owner", "value": format!("Owner.{i}@Example.com"), "assignedAt": "2024-01-01T00:00:00Z", "assignedBy": "admin", "assignedById": "9" },
            { "id": "2", "key": "department", "value": "Engineering", "assignedAt": "2024-01-01T00:00:00Z", "assignedBy": "admin", "assignedById": "9" },
        ]}),
        3 => json!({ "sentinelone": [
            { "id": "3", "key": "name", "value": format!("tagged-host-{i}") },
            { "id": "4", "key": "critical", "value": "true" },
            { "id": "5", "key": "priority", "value": format!("{}", r.below(5)) },
            { "id": "6", "key": "flag", "value": "" },
        ]}),
        _ => json!({}),
    }
}

fn agent(seed: u64, i: u64, groups: &[String]) -> Value {
    let mut r = Rng::for_item(seed, "s1-agent", i);
    let group_id = if i % 23 == 7 {
        "999999999999999999".to_string()
    } else {
        r.pick(groups).clone()
    };
    let os = *r.pick(&["macos", "windows", "linux"]);
    let name = json!(format!("HOST-{i:05}"));
    let mut a = json!({
        "id": numeric_id(&mut r), "uuid": format!("{:040x}", r.next_u64() as u128 * 7919),
        "computerName": name, "domain": "WORKGROUP", "serialNumber": r.alnum(12), "modelName": "MacBookPro18,3",
        "machineType": *r.pick(&["laptop", "desktop", "server"]),
        "siteId": "225494730938493804", "siteName": "Default site", "groupId": group_id, "groupName": "Group", "groupIp": "31.155.5.x",
        "osName": format!("{os} 14"), "osType": os, "osArch": "64 bit", "osRevision": "23E224", "osUsername": null,
        "agentVersion": "23.4.2.14", "networkStatus": *r.pick(&["connected", "disconnected"]),
        "mitigationMode": "protect", "mitigationModeSuspicious": "detect", "scanStatus": "finished",
        "appsVulnerabilityStatus": "up_to_date", "consoleMigrationStatus": "N/A", "externalIp": "31.155.5.7",
        "lastLoggedInUserName": "john", "cpuId": "Apple M1 Pro", "adComputerDistinguishedName": null,
        "isActive": r.chance(80), "isDecommissioned": false, "isPendingUninstall": false, "isUninstalled": false,
        "isUpToDate": true, "infected": r.chance(5), "allowRemoteShell": false, "inRemoteShellSession": false,
        "encryptedApplications": true, "activeThreats": r.below(3), "coreCount": 8, "cpuCount": 1, "totalMemory": 16384,
        "createdAt": iso(&mut r, 2023), "updatedAt": iso(&mut r, 2024), "registeredAt": iso(&mut r, 2023),
        "lastActiveDate": if i % 11 == 3 { Value::Null } else { json!(iso(&mut r, 2024)) },
        "osStartTime": "2024-05-13T07:55:12Z", "policyUpdatedAt": null, "groupUpdatedAt": null,
        "scanStartedAt": iso(&mut r, 2023), "scanFinishedAt": iso(&mut r, 2023), "scanAbortedAt": null,
        "missingPermissions": [], "licenseKey": format!("LICENSE-{}", r.alnum(20)),
        "networkInterfaces": interfaces(&mut r, i), "tags": tags(&mut r, i),
        "activeDirectory": { "computerDistinguishedName": null }, "userActionsNeeded": [],
    });
    if let Some((name, serial)) = agent_name_case(i) {
        a["computerName"] = name;
        if let Some(serial) = serial {
            a["serialNumber"] = serial;
        }
    }
    a
}

impl Provider for SentinelOneSim {
    fn authorized(&self, req: &SimRequest) -> bool {
        req.header("authorization") == Some(&format!("ApiToken {}", self.token))
    }

    fn unauthorized(&self) -> SimResponse {
        SimResponse::json(
            401,
            &json!({ "errors": [{ "code": 4010010, "title": "Authentication Failed" }] }),
        )
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let Some(rest) = req.path.strip_prefix(API_PREFIX) else {
            return SimResponse::json(404, &json!({ "errors": [{ "title": "Not Found" }] }));
        };
        match (req.method.as_str(), rest) {
            ("GET", "/system/info") => SimResponse::json(
                200,
                &json!({ "data": { "build": "sim", "release": "23.4" } }),
            ),
            ("GET", "/groups") => self.page(&self.groups, req),
            ("GET", "/agents") => self.page(&self.agents, req),
            _ => SimResponse::json(404, &json!({ "errors": [{ "title": "Not Found" }] })),
        }
    }
}
