//! Endpoints for the adversarial tests: a redirect to anywhere, a 100 MB body, a body
//! that drips a byte at a time, and plain answers.

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
            "/lines" => {
                let mut r = SimResponse::json(200, &json!(null));
                r.body = (0..LINES)
                    .map(|i| format!("{{\"n\":{i}}}\n"))
                    .collect::<String>()
                    .into_bytes();
                r
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
