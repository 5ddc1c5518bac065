//! The Kandji API simulator: `GET devices` (offset/limit), `devices/{id}/details` and
//! `devices/{id}/apps` under `/api/v1/`, bearer auth, Kandji's rate-limit headers.
//!
//! Data edge cases the spec lists: devices with no user (`user: ""`), iOS devices without
//! the macOS-only detail sections, apps whose `bundle_id` is `""` or `"No value"` (their
//! `app_id` is per device, so keys collide across devices), one bundle installed twice on
//! one device, users shared by several devices; devices named `""` (as real tenants have:
//! every tenth, from device 6), every other one of them with a `null` serial number too,
//! each with an app whose `app_name` and `process` are `""` ([`NAMELESS_APP_BUNDLE`]).

use crate::rng::Rng;
use crate::server::{Provider, SimRequest, SimResponse, SimServer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const API_PREFIX: &str = "/api/v1/";
/// The bundle id of the app without a name that devices named `""` carry.
pub const NAMELESS_APP_BUNDLE: &str = "io.example.NamelessHelper";

/// Whether device `i` of a generated tenant has an empty `device_name`.
pub fn has_empty_name(i: u64) -> bool {
    i % 10 == 6
}

/// Whether device `i` of a generated tenant has a `null` serial number (and an empty name).
pub fn has_null_serial(i: u64) -> bool {
    i % 20 == 16
}

/// Kandji's largest page.
const MAX_LIMIT: usize = 300;

#[derive(Debug, Clone)]
pub struct KandjiConfig {
    pub seed: u64,
    pub devices: usize,
    pub token: String,
}

impl Default for KandjiConfig {
    fn default() -> Self {
        KandjiConfig {
            seed: 42,
            devices: 250,
            token: "kandji-sim-token".into(),
        }
    }
}

/// The simulated tenant: list items, details and apps by device id.
#[derive(Debug, Clone, Default)]
pub struct KandjiData {
    pub devices: Vec<Value>,
    pub details: HashMap<String, Value>,
    pub apps: HashMap<String, Vec<Value>>,
}

impl KandjiData {
    pub fn generate(seed: u64, count: usize) -> Self {
        let users = (count / 3).max(1) as u64;
        let mut data = KandjiData::default();
        for i in 0..count as u64 {
            data.insert(generate_device(seed, i, users));
        }
        data
    }

    /// Adds (or replaces) a device with its details and apps.
    pub fn insert(&mut self, (device, details, apps): (Value, Value, Vec<Value>)) {
        let id = device["device_id"].as_str().unwrap_or_default().to_string();
        self.devices
            .retain(|d| d["device_id"] != device["device_id"]);
        self.devices.push(device);
        self.details.insert(id.clone(), details);
        self.apps.insert(id, apps);
    }

    /// Removes a device from the list, its details and its apps.
    pub fn remove(&mut self, device_id: &str) {
        self.devices.retain(|d| d["device_id"] != device_id);
        self.details.remove(device_id);
        self.apps.remove(device_id);
    }

    pub fn device_ids(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter_map(|d| d["device_id"].as_str().map(String::from))
            .collect()
    }
}

const MODELS: &[(&str, &str, &str)] = &[
    ("MacBook Pro (16-inch, 2021)", "Mac", "14.4.1"),
    ("MacBook Air (M2, 2022)", "Mac", "14.2"),
    ("iMac (24-inch, M1, 2021)", "Mac", "13.6.3"),
    ("Mac mini (M2, 2023)", "Mac", "14.1"),
    ("iPhone 14", "iPhone", "17.2"),
    ("iPad Pro (11-inch)", "iPad", "17.1"),
    ("Apple TV 4K", "AppleTV", "17.0"),
];

const APPS: &[(&str, &str, &str)] = &[
    ("Safari", "com.apple.Safari", "Apple"),
    ("Google Chrome", "com.google.Chrome", "Identified Developer"),
    ("Slack", "com.tinyspeck.slackmacgap", "App Store"),
    ("Zoom", "us.zoom.xos", "Identified Developer"),
    (
        "1Password 7",
        "com.agilebits.onepassword7",
        "Identified Developer",
    ),
    (
        "Visual Studio Code",
        "com.microsoft.VSCode",
        "Identified Developer",
    ),
    ("Microsoft Word", "com.microsoft.Word", "App Store"),
    ("Keynote", "com.apple.iWork.Keynote", "Apple"),
    ("Xcode", "com.apple.dt.Xcode", "Apple"),
    ("Firefox", "org.mozilla.firefox", "Identified Developer"),
    ("Docker", "com.docker.docker", "Identified Developer"),
    (
        "Kandji Self Service",
        "io.kandji.KandjiSelfService",
        "Identified Developer",
    ),
    ("Legacy Helper", "", "Unknown"),
    ("Printer Utility", "No value", "Unknown"),
];

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman",
];

fn user_object(seed: u64, n: u64) -> Value {
    let mut r = Rng::for_item(seed, "user", n);
    let (first, last) = (*r.pick(FIRST), *r.pick(LAST));
    json!({
        "email": format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), n),
        "name": format!("{first} {last}"),
        "id": 1000 + n,
        "is_archived": r.chance(10),
    })
}

/// A random time in `year`: ISO with `Z` (`python: false`) or Python's
/// `YYYY-MM-DD HH:MM:SS.ffffff+00:00`, the two forms Kandji answers with.
fn timestamp(r: &mut Rng, year: u64, python: bool) -> String {
    let (month, day) = (1 + r.below(12), 1 + r.below(28));
    let (h, m, sec, micros) = (r.below(24), r.below(60), r.below(60), r.below(1_000_000));
    if python {
        format!("{year}-{month:02}-{day:02} {h:02}:{m:02}:{sec:02}.{micros:06}+00:00")
    } else {
        format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{micros:06}Z")
    }
}

fn iso(r: &mut Rng, year: u64) -> String {
    timestamp(r, year, false)
}

fn python_time(r: &mut Rng, year: u64) -> String {
    timestamp(r, year, true)
}

/// Device `i` of tenant `seed`: (list item, details, apps).
pub fn generate_device(seed: u64, i: u64, users: u64) -> (Value, Value, Vec<Value>) {
    let mut r = Rng::for_item(seed, "device", i);
    let id = r.uuid();
    let (model, platform, os) = *r.pick(MODELS);
    let serial = r.alnum(10);
    let user = if i % 5 == 3 {
        json!("")
    } else {
        user_object(seed, r.below(users))
    };
    let name = if has_empty_name(i) {
        String::new()
    } else {
        format!("{}-{:04}", platform.to_lowercase(), i)
    };
    let serial = if has_null_serial(i) {
        Value::Null
    } else {
        json!(serial)
    };
    let device = json!({
        "device_id": id, "device_name": name, "model": model, "serial_number": serial,
        "platform": platform, "os_version": os, "asset_tag": format!("AT-{i:05}"),
        "blueprint_id": format!("bp-{}", r.below(4)), "blueprint_name": "Standard",
        "agent_version": "3.9.1", "last_check_in": iso(&mut r, 2024),
        "first_enrollment": python_time(&mut r, 2022), "last_enrollment": python_time(&mut r, 2023),
        "mdm_enabled": true, "agent_installed": platform == "Mac",
        "is_missing": false, "is_removed": r.chance(3), "user": user,
    });
    let details = generate_details(&mut r, &device);
    let mut apps = generate_apps(&mut r);
    if has_empty_name(i) {
        apps.push(json!({
            "app_id": (apps.len() + 1).to_string(), "app_name": "", "bundle_id": NAMELESS_APP_BUNDLE,
            "bundle_size": "", "app_store_vendable": "", "device_based_vpp": "", "source": "Unknown",
            "process": "", "signature": "", "path": "", "version": "1.0",
            "creation_date": "2023-05-01T00:00:00.000000Z", "modification_date": "2024-05-01T00:00:00.000000Z",
        }));
    }
    (device, details, apps)
}

fn generate_details(r: &mut Rng, d: &Value) -> Value {
    let mac = d["platform"] == "Mac";
    let assigned = d["user"].clone();
    let mut x = json!({
        "general": {
            "device_id": d["device_id"], "device_name": d["device_name"],
            "model": d["model"], "platform": d["platform"], "os_version": d["os_version"],
            "system_version": format!("macOS {}", d["os_version"].as_str().unwrap_or("")),
            "boot_volume": "Macintosh HD", "time_since_boot": format!("{} days", r.below(30)),
            "last_user": "admin", "asset_tag": d["asset_tag"],
            "assigned_user": if assigned.is_object() { assigned } else { json!({}) },
            "blueprint_name": "Standard", "blueprint_uuid": d["blueprint_id"],
        },
        "mdm": {
            "mdm_enabled": "True", "supervised": "True", "install_date": "2022-06-24 14:20:19",
            "last_check_in": d["last_check_in"], "mdm_enabled_user": ["admin"],
        },
        "activation_lock": {
            "bypass_code_failed": false, "user_activation_lock_enabled": false,
            "device_activation_lock_enabled": r.chance(50),
            "activation_lock_allowed_while_supervised": true,
            "activation_lock_supported": null,
        },
        "network": {
            "local_hostname": d["device_name"],
            "mac_address": format!("14:7d:da:{:02x}:{:02x}:{:02x}", r.below(256), r.below(256), r.below(256)),
            "ip_address": format!("10.0.{}.{}", r.below(256), r.below(256)),
            "public_ip": format!("203.0.113.{}", r.below(256)),
        },
        "installed_profiles": [
            { "name": "Wi-Fi", "uuid": r.uuid(), "verified": "verified", "identifier": "io.kandji.wifi",
              "organization": "Acme", "payload_types": ["com.apple.wifi.managed"], "install_date": "2023-01-01 00:00:00" }
        ],
    });
    if mac {
        let extra = json!({
            "filevault": {
                "filevault_enabled": !r.chance(15), "filevault_recoverykey_type": "Personal",
                "filevault_prk_escrowed": true, "filevault_next_rotation": "", "filevault_regen_required": false,
            },
            "kandji_agent": {
                "agent_installed": "True", "install_date": "2022-06-24", "last_check_in": d["last_check_in"],
                "agent_version": d["agent_version"],
            },
            "hardware_overview": {
                "model_name": d["model"], "model_identifier": "Mac14,2", "processor_name": "Apple M2",
                "processor_speed": "", "number_of_processors": "1", "total_number_of_cores": "8",
                "memory": "16 GB", "udid": "redacted", "serial_number": d["serial_number"],
            },
            "volumes": [
                { "name": "Macintosh HD", "format": "APFS", "percent_used": "41%",
                  "identifier": "disk3s1", "capacity": "494.38 GB", "available": "291 GB", "encrypted": "Yes" }
            ],
            "users": {
                "regular_users": [ { "username": "admin", "uid": "501", "path": "/Users/admin", "admin": "Yes", "name": "Admin" } ],
                "system_users": [ { "username": "root", "uid": "0", "path": "/var/root", "admin": "Yes" } ],
            },
        });
        x.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
    }
    x
}

fn generate_apps(r: &mut Rng) -> Vec<Value> {
    let count = 3 + r.below(8) as usize;
    let mut apps = Vec::new();
    let mut picks: Vec<usize> = (0..count)
        .map(|_| r.below(APPS.len() as u64) as usize)
        .collect();
    // One device in five has a bundle installed twice (two versions, two app_ids).
    if r.chance(20) {
        picks.push(picks[0]);
    }
    picks.sort_unstable();
    for (n, pick) in picks.iter().enumerate() {
        let (name, bundle, source) = APPS[*pick];
        apps.push(json!({
            "app_id": (n + 1).to_string(), "app_name": name, "bundle_id": bundle,
            "bundle_size": if bundle.is_empty() { String::new() } else { (1_000_000 + r.below(90_000_000)).to_string() },
            "app_store_vendable": "", "device_based_vpp": "", "source": source,
            "process": name, "signature": "Developer ID Application", "path": format!("/Applications/{name}.app"),
            "version": format!("{}.{}", 1 + r.below(9), r.below(20)),
            "creation_date": iso(r, 2023), "modification_date": iso(r, 2024),
        }));
    }
    apps
}

/// The Kandji provider; its data can be changed between runs.
pub struct KandjiSim {
    pub token: String,
    data: RwLock<KandjiData>,
}

impl KandjiSim {
    pub fn new(config: &KandjiConfig) -> Arc<Self> {
        Arc::new(KandjiSim {
            token: config.token.clone(),
            data: RwLock::new(KandjiData::generate(config.seed, config.devices)),
        })
    }

    pub fn data(&self) -> RwLockReadGuard<'_, KandjiData> {
        self.data.read().unwrap()
    }

    pub fn data_mut(&self) -> RwLockWriteGuard<'_, KandjiData> {
        self.data.write().unwrap()
    }

    /// Starts the simulator; the API URL is `server.origin() + API_PREFIX`.
    pub async fn start(self: &Arc<Self>, port: u16) -> anyhow::Result<SimServer> {
        SimServer::start(self.clone(), port).await
    }

    fn list(&self, req: &SimRequest) -> SimResponse {
        let offset = req
            .query_param("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0usize);
        let limit = req
            .query_param("limit")
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_LIMIT)
            .min(MAX_LIMIT);
        let data = self.data();
        let page: Vec<Value> = data
            .devices
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        SimResponse::json(200, &Value::Array(page))
    }

    fn device(&self, id: &str, what: &str) -> SimResponse {
        let data = self.data();
        let found = match what {
            "details" => data.details.get(id).cloned(),
            "apps" => data
                .apps
                .get(id)
                .map(|apps| json!({ "device_id": id, "apps": apps })),
            _ => None,
        };
        found.map_or_else(not_found, |body| SimResponse::json(200, &body))
    }
}

fn not_found() -> SimResponse {
    SimResponse::json(404, &json!({ "detail": "Not found." }))
}

impl Provider for KandjiSim {
    fn authorized(&self, req: &SimRequest) -> bool {
        req.header("authorization") == Some(&format!("Bearer {}", self.token))
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let Some(rest) = req.path.strip_prefix(API_PREFIX) else {
            return not_found();
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let resp = match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["devices"]) => self.list(req),
            ("GET", ["devices", id, what]) => self.device(id, what),
            _ => not_found(),
        };
        resp.with_header("x-ratelimit-limit-second", "50")
            .with_header("x-ratelimit-limit-hour", "10000")
            .with_header("ratelimit-reset", "1")
    }
}
