//! Standard data-model properties in the shapes JupiterOne's current class schemas
//! (`@jupiterone/data-model` 0.64) require: lists where the schema wants an array of
//! strings (`email`, `username`, `shortLoginId`, `deviceId`, the address lists, `fqdn`),
//! values that pass the schema's formats and patterns (e-mail, IPv4/IPv6, MAC, host
//! name), and `null` where the provider has nothing.
//!
//! Every helper reads provider text and never invents a value: what does not parse is
//! left out (it stays in `_rawData`), and a list with nothing in it is `null`.

use serde_json::Value;
use std::net::IpAddr;

/// `v` as a value, or `null`: for a property the schema requires to be present and
/// allows to be `null`.
pub fn or_null<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

/// The non-blank strings of `items`, de-duplicated in order, as a JSON array; `null`
/// when there are none (`username`, `shortLoginId`, `deviceId`).
pub fn string_list<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for s in items {
        let s = s.as_ref();
        if !s.trim().is_empty() && !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    list_or_null(out)
}

fn list_or_null(items: Vec<String>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items.into_iter().map(Value::from).collect())
    }
}

/// Characters the schema's `email` format allows in the local part besides letters and
/// digits (ajv-formats' full `email` format).
const LOCAL_CHARS: &str = "!#$%&'*+/=?^_`{|}~-";

/// Whether `s` passes the data model's `email` format: dot-separated atoms of letters,
/// digits and `!#$%&'*+/=?^_`{|}~-`, `@`, then two or more host labels (letters, digits,
/// inner hyphens).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atom_ok = |a: &str| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || LOCAL_CHARS.contains(c))
    };
    let labels: Vec<&str> = domain.split('.').collect();
    local.split('.').all(atom_ok) && labels.len() >= 2 && labels.iter().all(|l| dns_label(l))
}

/// A DNS label: letters and digits, hyphens only inside, at most 63 characters.
fn dns_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The e-mail addresses of `items` that pass the `email` format, trimmed and
/// de-duplicated, as a list; `null` when there are none (`User.email`).
pub fn email_list<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for s in items {
        let s = s.as_ref().trim();
        if is_email(s) && !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    list_or_null(out)
}

/// The part of an e-mail address before the `@` (`first.last` of
/// `first.last@example.com`): JupiterOne's `shortLoginId` of a user who logs in by
/// e-mail. `None` when `email` is not an address.
pub fn email_local_part(email: &str) -> Option<String> {
    let email = email.trim();
    is_email(email).then(|| email.split_once('@').map(|(l, _)| l.to_string()))?
}

/// A full name split for `firstName`/`lastName`: the first word, and the remaining words
/// (`"Mary Ann Smith"` gives `Mary` and `Ann Smith`); one word is a first name only;
/// a blank name gives neither.
pub fn split_name(full: &str) -> (Option<String>, Option<String>) {
    let mut words = full.split_whitespace();
    let first = words.next().map(String::from);
    let rest: Vec<&str> = words.collect();
    let last = (!rest.is_empty()).then(|| rest.join(" "));
    (first, last)
}

/// An IP address from provider text: trimmed, without an IPv6 zone (`%en0`).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    let t = t.split_once('%').map_or(t, |(a, _)| a);
    t.parse().ok()
}

/// Whether `ip` is an internal address rather than a public one: IPv4 private
/// (RFC 1918), shared (100.64/10), loopback, link-local, unspecified or broadcast; IPv6
/// loopback, unspecified, unique-local (fc00::/7), link-local or site-local (fe80::/9),
/// and an IPv4-mapped address by its IPv4 part.
pub fn is_private_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(&IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xff80) == 0xfe80
        }
    }
}

/// A device's addresses sorted into the four lists the `Device` schema requires:
/// `ipv4Addresses`, `ipv6Addresses`, `publicIpAddresses`, `privateIpAddresses`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub public: Vec<String>,
    pub private: Vec<String>,
}

impl Addresses {
    /// Adds `text` if it is an IP address (in its canonical form); returns whether it was.
    pub fn add(&mut self, text: &str) -> bool {
        let Some(ip) = parse_ip(text) else {
            return false;
        };
        let s = ip.to_string();
        let push = |list: &mut Vec<String>| {
            if !list.contains(&s) {
                list.push(s.clone());
            }
        };
        push(if ip.is_ipv4() {
            &mut self.ipv4
        } else {
            &mut self.ipv6
        });
        push(if is_private_ip(&ip) {
            &mut self.private
        } else {
            &mut self.public
        });
        true
    }

    /// Adds every string of a JSON list (`["10.0.0.2", …]`); other values are skipped.
    pub fn add_all(&mut self, list: Option<&Value>) {
        for s in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.add(s);
        }
    }

    /// The four properties, each a list or `null` when empty.
    pub fn properties(&self) -> [(&'static str, Value); 4] {
        [
            ("ipv4Addresses", list_or_null(self.ipv4.clone())),
            ("ipv6Addresses", list_or_null(self.ipv6.clone())),
            ("publicIpAddresses", list_or_null(self.public.clone())),
            ("privateIpAddresses", list_or_null(self.private.clone())),
        ]
    }
}

/// A MAC address as the schema writes it: lower-case, colon-delimited
/// (`14:7d:da:4f:73:10`), from colon-, hyphen- or dot-delimited or bare hex. `None` when
/// it is not 6 bytes of hex.
pub fn mac_address(text: &str) -> Option<String> {
    let t = text.trim();
    let hex: String = match t.len() {
        17 if t.chars().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                c == ':' || c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        }) =>
        {
            t.chars().filter(char::is_ascii_hexdigit).collect()
        }
        14 if t.chars().enumerate().all(|(i, c)| {
            if i % 5 == 4 {
                c == '.'
            } else {
                c.is_ascii_hexdigit()
            }
        }) =>
        {
            t.chars().filter(char::is_ascii_hexdigit).collect()
        }
        12 if t.chars().all(|c| c.is_ascii_hexdigit()) => t.to_string(),
        _ => return None,
    };
    let hex = hex.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

/// The MAC addresses of `items` in the schema's form, de-duplicated in order; text that is
/// not a MAC address is left out.
pub fn mac_addresses<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for m in items.into_iter().filter_map(|s| mac_address(s.as_ref())) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// The host name the `Device` schema accepts for `name`: its first label (`web01` of
/// `web01.corp.example.com`) when that is 2-63 letters, digits and inner hyphens. An IP
/// address is not a host name.
pub fn hostname(name: &str) -> Option<String> {
    let name = name.trim();
    if parse_ip(name).is_some() {
        return None;
    }
    let label = name.split('.').next()?;
    (label.len() >= 2 && dns_label(label)).then(|| label.to_string())
}

/// `name` if it is a fully qualified domain name the `Device` schema accepts: 4-253
/// characters, two or more labels, the last 2-63 letters. mDNS names (`….local`) and IP
/// addresses are not.
pub fn fqdn(name: &str) -> Option<String> {
    let name = name.trim();
    let labels: Vec<&str> = name.split('.').collect();
    let (tld, hosts) = labels.split_last()?;
    let ok = (4..=253).contains(&name.len())
        && !hosts.is_empty()
        && (2..=63).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && !tld.eq_ignore_ascii_case("local")
        && hosts.iter().all(|l| dns_label(l));
    ok.then(|| name.to_string())
}

/// The `Device.osType` an operating system's name or family stands for: `darwin`
/// (macOS), `ios` (iOS, iPadOS, tvOS, watchOS, visionOS), `windows`, `android`,
/// `chromeos`, `linux` (distributions by name), `unix` (BSDs, Solaris, AIX, HP-UX), else
/// `other`. `None` for blank text.
pub fn os_type(text: &str) -> Option<&'static str> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let words: Vec<&str> = t
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |s: &str| t.contains(s);
    let word = |w: &str| words.contains(&w);
    let kind = if has("windows") {
        "windows"
    } else if has("android") {
        "android"
    } else if has("chrome os") || has("chromeos") || has("chromium os") {
        "chromeos"
    } else if has("macos") || has("mac os") || has("os x") || word("osx") || word("darwin") {
        "darwin"
    } else if ["ipados", "tvos", "watchos", "visionos", "iphone", "ipad"]
        .iter()
        .any(|w| word(w))
        || (word("ios") && !has("cisco"))
    {
        "ios"
    } else if [
        "linux",
        "ubuntu",
        "debian",
        "centos",
        "rhel",
        "fedora",
        "suse",
        "opensuse",
        "alpine",
        "gentoo",
        "raspbian",
        "mint",
        "kali",
        "rocky",
        "almalinux",
        "amzn",
    ]
    .iter()
    .any(|w| word(w))
        || has("red hat")
    {
        "linux"
    } else if [
        "freebsd",
        "openbsd",
        "netbsd",
        "dragonfly",
        "solaris",
        "sunos",
        "aix",
        "unix",
        "illumos",
    ]
    .iter()
    .any(|w| word(w))
        || has("hp-ux")
    {
        "unix"
    } else {
        "other"
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_deduplicated_and_empty_is_null() {
        assert_eq!(string_list(["a", "", " ", "a", "b"]), json!(["a", "b"]));
        assert_eq!(string_list(Vec::<String>::new()), Value::Null);
        assert_eq!(or_null(Some("x")), json!("x"));
        assert_eq!(or_null::<String>(None), Value::Null);
    }

    #[test]
    fn emails_follow_the_schema_format() {
        for ok in [
            "ada@example.com",
            "First.Last+tag@sub.example.co",
            "o'neil@x-y.io",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "ada@localhost",
            "a b@example.com",
            ".ada@example.com",
            "ada@-x.com",
            "a@b@c.com",
            "ada@example..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert_eq!(
            email_list([" ada@example.com ", "nope", "ada@example.com"]),
            json!(["ada@example.com"])
        );
        assert_eq!(email_list(["nope"]), Value::Null);
        assert_eq!(
            email_local_part("first.last@example.com").as_deref(),
            Some("first.last")
        );
        assert_eq!(email_local_part("first.last"), None);
    }

    #[test]
    fn names_split_at_the_first_word() {
        let s = |n: &str| split_name(n);
        assert_eq!(
            s("Ada Lovelace"),
            (Some("Ada".into()), Some("Lovelace".into()))
        );
        assert_eq!(
            s("  Mary  Ann Smith "),
            (Some("Mary".into()), Some("Ann Smith".into()))
        );
        assert_eq!(s("Cher"), (Some("Cher".into()), None));
        assert_eq!(s("  "), (None, None));
    }

    #[test]
    fn addresses_are_sorted_by_family_and_scope() {
        let mut a = Addresses::default();
        for ip in [
            "10.0.0.2",
            " 203.0.113.7 ",
            "10.0.0.2",
            "fe80::1%en0",
            "2001:DB8::1",
            "100.64.1.1",
            "::ffff:192.168.1.1",
            "not an ip",
            "",
        ] {
            a.add(ip);
        }
        assert_eq!(a.ipv4, ["10.0.0.2", "203.0.113.7", "100.64.1.1"]);
        assert_eq!(a.ipv6, ["fe80::1", "2001:db8::1", "::ffff:192.168.1.1"]);
        assert_eq!(a.public, ["203.0.113.7", "2001:db8::1"]);
        assert_eq!(
            a.private,
            ["10.0.0.2", "fe80::1", "100.64.1.1", "::ffff:192.168.1.1"]
        );
        let none = Addresses::default().properties();
        assert!(none.iter().all(|(_, v)| v.is_null()));
        let mut b = Addresses::default();
        b.add_all(Some(&json!(["172.16.5.4", 7, null, "fd00::5"])));
        assert_eq!(
            b.properties(),
            [
                ("ipv4Addresses", json!(["172.16.5.4"])),
                ("ipv6Addresses", json!(["fd00::5"])),
                ("publicIpAddresses", Value::Null),
                ("privateIpAddresses", json!(["172.16.5.4", "fd00::5"])),
            ]
        );
    }

    #[test]
    fn macs_are_lower_case_and_colon_delimited() {
        for (text, want) in [
            ("14:7D:DA:4F:73:10", Some("14:7d:da:4f:73:10")),
            ("14-7d-da-4f-73-10", Some("14:7d:da:4f:73:10")),
            ("147d.da4f.7310", Some("14:7d:da:4f:73:10")),
            ("147dda4f7310", Some("14:7d:da:4f:73:10")),
            ("14:7d:da:4f:73", None),
            ("zz:7d:da:4f:73:10", None),
            ("", None),
        ] {
            assert_eq!(mac_address(text).as_deref(), want, "{text}");
        }
        assert_eq!(
            mac_addresses(["AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff", "x"]),
            ["aa:bb:cc:dd:ee:ff"]
        );
    }

    #[test]
    fn host_names_and_fqdns_match_the_schema_patterns() {
        assert_eq!(
            hostname("RickandMorty-MBP").as_deref(),
            Some("RickandMorty-MBP")
        );
        assert_eq!(hostname("web01.corp.example.com").as_deref(), Some("web01"));
        for bad in ["Ada's MacBook", "x", "-a", "a_b", "10.0.0.1", "", "fe80::1"] {
            assert_eq!(hostname(bad), None, "{bad}");
        }
        assert_eq!(
            fqdn("web01.corp.example.com").as_deref(),
            Some("web01.corp.example.com")
        );
        for bad in [
            "web01",
            "host.local",
            "10.0.0.1",
            "a.b1",
            "-a.example.com",
            "a..com",
        ] {
            assert_eq!(fqdn(bad), None, "{bad}");
        }
    }

    #[test]
    fn os_types_by_name() {
        for (text, want) in [
            ("macOS", Some("darwin")),
            ("Apple Mac OS X", Some("darwin")),
            ("iOS", Some("ios")),
            ("iPadOS", Some("ios")),
            ("Cisco IOS", Some("other")),
            ("Microsoft Windows 10", Some("windows")),
            ("Ubuntu Linux", Some("linux")),
            ("Red Hat Enterprise", Some("linux")),
            ("FreeBSD", Some("unix")),
            ("Android", Some("android")),
            ("Chrome OS", Some("chromeos")),
            ("VMware ESXi", Some("other")),
            (" ", None),
        ] {
            assert_eq!(os_type(text), want, "{text}");
        }
    }
}
