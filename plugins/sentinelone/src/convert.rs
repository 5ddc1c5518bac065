//! SentinelOne API objects to JupiterOne entities and relationships (the reference
//! integration graph-sentinelone at 4c0e4d5; deviations in this crate's README).

use corral_sdk::entity::{End, EntityBuilder, Object, Properties, RelationshipBuilder};
use corral_sdk::props::{
    allowed as scalar, first_readable, readable, readable_text, time_ms as ms, without,
};
use serde_json::{Map, Value, json};

pub const ACCOUNT_TYPE: &str = "sentinelone_account";
pub const GROUP_TYPE: &str = "sentinelone_group";
pub const AGENT_TYPE: &str = "sentinelone_agent";
pub const PROTECTS_TYPE: &str = "sentinelone_agent_protects_device";

pub fn account_key(instance_id: &str) -> String {
    format!("sentinelone_account-{instance_id}")
}

pub fn group_key(id: &str) -> String {
    format!("sentinelone_group-id-{id}")
}

pub fn agent_key(id: &str) -> String {
    format!("sentinelone_agent-id-{id}")
}

/// The account, named by the instance's name, or its id when the name is blank.
pub fn account_entity(instance_id: &str, instance_name: &str) -> Object {
    let name = if instance_name.trim().is_empty() {
        instance_id
    } else {
        instance_name
    };
    EntityBuilder::new(account_key(instance_id), ACCOUNT_TYPE, "Account")
        .prop("name", name)
        .prop("displayName", name)
        .prop("vendor", "SentinelOne")
        .build()
}

/// An id field as text (S1 ids are numeric strings; a number is accepted too), unless it
/// is missing, `""` or blank: a key built from it would be shared by every such object.
fn id_text(v: &Value, f: &str) -> Option<String> {
    match v.get(f) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A JavaScript template of a raw field: `undefined` or `null` print as such.
fn js_text(v: &Value, f: &str) -> String {
    match v.get(f) {
        None => "undefined".into(),
        Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

const GROUP_FIELDS: &[&str] = &[
    "inherits",
    "creator",
    "filterName",
    "totalAgents",
    "filterId",
    "rank",
    "siteId",
    "isDefault",
    "creatorId",
    "type",
];

/// The group's `displayName`: the reference's `` `${name} ${type}` `` of the raw fields
/// (so `"Default Group undefined"` without a type), but for a group whose name is blank
/// or `null`, `name` is its id and the type follows only when there is one
/// (`"<id> static"`, `"<id>"`), never `"null static"`.
fn group_display_name(g: &Value, id: &str) -> String {
    if readable(g.get("name")).is_some() {
        return format!("{} {}", js_text(g, "name"), js_text(g, "type"));
    }
    match readable(g.get("type")) {
        Some(t) => format!("{id} {t}"),
        None => id.to_string(),
    }
}

pub fn group_entity(group: Value) -> Option<Object> {
    let g = &group;
    let id = id_text(g, "id")?;
    let name = readable(g.get("name")).unwrap_or_else(|| id.clone());
    let mut e = EntityBuilder::new(group_key(&id), GROUP_TYPE, "Group")
        .prop("id", id.clone())
        .prop("name", name)
        .prop("displayName", group_display_name(g, &id));
    for f in GROUP_FIELDS {
        e = e.opt(f, scalar(g.get(*f)));
    }
    for (at, on) in [("createdAt", "createdOn"), ("updatedAt", "updatedOn")] {
        e = e.opt(at, ms(g, at)).opt(on, ms(g, at));
    }
    Some(e.raw_data(without(group, &["registrationToken"])).build())
}

const AGENT_FIELDS: &[&str] = &[
    "domain",
    "appsVulnerabilityStatus",
    "siteName",
    "coreCount",
    "totalMemory",
    "inRemoteShellSession",
    "osArch",
    "allowRemoteShell",
    "scanStatus",
    "consoleMigrationStatus",
    "osType",
    "externalIp",
    "computerName",
    "modelName",
    "uuid",
    "encryptedApplications",
    "adComputerDistinguishedName",
    "osUsername",
    "groupName",
    "cpuId",
    "machineType",
    "groupIp",
    "osRevision",
    "siteId",
    "isPendingUninstall",
    "groupId",
    "isActive",
    "agentVersion",
    "networkStatus",
    "lastLoggedInUserName",
    "osName",
    "mitigationMode",
    "cpuCount",
    "isUninstalled",
    "isUpToDate",
    "mitigationModeSuspicious",
    "isDecommissioned",
    "missingPermissions",
];

const TIME_PAIRS: &[(&str, &str)] = &[
    ("createdAt", "createdOn"),
    ("updatedAt", "updatedOn"),
    ("policyUpdatedAt", "policyUpdatedOn"),
    ("registeredAt", "registeredOn"),
    ("groupUpdatedAt", "groupUpdatedOn"),
    ("scanAbortedAt", "scanAbortedOn"),
    ("scanStartedAt", "scanStartedOn"),
    ("scanFinishedAt", "scanFinishedOn"),
];

/// The agent's `function`: the data model's `HostAgent` wants a list of its enum values.
/// The reference's `"anti-malware"` is kept in it, after `"endpoint-protection"` (what
/// SentinelOne's agent is: an endpoint protection platform).
pub const AGENT_FUNCTION: [&str; 2] = ["endpoint-protection", "anti-malware"];

/// The agent's name: its `computerName`, else its serial number, else its id (the
/// reference goes from the computer name straight to the id).
pub fn agent_name(d: &Value, id: &str) -> String {
    first_readable(d, &["computerName", "serialNumber"]).unwrap_or_else(|| id.to_string())
}

/// The agent entity and, when `tags` is missing, a warning to log. The record becomes
/// its `_rawData`.
pub fn agent_entity(agent: Value) -> Option<(Object, Option<String>)> {
    let d = &agent;
    let id = id_text(d, "id")?;
    let name = agent_name(d, &id);
    let mut e = EntityBuilder::new(agent_key(&id), AGENT_TYPE, "HostAgent")
        .prop("id", id.clone())
        .prop("function", json!(AGENT_FUNCTION))
        .prop("name", name.clone())
        .prop("displayName", name);
    for f in AGENT_FIELDS {
        e = e.opt(f, scalar(d.get(*f)));
    }
    e = e
        .opt("infected", scalar(d.get("infected")))
        .opt("isInfected", scalar(d.get("infected")))
        .opt("activeThreats", scalar(d.get("activeThreats")))
        .opt("activeThreatsCount", scalar(d.get("activeThreats")))
        .opt("serial", scalar(d.get("serialNumber")));
    for (at, on) in TIME_PAIRS {
        // The `…At` names are deprecated twins holding the same epoch ms; the data model
        // wants only `…On` as times, so the twins are kept under their reference names.
        e = e.opt(at, ms(d, at)).opt(on, ms(d, at));
    }
    e = e
        .opt("osStartTime", ms(d, "osStartTime"))
        .opt("lastActiveDate", ms(d, "lastActiveDate"))
        .prop(
            "lastSeenOn",
            ms(d, "lastActiveDate").map_or(Value::Null, Value::from),
        );
    let macs = mac_addresses(d.get("networkInterfaces"));
    e = e
        .prop("macAddress", macs.clone())
        .prop("macAddresses", macs);
    // Tags before `build`, so the builder holds `tag.*` to the host's rules too.
    let (e, warning) = apply_tags(e, d.get("tags"));
    Some((
        e.raw_data(without(agent, &["licenseKey", "tags"])).build(),
        warning,
    ))
}

/// `tag.<key>` properties, the `tags` list, and the `name`/`owner`/`email`/
/// `classification` overrides, as the reference applies them; with a warning to log when
/// the agent has no `tags` object. A `name` tag becomes `displayName` only when it is
/// readable as a name (not blank, at most 4096 characters). The builder then leaves out
/// any tag property the host would reject (a `tag.…On` key whose value is not an
/// integer, a value over 4096 characters), with a warning; the agent is kept.
fn apply_tags(mut e: EntityBuilder, tags: Option<&Value>) -> (EntityBuilder, Option<String>) {
    let Some(tags) = tags.filter(|t| t.is_object()) else {
        return (e, Some("agent has no tags object; no tags applied".into()));
    };
    let list = tags
        .get("sentinelone")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut flags: Vec<Value> = Vec::new();
    for t in &list {
        let (Some(key), Some(value)) = (
            t.get("key").and_then(Value::as_str),
            t.get("value").filter(|v| !v.is_null()),
        ) else {
            continue;
        };
        let raw = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        e = e.prop(
            &format!("tag.{key}"),
            corral_sdk::props::tag_value(&raw, false),
        );
        if raw.is_empty() || raw.eq_ignore_ascii_case("true") {
            flags.push(key.into());
        }
        if key.eq_ignore_ascii_case("name") && readable_text(&raw) {
            e = e.prop("displayName", raw.clone());
        }
        if matches!(key, "owner" | "email" | "classification") {
            e = e.prop(key, raw.to_lowercase());
        }
    }
    if !flags.is_empty() {
        e = e.prop("tags", Value::Array(flags));
    }
    (e, None)
}

/// MACs of interfaces with a public address, then their gateways' MACs, de-duplicated in
/// interface order.
pub fn mac_addresses(interfaces: Option<&Value>) -> Vec<Value> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |m: &str| {
        if !out.iter().any(|x| x == m) {
            out.push(m.to_string());
        }
    };
    for nic in interfaces.and_then(Value::as_array).into_iter().flatten() {
        let ips = ["inet", "inet6"]
            .iter()
            .flat_map(|f| nic.get(*f).and_then(Value::as_array).into_iter().flatten())
            .filter_map(Value::as_str);
        let has_public = ips.clone().any(|ip| !is_private_ip(ip));
        if let Some(mac) = nic.get("physical").and_then(Value::as_str)
            && has_public
            && !is_zero_mac(mac)
        {
            push(mac);
        }
        let gateway_ip = nic
            .get("gatewayIp")
            .and_then(Value::as_str)
            .is_some_and(|g| !g.is_empty());
        if let Some(gw) = nic.get("gatewayMacAddress").and_then(Value::as_str)
            && gateway_ip
            && !gw.is_empty()
            && !is_zero_mac(gw)
        {
            push(gw);
        }
    }
    out.into_iter().map(Value::from).collect()
}

fn is_zero_mac(m: &str) -> bool {
    m.split(':').all(|p| p.chars().all(|c| c == '0'))
}

/// The reference's private-address patterns: anchored IPv4 ranges and lower-case IPv6
/// prefixes (so `FE80::1` counts as public, as in the reference).
pub fn is_private_ip(ip: &str) -> bool {
    if let Some(octets) = dotted_quad(ip) {
        return match octets {
            [10, ..] | [127, ..] => true,
            [172, b, ..] => (16..=31).contains(&b),
            [192, 168, ..] | [169, 254, ..] => true,
            _ => false,
        };
    }
    let hex2 = |s: &str| {
        s.len() >= 3
            && s.as_bytes()[..2].iter().all(|b| b.is_ascii_hexdigit())
            && s.as_bytes()[2] == b':'
    };
    let hex1 =
        |s: &str| s.len() >= 2 && s.as_bytes()[0].is_ascii_hexdigit() && s.as_bytes()[1] == b':';
    ip == "::1"
        || ["fc00::", "fd00::", "fe80::"]
            .iter()
            .any(|p| ip.starts_with(p))
        || ["fc", "fd"]
            .iter()
            .any(|p| ip.strip_prefix(p).is_some_and(hex2))
        || ["fe8", "fe9", "fea", "feb"]
            .iter()
            .any(|p| ip.strip_prefix(p).is_some_and(hex1))
}

fn dotted_quad(ip: &str) -> Option<[u16; 4]> {
    let parts: Vec<&str> = ip.split('.').collect();
    if parts.len() != 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut out = [0u16; 4];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = p.parse().ok()?;
    }
    Some(out)
}

pub fn account_group(account: &str, group: &str) -> Object {
    RelationshipBuilder::direct(
        "HAS",
        End {
            key: account,
            entity_type: ACCOUNT_TYPE,
        },
        End {
            key: group,
            entity_type: GROUP_TYPE,
        },
    )
    .build()
}

pub fn group_agent(group: &str, agent: &str) -> Object {
    RelationshipBuilder::direct(
        "HAS",
        End {
            key: group,
            entity_type: GROUP_TYPE,
        },
        End {
            key: agent,
            entity_type: AGENT_TYPE,
        },
    )
    .build()
}

/// The agent PROTECTS the device it runs on, matched by serial, then hostname, then MAC
/// (JupiterOne's mapped-relationship form; the device is never created from here).
pub fn protects_device(agent: &Object) -> Option<Object> {
    let key = agent.get("_key")?.as_str()?;
    let mut target = Map::new();
    target.insert("_class".into(), "Device".into());
    let mut filters = Vec::new();
    // A blank serial or hostname would match every device with the same blank value.
    let serial = agent
        .get("serial")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let host = agent
        .get("computerName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let mac = agent
        .get("macAddresses")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .and_then(Value::as_str);
    for (prop, value) in [("serial", serial), ("hostname", host), ("macAddress", mac)] {
        if let Some(v) = value {
            target.insert(prop.into(), v.into());
            filters.push(json!(["_class", prop]));
        }
    }
    if filters.is_empty() {
        return None;
    }
    let mut r = Object::new();
    r.insert("_key".into(), format!("{key}|protects|device").into());
    r.insert("_type".into(), PROTECTS_TYPE.into());
    r.insert("_class".into(), "PROTECTS".into());
    r.insert("displayName".into(), "PROTECTS".into());
    r.insert(
        "_mapping".into(),
        json!({
            "relationshipDirection": "FORWARD",
            "sourceEntityKey": key,
            "targetFilterKeys": filters,
            "targetEntity": target,
            "skipTargetCreation": true,
        }),
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_address_rule_is_the_references() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.9.9",
            "127.0.0.1",
            "fe80::1",
            "fd12:3456::1",
            "fc00::1",
            "::1",
            "fe9a::1",
        ] {
            assert!(is_private_ip(ip), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "2001:db8::1",
            "FE80::1",
            "1.2.3.4.5",
            "10.0.0.1000",
        ] {
            assert!(!is_private_ip(ip), "{ip}");
        }
    }

    #[test]
    fn macs_need_a_public_address_and_skip_zero() {
        let nics = json!([
            { "physical": "aa:aa:aa:aa:aa:01", "inet": ["10.0.0.2"], "inet6": ["2606:4700::1"], "gatewayIp": "10.0.0.1", "gatewayMacAddress": "bb:bb:bb:bb:bb:01" },
            { "physical": "aa:aa:aa:aa:aa:02", "inet": ["192.168.0.2"], "inet6": ["fe80::2"] },
            { "physical": "00:00:00:00:00:00", "inet": ["8.8.8.8"], "inet6": [] },
            { "physical": "aa:aa:aa:aa:aa:01", "inet": ["1.1.1.1"], "gatewayIp": "", "gatewayMacAddress": "cc:cc:cc:cc:cc:cc" },
        ]);
        assert_eq!(
            mac_addresses(Some(&nics)),
            vec![json!("aa:aa:aa:aa:aa:01"), json!("bb:bb:bb:bb:bb:01")]
        );
        assert!(mac_addresses(None).is_empty());
    }

    #[test]
    fn group_display_name_uses_raw_fields() {
        let g = json!({ "id": "7", "name": "Default Group", "createdAt": "2018-02-27T04:49:26.257525Z", "registrationToken": "secret" });
        let e = group_entity(g.clone()).unwrap();
        assert_eq!(e["_key"], "sentinelone_group-id-7");
        assert_eq!(e["displayName"], "Default Group undefined");
        assert_eq!(e["createdOn"], 1_519_706_966_257i64);
        assert!(!e["_rawData"].to_string().contains("secret"));
        let untyped = group_entity(json!({ "id": "9", "name": "Ops", "type": null })).unwrap();
        assert_eq!(
            untyped["displayName"], "Ops null",
            "the reference's template"
        );
    }

    #[test]
    fn a_group_without_a_name_is_named_and_displayed_by_its_id() {
        for blank in [json!(""), json!("  "), Value::Null] {
            let g = json!({ "id": "8", "name": blank, "type": "static" });
            let e = group_entity(g.clone()).unwrap();
            assert_eq!(
                (e["name"].as_str(), e["displayName"].as_str()),
                (Some("8"), Some("8 static")),
                "name {blank}"
            );
            assert_eq!(e["_key"], "sentinelone_group-id-8");
        }
        let bare = group_entity(json!({ "id": "8" })).unwrap();
        assert_eq!(
            (bare["name"].as_str(), bare["displayName"].as_str()),
            (Some("8"), Some("8"))
        );
        for id in [json!(""), json!(" "), Value::Null] {
            assert!(group_entity(json!({ "id": id, "name": "G" })).is_none());
        }
    }

    #[test]
    fn an_agent_without_a_computer_name_is_named_by_serial_then_id() {
        for blank in [json!(""), json!(" \t"), Value::Null] {
            let d =
                json!({ "id": "42", "computerName": blank, "serialNumber": "C02ABC", "tags": {} });
            let (e, _) = agent_entity(d.clone()).unwrap();
            assert_eq!(
                (e["name"].as_str(), e["displayName"].as_str()),
                (Some("C02ABC"), Some("C02ABC")),
                "computerName {blank}"
            );
            assert_eq!(e["computerName"], blank, "the raw field is kept");
            assert_eq!(e["_key"], "sentinelone_agent-id-42");
            // A blank hostname is no matching filter.
            let m = protects_device(&e).unwrap();
            assert_eq!(
                m["_mapping"]["targetFilterKeys"],
                json!([["_class", "serial"]])
            );
            for serial in [json!(""), json!(" "), Value::Null] {
                let d = json!({ "id": "42", "computerName": blank, "serialNumber": serial, "tags": {} });
                let (e, _) = agent_entity(d.clone()).unwrap();
                assert_eq!(
                    (e["name"].as_str(), e["displayName"].as_str()),
                    (Some("42"), Some("42"))
                );
                assert!(protects_device(&e).is_none(), "nothing to match by");
            }
        }
        // A `name` tag still sets displayName; a blank one does not.
        let tagged = |v: &str| {
            let d = json!({ "id": "42", "computerName": "", "serialNumber": "S1",
                "tags": { "sentinelone": [{ "key": "name", "value": v }] } });
            agent_entity(d.clone()).unwrap().0["displayName"].clone()
        };
        assert_eq!(tagged("laptop-7"), "laptop-7");
        assert_eq!(tagged("  "), "S1");
        for id in [json!(""), json!("  "), Value::Null] {
            assert!(agent_entity(json!({ "id": id, "computerName": "h" })).is_none());
        }
        assert_eq!(
            agent_entity(json!({ "id": 17, "tags": {} })).unwrap().0["_key"],
            "sentinelone_agent-id-17"
        );
    }

    #[test]
    fn an_account_with_a_blank_instance_name_is_named_by_the_instance_id() {
        let a = account_entity("s1-prod-instance", " ");
        assert_eq!(
            (a["name"].as_str(), a["displayName"].as_str()),
            (Some("s1-prod-instance"), Some("s1-prod-instance"))
        );
        let named = account_entity("s1-prod-instance", "SentinelOne prod");
        assert_eq!(named["displayName"], "SentinelOne prod");
        assert_eq!(named["vendor"], "SentinelOne");
    }

    #[test]
    fn agent_tags_and_renames() {
        let d = json!({
            "id": "42", "computerName": "HOST-1", "serialNumber": "SER1", "infected": true, "activeThreats": 2,
            "licenseKey": "LIC", "osUsername": null, "lastActiveDate": "2024-05-16T09:10:01.947000Z",
            "tags": { "sentinelone": [
                { "key": "owner", "value": "John.Doe@Example.com" }, { "key": "Name", "value": "renamed" },
                { "key": "count", "value": "12" }, { "key": "on", "value": "TRUE" }, { "key": "off", "value": "false" },
                { "key": "skip", "value": null },
            ]},
        });
        let (e, warning) = agent_entity(d.clone()).unwrap();
        assert!(warning.is_none());
        assert_eq!(e["_key"], "sentinelone_agent-id-42");
        assert_eq!(
            e["function"],
            json!(["endpoint-protection", "anti-malware"])
        );
        assert_eq!(e["displayName"], "renamed");
        assert_eq!(e["owner"], "john.doe@example.com");
        assert_eq!(e["tag.count"], 12);
        assert_eq!(e["tag.on"], "TRUE");
        assert_eq!(e["tag.off"], false);
        assert!(!e.contains_key("tag.skip"));
        assert_eq!(e["tags"], json!(["on"]));
        assert_eq!(
            (e["infected"].as_bool(), e["isInfected"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(e["activeThreatsCount"], 2);
        assert_eq!(e["serial"], "SER1");
        assert_eq!(e["osUsername"], Value::Null, "null from the API is kept");
        assert_eq!(e["lastSeenOn"], 1_715_850_601_947i64);
        assert!(!e.contains_key("licenseKey") && !e["_rawData"].to_string().contains("LIC"));
        assert!(
            !e["_rawData"].to_string().contains("owner"),
            "tags are not in _rawData"
        );
    }

    /// Issue 12 (the host's property rules): user tags and fields that would have the
    /// host reject the agent are left out with a warning naming the agent and the
    /// property; the agent, its other tags and its name are kept.
    #[test]
    fn tags_and_fields_the_host_would_reject_are_left_out_and_the_agent_kept() {
        corral_sdk::log::take_captured();
        let long = "v".repeat(4097);
        let d = json!({
            "id": "43", "computerName": "HOST-2", "serialNumber": "SER2",
            "lastActiveDate": "2024—05—16", "createdAt": "２０２４-０１-０１T00:00:00Z",
            "missingPermissions": ["a", 1], "domain": long,
            "tags": { "sentinelone": [
                { "key": "expiresOn", "value": "never" }, { "key": "reviewedOn", "value": "1700000000000" },
                { "key": "decidedOn", "value": 1.5 }, { "key": "note", "value": long },
                { "key": "name", "value": long }, { "key": "owner", "value": long },
                { "key": "team", "value": "blue" },
            ]},
        });
        let (e, _) = agent_entity(d.clone()).unwrap();
        assert_eq!(e["_key"], "sentinelone_agent-id-43");
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("HOST-2"), Some("HOST-2")),
            "an over-long name tag is no display name"
        );
        for gone in [
            "tag.expiresOn",
            "tag.decidedOn",
            "tag.note",
            "tag.name",
            "tag.owner",
            "owner",
            "missingPermissions",
            "domain",
            "createdOn",
            "createdAt",
        ] {
            assert!(!e.contains_key(gone), "{gone}");
        }
        assert_eq!(
            e["lastSeenOn"],
            Value::Null,
            "an unparsable date is no date"
        );
        assert_eq!(e["tag.reviewedOn"], 1_700_000_000_000i64);
        assert_eq!(e["tag.team"], "blue");
        let mut warned: Vec<String> = corral_sdk::log::take_captured()
            .iter()
            .filter(|w| w.field("key") == Some("sentinelone_agent-id-43"))
            .filter_map(|w| w.field("property").map(String::from))
            .collect();
        warned.sort();
        assert_eq!(
            warned,
            [
                "domain",
                "owner",
                "tag.decidedOn",
                "tag.expiresOn",
                "tag.name",
                "tag.note",
                "tag.owner"
            ],
            "`missingPermissions` (mixed) has no property shape: left out by `allowed`"
        );
        // The mapped relationship is still made, from the kept serial.
        let m = protects_device(&e).unwrap();
        assert_eq!(m["_mapping"]["targetEntity"]["serial"], "SER2");
    }

    #[test]
    fn missing_tags_and_names_fall_back() {
        let (e, warning) =
            agent_entity(json!({ "id": "9", "tags": null, "lastActiveDate": null })).unwrap();
        assert!(warning.is_some());
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("9"), Some("9"))
        );
        assert_eq!(
            e["lastSeenOn"],
            Value::Null,
            "present, as HostAgent requires"
        );
        assert_eq!(
            e["function"],
            json!(["endpoint-protection", "anti-malware"])
        );
        assert_eq!(e["macAddresses"], json!([]));
    }

    #[test]
    fn protects_relationship_is_mapped() {
        let (e, _) =
            agent_entity(json!({ "id": "1", "computerName": "h1", "serialNumber": "S" })).unwrap();
        let r = protects_device(&e).unwrap();
        assert_eq!(r["_key"], "sentinelone_agent-id-1|protects|device");
        assert_eq!(
            r["_mapping"]["targetEntity"],
            json!({ "_class": "Device", "serial": "S", "hostname": "h1" })
        );
        assert_eq!(
            r["_mapping"]["targetFilterKeys"],
            json!([["_class", "serial"], ["_class", "hostname"]])
        );
    }

    /// The reconstructed samples, when `../shared` is beside the project.
    #[test]
    fn samples_convert_as_the_spec_says() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/providers/samples/sentinelone");
        let read = |f: &str| -> Option<Value> {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).ok()?).ok()
        };
        let (Some(page1), Some(page2)) = (read("agents.json"), read("agents-page-2.json")) else {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        };
        let agents = page1["data"].as_array().unwrap();
        let (first, _) = agent_entity(agents[0].clone()).unwrap();
        assert_eq!(
            first["macAddresses"],
            json!(["3c:22:fb:12:34:56", "a4:91:b1:aa:bb:cc"])
        );
        let (second, _) = agent_entity(agents[1].clone()).unwrap();
        assert_eq!(second["macAddresses"], json!([]));
        let (last, warning) = agent_entity(page2["data"][0].clone()).unwrap();
        assert!(warning.is_some());
        assert_eq!(last["lastSeenOn"], Value::Null);
        assert_eq!(last["name"], page2["data"][0]["id"]);
    }
}
