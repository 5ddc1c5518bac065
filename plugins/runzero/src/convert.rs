//! runZero API objects to JupiterOne entities and relationships (the reference
//! integration graph-rumble v2.2.0; deviations in this crate's README).

use corral_sdk::entity::{End, EntityBuilder, Object, Properties, RelationshipBuilder};
use corral_sdk::props::{plain, readable, readable_text, without};
use corral_sdk::standard::{self, Addresses};
use serde_json::{Value, json};

pub const ACCOUNT_TYPE: &str = "rumble_account";
pub const ORG_TYPE: &str = "rumble_organization";
pub const SITE_TYPE: &str = "rumble_site";
pub const USER_TYPE: &str = "rumble_user";
pub const ASSET_TYPE: &str = "rumble_asset";
pub const USER_PERSON_TYPE: &str = "rumble_user_is_person";
/// The account's `vendor` (the data model's `Account` requires one).
pub const VENDOR: &str = "runZero";

/// Fields that are credentials: never in an entity or `_rawData`.
const TOKEN_FIELDS: &[&str] = &["download_token", "export_token"];
/// Asset fields left out of `_rawData`: service banners can hold whole HTTP bodies,
/// `credentials` what a scan found.
const ASSET_RAW_DROPPED: &[&str] = &[
    "services",
    "credentials",
    "attributes",
    "foreign_attributes",
];

/// The asset fields the export is asked for (its `fields` parameter): every asset field
/// of the spec that this connector maps or keeps in `_rawData`, that is all but
/// [`ASSET_RAW_DROPPED`]. Service banners, credentials and attributes are the bulk of an
/// export; leaving them on the server keeps a large organization's export under the
/// host's response cap (`maxResponseBytes`).
pub const EXPORT_FIELDS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "first_seen",
    "last_seen",
    "organization_id",
    "site_id",
    "alive",
    "scanned",
    "detected_by",
    "type",
    "os",
    "os_vendor",
    "os_product",
    "os_version",
    "hw",
    "hw_vendor",
    "hw_product",
    "hw_version",
    "addresses",
    "addresses_extra",
    "macs",
    "mac_vendors",
    "names",
    "domains",
    "tags",
    "rtts",
    "subnets",
    "service_count",
    "service_count_tcp",
    "service_count_udp",
    "service_count_arp",
    "service_count_icmp",
    "software_count",
    "vulnerability_count",
    "lowest_ttl",
    "lowest_rtt",
    "last_agent_id",
    "last_task_id",
    "newest_mac",
    "newest_mac_vendor",
    "newest_mac_age",
    "service_ports_tcp",
    "service_ports_udp",
    "service_protocols",
    "service_products",
    "source_ids",
    "sources",
    "eol_os",
    "eol_os_ext",
    "outlier_score",
    "outlier_raw",
    "org_name",
    "site_name",
    "agent_name",
    "agent_external_ip",
    "hosted_zone_name",
];

fn s(v: &Value, f: &str) -> Option<Value> {
    match v.get(f)? {
        Value::String(x) => Some(x.clone().into()),
        _ => None,
    }
}

/// Epoch seconds to ms; 0 (never) and non-numbers give nothing.
fn secs(v: &Value, f: &str) -> Option<i64> {
    v.get(f)
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .map(|t| t * 1000)
}

/// The record's id, unless missing, `""` or blank: a key built from it would be shared.
fn id_of(v: &Value) -> Option<String> {
    readable(v.get("id"))
}

/// The first usable string of a list field (`names`, `addresses`, `macs`).
fn first_of(v: &Value, field: &str) -> Option<String> {
    v.get(field)?
        .as_array()?
        .iter()
        .find_map(|x| readable(Some(x)))
}

/// The account, named by the instance name (or, when that is blank, `fallback`: the
/// instance id).
pub fn account_entity(key: &str, name: &str, fallback: &str) -> Object {
    let name = if name.trim().is_empty() {
        fallback
    } else {
        name
    };
    EntityBuilder::new(key, ACCOUNT_TYPE, "Account")
        .prop("id", key)
        .prop("name", name)
        .prop("displayName", name)
        .prop("vendor", VENDOR)
        .raw_data(json!({ "id": key, "name": name }))
        .build()
}

/// (property, field) pairs copied unchanged.
type Fields = &'static [(&'static str, &'static str)];

const ORG_FIELDS: Fields = &[
    ("clientId", "client_id"),
    ("createdBy", "created_by"),
    ("parentId", "parent_id"),
    ("demo", "demo"),
    ("project", "project"),
    ("inactive", "inactive"),
    ("serviceCount", "service_count"),
    ("serviceCountTCP", "service_count_tcp"),
    ("serviceCountUDP", "service_count_udp"),
    ("serviceCountARP", "service_count_arp"),
    ("serviceCountICMP", "service_count_icmp"),
    ("assetCount", "asset_count"),
    ("liveAssetCount", "live_asset_count"),
    ("recentAssetCount", "recent_asset_count"),
    ("softwareCount", "software_count"),
    ("vulnerabilityCount", "vulnerability_count"),
    ("exportTokenLastUsedBy", "export_token_last_used_by"),
    ("exportTokenCounter", "export_token_counter"),
    ("expirationAssetsStale", "expiration_assets_stale"),
    ("expirationAssetsOffline", "expiration_assets_offline"),
    ("expirationScans", "expiration_scans"),
];
const ORG_TIMES: Fields = &[
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
    ("downloadTokenCreatedAt", "download_token_created_at"),
    ("deactivatedAt", "deactivated_at"),
    ("exportTokenCreatedAt", "export_token_created_at"),
    ("exportTokenLastUsedAt", "export_token_last_used_at"),
    ("expirationWarningLastSent", "expiration_warning_last_sent"),
];

fn copy(mut e: EntityBuilder, v: &Value, fields: Fields, times: Fields) -> EntityBuilder {
    for (prop, field) in fields {
        e = e.opt(prop, plain(v, field));
    }
    for (prop, field) in times {
        e = e.opt(prop, secs(v, field));
    }
    e
}

pub fn org_entity(o: &Value) -> Option<Object> {
    let id = id_of(o)?;
    // The data model needs a name; the reference leaves a nameless one undefined.
    let name = readable(o.get("name")).unwrap_or_else(|| id.clone());
    let e = EntityBuilder::new(id.clone(), ORG_TYPE, "Organization")
        .prop("id", id)
        .prop("name", name)
        .opt("description", s(o, "description"));
    Some(
        copy(e, o, ORG_FIELDS, ORG_TIMES)
            .raw_data(without(o.clone(), TOKEN_FIELDS))
            .build(),
    )
}

const SITE_FIELDS: Fields = &[
    ("clientId", "client_id"),
    ("organizationId", "organization_id"),
    ("inactive", "inactive"),
    ("serviceCount", "service_count"),
    ("serviceCountTCP", "service_count_tcp"),
    ("serviceCountUDP", "service_count_udp"),
    ("serviceCountARP", "service_count_arp"),
    ("serviceCountICMP", "service_count_icmp"),
    ("assetCount", "asset_count"),
    ("liveAssetCount", "live_asset_count"),
    ("recentAssetCount", "recent_asset_count"),
    ("softwareCount", "software_count"),
    ("vulnerabilityCount", "vulnerability_count"),
    ("assetAddressCount", "asset_address_count"),
    ("assetAddressExtraCount", "asset_address_extra_count"),
    ("lastTaskDuration", "last_task_duration"),
    ("scope", "scope"),
    ("excludes", "excludes"),
    ("lastTaskId", "last_task_id"),
    ("lastTaskBy", "last_task_by"),
];
const SITE_TIMES: Fields = &[
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
    ("deactivatedAt", "deactivated_at"),
    ("lastTaskAt", "last_task_at"),
];

pub fn site_entity(site: &Value) -> Option<Object> {
    let id = id_of(site)?;
    let e = EntityBuilder::new(id.clone(), SITE_TYPE, "Site")
        .prop("id", id.clone())
        .prop(
            "name",
            readable(site.get("name")).unwrap_or_else(|| id.clone()),
        )
        .opt("description", s(site, "description"));
    Some(
        copy(e, site, SITE_FIELDS, SITE_TIMES)
            .raw_data(site.clone())
            .build(),
    )
}

const USER_FIELDS: Fields = &[
    ("orgDefaultRole", "org_default_role"),
    ("lastLoginIP", "last_login_ip"),
    ("lastLoginUa", "last_login_ua"),
    ("ssoOnly", "sso_only"),
    ("loginFailures", "login_failures"),
    ("actions", "actions"),
];
const USER_TIMES: Fields = &[
    ("resetTokenExpiration", "reset_token_expiration"),
    ("inviteTokenExpiration", "invite_token_expiration"),
    ("lastLoginAt", "last_login_at"),
    ("lastActivityAt", "last_activity_at"),
    ("lastActionAt", "last_action_at"),
];

pub fn user_entity(u: &Value) -> Option<Object> {
    let id = id_of(u)?;
    let part = |f: &str| readable(u.get(f));
    let name = match (part("first_name"), part("last_name")) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(one), None) | (None, Some(one)) => one,
        // The data model needs a name; the reference leaves it undefined.
        (None, None) => part("email").unwrap_or_else(|| id.clone()),
    };
    let admin = u.get("client_admin") == Some(&json!(true))
        || u.get("org_default_role") == Some(&json!("admin"));
    let mut e = EntityBuilder::new(id.clone(), USER_TYPE, "User")
        .prop("id", id)
        .prop("name", name)
        .prop("admin", admin)
        .prop("active", true);
    for (prop, value) in user_standard_properties(u) {
        e = e.prop(prop, value);
    }
    Some(
        copy(e, u, USER_FIELDS, USER_TIMES)
            .raw_data(u.clone())
            .build(),
    )
}

/// The properties the data model's `User` requires, all present:
/// - `firstName`/`lastName`: `first_name`/`last_name` when they are strings (`""` kept,
///   as the reference keeps it), else the first word / the rest of the API's full `name`
///   (a one-word full name is a first name only when there is no `last_name`), else
///   `null`;
/// - `email` and `username` (the reference's username is the email): the email as a
///   list (`email` only when it is an e-mail address), else `null`;
/// - `shortLoginId`: the email's local part as a list, else `null`.
fn user_standard_properties(u: &Value) -> [(&'static str, Value); 5] {
    let (first, last) = readable(u.get("name"))
        .map(|n| standard::split_name(&n))
        .unwrap_or_default();
    let given = |f: &str| u.get(f).and_then(Value::as_str).map(String::from);
    let (first_name, last_name) = (given("first_name"), given("last_name"));
    // "Lovelace" with a `last_name` of "Lovelace" is no first name.
    let first = first.filter(|_| last.is_some() || last_name.is_none());
    let email = u
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.trim().is_empty());
    [
        ("firstName", standard::or_null(first_name.or(first))),
        ("lastName", standard::or_null(last_name.or(last))),
        ("email", standard::email_list(email)),
        ("username", standard::string_list(email)),
        (
            "shortLoginId",
            standard::string_list(email.and_then(standard::email_local_part)),
        ),
    ]
}

/// The asset's name: its first usable `names` entry, else `hw`, else its first address,
/// else its first MAC, else its id (the reference: `names[0]`, `hw`, id).
pub fn asset_name(a: &Value, id: &str) -> String {
    first_of(a, "names")
        .or_else(|| readable(a.get("hw")))
        .or_else(|| first_of(a, "addresses"))
        .or_else(|| first_of(a, "macs"))
        .unwrap_or_else(|| id.to_string())
}

/// The asset entity; the record becomes its `_rawData`.
pub fn asset_entity(asset: Value) -> Option<Object> {
    let a = &asset;
    let id = id_of(a)?;
    let name = asset_name(a, &id);
    let os = a
        .get("os")
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty());
    let os_version = a
        .get("os_version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty());
    let os_details = os.map(|o| match os_version {
        Some(v) => format!("{o} {v}"),
        None => o.to_string(),
    });
    let mut e = EntityBuilder::new(id.clone(), ASSET_TYPE, "Device")
        .prop("id", id)
        .prop("name", name)
        .opt("createdAt", secs(a, "created_at"))
        .opt("updatedAt", secs(a, "updated_at"))
        .opt("firstSeen", secs(a, "first_seen"))
        .opt("lastSeen", secs(a, "last_seen"))
        .prop("lastSeenOn", standard::or_null(secs(a, "last_seen")))
        .opt("type", plain(a, "type"))
        .prop("category", standard::or_null(plain(a, "type")))
        .prop("osName", standard::or_null(plain(a, "os_product")))
        .prop("osDetails", standard::or_null(os_details))
        .prop("serial", Value::Null)
        .prop("deviceId", Value::Null);
    for (prop, field) in ASSET_FIELDS {
        e = e.opt(prop, plain(a, field));
    }
    for (prop, value) in asset_standard_properties(a) {
        e = e.prop(prop, value);
    }
    // Tags before `build`, so the builder holds `tag.*` to the host's rules too.
    Some(
        apply_tags(e, a.get("tags"))
            .raw_data(without(asset, ASSET_RAW_DROPPED))
            .build(),
    )
}

/// The `Device` properties the reference leaves out or shapes otherwise, all present:
/// - `ipv4Addresses`, `ipv6Addresses`, `publicIpAddresses`, `privateIpAddresses`: from
///   `addresses` and `addresses_extra`;
/// - `macAddresses`: `macs`, lower-case and colon-delimited (text that is not a MAC left
///   out), `[]` when runZero lists none (as the reference), `null` without `macs`;
/// - `hostname`: the first of `names` usable as one (an FQDN's first label); `fqdn`: the
///   `names` that are FQDNs;
/// - `osType`: from `os` (else `os_product`);
/// - `make`, `model`, `osVersion`: `null` when runZero has no such field.
///
/// `null` where runZero has nothing.
fn asset_standard_properties(a: &Value) -> Vec<(&'static str, Value)> {
    let mut addresses = Addresses::default();
    addresses.add_all(a.get("addresses"));
    addresses.add_all(a.get("addresses_extra"));
    let strings = |f: &str| -> Vec<&str> {
        a.get(f)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let macs = match a.get("macs") {
        Some(Value::Array(_)) => json!(standard::mac_addresses(strings("macs"))),
        _ => Value::Null,
    };
    let names = strings("names");
    let hostname = names.iter().find_map(|n| standard::hostname(n));
    let fqdns = standard::string_list(names.iter().filter_map(|n| standard::fqdn(n)));
    let os = readable(a.get("os")).or_else(|| readable(a.get("os_product")));
    let mut out: Vec<(&'static str, Value)> = addresses.properties().into();
    out.extend([
        ("macAddresses", macs),
        ("hostname", standard::or_null(hostname)),
        ("fqdn", fqdns),
        (
            "osType",
            standard::or_null(os.as_deref().and_then(standard::os_type)),
        ),
    ]);
    for (prop, field) in [
        ("make", "hw_vendor"),
        ("model", "hw_product"),
        ("osVersion", "os_version"),
    ] {
        out.push((prop, standard::or_null(plain(a, field))));
    }
    out
}

const ASSET_FIELDS: Fields = &[
    ("alive", "alive"),
    ("scanned", "scanned"),
    ("detectedBy", "detected_by"),
    ("osVendor", "os_vendor"),
    ("hardware", "hw"),
    ("hardwareVendor", "hw_vendor"),
    ("hardwareModel", "hw_product"),
    ("version", "hw_version"),
    ("hardwareVersion", "hw_version"),
    ("macAddress", "macs"),
    ("serviceCount", "service_count"),
    ("softwareCount", "software_count"),
    ("vulnerabilityCount", "vulnerability_count"),
    ("lastAgentId", "last_agent_id"),
    ("lastTaskId", "last_task_id"),
    ("newestMacAddress", "newest_mac"),
    ("newestMacVendor", "newest_mac_vendor"),
    ("orgName", "org_name"),
    ("siteName", "site_name"),
];

/// `tag.<key>` properties, the `tags` list and the `name`/`owner`/`classification`/
/// `email` overrides, as the reference applies them. A `name` tag becomes `displayName`
/// only when it is readable as a name (not blank, at most 4096 characters). The builder
/// then leaves out any tag property the host would reject (a `tag.…On` key whose value is
/// not an integer, a value over 4096 characters), with a warning; the asset is kept.
fn apply_tags(mut e: EntityBuilder, tags: Option<&Value>) -> EntityBuilder {
    let Some(tags) = tags.and_then(Value::as_object) else {
        return e;
    };
    let mut flags = Vec::new();
    for (key, value) in tags {
        let Some(raw) = value.as_str() else { continue };
        e = e.prop(
            &format!("tag.{key}"),
            corral_sdk::props::tag_value(raw, true),
        );
        if raw.is_empty() || raw == "true" {
            flags.push(Value::from(key.clone()));
        }
        if key.eq_ignore_ascii_case("name") && readable_text(raw) {
            e = e.prop("displayName", raw);
        }
        if matches!(key.as_str(), "owner" | "classification" | "email") {
            e = e.prop(key, raw.to_lowercase());
        }
    }
    if !flags.is_empty() {
        e = e.prop("tags", Value::Array(flags));
    }
    e
}

fn edge(class: &str, from: (&str, &str), to: (&str, &str)) -> Object {
    edge_builder(class, from, to).build()
}

fn edge_builder(class: &str, from: (&str, &str), to: (&str, &str)) -> RelationshipBuilder {
    RelationshipBuilder::direct(
        class,
        End {
            key: from.0,
            entity_type: from.1,
        },
        End {
            key: to.0,
            entity_type: to.1,
        },
    )
}

pub fn account_has(account: &str, key: &str, to_type: &str) -> Object {
    edge("HAS", (account, ACCOUNT_TYPE), (key, to_type))
}

pub fn org_has_site(org: &str, site: &str) -> Object {
    edge("HAS", (org, ORG_TYPE), (site, SITE_TYPE))
}

pub fn site_has_asset(site: &str, asset: &str) -> Object {
    edge("HAS", (site, SITE_TYPE), (asset, ASSET_TYPE))
}

pub fn user_assigned_org(user: &str, org: &str, role: &str) -> Object {
    edge_builder("ASSIGNED", (user, USER_TYPE), (org, ORG_TYPE))
        .prop("assignedRole", role)
        .build()
}

/// The runZero user IS the employee with the same email (mapped; never creates one).
pub fn user_is_person(user: &Object) -> Option<Object> {
    let key = user.get("_key")?.as_str()?;
    // `email` is the data model's list of the user's e-mail addresses.
    let email = user
        .get("email")?
        .as_array()?
        .first()?
        .as_str()
        .filter(|e| !e.trim().is_empty())?
        .to_lowercase();
    let mut r = Object::new();
    r.insert("_key".into(), format!("{key}|is|person:{email}").into());
    r.insert("_type".into(), USER_PERSON_TYPE.into());
    r.insert("_class".into(), "IS".into());
    r.insert("displayName".into(), "IS".into());
    r.insert(
        "_mapping".into(),
        json!({
            "relationshipDirection": "FORWARD",
            "sourceEntityKey": key,
            "targetFilterKeys": [["_class", "email"]],
            "targetEntity": { "_class": "Person", "email": email },
            "skipTargetCreation": true,
        }),
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_times_os_and_tags() {
        let a = json!({
            "id": "asset-0000001", "names": [], "hw": "Dell R640", "os": "Ubuntu Linux", "os_version": "20.04",
            "os_product": "Linux", "type": "Server", "first_seen": 1583271138, "last_seen": 0, "macs": [],
            "tags": { "owner": "Alice@Example.com", "name": "renamed", "rack": "12", "weight": "1.5", "flag": "", "critical": "true" },
            "services": { "x": { "http.body": "<html>" } }, "credentials": { "c": 1 }, "site_id": "s1",
        });
        let e = asset_entity(a.clone()).unwrap();
        assert_eq!(e["name"], "Dell R640", "no names: the hardware");
        assert_eq!(e["displayName"], "renamed");
        assert_eq!(e["firstSeen"], 1_583_271_138_000i64);
        assert!(!e.contains_key("lastSeen"), "0 is never");
        assert_eq!(
            e["lastSeenOn"],
            Value::Null,
            "never, but present as Device requires"
        );
        assert_eq!(e["osDetails"], "Ubuntu Linux 20.04");
        assert_eq!(
            (e["type"].as_str(), e["category"].as_str()),
            (Some("Server"), Some("Server"))
        );
        assert_eq!(e["macAddresses"], json!([]));
        assert_eq!(
            (e["serial"].clone(), e["deviceId"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(e["owner"], "alice@example.com");
        assert_eq!(e["tag.rack"], 12);
        assert_eq!(e["tag.weight"], 1.5);
        assert_eq!(e["tag.critical"], true);
        assert_eq!(e["tags"], json!(["critical", "flag"]));
        let raw = e["_rawData"][0]["rawData"].as_object().unwrap();
        assert!(
            !raw.contains_key("services")
                && !raw.contains_key("credentials")
                && raw.contains_key("site_id")
        );
        let bare = asset_entity(json!({ "id": "asset-0000002", "os_version": "10" })).unwrap();
        assert_eq!(bare["name"], "asset-0000002");
        assert_eq!(bare["osDetails"], Value::Null, "no os, no `undefined 10`");
    }

    /// Issue 12 (the host's property rules): user tags that would have the host reject
    /// the asset (a `…On` key without epoch milliseconds, an over-long value, an
    /// over-long `name`) are left out with a warning naming the asset and the property;
    /// the asset and its other tags are kept, and its `displayName` stays its name.
    #[test]
    fn tags_the_host_would_reject_are_left_out_and_the_asset_kept() {
        corral_sdk::log::take_captured();
        let long = "n".repeat(4097);
        let a = json!({
            "id": "asset-0000001", "names": ["web01"],
            "tags": { "expiresOn": "never", "reviewedOn": "1700000000000", "checkedOn": "1.5",
                "note": long, "name": long, "owner": long, "rack": "12" },
        });
        let e = asset_entity(a.clone()).unwrap();
        assert_eq!(e["_key"], "asset-0000001");
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("web01"), Some("web01")),
            "an over-long name tag is no display name"
        );
        for gone in [
            "tag.expiresOn",
            "tag.checkedOn",
            "tag.note",
            "tag.name",
            "tag.owner",
            "owner",
        ] {
            assert!(!e.contains_key(gone), "{gone}");
        }
        assert_eq!(
            e["tag.reviewedOn"], 1_700_000_000_000i64,
            "an integer `…On` tag is kept"
        );
        assert_eq!(e["tag.rack"], 12);
        let mut warned: Vec<String> = corral_sdk::log::take_captured()
            .iter()
            .filter(|w| w.field("key") == Some("asset-0000001"))
            .filter_map(|w| w.field("property").map(String::from))
            .collect();
        warned.sort();
        assert_eq!(
            warned,
            [
                "owner",
                "tag.checkedOn",
                "tag.expiresOn",
                "tag.name",
                "tag.note",
                "tag.owner"
            ]
        );
        // A readable `name` tag still overrides.
        let a = json!({ "id": "asset-0000002", "names": ["web02"], "tags": { "Name": "Web Two" } });
        assert_eq!(asset_entity(a.clone()).unwrap()["displayName"], "Web Two");
    }

    /// The export asks only for [`EXPORT_FIELDS`]: an asset limited to them converts to
    /// the same entity as the whole record (every field the mapping reads is asked for),
    /// and none of the fields left out of `_rawData` is asked for.
    #[test]
    fn the_export_fields_are_every_field_the_mapping_reads() {
        for f in ASSET_RAW_DROPPED {
            assert!(!EXPORT_FIELDS.contains(f), "{f}");
        }
        for (_, f) in ASSET_FIELDS {
            assert!(EXPORT_FIELDS.contains(f), "{f}");
        }
        let full = json!({
            "id": "asset-0000001", "names": ["web01.corp.example.com"], "hw": "Dell", "os": "Microsoft Windows 10",
            "os_version": "10.0.19044", "os_product": "Windows", "os_vendor": "Microsoft", "type": "Desktop",
            "created_at": 1583271138, "updated_at": 1583271139, "first_seen": 1583271138, "last_seen": 1583271232,
            "alive": true, "scanned": true, "detected_by": "arp", "hw_vendor": "Dell", "hw_product": "R640",
            "hw_version": "", "addresses": ["10.0.0.5"], "addresses_extra": ["203.0.113.5"], "macs": ["A0:36:9F:50:77:D8"],
            "mac_vendors": ["Intel"], "domains": [], "tags": { "owner": "Ada", "name": "renamed", "flag": "" },
            "service_count": 3, "software_count": 1, "vulnerability_count": 0, "last_agent_id": "", "last_task_id": "t",
            "newest_mac": "a0:36:9f:50:77:d8", "newest_mac_vendor": "Intel", "org_name": "Org", "site_name": "Site",
            "site_id": "site-1", "organization_id": "org-1", "rtts": {}, "subnets": {},
            "services": { "10.0.0.5/80/tcp/": { "http.body": "<html>" } }, "credentials": {}, "attributes": { "a": "b" },
            "foreign_attributes": {},
        });
        let only: serde_json::Map<String, Value> = full
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| EXPORT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            asset_entity(Value::Object(only)).unwrap(),
            asset_entity(full.clone()).unwrap()
        );
    }

    #[test]
    fn an_over_long_role_leaves_the_edge_without_it() {
        corral_sdk::log::take_captured();
        let r = user_assigned_org("user-000001", "org-0000001", &"r".repeat(4097));
        assert!(!r.contains_key("assignedRole"));
        assert_eq!(r["_key"], "user-000001|assigned|org-0000001");
        assert_eq!(corral_sdk::log::take_captured().len(), 1);
    }

    #[test]
    fn asset_has_the_standard_device_properties() {
        let a = json!({
            "id": "asset-0000001", "names": ["x", "web01.corp.example.com", "WEB01"], "os": "Microsoft Windows Server 2019",
            "os_product": "Windows Server", "os_version": "1809", "hw_vendor": "Dell", "hw_product": "R640",
            "addresses": ["10.0.0.5", "2001:db8::5", "bogus"], "addresses_extra": ["203.0.113.5", "10.0.0.5", "fe80::5%eth0"],
            "macs": ["A0:36:9F:50:77:D8", "not-a-mac"], "last_seen": 1583271232, "type": "Server",
        });
        let e = asset_entity(a.clone()).unwrap();
        assert_eq!(e["ipv4Addresses"], json!(["10.0.0.5", "203.0.113.5"]));
        assert_eq!(e["ipv6Addresses"], json!(["2001:db8::5", "fe80::5"]));
        assert_eq!(
            e["publicIpAddresses"],
            json!(["2001:db8::5", "203.0.113.5"])
        );
        assert_eq!(e["privateIpAddresses"], json!(["10.0.0.5", "fe80::5"]));
        assert_eq!(e["macAddresses"], json!(["a0:36:9f:50:77:d8"]));
        assert_eq!(
            e["macAddress"],
            json!(["A0:36:9F:50:77:D8", "not-a-mac"]),
            "raw"
        );
        assert_eq!(
            e["hostname"], "web01",
            "the first name usable as a host name"
        );
        assert_eq!(e["fqdn"], json!(["web01.corp.example.com"]));
        assert_eq!(e["osType"], "windows");
        assert_eq!(e["osName"], "Windows Server");
        assert_eq!(e["osDetails"], "Microsoft Windows Server 2019 1809");
        assert_eq!(
            (e["make"].as_str(), e["model"].as_str()),
            (Some("Dell"), Some("R640"))
        );
        assert_eq!(e["lastSeenOn"], 1_583_271_232_000i64);

        // Nothing but an id: every required property is present, `null` where runZero
        // has nothing.
        let bare = asset_entity(json!({ "id": "asset-0000002" })).unwrap();
        for f in [
            "ipv4Addresses",
            "ipv6Addresses",
            "publicIpAddresses",
            "privateIpAddresses",
            "macAddresses",
            "hostname",
            "fqdn",
            "serial",
            "deviceId",
            "lastSeenOn",
            "make",
            "model",
            "osName",
            "osType",
            "osDetails",
            "osVersion",
            "category",
        ] {
            assert_eq!(bare.get(f), Some(&Value::Null), "{f}");
        }
    }

    #[test]
    fn user_has_the_standard_user_properties() {
        let u = json!({ "id": "user-000001", "first_name": null, "last_name": null, "name": "Ada King Lovelace",
            "email": "ada.lovelace@example.com" });
        let e = user_entity(&u).unwrap();
        assert_eq!(
            (e["firstName"].as_str(), e["lastName"].as_str()),
            (Some("Ada"), Some("King Lovelace")),
            "split from the full name"
        );
        assert_eq!(e["shortLoginId"], json!(["ada.lovelace"]));
        let u = json!({ "id": "user-000001", "first_name": "", "last_name": "Lovelace", "name": "Ada Lovelace", "email": null });
        let e = user_entity(&u).unwrap();
        assert_eq!(
            (e["firstName"].as_str(), e["lastName"].as_str()),
            (Some(""), Some("Lovelace")),
            "the provider's strings are kept"
        );
        for f in ["email", "username", "shortLoginId"] {
            assert_eq!(e[f], Value::Null, "{f}");
        }
        assert!(user_is_person(&e).is_none());
        let e = user_entity(&json!({ "id": "user-000001", "email": "not an address" })).unwrap();
        assert_eq!(e["email"], Value::Null);
        assert_eq!(e["username"], json!(["not an address"]));
        assert_eq!(
            (e["firstName"].clone(), e["lastName"].clone()),
            (Value::Null, Value::Null)
        );
        assert!(
            user_is_person(&e).is_none(),
            "no e-mail address, no Person mapping"
        );
    }

    #[test]
    fn org_drops_tokens_and_converts_seconds() {
        let o = json!({ "id": "org-0000001", "name": "Org", "description": null, "created_at": 1644261959, "deactivated_at": 0,
            "export_token": "ET-secret", "download_token": "DT-secret", "export_token_last_used_by": "" });
        let e = org_entity(&o).unwrap();
        assert_eq!(e["createdAt"], 1_644_261_959_000i64);
        assert!(!e.contains_key("deactivatedAt") && !e.contains_key("description"));
        assert_eq!(e["exportTokenLastUsedBy"], "");
        assert!(!Value::Object(e).to_string().contains("-secret"));
    }

    #[test]
    fn user_name_admin_and_person_mapping() {
        let u = json!({ "id": "user-000001", "first_name": null, "last_name": "Lovelace", "email": "Ada@Example.com",
            "client_admin": false, "org_default_role": "admin", "name": "ignored" });
        let e = user_entity(&u).unwrap();
        assert_eq!(e["name"], "Lovelace");
        assert_eq!(e["admin"], true);
        assert_eq!(e["username"], json!(["Ada@Example.com"]));
        assert_eq!(e["email"], json!(["Ada@Example.com"]));
        assert_eq!(e["shortLoginId"], json!(["Ada"]));
        assert_eq!(
            (e["firstName"].clone(), e["lastName"].as_str()),
            (Value::Null, Some("Lovelace")),
            "no first name, and the API's one-word full name is not one beside a last name"
        );
        let mononym = user_entity(&json!({ "id": "user-000001", "name": "Cher" })).unwrap();
        assert_eq!(
            (mononym["firstName"].as_str(), mononym["lastName"].clone()),
            (Some("Cher"), Value::Null)
        );
        let r = user_is_person(&e).unwrap();
        assert_eq!(
            r["_mapping"]["targetEntity"],
            json!({ "_class": "Person", "email": "ada@example.com" })
        );
        let edge = user_assigned_org("user-000001", "org-0000001", "none");
        assert_eq!(
            (edge["_key"].as_str(), edge["assignedRole"].as_str()),
            (Some("user-000001|assigned|org-0000001"), Some("none"))
        );
        assert_eq!(edge["_type"], "rumble_user_assigned_organization");
    }

    #[test]
    fn an_asset_without_names_is_named_by_hw_address_mac_then_id() {
        let id = "asset-0000009";
        let name = |a: Value| {
            let e = asset_entity(a.clone()).unwrap();
            assert_eq!(e["_key"], id);
            assert_eq!(e["displayName"], e["name"]);
            e["name"].as_str().unwrap().to_string()
        };
        let blanks = [json!([]), json!([""]), json!(["  ", null]), Value::Null];
        for names in blanks.clone() {
            let a = json!({ "id": id, "names": names, "hw": "Dell R640", "addresses": ["10.0.0.9"], "macs": ["a0:36:9f:00:00:01"] });
            assert_eq!(name(a), "Dell R640", "names {names}");
        }
        assert_eq!(
            name(json!({ "id": id, "names": ["", "host-9"], "hw": "Dell" })),
            "host-9",
            "the first usable name"
        );
        for hw in [json!(""), json!(" "), Value::Null] {
            let a = json!({ "id": id, "names": [""], "hw": hw, "addresses": ["", "10.0.0.9"], "macs": ["a0:36:9f:00:00:01"] });
            assert_eq!(name(a), "10.0.0.9", "hw {hw}");
            let a = json!({ "id": id, "names": [], "hw": hw, "addresses": [], "macs": ["a0:36:9f:00:00:01"] });
            assert_eq!(name(a), "a0:36:9f:00:00:01");
            let a = json!({ "id": id, "names": [], "hw": hw, "addresses": [" "], "macs": [] });
            assert_eq!(name(a), id);
        }
        let tagged = json!({ "id": id, "names": [""], "hw": "", "tags": { "name": "  " } });
        let e = asset_entity(tagged.clone()).unwrap();
        assert_eq!(e["displayName"], id, "a blank name tag does not override");
        for blank in [json!(""), json!("  "), Value::Null] {
            assert!(asset_entity(json!({ "id": blank, "names": ["h"] })).is_none());
        }
    }

    #[test]
    fn orgs_sites_and_users_without_a_name_fall_back() {
        for blank in [json!(""), json!(" "), Value::Null] {
            let o = org_entity(&json!({ "id": "org-0000001", "name": blank })).unwrap();
            assert_eq!(
                (o["name"].as_str(), o["displayName"].as_str()),
                (Some("org-0000001"), Some("org-0000001"))
            );
            let s = site_entity(&json!({ "id": "site-000001", "name": blank })).unwrap();
            assert_eq!(
                (s["name"].as_str(), s["displayName"].as_str()),
                (Some("site-000001"), Some("site-000001"))
            );
            let u = |first: &Value, last: &Value, email: &Value| {
                let u = json!({ "id": "user-000001", "first_name": first, "last_name": last, "email": email });
                let e = user_entity(&u).unwrap();
                assert_eq!(e["displayName"], e["name"]);
                e["name"].as_str().unwrap().to_string()
            };
            assert_eq!(u(&blank, &json!("Lovelace"), &blank), "Lovelace");
            assert_eq!(u(&json!("Ada"), &blank, &blank), "Ada");
            assert_eq!(u(&blank, &blank, &json!("ada@x.io")), "ada@x.io");
            assert_eq!(u(&blank, &blank, &blank), "user-000001");
            assert!(org_entity(&json!({ "id": blank, "name": "Org" })).is_none());
            assert!(site_entity(&json!({ "id": blank, "name": "Site" })).is_none());
            assert!(user_entity(&json!({ "id": blank, "email": "a@b.c" })).is_none());
        }
        let named = org_entity(&json!({ "id": "org-0000001", "name": "Acme" })).unwrap();
        assert_eq!(named["displayName"], "Acme");
    }

    #[test]
    fn an_account_with_a_blank_instance_name_is_named_by_the_instance_id() {
        let a = account_entity("2b096711-4d28-4417-8635-53f4e0fdd3ef", "", "rz-prod");
        assert_eq!(
            (a["name"].as_str(), a["displayName"].as_str()),
            (Some("rz-prod"), Some("rz-prod"))
        );
        let a = account_entity("2b096711-4d28-4417-8635-53f4e0fdd3ef", "runZero", "rz-prod");
        assert_eq!(a["name"], "runZero");
        assert_eq!(a["vendor"], "runZero");
    }

    /// The recorded samples, when `../shared` is beside the project.
    #[test]
    fn samples_convert() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/providers/samples/runzero");
        let read = |f: &str| -> Option<Value> {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).ok()?).ok()
        };
        let (Some(orgs), Some(users), Some(sites), Some(assets)) = (
            read("account-orgs.json"),
            read("account-users.json"),
            read("account-sites.json"),
            read("export-org-assets.json"),
        ) else {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        };
        for o in orgs.as_array().unwrap() {
            let e = org_entity(o).unwrap();
            // `export_token_last_used_by` (redacted in the recording too) is metadata and kept.
            let text = Value::Object(e).to_string();
            assert!(!text.contains("REDACTED_DOWNLOAD_TOKEN"), "{text}");
            assert!(!text.contains("REDACTED_EXPORT_TOKEN"), "{text}");
        }
        assert!(
            users
                .as_array()
                .unwrap()
                .iter()
                .all(|u| user_entity(u).is_some())
        );
        assert!(
            sites
                .as_array()
                .unwrap()
                .iter()
                .all(|s| site_entity(s).is_some())
        );
        let second = asset_entity(assets[1].clone()).unwrap();
        assert_eq!(second["lastSeenOn"], Value::Null);
        let first = asset_entity(assets[0].clone()).unwrap();
        assert_eq!(first["privateIpAddresses"], json!(["192.168.0.1"]));
        assert_eq!(first["hostname"], "ROUTER");
        assert_eq!(first["osType"], "linux");
        for u in users.as_array().unwrap() {
            let e = user_entity(u).unwrap();
            assert_eq!(e["shortLoginId"], json!(["first.last"]));
            assert_eq!(e["email"], json!(["first.last@example.com"]));
        }
        assert_eq!(second["macAddresses"], json!([]));
    }
}
