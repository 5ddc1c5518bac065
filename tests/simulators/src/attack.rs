//! Endpoints for the adversarial tests: a redirect to anywhere, a 100 MB body, a body
//! that drips a byte at a time, bodies of any size, a provider echoing the credential
//! (raw or encoded, in a body, a header or a redirect), and plain answers.

use crate::server::{Drip, Provider, SimRequest, SimResponse};
use serde_json::json;
use std::time::Duration;

/// Size of `/big`: 100 MiB, streamed without a content-length.
pub const BIG_BYTES: usize = 100 << 20;

/// Lines of JSON `/lines` answers with.
pub const LINES: usize = 5000;

pub struct AttackSim;

impl Provider for AttackSim {
    fn authorized(&self, _req: &SimRequest) -> bool {
        true
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let ok = |body| SimResponse::json(200, &body);
        match req.path.as_str() {
            "/redirect" => {
                let to = req.query_param("to").unwrap_or("/");
                SimResponse::json(302, &json!({})).with_header("location", to)
            }
            "/big" => stream(Drip {
                chunk: 64 << 10,
                count: BIG_BYTES / (64 << 10),
                delay: Duration::ZERO,
            }),
            "/drip" => stream(Drip {
                chunk: 1,
                count: 60,
                delay: Duration::from_millis(500),
            }),
            "/public" => ok(json!({ "public": true })),
            // A provider whose hourly quota is `left` (another tool of the tenant spent
            // the rest), as Kandji-style rate-limit headers say.
            "/quota-left" => ok(json!({})).with_header(
                "x-ratelimit-remaining-hour",
                req.query_param("left").unwrap_or("0"),
            ),
            "/lines" => {
                let mut r = SimResponse::json(200, &json!(null));
                r.body = (0..LINES)
                    .map(|i| format!("{{\"n\":{i}}}\n"))
                    .collect::<String>()
                    .into_bytes();
                r
            }
            // `n` bytes (at most `BIG_BYTES`) with a content-length, or with `stream` chunked
            // in 16 KiB pieces (`n` rounded up to one).
            "/bytes" => {
                let n = req
                    .query_param("n")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(BIG_BYTES);
                if req.query_param("stream").is_some() {
                    return stream(Drip {
                        chunk: 16 << 10,
                        count: n.div_ceil(16 << 10),
                        delay: Duration::ZERO,
                    });
                }
                let mut r = SimResponse::json(200, &json!(null));
                r.headers = vec![("content-type".into(), "application/octet-stream".into())];
                r.body = vec![b'x'; n];
                r
            }
            // The bearer token echoed in the `form` of `encode`, in a JSON body and a header.
            "/api/echo-encoded" => {
                let echoed = encode(req.query_param("form").unwrap_or("raw"), &bearer(req));
                let mut r = SimResponse::json(200, &json!(null));
                r.body = format!("{{\"v\":\"{echoed}\"}}").into_bytes();
                r.with_header("x-echo", &echoed)
            }
            // A redirect to `to` with the bearer token (in the `form` of `encode`) appended
            // as `v`, as a provider leaking the credential into a URL would.
            "/api/redirect-echo" => {
                let to = req.query_param("to").unwrap_or("/");
                let echoed = encode(req.query_param("form").unwrap_or("raw"), &bearer(req));
                let sep = if to.contains('?') { '&' } else { '?' };
                SimResponse::json(302, &json!({}))
                    .with_header("location", &format!("{to}{sep}v={echoed}"))
            }
            // Echoes the request headers back, as some APIs' debug endpoints do.
            "/api/echo" => {
                let headers: serde_json::Map<String, serde_json::Value> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                    .collect();
                ok(json!({ "headers": headers }))
            }
            _ => ok(json!([])),
        }
    }
}

fn stream(drip: Drip) -> SimResponse {
    let mut r = SimResponse::json(200, &json!(null));
    r.headers = vec![("content-type".into(), "application/octet-stream".into())];
    r.stream = Some(drip);
    r
}

/// The bearer token of a request, or nothing.
fn bearer(req: &SimRequest) -> String {
    req.header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// `text` as a provider might echo it: `raw`; `json-u` (every character `\uXXXX`);
/// `json-slash` (`/` as `\/`); `percent` (every byte `%XX`); `percent-mixed` (every
/// other byte `%xx`, lower case); `percent-slash` (only `/`, as `%2F`).
pub fn encode(form: &str, text: &str) -> String {
    match form {
        "json-u" => text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect(),
        "json-slash" => text.replace('/', "\\/"),
        "percent" => text.bytes().map(|b| format!("%{b:02X}")).collect(),
        "percent-mixed" => text
            .bytes()
            .enumerate()
            .map(|(i, b)| match i % 2 {
                0 => format!("%{b:02x}"),
                _ => (b as char).to_string(),
            })
            .collect(),
        "percent-slash" => text.replace('/', "%2F"),
        _ => text.to_string(),
    }
}
