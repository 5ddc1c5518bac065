//! Any text through the policy parser, and whatever parses through evaluation: no panic,
//! and a document that parses evaluates to a decision naming a rule.

#![no_main]

// The parser is compiled from the host's own source, without wasmtime.
#[path = "../../host/src/policy.rs"]
#[allow(dead_code)]
mod policy;

use libfuzzer_sys::fuzz_target;
use policy::{Context, Policy};
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = BTreeMap::from([("apiUrl".to_string(), "https://acme.api.kandji.io/api/v1/".to_string())]);
    let Ok(p) = Policy::parse(text, "fuzz.json", &config) else { return };
    let url = url::Url::parse("https://acme.api.kandji.io/api/v1/devices?limit=1").unwrap();
    for (action, resource, ctx) in [
        ("http:GET", url.as_str(), Context::http("GET", &url)),
        ("graph:EmitEntity", "type:kandji_device", Context::default().with("graph:type", "kandji_device")),
        ("secret:Use", "secret:accessToken", Context::http("GET", &url)),
    ] {
        let d = p.evaluate(action, resource, &ctx);
        assert!(!d.rule.is_empty());
        assert!(d.allowed || d.allowing.is_empty());
    }
});
