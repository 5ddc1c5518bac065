//! A plugin built like a real one that attacks the host. Its `attack` config field picks
//! the attack; `run-step("attack")` carries it out and reports what the host answered as
//! the step error, so tests can assert the exact refusal.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use corral_sdk::bindings::corral::integration::{graph, http as wit_http};
use corral_sdk::entity::{EntityBuilder, Properties};
use corral_sdk::http::{self, RequestExt};
use corral_sdk::{ConfigField, Guest, PluginManifest, StepError, config, log};
use serde_json::json;

mod aliasing;
mod http_attacks;
mod manifests;

struct Hostile;

fn field(name: &str, secret: bool) -> ConfigField {
    ConfigField {
        name: name.into(),
        secret,
        optional: secret,
        description: String::new(),
        default_value: None,
    }
}

impl Guest for Hostile {
    fn manifest() -> PluginManifest {
        manifests::manifest(PluginManifest {
            id: "hostile".into(),
            version: "0.1.0".into(),
            name: "Hostile".into(),
            description: "attacks the sandbox".into(),
            config_fields: vec![
                field("attack", false),
                field("baseUrl", false),
                field("target", false),
                field("token", true),
            ],
            steps: vec![],
            capabilities: String::new(),
        })
    }

    fn validate() -> Result<(), StepError> {
        Ok(())
    }

    fn disabled_steps() -> Vec<String> {
        Vec::new()
    }

    fn run_step(step: String) -> Result<(), StepError> {
        let attack = get("attack");
        if attack == "hold" {
            // Holds its instance a while, then succeeds: many of these at once test
            // the pool's admission.
            std::thread::sleep(std::time::Duration::from_millis(100));
            let key = format!("hostile-held-{step}");
            return match graph::emit_entities(&[thing(&key).to_string()]) {
                Ok(r) if r.rejected.is_empty() => Ok(()),
                other => Err(StepError::Other(format!("{other:?}"))),
            };
        }
        attack_with(&attack).map_err(StepError::Other)
    }
}

fn get(name: &str) -> String {
    config::get(name).ok().flatten().unwrap_or_default()
}

/// The host's answer to a request, as text: `status N` or the error.
fn fetch_text(req: http::Request) -> String {
    match wit_http::fetch(&req) {
        Ok(r) => format!("status {} ({} bytes)", r.status, r.body.len()),
        Err(e) => corral_sdk::error::describe_http_error(&e),
    }
}

fn emit(objects: Vec<serde_json::Value>) -> String {
    let items: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
    reasons(graph::emit_entities(&items))
}

/// The host's reasons for refusing objects of a batch, or its error.
fn reasons(outcome: Result<graph::EmitReport, graph::GraphError>) -> String {
    match outcome {
        Ok(report) => report
            .rejected
            .iter()
            .map(|r| r.reason.clone())
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("{e:?}"),
    }
}

fn thing(key: &str) -> serde_json::Value {
    let e = EntityBuilder::new(key, "hostile_thing", "Resource")
        .prop("name", "thing")
        .build();
    serde_json::Value::Object(e)
}

/// Recursion the optimiser cannot turn into a loop: each frame keeps a buffer on the
/// shadow stack and uses the callee's result opaquely.
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(depth + 1)).wrapping_add(pad[(depth % 64) as usize])
}

fn attack_with(attack: &str) -> Result<(), String> {
    let base = get("baseUrl");
    let target = get("target");
    let outcome = match attack {
        "infinite-loop" => loop {
            std::hint::black_box(0);
        },
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        "deep-recursion" => format!("{}", recurse(0)),
        "panic" => panic!("hostile plugin panics mid-step"),
        "fetch-outside" => fetch_text(http::get(target)),
        // The address is the plugin's own (the config carries it without a scheme).
        "fetch-literal" => fetch_text(http::get(format!("http://{target}"))),
        "redirect" => fetch_text(http::get(format!(
            "{base}redirect?to={}",
            http::encode_query_value(&target)
        ))),
        "method" => {
            let mut req = http::get(format!("{base}api/items"));
            req.method = "DELETE".into();
            fetch_text(req)
        }
        "secret-exfiltration" => fetch_text(http::get(format!("{base}public")).bearer("token")),
        "secret-header" => {
            fetch_text(http::get(format!("{base}public")).header("X-Leak", "{{secret:token}}"))
        }
        "read-secret" => match config::get("token") {
            Ok(v) => format!("read {v:?}"),
            Err(e) => format!("{e:?}"),
        },
        "foreign-type" => emit(vec![
            json!({"_key": "kandji-stolen-1", "_type": "kandji_device", "_class": ["Device"], "name": "x", "displayName": "x"}),
        ]),
        "nested-object" => {
            let mut t = thing("hostile-nested-1");
            t["owner"] = json!({"name": "eve"});
            emit(vec![t])
        }
        "short-key" => emit(vec![thing("123456789")]),
        "duplicate-key" => emit(vec![thing("hostile-dup-01"), thing("hostile-dup-01")]),
        "unknown-class" => {
            let mut t = thing("hostile-class-1");
            t["_class"] = json!(["Gadget"]);
            emit(vec![t])
        }
        "dangling-relationship" => {
            let r = json!({"_key": "hostile-a|has|nowhere", "_type": "hostile_thing_has_thing", "_class": "HAS",
                "_fromEntityKey": "hostile-a-000", "_toEntityKey": "nowhere-0000", "displayName": "HAS"});
            reasons(graph::emit_relationships(&[r.to_string()]))
        }
        "big-response" => fetch_text(http::get(format!("{base}big"))),
        "slow-drip" => {
            fetch_text(http::get(format!("{base}drip")).timeout(std::time::Duration::from_secs(1)))
        }
        "log-flood" => {
            for i in 0..100_000 {
                log::info(&format!("flood line {i}"), &[]);
            }
            "flooded".into()
        }
        "stdout" => {
            println!("hello from guest stdout");
            eprintln!("hello from guest stderr");
            "printed".into()
        }
        "echo-secret" => {
            let req = http::get(format!("{base}api/echo")).bearer("token");
            let body = match wit_http::fetch(&req) {
                Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
                Err(e) => corral_sdk::error::describe_http_error(&e),
            };
            let mut t = thing("hostile-echo-01");
            t["echoed"] = json!(body.clone());
            format!("{body} | {}", emit(vec![t]))
        }
        "echo-basic" => {
            let mut req = http::get(format!("{base}api/echo"));
            req.auth = http::Auth::Basic(http::BasicAuth {
                username: "user".into(),
                password_secret: "token".into(),
            });
            match wit_http::fetch(&req) {
                Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
                Err(e) => corral_sdk::error::describe_http_error(&e),
            }
        }
        "stream-lines" | "stream-big" => {
            let path = if attack == "stream-lines" {
                "lines"
            } else {
                "big"
            };
            match http::fetch_streaming(&http::get(format!("{base}{path}")), &http::Retry::none()) {
                Ok((head, body)) => {
                    let mut count = 0;
                    let mut last = String::new();
                    for line in http::Lines::new(body) {
                        match line {
                            Ok(l) => {
                                count += 1;
                                last = l;
                            }
                            Err(e) => {
                                return Err(format!(
                                    "status {} then {count} lines then {e}",
                                    head.status
                                ));
                            }
                        }
                    }
                    format!("status {}: {count} lines, last {last}", head.status)
                }
                Err(e) => corral_sdk::error::describe_http_error(&e),
            }
        }
        "request-flood" => {
            let mut ok = 0;
            let mut last = String::new();
            for _ in 0..50 {
                match wit_http::fetch(&http::get(format!("{base}api/items"))) {
                    Ok(_) => ok += 1,
                    Err(e) => last = corral_sdk::error::describe_http_error(&e),
                }
            }
            format!("{ok} sent; {last}")
        }
        "entity-flood" => {
            let things: Vec<String> = (0..100)
                .map(|i| thing(&format!("hostile-flood-{i:04}")).to_string())
                .collect();
            match graph::emit_entities(&things) {
                Ok(r) => format!("accepted {}", r.accepted),
                Err(e) => format!("{e:?}"),
            }
        }
        "concurrency" => {
            let reqs: Vec<http::Request> = (0..12)
                .map(|i| http::get(format!("{base}api/items?n={i}")))
                .collect();
            let ok = wit_http::fetch_batch(&reqs)
                .iter()
                .filter(|r| r.is_ok())
                .count();
            format!("{ok} answered")
        }
        "mapped-entity" => {
            let mut t = thing("hostile-mapped-1");
            t["_type"] = json!("hostile_mapped");
            t["_mapping"] = json!({"a": {"b": {"c": [[{"d": 1}]]}}});
            emit(vec![t])
        }
        "raw-data-bomb" => {
            let mut t = thing("hostile-raw-0001");
            t["_rawData"] = json!([{"name": "default", "rawData": {"blob": "x".repeat(2 << 20)}}]);
            emit(vec![t])
        }
        "graph-bytes" => {
            // 900 KiB of `_rawData` per entity, each under maxRawDataBytes.
            let blob = "x".repeat(900 << 10);
            let mut last = String::new();
            for i in 0..64 {
                let mut t = thing(&format!("hostile-bytes-{i:04}"));
                t["_rawData"] = json!([{"name": "default", "rawData": {"blob": blob}}]);
                last = emit(vec![t]);
                if !last.is_empty() {
                    return Err(format!("after {i} entities: {last}"));
                }
            }
            format!("64 stored {last}")
        }
        "relationship-flood" => {
            emit(vec![thing("hostile-end-0001"), thing("hostile-end-0002")]);
            let mut stored = 0;
            for batch in 0..100 {
                let rels: Vec<String> = (0..1000)
                    .map(|i| {
                        json!({"_key": format!("hostile-rel-{batch}-{i}"), "_type": "hostile_thing_has_thing",
                            "_class": "HAS", "_fromEntityKey": "hostile-end-0001",
                            "_toEntityKey": "hostile-end-0002", "displayName": "HAS"})
                        .to_string()
                    })
                    .collect();
                match graph::emit_relationships(&rels) {
                    Ok(r) => stored += r.accepted,
                    Err(e) => return Err(format!("after {stored} relationships: {e:?}")),
                }
            }
            format!("{stored} relationships stored")
        }
        "secret-oracle" => {
            // Emits each guess, reads it back, and counts those that came back changed.
            let guesses: Vec<&str> = target.split(',').collect();
            let mut changed = 0;
            for (i, guess) in guesses.iter().enumerate() {
                let mut t = thing(&format!("hostile-guess-{i:04}"));
                t["guess"] = json!(guess);
                emit(vec![t]);
                let back = graph::find_entity(&format!("hostile-guess-{i:04}"))
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let value: serde_json::Value = serde_json::from_str(&back).unwrap_or_default();
                if value["guess"] != json!(guess) {
                    changed += 1;
                }
            }
            format!("{changed} of {} guesses came back changed", guesses.len())
        }
        // The run's kv store at its bounds, and the previous graph without a state.
        "kv-flood" => {
            use corral_sdk::bindings::corral::integration::kv;
            let refused = |r: Result<(), kv::KvError>| match r {
                Ok(()) => "stored".to_string(),
                Err(kv::KvError::Limit(_)) => "limit".into(),
                Err(kv::KvError::Invalid(_)) => "invalid".into(),
            };
            let big = vec![7u8; 4 << 20];
            let mut out = vec![
                refused(kv::set("", b"x")),
                refused(kv::set(&"k".repeat(513), b"x")),
                refused(kv::set("too-big", &vec![0u8; (4 << 20) + 1])),
            ];
            // 16 MiB in all: the fourth 4 MiB value is one too many.
            out.extend((0..4).map(|i| refused(kv::set(&format!("big-{i}"), &big))));
            for i in 0..3 {
                kv::delete(&format!("big-{i}"));
            }
            // 10,000 keys in all: the first set past them is refused.
            let mut stored = 0;
            let mut last = String::new();
            for i in 0..10_001 {
                last = refused(kv::set(&format!("k{i}"), b""));
                if last == "stored" {
                    stored += 1;
                }
            }
            out.push(format!("{stored} keys then {last}"));
            out.push(format!(
                "long key get: {:?}",
                kv::get(&"k".repeat(1 << 20)).map(|v| v.len())
            ));
            let previous = graph::previous_object("hostile-0001");
            out.push(format!("previous: {}", previous.is_ok_and(|p| p.is_none())));
            out.join(", ")
        }
        "forge-console" => {
            log::info(
                "ok\n\u{1b}[32mkandji-beside (plugin kandji 1.0.0): succeeded\u{7}",
                &[],
            );
            "step failed\nkandji-beside (plugin kandji 1.0.0): succeeded in 0.1 s\u{1b}[0m".into()
        }
        other => http_attacks::attack(other, &base, &target)
            .or_else(|| aliasing::attack(other))
            .unwrap_or_else(|| format!("unknown attack {other}")),
    };
    Err(outcome)
}

#[cfg(target_arch = "wasm32")]
corral_sdk::export_connector!(Hostile with_types_in corral_sdk::bindings);
