//! Which network addresses a guest's requests may reach.
//!
//! Loopback, private, link-local (cloud metadata included), carrier-grade NAT and other
//! special ranges are refused unless the grant's `allowPrivateNetworks` is true, or the
//! rule that allowed the request names that IP literal (or `localhost`) itself. IP
//! literals are checked before sending; hostnames are checked after DNS, in the resolver
//! the run's HTTP client connects through, so what is checked is what is dialled.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Static host entries that take precedence over DNS (like `/etc/hosts`, per runtime).
pub type StaticHosts = Arc<HashMap<String, Vec<IpAddr>>>;

/// `host:port` of a URL (the scheme's port when none is written): how the operator's
/// config URLs and a request's URL are compared by the address rules.
pub fn host_port(url: &url::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// The range a restricted address falls in, or `None` for a public address.
pub fn restricted_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
    {
        return Some("cloud metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() {
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link-local");
    }
    if a == 100 && (64..128).contains(&b) {
        return Some("carrier-grade NAT");
    }
    if a == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || a >= 240
        || ip.is_documentation()
        || (a == 198 && (b == 18 || b == 19))
    {
        return Some("reserved");
    }
    None
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restricted_v4(v4);
    }
    let seg = ip.segments();
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) forms carry an IPv4 address.
    if (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4])
        || (seg[0..6] == [0; 6] && seg[6] != 0)
    {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return restricted_v4(v4);
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Some("reserved");
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some("private (unique local)");
    }
    if seg[0] & 0xffc0 == 0xfe80 || seg[0] & 0xffc0 == 0xfec0 {
        return Some("link-local");
    }
    None
}

/// The host part of a URL resource pattern (`scheme://host[:port]/…`), lower-cased.
pub fn pattern_host(pattern: &str) -> Option<String> {
    let rest = pattern.split_once("://")?.1;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.find(']') {
        Some(end) => &authority[..=end],
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    Some(host.to_ascii_lowercase())
}

/// Whether the allowing resource names `host` itself (an IP literal or `localhost`).
pub fn names_host(allowing_resource: Option<&str>, host: &str) -> bool {
    allowing_resource
        .and_then(pattern_host)
        .is_some_and(|h| h == host.to_ascii_lowercase())
}

/// A hostname that resolved only to restricted addresses.
#[derive(Debug)]
pub struct RestrictedAddress {
    pub host: String,
    pub addresses: String,
}

impl std::fmt::Display for RestrictedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to restricted addresses: {}; allowPrivateNetworks is false",
            self.host, self.addresses
        )
    }
}

impl std::error::Error for RestrictedAddress {}

/// The resolver of a run's HTTP client: static entries, then DNS; restricted addresses
/// are dropped unless private networks are allowed (or the name is `localhost`, which
/// the request check only lets through when the allowing rule names it).
#[derive(Clone)]
pub struct CheckedResolver {
    pub allow_private: bool,
    pub hosts: StaticHosts,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<IpAddr> = match this.hosts.get(&host) {
                Some(ips) => ips.clone(),
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .map(|a| a.ip())
                    .collect(),
            };
            let exempt = this.allow_private || host == "localhost";
            let (ok, refused): (Vec<IpAddr>, Vec<IpAddr>) = found
                .into_iter()
                .partition(|ip| exempt || restricted_range(*ip).is_none());
            if ok.is_empty() {
                let addresses = refused
                    .iter()
                    .map(|ip| format!("{ip} ({})", restricted_range(*ip).unwrap_or("restricted")))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(RestrictedAddress { host, addresses }) as _);
            }
            let addrs: Addrs = Box::new(ok.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_ranges() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.20.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("cloud metadata")),
            ("169.254.1.1", Some("link-local")),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("0.0.0.0", Some("reserved")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("64:ff9b::a9fe:a9fe", Some("cloud metadata")),
            ("fd00:ec2::254", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
        ];
        for (ip, want) in cases {
            assert_eq!(restricted_range(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn allowing_resource_must_name_the_host() {
        assert!(names_host(Some("http://127.0.0.1:8080/api/*"), "127.0.0.1"));
        assert!(names_host(Some("http://LOCALHOST:8080/*"), "localhost"));
        assert!(names_host(Some("http://[::1]:8080/*"), "[::1]"));
        assert!(!names_host(Some("http://*/*"), "127.0.0.1"));
        assert!(!names_host(Some("*"), "127.0.0.1"));
        assert!(!names_host(None, "127.0.0.1"));
    }
}
