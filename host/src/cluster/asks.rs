//! What a worker asks the coordinator while a run is going (plain NATS request and
//! reply, nothing stored): a token of a shared provider quota, and reads of the
//! instance's previous graph. Both are kept where the runs of every worker meet, so
//! that N workers spend a provider's quota once, not N times, and an incremental
//! connector reads the graph its instance's last run left wherever that run ran.
//!
//! The worker's side is [`Asks`] (the run's [`QuotaKeeper`]) and [`RemotePrevious`]
//! (the run's [`PreviousGraph`]); the coordinator's is [`answer_quota`],
//! [`observe_quota`] and [`answer_previous`], pure functions of the message, so both
//! are tested without NATS.

use super::wire::{self, PreviousAnswer, PreviousAsk, QuotaAnswer, QuotaSeen};
use crate::capabilities::graph::PreviousGraph;
use crate::capabilities::http::quota::{self, Pending, QuotaAsk, QuotaKeeper, Spent};
use std::sync::OnceLock;
use std::time::Duration;

/// Subject of quota takes (request and reply).
pub const QUOTA_SUBJECT: &str = "corral.ask.quota";
/// Subject of a provider's own counts of what a quota has left (published, no reply).
pub const QUOTA_SEEN_SUBJECT: &str = "corral.ask.quota-seen";
/// Every ask: the coordinator's subscription.
pub const ALL_ASKS: &str = "corral.ask.>";
/// The queue group of coordinators answering asks.
pub const ANSWERERS: &str = "corral-coordinator";

/// Subject of the previous-graph reads of `run_id`.
pub fn previous_subject(run_id: &str) -> String {
    format!("corral.ask.previous.{run_id}")
}

/// The run id a previous-graph read is for, if `subject` is one.
pub fn previous_run(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("corral.ask.previous.")
        .filter(|id| wire::valid_run_id(id))
}

/// How long a quota take waits for the coordinator before the run waits and asks again.
const QUOTA_PATIENCE: Duration = Duration::from_secs(5);
/// How long a previous-graph read waits for the coordinator (a page is SQLite reads).
const READ_PATIENCE: Duration = Duration::from_secs(30);
/// How long a run waits before asking again after the coordinator did not answer.
const UNANSWERED_WAIT: Duration = Duration::from_secs(1);
/// The longest answer a worker parses (the coordinator keeps each to NATS's
/// `max_payload`, at most this).
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// The longest quota scope (a plugin id) and key (a `quotaKey` or `host:port`) the
/// coordinator keeps a quota for.
const MAX_SCOPE_BYTES: usize = 128;
const MAX_KEY_BYTES: usize = 512;

/// A worker's connection for asking.
pub struct Asks {
    client: async_nats::Client,
}

impl Asks {
    pub fn new(client: async_nats::Client) -> Asks {
        Asks { client }
    }

    async fn ask(
        &self,
        subject: String,
        payload: Vec<u8>,
        patience: Duration,
    ) -> anyhow::Result<Vec<u8>> {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(patience));
        let reply = self
            .client
            .send_request(subject, request)
            .await
            .map_err(|e| anyhow::anyhow!("the coordinator did not answer: {e}"))?;
        anyhow::ensure!(
            reply.payload.len() <= MAX_ANSWER_BYTES,
            "an answer of {} bytes (at most {MAX_ANSWER_BYTES})",
            reply.payload.len()
        );
        Ok(reply.payload.to_vec())
    }
}

impl QuotaKeeper for Asks {
    fn take<'a>(&'a self, ask: &'a QuotaAsk) -> Pending<'a, Result<(), Spent>> {
        Box::pin(async move {
            let payload = serde_json::to_vec(ask).unwrap_or_default();
            let answer = self
                .ask(QUOTA_SUBJECT.into(), payload, QUOTA_PATIENCE)
                .await
                .and_then(|bytes| Ok(serde_json::from_slice::<QuotaAnswer>(&bytes)?));
            match answer {
                Ok(a) => a.into_spent(),
                Err(e) => {
                    tracing::warn!(key = %ask.key, "quota not taken (asking again): {e:#}");
                    Err(unanswered())
                }
            }
        })
    }

    fn observe(&self, ask: &QuotaAsk, window: &'static str, remaining: f64) {
        let seen = QuotaSeen {
            ask: ask.clone(),
            window: window.to_string(),
            remaining,
        };
        let Ok(payload) = serde_json::to_vec(&seen) else {
            return;
        };
        let client = self.client.clone();
        // Best effort: a lost count only leaves the coordinator's estimate as it was.
        tokio::spawn(async move {
            let _ = client.publish(QUOTA_SEEN_SUBJECT, payload.into()).await;
        });
    }
}

fn unanswered() -> Spent {
    Spent {
        wait: UNANSWERED_WAIT,
        window: quota::UNANSWERED,
        per_window: 0.0,
        fits_tick: false,
    }
}

impl QuotaAnswer {
    fn into_spent(self) -> Result<(), Spent> {
        match self {
            QuotaAnswer::Granted => Ok(()),
            QuotaAnswer::Wait {
                wait_ms,
                window,
                per_window,
                fits_tick,
            } => Err(Spent {
                wait: Duration::from_millis(wait_ms),
                window: quota::window_name(&window).unwrap_or(quota::UNANSWERED),
                per_window,
                fits_tick,
            }),
            QuotaAnswer::Refused { reason } => {
                tracing::error!("the coordinator refused a quota: {reason}");
                Err(Spent {
                    wait: Duration::MAX,
                    window: quota::REFUSED,
                    per_window: 0.0,
                    fits_tick: false,
                })
            }
        }
    }
}

/// A quota ask with its numbers made safe: a rate that is not a positive finite number
/// is no rate (the worker's own grant never sends one; a stray message might).
fn checked(payload: &[u8]) -> Result<QuotaAsk, String> {
    let ask: QuotaAsk = wire::parse(QUOTA_SUBJECT, payload).map_err(|e| format!("{e:#}"))?;
    bounded(ask)
}

/// `ask` within the bounds the coordinator keeps quotas for, its rates made safe.
fn bounded(mut ask: QuotaAsk) -> Result<QuotaAsk, String> {
    if ask.scope.len() > MAX_SCOPE_BYTES || ask.key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "a quota scope of {} bytes or key of {} bytes (at most {MAX_SCOPE_BYTES} and {MAX_KEY_BYTES})",
            ask.scope.len(),
            ask.key.len()
        ));
    }
    let rate = |r: Option<f64>| r.filter(|r| r.is_finite() && *r > 0.0);
    ask.per_minute = rate(ask.per_minute);
    ask.per_hour = rate(ask.per_hour);
    if ask.per_minute.is_none() && ask.per_hour.is_none() {
        return Err("a quota ask with neither requestsPerMinute nor requestsPerHour".into());
    }
    Ok(ask)
}

/// The coordinator's answer to a quota take: from this process's quotas, which every
/// worker's runs share.
pub fn answer_quota(payload: &[u8]) -> Vec<u8> {
    let answer = match checked(payload) {
        Err(reason) => QuotaAnswer::Refused { reason },
        Ok(ask) => match ask
            .buckets()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Ok(()) => QuotaAnswer::Granted,
            Err(spent) => QuotaAnswer::Wait {
                // Rounded up: a wait under a millisecond is not an invitation to ask
                // again at once.
                wait_ms: u64::try_from(spent.wait.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
                window: spent.window.to_string(),
                per_window: spent.per_window,
                fits_tick: spent.fits_tick,
            },
        },
    };
    serde_json::to_vec(&answer).unwrap_or_default()
}

/// Takes a worker's report of a provider's count into the coordinator's quota.
pub fn observe_quota(payload: &[u8]) {
    let Ok(seen) = wire::parse::<QuotaSeen>(QUOTA_SEEN_SUBJECT, payload) else {
        return;
    };
    let Some(window) = quota::window_name(&seen.window) else {
        return;
    };
    if !(seen.remaining.is_finite() && seen.remaining >= 0.0) {
        return;
    }
    let Ok(ask) = bounded(seen.ask) else {
        return;
    };
    ask.buckets()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe(window, seen.remaining);
}

/// The coordinator's answer to a read of a run's previous graph from `reader` (its
/// instance's), kept within `max_bytes` (NATS's `max_payload`): a page that would not
/// fit is read again shorter, down to one object; one object that does not fit is an
/// error naming its size.
pub fn answer_previous(reader: &dyn PreviousGraph, payload: &[u8], max_bytes: usize) -> Vec<u8> {
    let answered = wire::parse::<PreviousAsk>("corral.ask.previous", payload)
        .and_then(|ask| read(reader, ask, max_bytes));
    answered.unwrap_or_else(|e| {
        let failed = PreviousAnswer::Failed {
            reason: format!("{e:#}"),
        };
        serde_json::to_vec(&failed).unwrap_or_default()
    })
}

/// `answer` as its message, or its size when that is over `max_bytes`.
fn within(answer: &PreviousAnswer, max_bytes: usize) -> anyhow::Result<Result<Vec<u8>, usize>> {
    let bytes = serde_json::to_vec(answer)?;
    Ok(if bytes.len() > max_bytes {
        Err(bytes.len())
    } else {
        Ok(bytes)
    })
}

/// The answer to `ask`, as its message.
fn read(reader: &dyn PreviousGraph, ask: PreviousAsk, max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    match ask {
        PreviousAsk::Flags => {
            let answer = PreviousAnswer::Flags {
                redacted: reader.held_redactions()?,
                partial: reader.was_partial()?,
            };
            Ok(serde_json::to_vec(&answer)?)
        }
        PreviousAsk::Object { key } => {
            let answer = PreviousAnswer::Object {
                found: reader.object(&key)?,
            };
            within(&answer, max_bytes)?.map_err(|len| {
                anyhow::anyhow!(
                    "previous object {key:?} is {len} bytes, more than a NATS message may hold ({max_bytes})"
                )
            })
        }
        PreviousAsk::Page {
            type_name,
            cursor,
            limit,
        } => {
            let mut limit = limit.clamp(1, crate::capabilities::graph::MAX_PREVIOUS_PAGE);
            loop {
                let (entities, next) = reader.page(&type_name, cursor, limit)?;
                // A cursor is handed out only when more follows: an empty page after
                // one means the coordinator no longer knows it (it restarted during the
                // run). Said, so the connector does not take a part for the whole.
                if cursor != 0 && entities.is_empty() {
                    anyhow::bail!(
                        "cursor {cursor} of {type_name} is not one this coordinator handed out (did it restart during the run?)"
                    );
                }
                match within(&PreviousAnswer::Page { entities, next }, max_bytes)? {
                    Ok(bytes) => return Ok(bytes),
                    Err(len) if limit == 1 => anyhow::bail!(
                        "a previous {type_name} object is {len} bytes, more than a NATS message may hold ({max_bytes})"
                    ),
                    Err(_) => limit /= 2,
                }
            }
        }
    }
}

/// A run's previous graph on a worker: each read is a question to the coordinator,
/// which keeps the graph state. Called on a blocking thread (see
/// `StepCtx::read_previous`), so it waits for the answer there.
pub struct RemotePrevious {
    asks: std::sync::Arc<Asks>,
    subject: String,
    runtime: tokio::runtime::Handle,
    /// The instance's flags: they cannot change while its run is going.
    flags: OnceLock<(bool, bool)>,
}

impl RemotePrevious {
    pub fn new(asks: std::sync::Arc<Asks>, run_id: &str) -> RemotePrevious {
        RemotePrevious {
            asks,
            subject: previous_subject(run_id),
            runtime: tokio::runtime::Handle::current(),
            flags: OnceLock::new(),
        }
    }

    fn ask(&self, ask: &PreviousAsk) -> anyhow::Result<PreviousAnswer> {
        let payload = serde_json::to_vec(ask)?;
        let _context = self.runtime.enter();
        let bytes = futures::executor::block_on(self.asks.ask(
            self.subject.clone(),
            payload,
            READ_PATIENCE,
        ))?;
        match serde_json::from_slice(&bytes)? {
            PreviousAnswer::Failed { reason } => {
                anyhow::bail!("the coordinator could not read the previous graph: {reason}")
            }
            answer => Ok(answer),
        }
    }

    fn flags(&self) -> anyhow::Result<(bool, bool)> {
        if let Some(f) = self.flags.get() {
            return Ok(*f);
        }
        match self.ask(&PreviousAsk::Flags)? {
            PreviousAnswer::Flags { redacted, partial } => {
                Ok(*self.flags.get_or_init(|| (redacted, partial)))
            }
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(answer: &PreviousAnswer) -> anyhow::Error {
    anyhow::anyhow!(
        "the coordinator answered another question ({})",
        answer.kind()
    )
}

impl PreviousGraph for RemotePrevious {
    fn object(&self, key: &str) -> anyhow::Result<Option<(String, String)>> {
        match self.ask(&PreviousAsk::Object { key: key.into() })? {
            PreviousAnswer::Object { found } => Ok(found),
            other => Err(unexpected(&other)),
        }
    }

    fn page(
        &self,
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> anyhow::Result<(Vec<String>, Option<u32>)> {
        let ask = PreviousAsk::Page {
            type_name: type_name.into(),
            cursor,
            limit,
        };
        match self.ask(&ask)? {
            PreviousAnswer::Page { entities, next } => Ok((entities, next)),
            other => Err(unexpected(&other)),
        }
    }

    fn held_redactions(&self) -> anyhow::Result<bool> {
        Ok(self.flags()?.0)
    }

    fn was_partial(&self) -> anyhow::Result<bool> {
        Ok(self.flags()?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ask(scope: &str, key: &str, per_minute: Option<f64>) -> Vec<u8> {
        serde_json::to_vec(&QuotaAsk {
            scope: scope.into(),
            key: key.into(),
            per_minute,
            per_hour: None,
        })
        .unwrap()
    }

    fn quota_answer(payload: &[u8]) -> QuotaAnswer {
        serde_json::from_slice(&answer_quota(payload)).unwrap()
    }

    #[test]
    fn the_coordinator_spends_one_quota_for_every_worker_that_asks() {
        let key = format!("tenant-{}", std::process::id());
        // Two workers' runs asking for one key: two tokens a minute between them.
        for _ in 0..2 {
            assert_eq!(
                quota_answer(&ask("p", &key, Some(2.0))),
                QuotaAnswer::Granted
            );
        }
        match quota_answer(&ask("p", &key, Some(2.0))) {
            QuotaAnswer::Wait {
                wait_ms,
                window,
                per_window,
                ..
            } => {
                assert_eq!((window.as_str(), per_window), ("requestsPerMinute", 2.0));
                assert!((29_000..=30_000).contains(&wait_ms), "{wait_ms}");
            }
            other => panic!("{other:?}"),
        }
        // Another plugin's scope naming the same key has a quota of its own.
        assert_eq!(
            quota_answer(&ask("q", &key, Some(2.0))),
            QuotaAnswer::Granted
        );
    }

    #[test]
    fn a_providers_count_reported_by_a_worker_holds_back_the_others() {
        let key = format!("counted-{}", std::process::id());
        assert_eq!(
            quota_answer(&ask("p", &key, Some(100.0))),
            QuotaAnswer::Granted
        );
        let seen = QuotaSeen {
            ask: serde_json::from_slice(&ask("p", &key, Some(100.0))).unwrap(),
            window: "requestsPerMinute".into(),
            remaining: 0.0,
        };
        observe_quota(&serde_json::to_vec(&seen).unwrap());
        assert!(matches!(
            quota_answer(&ask("p", &key, Some(100.0))),
            QuotaAnswer::Wait { .. }
        ));
        // Counts that are no count change nothing (and do not panic).
        for bad in [r#"{"window":"requestsPerMinute"}"#, "[]", "\u{0}"] {
            observe_quota(bad.as_bytes());
        }
    }

    #[test]
    fn asks_no_quota_could_come_from_are_refused_with_the_reason() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for (payload, says) in [
            (ask("p", &long, Some(2.0)), "key of 513 bytes"),
            (ask("p", "k", None), "neither requestsPerMinute"),
            (
                br#"{"scope":"p","key":"k","per_minute":-5,"per_hour":null}"#.to_vec(),
                "neither",
            ),
            (b"not json".to_vec(), "corral.ask.quota: malformed message"),
            (vec![b' '; wire::MAX_MESSAGE_BYTES + 1], "at most 65536"),
        ] {
            match quota_answer(&payload) {
                QuotaAnswer::Refused { reason } => assert!(reason.contains(says), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
        // The worker fails the request at once, saying so.
        let spent = QuotaAnswer::Refused { reason: "x".into() }
            .into_spent()
            .unwrap_err();
        assert_eq!(spent.wait, Duration::MAX);
        assert!(spent.what("k").contains("refused"), "{}", spent.what("k"));
        // A window name the worker does not know is a wait it cannot place: asked again.
        let odd = QuotaAnswer::Wait {
            wait_ms: 5,
            window: "requestsPerFortnight".into(),
            per_window: 1.0,
            fits_tick: true,
        };
        assert_eq!(odd.into_spent().unwrap_err().window, quota::UNANSWERED);
    }

    /// Objects `k00`… of `_type` `t`, each `size` bytes of JSON, paged by position.
    struct Stored {
        objects: BTreeMap<String, String>,
    }

    impl Stored {
        fn new(n: usize, size: usize) -> Stored {
            let objects = (0..n)
                .map(|i| {
                    let key = format!("k{i:02}");
                    let pad = "x".repeat(size.saturating_sub(20));
                    (
                        key.clone(),
                        format!("{{\"_key\":\"{key}\",\"p\":\"{pad}\"}}"),
                    )
                })
                .collect();
            Stored { objects }
        }
    }

    impl PreviousGraph for Stored {
        fn object(&self, key: &str) -> anyhow::Result<Option<(String, String)>> {
            Ok(self.objects.get(key).map(|o| ("t".to_string(), o.clone())))
        }

        fn page(
            &self,
            _: &str,
            cursor: u32,
            limit: u32,
        ) -> anyhow::Result<(Vec<String>, Option<u32>)> {
            let all: Vec<String> = self.objects.values().cloned().collect();
            let from = cursor as usize;
            let to = (from + limit as usize).min(all.len());
            let next = (to < all.len()).then_some(to as u32);
            Ok((all[from.min(to)..to].to_vec(), next))
        }

        fn held_redactions(&self) -> anyhow::Result<bool> {
            Ok(false)
        }

        fn was_partial(&self) -> anyhow::Result<bool> {
            Ok(true)
        }
    }

    fn previous(reader: &Stored, ask: PreviousAsk, max: usize) -> PreviousAnswer {
        let payload = serde_json::to_vec(&ask).unwrap();
        serde_json::from_slice(&answer_previous(reader, &payload, max)).unwrap()
    }

    #[test]
    fn a_page_is_shortened_to_what_one_nats_message_holds_and_goes_on_from_there() {
        let stored = Stored::new(10, 100);
        let page = |cursor| PreviousAsk::Page {
            type_name: "t".into(),
            cursor,
            limit: 1000,
        };
        let PreviousAnswer::Page { entities, next } = previous(&stored, page(0), 1 << 20) else {
            panic!()
        };
        assert_eq!((entities.len(), next), (10, None));
        // 350 bytes hold two objects of 100 with the framing: every object comes, in order.
        let mut got = Vec::new();
        let mut cursor = 0;
        loop {
            match previous(&stored, page(cursor), 350) {
                PreviousAnswer::Page { entities, next } => {
                    assert!(!entities.is_empty() && entities.len() <= 2);
                    got.extend(entities);
                    match next {
                        Some(n) => cursor = n,
                        None => break,
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, stored.objects.values().cloned().collect::<Vec<_>>());
        // A cursor the reader does not know (a coordinator restarted mid-run) is an
        // error, not the end of the list.
        match previous(&stored, page(99), 1 << 20) {
            PreviousAnswer::Failed { reason } => assert!(reason.contains("cursor 99"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_object_larger_than_a_nats_message_is_an_error_naming_its_size() {
        let stored = Stored::new(3, 2_000);
        let key = PreviousAsk::Object { key: "k01".into() };
        assert!(matches!(
            previous(&stored, key.clone(), 1 << 20),
            PreviousAnswer::Object { found: Some((t, o)) } if t == "t" && o.contains("k01")
        ));
        match previous(&stored, key, 1_000) {
            PreviousAnswer::Failed { reason } => {
                assert!(reason.contains("\"k01\" is 20"), "{reason}");
                assert!(reason.contains("(1000)"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let page = PreviousAsk::Page {
            type_name: "t".into(),
            cursor: 0,
            limit: 10,
        };
        assert!(matches!(
            previous(&stored, page, 1_000),
            PreviousAnswer::Failed { reason } if reason.contains("a previous t object is")
        ));
        assert_eq!(
            previous(&stored, PreviousAsk::Flags, 1_000),
            PreviousAnswer::Flags {
                redacted: false,
                partial: true
            }
        );
        let answer: PreviousAnswer =
            serde_json::from_slice(&answer_previous(&stored, b"{\"op\":\"drop\"}", 1_000)).unwrap();
        assert!(
            matches!(answer, PreviousAnswer::Failed { reason } if reason.contains("malformed"))
        );
    }

    #[test]
    fn a_previous_read_larger_than_any_ask_is_refused_unread() {
        // A key of 1 MiB (a guest may pass one): refused by size before it is parsed.
        let key = "k".repeat(1 << 20);
        let payload = serde_json::to_vec(&PreviousAsk::Object { key }).unwrap();
        let answer: PreviousAnswer =
            serde_json::from_slice(&answer_previous(&Stored::new(1, 100), &payload, 1 << 20))
                .unwrap();
        assert!(
            matches!(&answer, PreviousAnswer::Failed { reason } if reason.contains("at most 65536")),
            "{answer:?}"
        );
    }

    #[test]
    fn only_a_run_ids_subject_is_a_previous_read() {
        assert_eq!(previous_run(&previous_subject("run-42")), Some("run-42"));
        for s in [
            "corral.ask.previous.run-",
            "corral.ask.previous.x.y",
            "corral.ask.quota",
        ] {
            assert_eq!(previous_run(s), None, "{s}");
        }
    }
}
