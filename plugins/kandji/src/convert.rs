//! Kandji API objects to JupiterOne entities and relationships.
//!
//! Pure functions over `serde_json::Value`, unit-tested natively. The property mapping
//! is the reference integration's (graph-kandji at 59fe2a8); see this crate's README for
//! where this port deviates.

use corral_sdk::entity::{End, EntityBuilder, Object, Properties, RelationshipBuilder};
use corral_sdk::props::{allowed as scalar, first_readable, pluck, readable};
use corral_sdk::standard::{self, Addresses};
use corral_sdk::time::parse_epoch_ms;
use serde_json::{Value, json};

pub const ACCOUNT_TYPE: &str = "kandji_account";
pub const DEVICE_TYPE: &str = "kandji_device";
pub const APP_TYPE: &str = "kandji_app";
pub const USER_TYPE: &str = "kandji_user";
pub const ACCOUNT_KEY: &str = "kandji-account";
/// The account's `vendor` (the data model's `Account` requires one).
pub const VENDOR: &str = "Kandji";

pub fn account_entity() -> Object {
    let source = json!({ "id": ACCOUNT_KEY, "name": "Kandji Account" });
    EntityBuilder::new(ACCOUNT_KEY, ACCOUNT_TYPE, "Account")
        .prop("id", ACCOUNT_KEY)
        .prop("name", "Kandji Account")
        .prop("displayName", "Kandji Account")
        .prop("vendor", VENDOR)
        .raw_data(source)
        .build()
}

/// The name a person can recognise a device by: its `device_name`, else its serial
/// number, else its device id (real tenants have devices named `""`; the host would
/// reject a device without a name, and its relationships with it).
pub fn device_name(d: &Value, id: &str) -> String {
    first_readable(d, &["device_name", "serial_number"]).unwrap_or_else(|| id.to_string())
}

/// A device from its list item `d` and its details (moved into its `_rawData`).
pub fn device_entity(d: &Value, details: Value) -> Result<Object, String> {
    let id = readable(d.get("device_id")).ok_or("device without a device_id")?;
    let x = &details;
    let id = id.as_str();
    let platform = str_of(d, "platform");
    let user = d.get("user").filter(|u| u.is_object());
    let user_field = |f: &str| user.and_then(|u| u.get(f)).cloned().unwrap_or(Value::Null);

    let mut e = EntityBuilder::new(id, DEVICE_TYPE, "Device")
        .prop("id", id)
        .prop("deviceId", standard::string_list([id]))
        .prop("name", device_name(d, id))
        .prop("make", "Apple Inc.")
        .prop("model", text_or_null(d.get("model")))
        .prop("serial", text_or_null(d.get("serial_number")))
        .opt("serialNumber", scalar(d.get("serial_number")))
        .prop("category", text_or_null(d.get("platform")))
        .prop(
            "platform",
            if platform == Some("Mac") {
                "darwin"
            } else {
                "ios"
            },
        )
        .prop("osVersion", text_or_null(d.get("os_version")))
        .opt(
            "encrypted",
            at(x, &["filevault", "filevault_enabled"])
                .filter(|v| v.is_boolean())
                .cloned(),
        )
        .opt("lastCheckinOn", time_of(d, "last_check_in"))
        .prop("lastSeenOn", standard::or_null(time_of(d, "last_check_in")))
        .prop("user.id", user_field("id"))
        .prop("user.name", user_field("name"))
        .prop("user.email", user_field("email"))
        .prop("user.isArchived", user_field("is_archived"))
        .opt("firstEnrollmentOn", time_of(d, "first_enrollment"))
        .opt("lastEnrollmentOn", time_of(d, "last_enrollment"));

    for (prop, field) in LIST_FIELDS {
        e = e.opt(prop, scalar(d.get(*field)));
    }
    // `Device.assetTag` is a list in the data model.
    e = e.opt("assetTag", readable(d.get("asset_tag")).map(|t| json!([t])));
    for (prop, value) in os_properties(d, x) {
        e = e.prop(prop, value);
    }
    for (prop, value) in network_properties(x) {
        e = e.prop(prop, value);
    }
    for (section, fields) in DETAIL_SECTIONS {
        // Each section looked up once, not once per field.
        let section = x.get(*section);
        for (prop, field) in *fields {
            e = e.opt(prop, scalar(section.and_then(|s| s.get(*field))));
        }
    }
    let assigned = at(x, &["general", "assigned_user"]);
    for (prop, field) in ASSIGNED_USER_FIELDS {
        e = e.opt(prop, scalar(assigned.and_then(|u| u.get(*field))));
    }
    let mac = scalar(at(x, &["network", "mac_address"]));
    e = e
        .opt("macAddress", mac.clone())
        .opt("network.macAddress", mac)
        .opt("volumes", pluck(at(x, &["volumes"]), "identifier"))
        .opt(
            "users.regularUsers",
            pluck(at(x, &["users", "regular_users"]), "uid"),
        )
        .opt(
            "users.systemUsers",
            pluck(at(x, &["users", "system_users"]), "uid"),
        )
        .opt(
            "installedProfiles",
            pluck(at(x, &["installed_profiles"]), "uuid"),
        );
    Ok(e.raw_data(merge(d, details)).build())
}

/// A string, else `null` (a required `Device` property typed `string | null`).
fn text_or_null(v: Option<&Value>) -> Value {
    v.filter(|v| v.is_string()).cloned().unwrap_or(Value::Null)
}

/// The Apple operating system a Kandji `platform` runs.
fn os_name(platform: &str) -> Option<&'static str> {
    match platform {
        "Mac" => Some("macOS"),
        "iPhone" | "iPod" => Some("iOS"),
        "iPad" => Some("iPadOS"),
        "AppleTV" => Some("tvOS"),
        "AppleVision" | "Vision" => Some("visionOS"),
        _ => None,
    }
}

/// `osName`, `osType` and `osDetails`, from the `platform`, `os_version` and the details'
/// `general.system_version` (`"12.0.1 (21A559)"`): `macOS 12.0.1 (21A559)`; `null` each
/// where the device says nothing.
fn os_properties(d: &Value, x: &Value) -> [(&'static str, Value); 3] {
    let name = str_of(d, "platform").and_then(os_name);
    let kind = name.and_then(standard::os_type);
    let version =
        readable(at(x, &["general", "system_version"])).or_else(|| readable(d.get("os_version")));
    let details = match (name, version) {
        (Some(n), Some(v)) if v.starts_with(n) => Some(v),
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (Some(n), None) => Some(n.to_string()),
        (None, v) => v,
    };
    [
        ("osName", standard::or_null(name)),
        ("osType", standard::or_null(kind)),
        ("osDetails", standard::or_null(details)),
    ]
}

/// The addresses, MAC, host name and FQDN the `Device` schema requires, from the details'
/// `network` section: `ip_address` and `public_ip` sorted into the address lists,
/// `mac_address` as `macAddresses`, `local_hostname` as `hostname`; `fqdn` is `null`
/// (Kandji reports none). `null` where the section or the field is missing or unusable.
fn network_properties(x: &Value) -> Vec<(&'static str, Value)> {
    let net = |f: &str| at(x, &["network", f]).and_then(Value::as_str);
    let mut addresses = Addresses::default();
    for f in ["ip_address", "public_ip"] {
        if let Some(ip) = net(f) {
            addresses.add(ip);
        }
    }
    let macs = standard::mac_addresses(net("mac_address"));
    let mut out: Vec<(&'static str, Value)> = addresses.properties().into();
    out.push(("macAddresses", standard::string_list(macs)));
    out.push((
        "hostname",
        standard::or_null(net("local_hostname").and_then(standard::hostname)),
    ));
    out.push(("fqdn", Value::Null));
    out
}

/// Device list fields copied unchanged: (property, field).
const LIST_FIELDS: &[(&str, &str)] = &[
    ("blueprintId", "blueprint_id"),
    ("blueprintName", "blueprint_name"),
    ("mdmEnabled", "mdm_enabled"),
    ("agentInstalled", "agent_installed"),
    ("isMissing", "is_missing"),
    ("isRemoved", "is_removed"),
    ("agentVersion", "agent_version"),
];

/// Detail sections: (section, [(full property name, field)]); a property is named
/// `<section in camel case>.<field in camel case>`, spelled out so that no name is built
/// per device.
const DETAIL_SECTIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "general",
        &[
            ("general.systemVersion", "system_version"),
            ("general.bootVolume", "boot_volume"),
            ("general.timeSinceBoot", "time_since_boot"),
            ("general.lastUser", "last_user"),
            ("general.blueprintName", "blueprint_name"),
            ("general.blueprintUuid", "blueprint_uuid"),
        ],
    ),
    (
        "mdm",
        &[
            ("mdm.mdmEnabled", "mdm_enabled"),
            ("mdm.installDate", "install_date"),
            ("mdm.lastCheckIn", "last_check_in"),
            ("mdm.mdmEnabledUser", "mdm_enabled_user"),
        ],
    ),
    (
        "activation_lock",
        &[
            ("activationLock.bypassCodeFailed", "bypass_code_failed"),
            (
                "activationLock.userActivationLockEnabled",
                "user_activation_lock_enabled",
            ),
            (
                "activationLock.deviceActivationLockEnabled",
                "device_activation_lock_enabled",
            ),
            (
                "activationLock.activationLockAllowedWhileSupervised",
                "activation_lock_allowed_while_supervised",
            ),
            (
                "activationLock.activationLockSupported",
                "activation_lock_supported",
            ),
        ],
    ),
    (
        "filevault",
        &[
            ("filevault.filevaultEnabled", "filevault_enabled"),
            (
                "filevault.filevaultRecoverykeyType",
                "filevault_recoverykey_type",
            ),
            ("filevault.filevaultPrkEscrowed", "filevault_prk_escrowed"),
            ("filevault.filevaultNextRotation", "filevault_next_rotation"),
            (
                "filevault.filevaultRegenRequired",
                "filevault_regen_required",
            ),
        ],
    ),
    (
        "kandji_agent",
        &[
            ("kandjiAgent.agentInstalled", "agent_installed"),
            ("kandjiAgent.installDate", "install_date"),
            ("kandjiAgent.lastCheckIn", "last_check_in"),
            ("kandjiAgent.agentVersion", "agent_version"),
        ],
    ),
    (
        "hardware_overview",
        &[
            ("hardwareOverview.modelName", "model_name"),
            ("hardwareOverview.modelIdentifier", "model_identifier"),
            ("hardwareOverview.processorName", "processor_name"),
            ("hardwareOverview.processorSpeed", "processor_speed"),
            (
                "hardwareOverview.numberOfProcessors",
                "number_of_processors",
            ),
            (
                "hardwareOverview.totalNumberOfCores",
                "total_number_of_cores",
            ),
            ("hardwareOverview.memory", "memory"),
        ],
    ),
    (
        "network",
        &[
            ("network.localHostname", "local_hostname"),
            ("network.ipAddress", "ip_address"),
            ("network.publicIp", "public_ip"),
        ],
    ),
];

/// The `general.assignedUser*` properties read a nested object one level further down.
const ASSIGNED_USER_FIELDS: &[(&str, &str)] = &[
    ("general.assignedUserId", "id"),
    ("general.assignedUserName", "name"),
    ("general.assignedUserEmail", "email"),
    ("general.assignedUserIsArchived", "is_archived"),
];

pub fn account_device_relationship(device_key: &str) -> Object {
    RelationshipBuilder::direct(
        "HAS",
        End {
            key: ACCOUNT_KEY,
            entity_type: ACCOUNT_TYPE,
        },
        End {
            key: device_key,
            entity_type: DEVICE_TYPE,
        },
    )
    .build()
}

/// The app's bundle id, unless it is empty, blank, `"No value"` or missing.
fn bundle_id(app: &Value) -> Option<String> {
    readable(app.get("bundle_id")).filter(|b| b != "No value")
}

/// The app's key id: its bundle id, or its `app_id` when the bundle id is empty,
/// `"No value"` or missing. `None` when it has neither (no key to give it that could
/// not collide with another app's).
pub fn app_key_id(app: &Value) -> Option<String> {
    bundle_id(app).or_else(|| readable(app.get("app_id")))
}

pub fn app_key(app: &Value) -> Option<String> {
    app_key_id(app).map(|id| app_key_of(&id))
}

fn app_key_of(key_id: &str) -> String {
    format!("kandji_app:{key_id}")
}

/// The app's name: `app_name`, else its process name, else its bundle id, else its
/// path, else its key id.
pub fn app_name(app: &Value) -> Option<String> {
    first_readable(app, &["app_name", "process"])
        .or_else(|| bundle_id(app))
        .or_else(|| readable(app.get("path")))
        .or_else(|| app_key_id(app))
}

pub fn app_entity(app: &Value) -> Option<Object> {
    let key = app_key(app)?;
    Some(
        EntityBuilder::new(key, APP_TYPE, "Application")
            .opt("name", app_name(app))
            .opt("bundleId", scalar(app.get("bundle_id")))
            .opt("appStoreVendable", scalar(app.get("app_store_vendable")))
            .opt("deviceBasedVpp", scalar(app.get("device_based_vpp")))
            .opt("source", scalar(app.get("source")))
            .opt("process", scalar(app.get("process")))
            .raw_data(app.clone())
            .build(),
    )
}

/// The fields of an install that [`device_app_relationship`] and [`app_key`] read: the
/// apps step builds only these of each install.
pub const INSTALL_FIELDS: &[&str] = &[
    "app_id",
    "bundle_id",
    "signature",
    "bundle_size",
    "path",
    "version",
    "creation_date",
    "modification_date",
];

/// Device HAS app, keyed by the per-device `app_id` (not the app entity's key), so two
/// versions of one bundle on a device are two edges to one app. An install without an
/// `app_id` is keyed by its app's key id instead (`<device>|has|kandji_app:<bundle>`,
/// the default direct key), never by an empty id that every such install would share.
pub fn device_app_relationship(device_id: &str, app: &Value) -> Option<Object> {
    let key_id = app_key_id(app)?;
    let to_key = app_key_of(&key_id);
    let edge_id = readable(app.get("app_id")).unwrap_or(key_id);
    Some(
        RelationshipBuilder::direct(
            "HAS",
            End {
                key: device_id,
                entity_type: DEVICE_TYPE,
            },
            End {
                key: &to_key,
                entity_type: APP_TYPE,
            },
        )
        .key(format!("{device_id}|has|kandji_app:{edge_id}"))
        .opt("id", scalar(app.get("app_id")))
        .opt("signature", scalar(app.get("signature")))
        .opt("bundleSize", scalar(app.get("bundle_size")))
        .opt("path", scalar(app.get("path")))
        .opt("version", scalar(app.get("version")))
        .opt("createdOn", time_of(app, "creation_date"))
        .opt("updatedOn", time_of(app, "modification_date"))
        .build(),
    )
}

/// What [`user_entity`] and its relationship read of a stored device.
pub const USER_FIELDS: &[&str] = &[
    "_key",
    "user.id",
    "user.name",
    "user.email",
    "user.isArchived",
];

/// What the apps step reads of a stored device.
pub const ID_FIELDS: &[&str] = &["id"];

/// What the devices step keeps of each stored device for the later steps: the apps
/// step's [`ID_FIELDS`] and the users step's [`USER_FIELDS`].
pub const CARRIED_FIELDS: &[&str] = &[
    "_key",
    "id",
    "user.id",
    "user.name",
    "user.email",
    "user.isArchived",
];

/// The user a stored device entity names in `user.*`, if any: a numeric id or a
/// non-blank text one (an empty id would give every such user one shared key).
pub fn user_entity(device: &Object) -> Option<Object> {
    let id = device.get("user.id")?;
    let id_text = match id {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.trim().is_empty() => s.clone(),
        _ => return None,
    };
    let field = |f: &str| device.get(f).cloned().unwrap_or(Value::Null);
    // Named by `user.name`, else the email, else the id: the host rejects a user with a
    // null name, and with it the device's edge to that user.
    let name = readable(device.get("user.name"))
        .or_else(|| readable(device.get("user.email")))
        .unwrap_or_else(|| id_text.clone());
    let raw = json!({
        "id": id, "name": field("user.name"), "email": field("user.email"),
        "is_archived": field("user.isArchived"),
    });
    // The data model's `User` wants these present: names split from `user.name`, the
    // e-mail (a list) as `email` and `username`, its local part as `shortLoginId`.
    let (first, last) = readable(device.get("user.name"))
        .map(|n| standard::split_name(&n))
        .unwrap_or_default();
    let email = readable(device.get("user.email"));
    Some(
        EntityBuilder::new(format!("kandji_user:{id_text}"), USER_TYPE, "User")
            .prop("id", format!("kandji_user:{id_text}"))
            .prop("name", name)
            .prop("email", standard::email_list(email.as_deref()))
            .prop("isArchived", field("user.isArchived"))
            .prop("username", standard::string_list(email.as_deref()))
            .prop(
                "shortLoginId",
                standard::string_list(email.as_deref().and_then(standard::email_local_part)),
            )
            .prop("firstName", standard::or_null(first))
            .prop("lastName", standard::or_null(last))
            .prop("active", true)
            .raw_data(raw)
            .build(),
    )
}

pub fn device_user_relationship(device_key: &str, user_key: &str) -> Object {
    RelationshipBuilder::direct(
        "HAS",
        End {
            key: device_key,
            entity_type: DEVICE_TYPE,
        },
        End {
            key: user_key,
            entity_type: USER_TYPE,
        },
    )
    .build()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, p| v.get(p))
}

fn str_of<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str)
}

fn time_of(v: &Value, field: &str) -> Option<i64> {
    str_of(v, field).and_then(parse_epoch_ms)
}

/// `{...d, ...x}`.
/// Whether the previous run's device entity was built from this very list item: every
/// field the list carries has the value its `_rawData` kept. Details fetched then are
/// taken as still good (Kandji's list carries `last_check_in`, the OS version, the
/// enrollment and blueprint: what changes when a device does). A field the details
/// overwrote in `_rawData` compares unequal, so such a device is always fetched again:
/// the comparison errs toward a request, never toward a stale device.
pub fn list_unchanged(previous: &Object, item: &Value) -> bool {
    match (
        corral_sdk::entity::raw_data(previous).and_then(Value::as_object),
        item.as_object(),
    ) {
        (Some(raw), Some(item)) => {
            !item.is_empty() && item.iter().all(|(k, v)| raw.get(k) == Some(v))
        }
        _ => false,
    }
}

fn merge(d: &Value, x: Value) -> Value {
    let mut out = d.as_object().cloned().unwrap_or_default();
    if let Value::Object(x) = x {
        out.extend(x);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_unchanged_only_if_every_list_field_is_as_it_was() {
        let item = list_item(Value::String(String::new()));
        let details = json!({"network": {"mac_address": "aa"}});
        let before = device_entity(&item, details.clone()).unwrap();
        assert!(list_unchanged(&before, &item));
        let mut checked_in = item.clone();
        checked_in["last_check_in"] = json!("2024-03-02T08:00:00Z");
        assert!(!list_unchanged(&before, &checked_in));
        let mut new_field = item.clone();
        new_field["is_missing"] = json!(true);
        assert!(!list_unchanged(&before, &new_field));
        let mut no_raw = before.clone();
        no_raw.remove("_rawData");
        assert!(!list_unchanged(&no_raw, &item));
        assert!(!list_unchanged(&before, &json!({})));
    }

    fn list_item(user: Value) -> Value {
        json!({
            "device_id": "4a7d3c2e-0000-4000-8000-000000000001", "device_name": "Ada's MacBook",
            "model": "MacBook Pro", "serial_number": "C02XK1JHJG5H", "platform": "Mac",
            "os_version": "14.4.1", "asset_tag": "A-1", "blueprint_id": "bp", "blueprint_name": "Std",
            "mdm_enabled": true, "agent_installed": true, "is_missing": false, "is_removed": false,
            "agent_version": "3.9.1", "last_check_in": "2024-03-01T12:39:21.576048Z",
            "first_enrollment": "2022-06-24 14:20:19.961496+00:00",
            "last_enrollment": "", "user": user,
        })
    }

    fn details() -> Value {
        json!({
            "general": { "system_version": "macOS 14.4.1", "assigned_user": { "id": 7, "name": "Ada", "email": "ada@x.io", "is_archived": false } },
            "mdm": { "mdm_enabled": "True", "mdm_enabled_user": ["ada"] },
            "filevault": { "filevault_enabled": true, "filevault_recoverykey_type": "Personal" },
            "network": { "mac_address": "14:7d:da:4f:73:10", "ip_address": "10.0.0.2" },
            "volumes": [{ "identifier": "disk3s1" }, { "identifier": "disk3s5" }],
            "users": { "regular_users": [{ "uid": "501" }], "system_users": [{ "uid": "0" }, { "uid": "1" }] },
            "installed_profiles": [{ "uuid": "p-1" }],
            "hardware_overview": { "model_name": "MacBook Pro", "udid": "secret-ish", "serial_number": "x" },
        })
    }

    #[test]
    fn device_maps_list_and_details_like_the_reference() {
        let user = json!({ "id": 7, "name": "Ada", "email": "ada@x.io", "is_archived": false });
        let e = device_entity(&list_item(user), details()).unwrap();
        let id = "4a7d3c2e-0000-4000-8000-000000000001";
        assert_eq!(e["_key"], id);
        assert_eq!(e["id"], id);
        assert_eq!(e["deviceId"], json!([id]), "a list in the data model");
        assert_eq!(e["assetTag"], json!(["A-1"]), "a list in the data model");
        assert_eq!(e["_class"], json!(["Device"]));
        assert_eq!(e["displayName"], "Ada's MacBook");
        assert_eq!(e["make"], "Apple Inc.");
        assert_eq!(e["category"], "Mac");
        assert_eq!(e["platform"], "darwin");
        assert_eq!(e["serial"], "C02XK1JHJG5H");
        assert_eq!(e["serialNumber"], "C02XK1JHJG5H");
        assert_eq!(e["encrypted"], true);
        assert_eq!(e["lastCheckinOn"], 1_709_296_761_576i64);
        assert_eq!(e["lastSeenOn"], 1_709_296_761_576i64);
        assert_eq!(e["firstEnrollmentOn"], 1_656_080_419_961i64);
        assert!(
            !e.contains_key("lastEnrollmentOn"),
            "an empty time is undefined"
        );
        assert_eq!(e["user.id"], 7);
        assert_eq!(e["user.isArchived"], false);
        assert_eq!(e["general.assignedUserEmail"], "ada@x.io");
        assert_eq!(e["mdm.mdmEnabled"], "True");
        assert_eq!(e["mdm.mdmEnabledUser"], json!(["ada"]));
        assert_eq!(e["filevault.filevaultRecoverykeyType"], "Personal");
        assert_eq!(e["macAddress"], "14:7d:da:4f:73:10");
        assert_eq!(e["network.macAddress"], "14:7d:da:4f:73:10");
        assert_eq!(e["volumes"], json!(["disk3s1", "disk3s5"]));
        assert_eq!(e["users.regularUsers"], json!(["501"]));
        assert_eq!(e["users.systemUsers"], json!(["0", "1"]));
        assert_eq!(e["installedProfiles"], json!(["p-1"]));
        assert_eq!(e["hardwareOverview.modelName"], "MacBook Pro");
        assert!(!e.keys().any(|k| k.contains("udid")));
        assert_eq!(e["_rawData"][0]["rawData"]["device_name"], "Ada's MacBook");
        assert_eq!(
            e["_rawData"][0]["rawData"]["filevault"]["filevault_enabled"],
            true
        );
        assert!(
            e.iter().all(|(k, v)| k == "_rawData" || !v.is_object()),
            "flat properties only"
        );
    }

    /// Issue 12 (the host's property rules): a device whose cosmetic fields would have the
    /// host reject it (mixed `uid`s, an object as the user's name, an over-long blueprint
    /// name, non-ASCII dates) is built without those properties, with a warning naming
    /// the device and each property, and keeps everything else.
    #[test]
    fn a_device_with_fields_the_host_would_reject_keeps_the_rest() {
        corral_sdk::log::take_captured();
        let id = "4a7d3c2e-0000-4000-8000-000000000001";
        let long = "B".repeat(5000);
        let mut d = list_item(
            json!({ "id": 7, "name": { "first": "Ada" }, "email": "ada@x.io", "is_archived": false }),
        );
        d["blueprint_name"] = json!(long);
        d["last_check_in"] = json!("2024—03—01");
        d["first_enrollment"] = json!("Unknown — never");
        d["agent_version"] = json!(["3.9.1", 3]);
        let mut x = details();
        x["users"]["regular_users"] = json!([{ "uid": "501" }, { "uid": 502 }]);
        x["volumes"] = json!([{ "identifier": ["disk3s1"] }, { "identifier": "disk3s5" }]);
        x["mdm"]["mdm_enabled_user"] = json!(["ada", null]);
        let e = device_entity(&d, x.clone()).unwrap();
        assert_eq!(e["_key"], id);
        assert_eq!(e["name"], "Ada's MacBook");
        for gone in [
            "blueprintName",
            "user.name",
            "users.regularUsers",
            "mdm.mdmEnabledUser",
            "agentVersion",
            "lastCheckinOn",
            "firstEnrollmentOn",
        ] {
            assert!(!e.contains_key(gone), "{gone}");
        }
        assert_eq!(
            e["lastSeenOn"],
            Value::Null,
            "an unparsable date is no date"
        );
        assert_eq!(
            e["volumes"],
            json!(["disk3s5"]),
            "a nested item contributes nothing"
        );
        assert_eq!(e["users.systemUsers"], json!(["0", "1"]));
        assert_eq!(e["user.id"], 7);
        assert_eq!(e["_rawData"][0]["rawData"]["blueprint_name"], long);
        let warned: Vec<String> = corral_sdk::log::take_captured()
            .iter()
            .filter(|w| w.field("key") == Some(id))
            .filter_map(|w| w.field("property").map(String::from))
            .collect();
        assert_eq!(
            warned,
            ["blueprintName", "user.name"],
            "left out by the builder"
        );
        // The stored device still gives its user, named by the email.
        let u = user_entity(&e).unwrap();
        assert_eq!(u["name"], "ada@x.io");
    }

    #[test]
    fn unassigned_and_absent_user_are_null_and_give_no_user() {
        for user in [json!(""), Value::Null] {
            let mut d = list_item(user);
            if d["user"].is_null() {
                d.as_object_mut().unwrap().remove("user");
            }
            let e = device_entity(&d, json!({})).unwrap();
            for f in ["user.id", "user.name", "user.email", "user.isArchived"] {
                assert_eq!(e[f], Value::Null, "{f}");
            }
            assert!(user_entity(&e).is_none());
        }
    }

    #[test]
    fn non_mac_platforms_are_ios() {
        let mut d = list_item(json!(""));
        d["platform"] = json!("iPhone");
        let e = device_entity(&d, json!({})).unwrap();
        assert_eq!(
            (e["platform"].as_str(), e["category"].as_str()),
            (Some("ios"), Some("iPhone"))
        );
        assert!(
            !e.contains_key("encrypted"),
            "no filevault section, no encrypted property"
        );
    }

    #[test]
    fn app_keys_fall_back_to_app_id() {
        let app = |bundle: Value| json!({ "app_id": "12", "app_name": "X", "bundle_id": bundle, "creation_date": "2023-01-01T00:00:00Z" });
        assert_eq!(
            app_key(&app(json!("com.x.app"))).as_deref(),
            Some("kandji_app:com.x.app")
        );
        assert_eq!(app_key(&app(json!(""))).as_deref(), Some("kandji_app:12"));
        assert_eq!(
            app_key(&app(json!("No value"))).as_deref(),
            Some("kandji_app:12")
        );
        assert_eq!(app_key(&app(Value::Null)).as_deref(), Some("kandji_app:12"));
        let e = app_entity(&app(json!("No value"))).unwrap();
        assert_eq!(e["bundleId"], "No value", "bundleId stays raw");
        let r = device_app_relationship("dev-000001", &app(json!("com.x.app"))).unwrap();
        assert_eq!(r["_key"], "dev-000001|has|kandji_app:12");
        assert_eq!(r["_toEntityKey"], "kandji_app:com.x.app");
        assert_eq!(r["_type"], "kandji_device_has_app");
        assert_eq!(r["createdOn"], 1_672_531_200_000i64);
    }

    #[test]
    fn user_from_device_properties() {
        let user = json!({ "id": 7, "name": "Ada", "email": "ada@x.io", "is_archived": true });
        let device = device_entity(&list_item(user), json!({})).unwrap();
        let u = user_entity(&device).unwrap();
        assert_eq!(u["_key"], "kandji_user:7");
        assert_eq!(u["id"], "kandji_user:7");
        assert_eq!(u["username"], json!(["ada@x.io"]));
        assert_eq!(u["email"], json!(["ada@x.io"]));
        assert_eq!(u["active"], true);
        assert_eq!(u["isArchived"], true);
        assert_eq!(
            u["_rawData"][0]["rawData"],
            json!({ "id": 7, "name": "Ada", "email": "ada@x.io", "is_archived": true })
        );
        let r = device_user_relationship("dev-000001", "kandji_user:7");
        assert_eq!(r["_key"], "dev-000001|has|kandji_user:7");
        assert_eq!(r["_type"], "kandji_device_has_user");
    }

    #[test]
    fn a_device_without_a_name_is_named_by_serial_then_id() {
        let id = "4a7d3c2e-0000-4000-8000-000000000001";
        for blank in [json!(""), json!("   "), json!("\t\n"), Value::Null] {
            let mut d = list_item(json!(""));
            d["device_name"] = blank.clone();
            let e = device_entity(&d, details()).unwrap();
            assert_eq!(
                (e["name"].as_str(), e["displayName"].as_str()),
                (Some("C02XK1JHJG5H"), Some("C02XK1JHJG5H")),
                "device_name {blank}"
            );
            assert_eq!(e["_key"], id, "the key stays the device id");
            for serial in [json!(""), json!(" "), Value::Null] {
                d["serial_number"] = serial.clone();
                let e = device_entity(&d, details()).unwrap();
                assert_eq!(
                    (e["name"].as_str(), e["displayName"].as_str()),
                    (Some(id), Some(id)),
                    "device_name {blank}, serial {serial}"
                );
                assert_eq!(e["serialNumber"], serial, "the raw serial is kept");
            }
        }
        let mut d = list_item(json!(""));
        d.as_object_mut().unwrap().remove("device_name");
        d.as_object_mut().unwrap().remove("serial_number");
        let e = device_entity(&d, json!({})).unwrap();
        assert_eq!(e["name"], id, "absent fields fall back too");
        assert!(!e.contains_key("serialNumber"));
        // The device keeps its edges: they use its key, whatever its name.
        let r = account_device_relationship(e["_key"].as_str().unwrap());
        assert_eq!(r["_toEntityKey"], id);
    }

    #[test]
    fn a_device_without_an_id_is_an_error_not_a_shared_key() {
        for blank in [json!(""), json!("  "), Value::Null] {
            let mut d = list_item(json!(""));
            d["device_id"] = blank;
            assert!(device_entity(&d, json!({})).is_err());
        }
    }

    #[test]
    fn an_app_without_a_name_falls_back_to_process_bundle_path_then_id() {
        let base = json!({ "app_id": "7", "app_name": "", "process": "Helper", "bundle_id": "com.x.helper",
            "path": "/Applications/Helper.app", "creation_date": "2023-01-01T00:00:00Z" });
        let name = |edit: &dyn Fn(&mut Value)| {
            let mut app = base.clone();
            edit(&mut app);
            let e = app_entity(&app).unwrap();
            assert_eq!(e["displayName"], e["name"]);
            e["name"].as_str().unwrap().to_string()
        };
        assert_eq!(name(&|_| {}), "Helper");
        assert_eq!(name(&|a| a["app_name"] = json!("Real Name")), "Real Name");
        assert_eq!(name(&|a| a["process"] = json!(" ")), "com.x.helper");
        assert_eq!(
            name(&|a| {
                a["process"] = Value::Null;
                a["bundle_id"] = json!("No value");
            }),
            "/Applications/Helper.app"
        );
        assert_eq!(
            name(&|a| {
                a["process"] = json!("");
                a["bundle_id"] = json!("");
                a["path"] = json!("");
            }),
            "7"
        );
        let e = app_entity(&base).unwrap();
        assert_eq!(
            e["_key"], "kandji_app:com.x.helper",
            "the key is the reference's"
        );
    }

    /// A field a later step reads but the devices step does not carry would make that
    /// step read every device back whole: the same graph, at the old cost.
    #[test]
    fn the_devices_step_carries_every_field_the_later_steps_read() {
        for field in ID_FIELDS.iter().chain(USER_FIELDS) {
            assert!(CARRIED_FIELDS.contains(field), "{field} is not carried");
        }
    }

    /// The apps step builds only `INSTALL_FIELDS` of each install: the edge and the
    /// app's key come out as from the whole install.
    #[test]
    fn an_install_narrowed_to_its_fields_gives_the_same_edge() {
        use corral_sdk::http::{Response, ResponseExt};
        let installs = json!({ "device_id": "dev-000001", "apps": [
            { "app_id": "12", "app_name": "X", "bundle_id": "com.x.app", "bundle_size": "4 MB",
              "creation_date": "2023-01-01T00:00:00Z", "modification_date": "2023-02-01T00:00:00Z",
              "path": "/Applications/X.app", "process": "X", "signature": "Developer ID", "source": "Kandji",
              "version": "1.2", "app_store_vendable": false, "device_based_vpp": true, "extra": { "x": [1] } },
            { "app_id": "", "bundle_id": "No value", "path": "/opt/y", "version": 3 },
            { "bundle_id": "com.z", "signature": null },
        ]});
        let answer = Response {
            status: 200,
            headers: Vec::new(),
            body: installs.to_string().into_bytes(),
            url: "http://x/".into(),
        };
        let narrowed = answer.json_items("apps", INSTALL_FIELDS).unwrap();
        let whole = installs["apps"].as_array().unwrap();
        assert_eq!(narrowed.len(), whole.len());
        for (n, w) in narrowed.iter().zip(whole) {
            assert_eq!(app_key(n), app_key(w));
            assert_eq!(
                device_app_relationship("dev-000001", n),
                device_app_relationship("dev-000001", w)
            );
        }
        let kept: Vec<&String> = narrowed[0].as_object().unwrap().keys().collect();
        let mut fields = INSTALL_FIELDS.to_vec();
        fields.sort();
        assert_eq!(kept, fields, "the first install has every field and more");
        assert_eq!(
            narrowed[2],
            json!({ "bundle_id": "com.z", "signature": null })
        );
    }

    #[test]
    fn an_install_without_an_app_id_keys_its_edge_by_the_bundle() {
        let app = json!({ "app_id": "", "app_name": "X", "bundle_id": "com.x.app" });
        let r = device_app_relationship("dev-000001", &app).unwrap();
        assert_eq!(r["_key"], "dev-000001|has|kandji_app:com.x.app");
        assert_eq!(r["_toEntityKey"], "kandji_app:com.x.app");
        assert_eq!(r["id"], "");
        let neither = json!({ "app_id": " ", "app_name": "X", "bundle_id": "No value" });
        assert!(app_key(&neither).is_none());
        assert!(app_entity(&neither).is_none());
        assert!(device_app_relationship("dev-000001", &neither).is_none());
    }

    #[test]
    fn a_user_without_a_name_is_named_by_email_then_id() {
        let named = |user: Value| {
            let device = device_entity(&list_item(user), json!({})).unwrap();
            user_entity(&device).map(|u| {
                assert_eq!(u["displayName"], u["name"]);
                (u["_key"].clone(), u["name"].clone())
            })
        };
        let user = |name: Value, email: Value| json!({ "id": 7, "name": name, "email": email, "is_archived": false });
        assert_eq!(
            named(user(Value::Null, json!("ada@x.io"))),
            Some((json!("kandji_user:7"), json!("ada@x.io")))
        );
        assert_eq!(
            named(user(json!(" "), json!(""))),
            Some((json!("kandji_user:7"), json!("7")))
        );
        for id in [json!(""), json!("  "), json!({ "x": 1 })] {
            let u = json!({ "id": id, "name": "Ada", "email": "ada@x.io", "is_archived": false });
            assert_eq!(named(u), None, "no shared `kandji_user:` key");
        }
    }

    /// The properties the data model's `Device` requires, all present: from the details'
    /// network section and the platform, `null` where the device says nothing.
    #[test]
    fn device_has_the_standard_device_properties() {
        let mut x = details();
        x["network"] = json!({ "local_hostname": "Adas-MacBook-Pro", "mac_address": "14:7D:DA:4F:73:10",
            "ip_address": "192.168.1.20", "public_ip": "203.0.113.9" });
        x["general"]["system_version"] = json!("14.4.1 (23E224)");
        let e = device_entity(&list_item(json!("")), x.clone()).unwrap();
        assert_eq!(e["ipv4Addresses"], json!(["192.168.1.20", "203.0.113.9"]));
        assert_eq!(e["ipv6Addresses"], Value::Null);
        assert_eq!(e["privateIpAddresses"], json!(["192.168.1.20"]));
        assert_eq!(e["publicIpAddresses"], json!(["203.0.113.9"]));
        assert_eq!(e["macAddresses"], json!(["14:7d:da:4f:73:10"]));
        assert_eq!(e["macAddress"], "14:7D:DA:4F:73:10", "the raw MAC is kept");
        assert_eq!(e["hostname"], "Adas-MacBook-Pro");
        assert_eq!(e["fqdn"], Value::Null);
        assert_eq!(e["osName"], "macOS");
        assert_eq!(e["osType"], "darwin");
        assert_eq!(e["osDetails"], "macOS 14.4.1 (23E224)");
        assert_eq!(e["osVersion"], "14.4.1");
        assert_eq!(e["model"], "MacBook Pro");

        // An iPhone without details, serial, model, check-in or version: every required
        // property is there, `null` where Kandji has nothing.
        let mut d = list_item(json!(""));
        d["platform"] = json!("iPhone");
        d["asset_tag"] = json!("");
        for f in ["serial_number", "model", "last_check_in", "os_version"] {
            d.as_object_mut().unwrap().remove(f);
        }
        let e = device_entity(&d, json!({})).unwrap();
        for f in [
            "ipv4Addresses",
            "ipv6Addresses",
            "publicIpAddresses",
            "privateIpAddresses",
            "macAddresses",
            "hostname",
            "fqdn",
            "serial",
            "model",
            "lastSeenOn",
            "osVersion",
        ] {
            assert_eq!(e[f], Value::Null, "{f}");
        }
        assert_eq!(
            (e["osName"].as_str(), e["osType"].as_str()),
            (Some("iOS"), Some("ios"))
        );
        assert_eq!(e["osDetails"], "iOS");
        assert_eq!(e["category"], "iPhone");
        assert!(!e.contains_key("assetTag"), "no tag, no list");
        let mut d = list_item(json!(""));
        d.as_object_mut().unwrap().remove("platform");
        let e = device_entity(
            &d,
            json!({ "network": { "local_hostname": "Ada's Mac", "ip_address": "" } }),
        )
        .unwrap();
        assert_eq!(
            (
                e["category"].clone(),
                e["osName"].clone(),
                e["osType"].clone(),
                e["hostname"].clone()
            ),
            (Value::Null, Value::Null, Value::Null, Value::Null)
        );
        assert_eq!(e["osDetails"], "14.4.1", "the version alone");
        assert_eq!(e["ipv4Addresses"], Value::Null);
        assert!(!e.contains_key("encrypted"));
    }

    #[test]
    fn user_has_the_standard_user_properties() {
        let user = |name: Value, email: Value| {
            let u = json!({ "id": 7, "name": name, "email": email, "is_archived": false });
            user_entity(&device_entity(&list_item(u), json!({})).unwrap()).unwrap()
        };
        let u = user(json!("Ada King Lovelace"), json!("ada.lovelace@x.io"));
        assert_eq!(
            (u["firstName"].as_str(), u["lastName"].as_str()),
            (Some("Ada"), Some("King Lovelace"))
        );
        assert_eq!(u["email"], json!(["ada.lovelace@x.io"]));
        assert_eq!(u["username"], json!(["ada.lovelace@x.io"]));
        assert_eq!(u["shortLoginId"], json!(["ada.lovelace"]));
        let u = user(json!("Ada"), json!("not-an-address"));
        assert_eq!(
            (u["firstName"].as_str(), u["lastName"].clone()),
            (Some("Ada"), Value::Null)
        );
        assert_eq!(
            u["email"],
            Value::Null,
            "not an e-mail address: only in _rawData"
        );
        assert_eq!(u["username"], json!(["not-an-address"]));
        assert_eq!(u["shortLoginId"], Value::Null);
        assert_eq!(u["_rawData"][0]["rawData"]["email"], "not-an-address");
        let u = user(Value::Null, Value::Null);
        for f in ["firstName", "lastName", "email", "username", "shortLoginId"] {
            assert_eq!(u[f], Value::Null, "{f}");
        }
    }

    #[test]
    fn account_is_a_constant() {
        let a = account_entity();
        assert_eq!(a["_key"], "kandji-account");
        assert_eq!(a["name"], "Kandji Account");
        assert_eq!(a["vendor"], "Kandji");
        let r = account_device_relationship("dev-000001");
        assert_eq!(r["_key"], "kandji-account|has|dev-000001");
        assert_eq!(r["_type"], "kandji_account_has_device");
    }

    /// The recorded responses convert cleanly; skipped when `../shared` is not beside
    /// the project (it is not part of a clone).
    #[test]
    fn recorded_samples_convert() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/providers/samples/kandji");
        let read = |f: &str| -> Option<Value> {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).ok()?).ok()
        };
        let (Some(devices), Some(details), Some(apps)) = (
            read("devices.json"),
            read("device-details.json"),
            read("device-apps.json"),
        ) else {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        };
        let first = &devices.as_array().unwrap()[0];
        let e = device_entity(first, details.clone()).unwrap();
        assert_eq!(e["_key"], first["device_id"]);
        assert!(e.iter().all(|(k, v)| k == "_rawData" || !v.is_object()));
        assert_eq!(e["hostname"], "RickandMorty-MBP");
        assert_eq!(e["privateIpAddresses"], json!(["192.168.111.197"]));
        assert_eq!(e["publicIpAddresses"], Value::Null, "public_ip is \"\"");
        assert_eq!(e["osDetails"], "macOS 12.0.1 (21A559)");
        for app in apps["apps"].as_array().unwrap() {
            assert!(app_key(app).unwrap().starts_with("kandji_app:"));
            assert!(app_entity(app).is_some());
        }
    }
}
