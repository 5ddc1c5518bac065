//! Any text through the policy parser (manifest, operator and display parsing), and
//! whatever parses through evaluation: no panic; limits that parse lie within their
//! ranges; a decision names a rule; a URL refused before matching is always denied; a
//! URL a DENY caught stays denied with a query appended (unless the policy writes a `?`).

#![no_main]

use corral_core::policy::{Context, LimitRange, Limits, Policy, limit_range};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use url::Url;

const API: &str = "https://acme.api.kandji.io/api/v1/";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = BTreeMap::from([("apiUrl".to_string(), API.to_string())]);
    let _ = Policy::parse_untemplated(text, "fuzz.json");
    let _ = Policy::parse_operator(text, "fuzz.json", &BTreeMap::new(), &config);
    let Ok(p) = Policy::parse(text, "fuzz.json", &config) else {
        return;
    };
    check_limits(&p.limits);
    for (url, query) in [
        ("https://acme.api.kandji.io/api/v1/devices", "?limit=1"),
        ("http://169.254.169.254/latest/meta-data", "?"),
        ("https://evil.example/admin", "?a=/x"),
    ] {
        let plain = evaluate(&p, url);
        let longer = evaluate(&p, &format!("{url}{query}"));
        // (A policy writing a `?` may deny one query and not another.)
        if plain.ends_with("(DENY)") && !text.contains('?') {
            assert!(
                longer.ends_with("(DENY)"),
                "{url}{query} slipped past {plain}"
            );
        }
    }
    let refused = evaluate(&p, "https://acme.api.kandji.io/api/v1%2fdevices");
    assert!(refused.contains("refused before matching"), "{refused}");
    let ctx = Context::default().with("graph:type", "kandji_device");
    let d = p.evaluate("graph:EmitEntity", "type:kandji_device", &ctx);
    assert!(!d.rule.is_empty() && (d.allowed || d.allowing.is_empty()));
});

/// The rule that decided an HTTP GET of `url` and a secret sent with it (which must
/// agree on refusals); an allowed request reports its allowing patterns.
fn evaluate(p: &Policy, url: &str) -> String {
    let Ok(u) = Url::parse(url) else {
        return String::new();
    };
    let ctx = Context::http("GET", &u);
    let d = p.evaluate("http:GET", u.as_str(), &ctx);
    assert!(!d.rule.is_empty());
    assert!(!d.allowed || !d.allowing.is_empty());
    let secret = p.evaluate("secret:Use", "secret:accessToken", &ctx);
    if d.rule.contains("refused before matching") {
        assert_eq!(secret.rule, d.rule);
    }
    d.rule
}

fn check_limits(l: &Limits) {
    let ints = [
        ("memoryMiB", l.memory_mib),
        ("timeoutSeconds", l.timeout_seconds),
        ("maxRequests", l.max_requests),
        ("maxConcurrentRequests", l.max_concurrent_requests),
        ("maxResponseBytes", l.max_response_bytes),
        ("maxEntities", l.max_entities),
        ("maxRelationships", l.max_relationships),
        ("maxGraphBytes", l.max_graph_bytes),
        ("maxRawDataBytes", l.max_raw_data_bytes),
        ("maxConcurrentSteps", l.max_concurrent_steps),
        ("maxInFlightBytes", l.max_in_flight_bytes),
    ];
    for (key, value) in ints {
        if let (Some(v), Some(LimitRange::Integer { min, max })) = (value, limit_range(key)) {
            assert!((min..=max).contains(&v), "{key} = {v}");
        }
    }
    if let (Some(v), Some(LimitRange::Number { min, max })) =
        (l.requests_per_second, limit_range("requestsPerSecond"))
    {
        assert!(
            v.is_finite() && (min..=max).contains(&v),
            "requestsPerSecond = {v}"
        );
    }
}
