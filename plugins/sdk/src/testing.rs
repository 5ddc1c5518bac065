//! A fake host for native unit tests of step code (`cargo test`): config values and
//! secrets, HTTP answers (given one by one, or the JSON lines `corral run --record`
//! writes), and what the steps asked for, emitted and logged. In a native build the
//! SDK's `config`, `http` and `graph` calls come here; in a component they go to the
//! host. State is per thread (each test has its own); [`reset`] empties it.
//!
//! ```no_run
//! use corral_sdk::testing;
//! testing::reset();
//! testing::config("baseUrl", "https://api.example.com/v1/");
//! testing::secret("apiToken");
//! testing::recording("recordings/acme-example.jsonl").unwrap();
//! // ... call a step function, then:
//! assert_eq!(testing::entities().len(), 3);
//! ```
//!
//! What the fake does not do, which a real run (`corral plugin test`) does: streamed
//! bodies (`http::fetch_streaming` fails); the policy and `secret:Use` (every request is
//! answered if recorded, and a `bearer` secret need not be set); the data-model rules
//! other than duplicate keys; manifest defaults for unset config fields; waiting is
//! real (a recorded 429 with `Retry-After` makes the test sleep).

use crate::bindings::corral::integration::graph::{EmitReport, EntityPage, GraphError, Rejection};
use crate::bindings::corral::integration::http::{HttpError, Request, Response};
use crate::entity::Object;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// What a request is answered by: method, URL and body.
type Key = (String, String, Option<Vec<u8>>);

#[derive(Default)]
struct Fake {
    config: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
    instance: (String, String),
    answers: HashMap<Key, VecDeque<Response>>,
    requests: Vec<Request>,
    /// Emitted objects in order: (is a relationship, the object).
    emitted: Vec<(bool, Object)>,
    keys: HashSet<String>,
    previous: Vec<Object>,
    /// Keys the host refuses (as its data-model checks would), with the reason.
    refuse: HashMap<String, String>,
    /// What the host refused: (key, reason).
    rejected: Vec<(String, String)>,
    /// Types whose entities the policy does not let the plugin read back.
    unreadable: HashSet<String>,
}

thread_local! {
    static FAKE: RefCell<Fake> = RefCell::new(Fake::default());
}

fn with<T>(f: impl FnOnce(&mut Fake) -> T) -> T {
    FAKE.with(|fake| f(&mut fake.borrow_mut()))
}

/// Forgets everything: config, answers, what was asked, emitted, logged and kept in
/// `kv`.
pub fn reset() {
    with(|f| *f = Fake::default());
    crate::log::take_captured();
    crate::kv::clear();
}

/// Bounds the run's `kv` store to `bytes` of keys and values, as the host bounds it:
/// a `set` past the bound is refused (until the next [`reset`]).
pub fn kv_capacity(bytes: usize) {
    crate::kv::set_capacity(bytes);
}

/// A plain config field's value.
pub fn config(name: &str, value: &str) {
    with(|f| f.config.insert(name.into(), value.into()));
}

/// A secret field that has a value (the plugin never reads it).
pub fn secret(name: &str) {
    with(|f| f.secrets.insert(name.into()));
}

/// The instance's id and name (`config::instance_id`, `config::instance_name`).
pub fn instance(id: &str, name: &str) {
    with(|f| f.instance = (id.into(), name.into()));
}

/// One answer to `method url` (no request body), given once.
pub fn answer(method: &str, url: &str, status: u16, body: impl Into<Vec<u8>>) {
    let response = Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
        url: url.into(),
    };
    with(|f| {
        f.answers
            .entry((method.into(), url.into(), None))
            .or_default()
            .push_back(response)
    });
}

/// The answers of a recording (`corral run --record`: one JSON object per line), each
/// given once, in order; how many were read. A line that is not an exchange is an error
/// naming it.
pub fn recording(path: &str) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (key, response) =
            exchange(line).ok_or_else(|| format!("{path}: line {}: not an exchange", i + 1))?;
        with(|f| f.answers.entry(key).or_default().push_back(response));
        n += 1;
    }
    Ok(n)
}

/// A recorded exchange's request key and answer.
fn exchange(line: &str) -> Option<(Key, Response)> {
    let e: Value = serde_json::from_str(line).ok()?;
    let text = |field: &str| e.get(field)?.as_str().map(String::from);
    let bytes = |v: &Value| match v {
        Value::String(s) => Some(s.clone().into_bytes()),
        v => v
            .get("bytes")?
            .as_array()?
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
    };
    let headers = e
        .get("headers")?
        .as_array()?
        .iter()
        .filter_map(|h| Some((h.get(0)?.as_str()?.into(), h.get(1)?.as_str()?.into())))
        .collect();
    let request_body = match e.get("requestBody") {
        Some(b) => Some(bytes(b)?),
        None => None,
    };
    let response = Response {
        status: u16::try_from(e.get("status")?.as_u64()?).ok()?,
        headers,
        body: bytes(e.get("body")?)?,
        url: text("finalUrl").or_else(|| text("url"))?,
    };
    Some(((text("method")?, text("url")?, request_body), response))
}

/// The previous run's graph, for `graph::previous_object` and `previous_of_type`.
pub fn previous(objects: Vec<Object>) {
    with(|f| f.previous = objects);
}

/// The requests made, in order.
pub fn requests() -> Vec<Request> {
    with(|f| f.requests.clone())
}

/// Makes the host refuse any object with this `_key`, for `reason` (as the host's own
/// checks refuse one that breaks the data model).
pub fn refuse(key: &str, reason: &str) {
    with(|f| f.refuse.insert(key.into(), reason.into()));
}

/// The policy denies `graph:Read` of `type_name`: reading its entities back fails.
pub fn deny_read(type_name: &str) {
    with(|f| f.unreadable.insert(type_name.into()));
}

/// What the host refused, in order: (`_key`, reason).
pub fn rejected() -> Vec<(String, String)> {
    with(|f| f.rejected.clone())
}

/// The entities emitted, in order.
pub fn entities() -> Vec<Object> {
    emitted(false)
}

/// The relationships emitted, in order.
pub fn relationships() -> Vec<Object> {
    emitted(true)
}

fn emitted(relationships: bool) -> Vec<Object> {
    with(|f| {
        f.emitted
            .iter()
            .filter(|(r, _)| *r == relationships)
            .map(|(_, o)| o.clone())
            .collect()
    })
}

/// `corral:integration/config` in a native build.
pub mod config {
    pub use crate::bindings::corral::integration::config::ConfigError;

    pub fn get(name: &str) -> Result<Option<String>, ConfigError> {
        super::with(|f| {
            if f.secrets.contains(name) {
                return Err(ConfigError::Secret(name.into()));
            }
            Ok(f.config.get(name).cloned())
        })
    }

    pub fn has_secret(name: &str) -> bool {
        super::with(|f| f.secrets.contains(name))
    }

    pub fn instance_id() -> String {
        super::with(|f| f.instance.0.clone())
    }

    pub fn instance_name() -> String {
        super::with(|f| f.instance.1.clone())
    }
}

/// `corral:integration/http` in a native build.
pub mod http {
    use super::*;
    use crate::bindings::corral::integration::http::{Body, ResponseHead};

    pub fn fetch(req: &Request) -> Result<Response, HttpError> {
        with(|f| {
            f.requests.push(req.clone());
            let key = (req.method.clone(), req.url.clone(), req.body.clone());
            f.answers
                .get_mut(&key)
                .and_then(VecDeque::pop_front)
                .ok_or_else(|| {
                    HttpError::Invalid(format!("no recording of {} {}", req.method, req.url))
                })
        })
    }

    pub fn fetch_batch(reqs: &[Request]) -> Vec<Result<Response, HttpError>> {
        reqs.iter().map(fetch).collect()
    }

    pub fn fetch_streaming(req: &Request) -> Result<(ResponseHead, Body), HttpError> {
        with(|f| f.requests.push(req.clone()));
        Err(HttpError::Invalid(format!(
            "streamed bodies are not faked natively ({} {})",
            req.method, req.url
        )))
    }
}

/// `corral:integration/graph` in a native build: keys are checked for duplicates, the
/// rest of the data-model rules are the host's (run the plugin under `corral plugin
/// test` for those).
pub mod graph {
    use super::*;

    fn emit(objects: &[String], relationships: bool) -> Result<EmitReport, GraphError> {
        with(|f| {
            let mut report = EmitReport {
                accepted: 0,
                rejected: Vec::new(),
            };
            for (i, text) in objects.iter().enumerate() {
                let reject = |key: &str, reason: &str| Rejection {
                    index: i as u32,
                    key: key.into(),
                    reason: reason.into(),
                };
                let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) else {
                    report.rejected.push(reject("", "not a JSON object"));
                    continue;
                };
                let key = o.get("_key").and_then(Value::as_str).unwrap_or_default();
                let refused = if key.is_empty() {
                    Some("no _key".to_string())
                } else if let Some(reason) = f.refuse.get(key) {
                    Some(reason.clone())
                } else if !f.keys.insert(key.to_string()) {
                    Some("duplicate _key".to_string())
                } else {
                    None
                };
                match refused {
                    Some(reason) => {
                        f.rejected.push((key.to_string(), reason.clone()));
                        report.rejected.push(reject(key, &reason));
                    }
                    None => {
                        report.accepted += 1;
                        f.emitted.push((relationships, o));
                    }
                }
            }
            Ok(report)
        })
    }

    pub fn emit_entities(entities: &[String]) -> Result<EmitReport, GraphError> {
        emit(entities, false)
    }

    pub fn emit_relationships(relationships: &[String]) -> Result<EmitReport, GraphError> {
        emit(relationships, true)
    }

    pub fn find_entity(key: &str) -> Result<Option<String>, GraphError> {
        Ok(with(|f| {
            f.emitted
                .iter()
                .find(|(r, o)| !r && o.get("_key").and_then(Value::as_str) == Some(key))
                .map(|(_, o)| Value::Object(o.clone()).to_string())
        }))
    }

    pub fn has_key(key: &str) -> bool {
        with(|f| f.keys.contains(key))
    }

    /// One page of `objects` of `_type` `type_name`, `cursor` being an index.
    fn page(objects: Vec<&Object>, type_name: &str, cursor: u32, limit: u32) -> EntityPage {
        let of_type: Vec<String> = objects
            .into_iter()
            .filter(|o| o.get("_type").and_then(Value::as_str) == Some(type_name))
            .map(|o| Value::Object(o.clone()).to_string())
            .collect();
        // The host's page bound: at most 1000 objects, at least one.
        let from = (cursor as usize).min(of_type.len());
        let to = from
            .saturating_add(limit.clamp(1, 1000) as usize)
            .min(of_type.len());
        EntityPage {
            entities: of_type[from..to].to_vec(),
            next: (to < of_type.len()).then_some(to as u32),
        }
    }

    pub fn list_entities(
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> Result<EntityPage, GraphError> {
        if with(|f| f.unreadable.contains(type_name)) {
            return Err(GraphError::Denied(format!(
                "graph:Read type:{type_name} denied: no rule allows it"
            )));
        }
        Ok(with(|f| {
            let entities = f
                .emitted
                .iter()
                .filter(|(r, _)| !r)
                .map(|(_, o)| o)
                .collect();
            page(entities, type_name, cursor, limit)
        }))
    }

    pub fn previous_object(key: &str) -> Result<Option<String>, GraphError> {
        Ok(with(|f| {
            f.previous
                .iter()
                .find(|o| o.get("_key").and_then(Value::as_str) == Some(key))
                .map(|o| Value::Object(o.clone()).to_string())
        }))
    }

    pub fn list_previous(
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> Result<EntityPage, GraphError> {
        Ok(with(|f| {
            let mut previous: Vec<&Object> = f.previous.iter().collect();
            previous.sort_by_key(|o| o.get("_key").and_then(Value::as_str).map(String::from));
            page(previous, type_name, cursor, limit)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Emitter;
    use crate::http::{ResponseExt, Retry};

    #[test]
    fn step_code_runs_natively_against_recorded_answers() {
        reset();
        config("baseUrl", "https://api.example.com/");
        secret("apiToken");
        let dir = std::env::temp_dir().join(format!("corral-sdk-fake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        std::fs::write(
            &path,
            r#"{"method":"GET","url":"https://api.example.com/a","status":200,"headers":[],"body":"{\"n\":1}","finalUrl":"https://api.example.com/a"}"#,
        )
        .unwrap();
        assert_eq!(recording(path.to_str().unwrap()), Ok(1));
        assert_eq!(
            crate::config::get("baseUrl").unwrap().as_deref(),
            Some("https://api.example.com/")
        );
        assert!(crate::config::get("apiToken").is_err() && crate::config::has_secret("apiToken"));

        let req = crate::http::get("https://api.example.com/a");
        let body: Value = crate::http::fetch(&req, &Retry::default())
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(body["n"], 1);
        // Each recorded answer is given once; a request without one is named.
        let err = crate::http::fetch(&req, &Retry::default()).unwrap_err();
        assert!(
            matches!(err, HttpError::Invalid(m) if m == "no recording of GET https://api.example.com/a")
        );
        assert_eq!(requests().len(), 2);

        let device =
            |key: &str| crate::entity::EntityBuilder::new(key, "acme_device", "Device").build();
        {
            let mut out = Emitter::new();
            out.entity(device("acme_device:1")).unwrap();
            out.entity(device("acme_device:2")).unwrap();
            out.entity(device("acme_device:1")).unwrap();
        }
        assert_eq!(entities().len(), 2, "the duplicate key was rejected");
        assert!(crate::graph::has_key("acme_device:2"));
        let stored: Vec<_> = crate::graph::entities_of_type("acme_device")
            .collect::<crate::Result<_>>()
            .unwrap();
        assert_eq!(stored.len(), 2);
        previous(vec![device("acme_device:9")]);
        assert!(
            crate::graph::previous_object("acme_device:9")
                .unwrap()
                .is_some()
        );
        reset();
        assert!(entities().is_empty() && requests().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
