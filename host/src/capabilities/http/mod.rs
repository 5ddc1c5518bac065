//! The `http` import: every request and every redirect hop is checked against the grant
//! (`http:<METHOD>` on the URL), credentials are substituted only after a `secret:Use`
//! check for that very URL, and the run's limits (request count, rate, concurrency,
//! response size, bytes held at once, deadline) are enforced here.
//!
//! The guest does not frame requests: the method is one of [`METHODS`] and the headers
//! that frame a request or name its target ([`HOST_HEADERS`], `Proxy-*`) are the host's
//! (a guest `Content-Length` could smuggle a second request, never checked, onto a
//! kept-alive connection).
//!
//! What the guest gets back is scrubbed of the run's secrets (and of the values derived
//! from them that the request sent) in every form `secrets::Redactor` knows, when it
//! comes from the provider: bodies, headers, a URL a redirect led to. Text the guest
//! wrote itself (its URL, a header name) comes back verbatim: scrubbing it would tell
//! the guest which of its guesses is a secret. What the host writes (log lines, the
//! denials and limit hits of `summary.json`) is always scrubbed.

use super::{Event, RunContext, RunStats, StepCtx};
use crate::net::address::{CheckedResolver, StaticHosts, host_port, names_host, restricted_range};
use crate::net::{error_chain, find_source};
use crate::policy::{Context, EffectiveLimits};
use crate::secrets::Redactor;
use futures::future::join_all;
use pace::{TokenBucket, pause};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;
use wasmtime::component::{Linker, Resource, ResourceType};

mod pace;
pub mod quota;
pub mod tape;
pub use quota::estimate as quota_estimate;
mod types;
pub use types::{Auth, BasicAuth, HttpError, Request, Response, ResponseHead};

/// Redirect hops the host follows (each one checked again).
pub const MAX_REDIRECTS: usize = 10;
/// Requests one batch call may carry.
pub const MAX_BATCH: usize = 1000;
/// Timeout for a request that does not name one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The methods a guest may use: no `CONNECT` (a tunnel), no `TRACE` (echoes the request,
/// credentials included), no custom method an origin or a proxy may treat in ways the
/// policy did not check.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Headers only the host sets (compared case-insensitively), besides any `Proxy-*`.
pub const HOST_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "connection",
    "keep-alive",
    "upgrade",
    "host",
    "expect",
    // The body the guest reads is what the redactor scrubbed: no compressed echo (the
    // client decodes nothing) and no range that cuts a secret into pieces.
    "accept-encoding",
    "range",
    "if-range",
];
/// Most bytes allocated for a body before they arrive, whatever its announced size.
const MAX_PREALLOCATED: u64 = 8 << 20;

/// Per-run HTTP state: the shared client and the run's rate, concurrency and
/// bytes-in-flight limits.
pub struct HttpCapability {
    client: reqwest::Client,
    bucket: Mutex<TokenBucket>,
    concurrency: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    /// Set once the guest has sent a secret value it was never given: from then on the
    /// run makes no request (see `Call::refuse_known_secrets`).
    closed: std::sync::atomic::AtomicBool,
    /// `host:port` of URLs the operator wrote in the instance's config
    /// (`Call::check_address`).
    pub operator_hosts: std::collections::BTreeSet<String>,
    /// The provider quotas this run draws from (`requestsPerMinute`, `requestsPerHour`).
    quotas: quota::RunQuotas,
    /// The plugin id quota keys are scoped by: runs of one plugin share a tenant's quota,
    /// and another plugin (a hostile one naming the same key or host with a tiny quota)
    /// cannot tighten or drain it.
    pub quota_scope: String,
    /// Whether the run has said that a quota made it wait.
    quota_wait_logged: std::sync::atomic::AtomicBool,
    /// Who keeps the shared quotas when this process does not (a cluster worker's
    /// coordinator); `None`: this process's own.
    pub quota_keeper: Option<Arc<dyn quota::QuotaKeeper>>,
    /// Where the run's exchanges are recorded (`corral run --record`).
    pub recorder: Option<Arc<tape::Recorder>>,
    /// Recorded answers the run is given instead of the network (`--replay`).
    pub tape: Option<Arc<tape::Tape>>,
}

/// A request's URL and whose text it is: the guest's own is handed back verbatim, one a
/// provider's redirect led to is scrubbed.
#[derive(Clone)]
struct Target {
    url: Url,
    from_guest: bool,
}

/// A request's provider quota, and who keeps it.
enum Quota {
    /// This process: the run's joined buckets.
    Here(quota::QuotaAsk, Arc<Mutex<quota::Buckets>>),
    /// Another process (a cluster worker's coordinator).
    Kept(Arc<dyn quota::QuotaKeeper>, quota::QuotaAsk),
}

impl Quota {
    fn ask(&self) -> &quota::QuotaAsk {
        match self {
            Quota::Here(ask, _) | Quota::Kept(_, ask) => ask,
        }
    }
}

/// A response whose head has arrived: the body is still on the wire.
struct Head {
    resp: reqwest::Response,
    target: Target,
    /// Holds one of the run's concurrent-request slots until the body is read or dropped.
    permit: OwnedSemaphorePermit,
    /// When this request's own timeout ends.
    deadline: Instant,
}

/// A body the guest reads as it streams (the WIT `body` resource).
pub struct BodyStream {
    resp: reqwest::Response,
    target: Target,
    _permit: OwnedSemaphorePermit,
    /// Scrubbed, for the guest's next reads.
    pending: Vec<u8>,
    /// Not yet scrubbed: the tail of what arrived, held back until the next piece shows
    /// whether an echoed secret continues in it.
    held: Vec<u8>,
    ended: bool,
    /// The error that ended the body early, repeated to every later read.
    failed: Option<HttpError>,
    read: u64,
    scrub: Redactor,
    /// `pending` and `held` against the run's bytes in flight.
    hold: Reservation,
    /// The exchange being recorded and the bytes the guest has read of its body (at
    /// most `maxResponseBytes`); written when the body is dropped.
    recording: Option<(Arc<tape::Recorder>, tape::Exchange, Vec<u8>)>,
}

impl BodyStream {
    /// Bytes kept for the recording: counted in the run's bytes in flight too.
    fn recorded(&self) -> usize {
        self.recording.as_ref().map_or(0, |(_, _, read)| read.len())
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some((recorder, mut exchange, read)) = self.recording.take() {
            exchange.body = tape::Body::of(read);
            recorder.write(&exchange);
        }
    }
}

/// A run's client: no automatic redirects (the host follows them itself, so it can check
/// each hop), no proxies from the environment, and every hostname resolved through the
/// address rules.
pub fn build_client(limits: &EffectiveLimits, hosts: StaticHosts) -> reqwest::Client {
    let resolver = CheckedResolver {
        allow_private: limits.allow_private_networks,
        hosts,
    };
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("corral/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}

impl HttpCapability {
    /// Never panics on a limit's value: out-of-range ones are clamped.
    pub fn new(limits: &EffectiveLimits, hosts: StaticHosts) -> Self {
        let permits = usize::try_from(limits.max_concurrent_requests)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        HttpCapability {
            client: build_client(limits, hosts),
            bucket: Mutex::new(TokenBucket::new(limits.requests_per_second)),
            concurrency: Arc::new(Semaphore::new(permits)),
            in_flight: Arc::new(InFlight {
                limit: limits.max_in_flight_bytes,
                used: AtomicU64::new(0),
            }),
            closed: Default::default(),
            operator_hosts: Default::default(),
            quotas: Default::default(),
            quota_wait_logged: Default::default(),
            quota_scope: String::new(),
            quota_keeper: None,
            recorder: None,
            tape: None,
        }
    }
}

/// The bytes of response bodies the run holds, against its limit.
struct InFlight {
    limit: u64,
    used: AtomicU64,
}

/// Bytes of the run's budget held by one body (or one batch's bodies); given back when
/// dropped.
pub struct Reservation {
    pool: Arc<InFlight>,
    bytes: u64,
}

impl Reservation {
    fn new(pool: &Arc<InFlight>) -> Self {
        Reservation {
            pool: pool.clone(),
            bytes: 0,
        }
    }

    /// Holds `total` bytes in all. Growing past the run's limit is refused at once (the
    /// reservation keeps what it held): waiting could deadlock, since the bytes waited
    /// for may be held by finished bodies of the same batch.
    fn resize(&mut self, total: u64) -> bool {
        if total <= self.bytes {
            self.pool
                .used
                .fetch_sub(self.bytes - total, Ordering::SeqCst);
            self.bytes = total;
            return true;
        }
        let extra = total - self.bytes;
        let limit = self.pool.limit;
        let grown = self
            .pool
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(extra).filter(|&n| n <= limit)
            })
            .is_ok();
        if grown {
            self.bytes = total;
        }
        grown
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// One request's journey, for error messages and counters.
struct Call<'a> {
    run: &'a RunContext,
    step: &'a str,
    /// The run's secrets and the values derived from them that this request sent.
    scrub: Mutex<Redactor>,
}

impl<'a> Call<'a> {
    fn new(run: &'a RunContext, step: &'a str) -> Self {
        Self::scrubbing(run, step, run.secrets.redactor())
    }

    fn scrubbing(run: &'a RunContext, step: &'a str, scrub: Redactor) -> Self {
        Call {
            run,
            step,
            scrub: Mutex::new(scrub),
        }
    }

    /// Runs `f` with the request's redactor (the lock is never held past it).
    fn with_redactor<R>(&self, f: impl FnOnce(&mut Redactor) -> R) -> R {
        f(&mut self.scrub.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn scrub(&self, text: &str) -> String {
        self.with_redactor(|r| r.redact(text))
    }

    /// `text` about `target` as the guest may see it: verbatim if the guest wrote the
    /// URL, scrubbed if a provider's redirect led there.
    fn shown_text(&self, target: &Target, text: &str) -> String {
        if target.from_guest {
            text.to_string()
        } else {
            self.scrub(text)
        }
    }

    fn shown(&self, target: &Target) -> String {
        self.shown_text(target, target.url.as_str())
    }

    /// Counts and logs a denial or limit hit, scrubbed: the guest never reads these.
    fn record(&self, list: &Mutex<Vec<Event>>, action: &str, resource: &str, rule: &str) {
        let (resource, rule) = (self.scrub(resource), self.scrub(rule));
        let msg = format!("{action} {resource}: {rule}");
        RunStats::record(
            list,
            Event {
                step: self.step.to_string(),
                action: action.to_string(),
                resource,
                rule,
            },
        );
        self.run.log.host(self.run, self.step, "warn", &msg);
    }

    /// A refusal; `resource` and `rule` as the guest may see them.
    fn deny(&self, action: &str, resource: &str, rule: &str) -> HttpError {
        self.record(&self.run.stats.denials, action, resource, rule);
        HttpError::Denied(format!("{action} {resource} denied: {rule}"))
    }

    /// A limit hit; `what` is host text.
    fn limit(&self, what: &str, target: &Target) -> HttpError {
        self.record(
            &self.run.stats.limit_hits,
            "http",
            target.url.as_str(),
            what,
        );
        HttpError::RateLimited(what.to_string())
    }

    /// A guest never holds a secret value, so one in its own request text (URL, header
    /// templates, body: in any form the redactor knows) is a guess or a leak. Refusing
    /// just that request would confirm the guess; instead the run's HTTP closes for
    /// good, so a guest learns at most one bit per run, loudly.
    fn refuse_known_secrets(&self, req: &Request) -> Result<(), HttpError> {
        use std::sync::atomic::Ordering;
        let http = &self.run.http;
        let r = &self.run.redactor;
        let carries = !r.is_empty()
            && (!r.find(req.url.as_bytes()).is_empty()
                || req.headers.iter().any(|(k, v)| {
                    !r.find(k.as_bytes()).is_empty() || !r.find(v.as_bytes()).is_empty()
                })
                || req.body.as_ref().is_some_and(|b| !r.find(b).is_empty())
                || matches!(&req.auth, Auth::Basic(b) if !r.find(b.username.as_bytes()).is_empty()));
        if carries && !http.closed.swap(true, Ordering::SeqCst) {
            let rule = "the plugin sent a secret value it was never given; HTTP is closed for the rest of this run";
            self.record(&self.run.stats.denials, "http", "request", rule);
        }
        if http.closed.load(Ordering::SeqCst) {
            return Err(HttpError::Denied(
                "HTTP is closed for this run: the plugin sent a secret value it was never given"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Every hop checked and sent until a response that is not a redirect.
    async fn fetch_head(&self, req: &Request) -> Result<Head, HttpError> {
        self.refuse_known_secrets(req)?;
        let mut method = parse_method(&req.method)?;
        let headers = guest_headers(&req.headers)?;
        let mut target = Target {
            url: parse_url(&req.url)?,
            from_guest: true,
        };
        if let Some(tape) = &self.run.http.tape {
            self.authorize(&method, &target, &headers, &req.auth)?;
            return self.replay(tape, req).await;
        }
        let mut body = req.body.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let sent = self.authorize(&method, &target, &headers, &req.auth)?;
            let (resp, permit, deadline) = self
                .send(&method, &target, sent, body.clone(), req.timeout_ms)
                .await?;
            let next = redirect_target(&resp, &target.url);
            if let Some(n) = &next {
                check_url_length(n.as_str().len(), "redirect target")?;
            }
            let Some(next) = next else {
                return Ok(Head {
                    resp,
                    target,
                    permit,
                    deadline,
                });
            };
            // 303, and 301/302 after a POST, turn into a GET without a body (as browsers do).
            let status = resp.status().as_u16();
            if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                method = reqwest::Method::GET;
                body = None;
            }
            target = Target {
                url: next,
                from_guest: false,
            };
        }
        Err(HttpError::Invalid(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }

    /// The recorded answer to `req`, as a response head (the policy was checked as for
    /// a request sent; the run's request count, concurrency and rate hold too). A request
    /// with no recording fails, naming it, as `invalid`: asking again cannot help, so a
    /// plugin's retries (which retry `connect` and `timeout`) do not wait for it.
    async fn replay(&self, tape: &tape::Tape, req: &Request) -> Result<Head, HttpError> {
        let target = Target {
            url: parse_url(&req.url)?,
            from_guest: true,
        };
        let permit = self.admit(&target).await?;
        let e = tape
            .answer(
                &req.method,
                &req.url,
                req.body.as_deref(),
                auth_ref(&req.auth).as_deref(),
            )
            .map_err(HttpError::Invalid)?;
        let mut head = http::Response::builder().status(e.status);
        for (name, value) in &e.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                head = head.header(n, v);
            }
        }
        let resp = head
            .body(e.body.into_bytes())
            .map_err(|err| HttpError::Invalid(format!("recorded answer to {}: {err}", req.url)))?;
        let url = parse_url(&e.final_url)?;
        let from_guest = url.as_str() == req.url;
        Ok(Head {
            resp: reqwest::Response::from(resp),
            target: Target { url, from_guest },
            permit,
            deadline: self.run.deadline,
        })
    }

    /// The exchange of `req` and its answer, for the recording.
    fn exchange(
        req: &Request,
        status: u16,
        headers: &[(String, String)],
        url: &str,
    ) -> tape::Exchange {
        tape::Exchange {
            method: req.method.clone(),
            url: req.url.clone(),
            request_headers: req.headers.clone(),
            request_body: req.body.clone().map(tape::Body::of),
            auth: auth_ref(&req.auth),
            status,
            headers: headers.to_vec(),
            body: tape::Body::Text(String::new()),
            final_url: url.to_string(),
        }
    }

    /// One whole request: head, then the body read while it streams, within the
    /// request's timeout, `maxResponseBytes` and the run's bytes in flight. The body's
    /// bytes stay reserved while the caller holds the reservation.
    async fn fetch(&self, req: Request) -> Result<(Response, Reservation), HttpError> {
        let head = self.fetch_head(&req).await?;
        let (status, headers) = self.head_parts(&head.resp);
        let mut hold = Reservation::new(&self.run.http.in_flight);
        let reading = self.read(&head.target, head.resp, &mut hold);
        let body = tokio::time::timeout_at(head.deadline.into(), reading)
            .await
            .map_err(|_| {
                let url = self.shown(&head.target);
                HttpError::Timeout(format!("{url} did not finish its body in time"))
            })??;
        let resp = Response {
            status,
            headers,
            body: self.with_redactor(|r| r.redact_bytes(body)),
            url: self.shown(&head.target),
        };
        if let Some(recorder) = &self.run.http.recorder {
            let mut e = Self::exchange(&req, resp.status, &resp.headers, &resp.url);
            e.body = tape::Body::of(resp.body.clone());
            recorder.write(&e);
        }
        Ok((resp, hold))
    }

    /// The head of a request whose body the guest will read as it streams.
    async fn fetch_streaming(&self, req: Request) -> Result<(ResponseHead, BodyStream), HttpError> {
        let head = self.fetch_head(&req).await?;
        let (status, headers) = self.head_parts(&head.resp);
        let max = self.run.grant.limits.max_response_bytes;
        if head.resp.content_length().is_some_and(|n| n > max) {
            return Err(self.too_large(&head.target, max));
        }
        let url = self.shown(&head.target);
        let scrub = self.with_redactor(|r| r.clone());
        let recording = self
            .run
            .http
            .recorder
            .clone()
            .map(|r| (r, Self::exchange(&req, status, &headers, &url), Vec::new()));
        let body = BodyStream {
            resp: head.resp,
            target: head.target,
            _permit: head.permit,
            pending: Vec::new(),
            held: Vec::new(),
            ended: false,
            failed: None,
            read: 0,
            scrub,
            hold: Reservation::new(&self.run.http.in_flight),
            recording,
        };
        Ok((
            ResponseHead {
                status,
                headers,
                url,
            },
            body,
        ))
    }

    /// Status and headers, names and values scrubbed.
    fn head_parts(&self, resp: &reqwest::Response) -> (u16, Vec<(String, String)>) {
        let headers = self.with_redactor(|scrub| {
            resp.headers()
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes());
                    (scrub.redact(k.as_str()), scrub.redact(&value))
                })
                .collect()
        });
        (resp.status().as_u16(), headers)
    }

    /// The next piece of a streamed body, at most `max` bytes; empty at the end.
    async fn read_stream(&self, body: &mut BodyStream, max: u32) -> Result<Vec<u8>, HttpError> {
        while body.pending.is_empty() && !body.ended {
            if let Some(e) = &body.failed {
                return Err(e.clone());
            }
            if let Err(e) = self.pull(body).await {
                // Nothing more of this body is held or handed out.
                (body.pending, body.held) = (Vec::new(), Vec::new());
                body.hold.resize(0);
                body.failed = Some(e.clone());
                return Err(e);
            }
        }
        let n = (max.max(1) as usize).min(body.pending.len());
        let piece: Vec<u8> = body.pending.drain(..n).collect();
        if let Some((_, _, read)) = &mut body.recording {
            read.extend_from_slice(&piece);
        }
        body.hold
            .resize((body.pending.len() + body.held.len() + body.recorded()) as u64);
        Ok(piece)
    }

    /// Reads one network chunk of a streamed body and scrubs what of it can no longer
    /// be the start of an echoed secret; the rest is held back for the next chunk.
    async fn pull(&self, body: &mut BodyStream) -> Result<(), HttpError> {
        let next = tokio::time::timeout_at(self.run.deadline.into(), body.resp.chunk())
            .await
            .map_err(|_| {
                let url = self.shown(&body.target);
                HttpError::Timeout(format!("the run's deadline passed while reading {url}"))
            })?
            .map_err(|e| self.transport_error(&body.target, e))?;
        if let Some(chunk) = &next {
            let limit = self.run.grant.limits.max_response_bytes;
            body.read += chunk.len() as u64;
            if body.read > limit {
                return Err(self.too_large(&body.target, limit));
            }
            let holding = body.pending.len() + body.held.len() + chunk.len() + body.recorded();
            if !body.hold.resize(holding as u64) {
                return Err(self.in_flight_hit(&body.target));
            }
        }
        body.ended = next.is_none();
        body.pending = scrub_stream(&body.scrub, &mut body.held, next.as_deref());
        Ok(())
    }

    /// The policy check for one hop, then the headers with secrets substituted. A value
    /// derived from a secret (the base64 of `Basic` credentials) joins the request's
    /// redactor: a provider echoing it back would otherwise hand the guest a decodable
    /// credential.
    fn authorize(
        &self,
        method: &reqwest::Method,
        target: &Target,
        guest: &[(HeaderName, &str)],
        auth: &Auth,
    ) -> Result<HeaderMap, HttpError> {
        let url = &target.url;
        let action = format!("http:{method}");
        let ctx = Context::http(method.as_str(), url);
        let decision = self.run.grant.check(&action, url.as_str(), &ctx);
        if !decision.allowed {
            return Err(self.deny(&action, &self.shown(target), &decision.rule));
        }
        self.check_address(&action, target, &decision.allowing)?;
        let mut headers = HeaderMap::new();
        for (name, value) in guest {
            let substituted = self.substitute(value, target, &ctx)?;
            headers.append(name.clone(), header_value(name.as_str(), &substituted)?);
        }
        match auth {
            Auth::None => {}
            Auth::Bearer(secret) => {
                let token = self.secret(secret, target, &ctx)?;
                let value = format!("Bearer {token}");
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    header_value("Authorization", &value)?,
                );
            }
            Auth::Basic(b) => {
                let password = self.secret(&b.password_secret, target, &ctx)?;
                let encoded = base64_encode(format!("{}:{password}", b.username).as_bytes());
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    header_value("Authorization", &format!("Basic {encoded}"))?,
                );
                self.with_redactor(|r| r.add(&encoded));
            }
        }
        Ok(headers)
    }

    /// Refuses an IP literal in a restricted range (and `localhost`) unless private
    /// networks are allowed or the allowing rule names that host itself. Hostnames are
    /// checked again after DNS by the client's resolver.
    fn check_address(
        &self,
        action: &str,
        target: &Target,
        allowing: &[String],
    ) -> Result<(), HttpError> {
        if self.run.grant.limits.allow_private_networks {
            return Ok(());
        }
        let url = &target.url;
        let host = url.host_str().unwrap_or_default();
        let range = match url.host() {
            Some(url::Host::Ipv4(ip)) => restricted_range(ip.into()),
            Some(url::Host::Ipv6(ip)) => restricted_range(ip.into()),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Some("loopback"),
            _ => None,
        };
        let Some(range) = range else { return Ok(()) };
        // The allowing rule must name the host itself, and the name must be the
        // operator's: their policy's rule, or a URL they wrote in the instance's config.
        // A plugin's own manifest never opens loopback or the metadata service.
        let operators = self.run.grant.operator.is_some()
            || host_port(url).is_some_and(|w| self.run.http.operator_hosts.contains(&w));
        if operators && allowing.iter().any(|r| names_host(Some(r), host)) {
            return Ok(());
        }
        let rule = format!(
            "{host} is a {range} address; allowPrivateNetworks is false and no rule of the operator's names {host} itself"
        );
        Err(self.deny(action, &self.shown(target), &self.shown_text(target, &rule)))
    }

    /// The value of a secret, after `secret:Use` on `secret:<name>` for this URL.
    fn secret(&self, name: &str, target: &Target, ctx: &Context) -> Result<String, HttpError> {
        // Secret names are config field names (at most 64 characters): a longer one names
        // nothing, and is not worth a policy match.
        if name.len() > 64 {
            return Err(HttpError::Invalid(format!(
                "no secret field has a name of {} bytes",
                name.len()
            )));
        }
        let resource = format!("secret:{name}");
        let decision = self.run.grant.check("secret:Use", &resource, ctx);
        if !decision.allowed {
            let rule = format!("{} (for {})", decision.rule, self.shown(target));
            return Err(self.deny("secret:Use", &resource, &rule));
        }
        let value = self.run.secrets.get(name).ok_or_else(|| {
            HttpError::Invalid(format!(
                "no secret named {name} is configured for this instance"
            ))
        })?;
        Ok(value.expose().to_string())
    }

    /// Replaces every `{{secret:NAME}}` in a header value.
    fn substitute(
        &self,
        template: &str,
        target: &Target,
        ctx: &Context,
    ) -> Result<String, HttpError> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{secret:") {
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| HttpError::Invalid("unclosed {{secret:…}} in a header".into()))?;
            out.push_str(&rest[..start]);
            out.push_str(&self.secret(rest[start + 9..start + end].trim(), target, ctx)?);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Sends one hop within the run's limits and returns its head, with the request's
    /// concurrency slot and its own deadline.
    async fn send(
        &self,
        method: &reqwest::Method,
        target: &Target,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        timeout_ms: Option<u32>,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit, Instant), HttpError> {
        let permit = self.admit(target).await?;
        self.wait_for_quota(target).await?;
        let url = self.shown(target);
        let remaining = self.run.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Timeout(format!(
                "the run's deadline passed before {method} {url}"
            )));
        }
        let timeout = timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(remaining);
        let deadline = Instant::now() + timeout;
        let mut builder = self
            .run
            .http
            .client
            .request(method.clone(), target.url.clone())
            .headers(headers);
        if let Some(b) = body {
            builder = builder.body(b);
        }
        let resp = tokio::time::timeout(timeout, builder.send())
            .await
            .map_err(|_| {
                HttpError::Timeout(format!(
                    "{method} {url} took longer than {} ms",
                    timeout.as_millis()
                ))
            })?
            .map_err(|e| self.transport_error(target, e))?;
        self.observe_quota(target, resp.headers());
        Ok((resp, permit, deadline))
    }

    /// One request of the run, sent or replayed: counted against `maxRequests`, given a
    /// concurrency slot (held until its body is read or dropped) and a rate token.
    async fn admit(&self, target: &Target) -> Result<OwnedSemaphorePermit, HttpError> {
        let limits = &self.run.grant.limits;
        if self.run.stats.count_request() > limits.max_requests {
            let what = format!("maxRequests limit of {} reached", limits.max_requests);
            return Err(self.limit(&what, target));
        }
        let permit = self
            .run
            .http
            .concurrency
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HttpError::RateLimited("the run's requests are closed".into()))?;
        self.wait_for_token().await?;
        Ok(permit)
    }

    /// Waits for the rate limit's next token; fails at once if it comes after the run's
    /// deadline.
    async fn wait_for_token(&self) -> Result<(), HttpError> {
        loop {
            let (taken, fits) = {
                let mut bucket = self
                    .run
                    .http
                    .bucket
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (bucket.take(), bucket.fits_tick())
            };
            let wait = match taken {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            if Instant::now()
                .checked_add(wait)
                .is_none_or(|t| t > self.run.deadline)
            {
                return Err(HttpError::Timeout(format!(
                    "the run's deadline passes before requestsPerSecond ({}) allows another request",
                    self.run.grant.limits.requests_per_second
                )));
            }
            tokio::time::sleep(pause(wait, fits, self.run.deadline)).await;
        }
    }

    /// The provider quota `target` draws from (its `quotaKey`, else its host), if the
    /// run has one, and who keeps it.
    fn quota(&self, target: &Target) -> Option<Quota> {
        let limits = &self.run.grant.limits;
        if limits.requests_per_minute.is_none() && limits.requests_per_hour.is_none() {
            return None;
        }
        let ask = quota::QuotaAsk {
            scope: self.run.http.quota_scope.clone(),
            key: match &limits.quota_key {
                Some(k) => k.clone(),
                None => host_port(&target.url).unwrap_or_default(),
            },
            per_minute: limits.requests_per_minute,
            per_hour: limits.requests_per_hour,
        };
        Some(match &self.run.http.quota_keeper {
            Some(keeper) => Quota::Kept(keeper.clone(), ask),
            None => {
                let buckets = self.run.http.quotas.buckets(
                    &ask.scope,
                    &ask.key,
                    ask.per_minute,
                    ask.per_hour,
                );
                Quota::Here(ask, buckets)
            }
        })
    }

    /// Takes the provider's own count of what its quota has left (its
    /// `x-ratelimit-remaining-*` headers) into the quota `target` draws from.
    fn observe_quota(&self, target: &Target, headers: &HeaderMap) {
        let counts: Vec<_> = headers
            .iter()
            .filter_map(|(name, value)| quota::remaining(name.as_str(), value.as_bytes()))
            .collect();
        if counts.is_empty() {
            return;
        }
        match self.quota(target) {
            Some(Quota::Here(_, buckets)) => {
                let mut b = buckets.lock().unwrap_or_else(PoisonError::into_inner);
                for (window, left) in counts {
                    b.observe(window, left);
                }
            }
            Some(Quota::Kept(keeper, ask)) => {
                for (window, left) in counts {
                    keeper.observe(&ask, window, left);
                }
            }
            None => {}
        }
    }

    /// Waits for the provider quota of `target` (its `quotaKey`, else its host), shared
    /// with every run of the process (or of the cluster) that names the same key; fails
    /// at once if the next token comes after the run's deadline. The first wait is
    /// logged, with how long.
    async fn wait_for_quota(&self, target: &Target) -> Result<(), HttpError> {
        let Some(quota) = self.quota(target) else {
            return Ok(());
        };
        loop {
            let spent = match &quota {
                Quota::Here(_, buckets) => buckets
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
                Quota::Kept(keeper, ask) => keeper.take(ask).await,
            };
            let spent = match spent {
                Ok(()) => return Ok(()),
                Err(spent) => spent,
            };
            let what = spent.what(&quota.ask().key);
            if Instant::now()
                .checked_add(spent.wait)
                .is_none_or(|t| t > self.run.deadline)
            {
                if spent.window == quota::REFUSED {
                    return Err(HttpError::Denied(what));
                }
                return Err(HttpError::Timeout(format!(
                    "the run's deadline passes before {what} allows another request (in {} s)",
                    spent.wait.as_secs()
                )));
            }
            if !self
                .run
                .http
                .quota_wait_logged
                .swap(true, Ordering::Relaxed)
            {
                let line = format!(
                    "{what} is spent: waiting {} s for the next request; the run's requests are spread over the quota",
                    spent.wait.as_secs().max(1)
                );
                self.run.log.host(self.run, self.step, "warn", &line);
            }
            tokio::time::sleep(pause(spent.wait, spent.fits_tick, self.run.deadline)).await;
        }
    }

    /// Reads the body while it streams, stopping as soon as it passes
    /// `maxResponseBytes` or the run's bytes in flight.
    async fn read(
        &self,
        target: &Target,
        mut resp: reqwest::Response,
        hold: &mut Reservation,
    ) -> Result<Vec<u8>, HttpError> {
        let max = self.run.grant.limits.max_response_bytes;
        let announced = resp.content_length().unwrap_or(0);
        if announced > max {
            return Err(self.too_large(target, max));
        }
        // A body of announced size is reserved whole before any of it is read.
        if !hold.resize(announced) {
            return Err(self.in_flight_hit(target));
        }
        let mut body = Vec::with_capacity(announced.min(MAX_PREALLOCATED) as usize);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(target, e))?
        {
            let len = body.len() as u64 + chunk.len() as u64;
            if len > max {
                return Err(self.too_large(target, max));
            }
            if len > hold.bytes && !hold.resize(len) {
                return Err(self.in_flight_hit(target));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self, target: &Target, max: u64) -> HttpError {
        self.record(
            &self.run.stats.limit_hits,
            "http",
            target.url.as_str(),
            &format!("maxResponseBytes limit of {max} reached"),
        );
        HttpError::TooLarge(max)
    }

    fn in_flight_hit(&self, target: &Target) -> HttpError {
        let what = format!(
            "maxInFlightBytes limit of {} reached: the run already holds that many bytes of response bodies",
            self.run.http.in_flight.limit
        );
        self.limit(&what, target)
    }

    fn transport_error(&self, target: &Target, e: reqwest::Error) -> HttpError {
        if let Some(r) = find_source::<crate::net::address::RestrictedAddress>(&e) {
            let rule = self.shown_text(target, &r.to_string());
            return self.deny("http:connect", &self.shown(target), &rule);
        }
        let timeout = e.is_timeout();
        // The URL once, as the guest may see it; reqwest's own copy is left out, and the
        // rest (the OS's or the provider's words) is scrubbed.
        let cause = self.scrub(&error_chain(&e.without_url()));
        let text = format!("{}: {cause}", self.shown(target));
        if timeout {
            HttpError::Timeout(text)
        } else {
            HttpError::Connect(text)
        }
    }
}

/// What of a streamed body can go to the guest once `chunk` arrived (`None`: the body
/// ended), scrubbed; the rest stays in `held` for the next chunk.
fn scrub_stream(scrub: &Redactor, held: &mut Vec<u8>, chunk: Option<&[u8]>) -> Vec<u8> {
    let cut = match chunk {
        Some(c) => {
            held.extend_from_slice(c);
            safe_cut(scrub, held)
        }
        None => held.len(),
    };
    let ready: Vec<u8> = held.drain(..cut).collect();
    scrub.redact_bytes(ready)
}

/// How much of a streamed body's unscrubbed bytes can go to the guest: all but the last
/// `max_span`, where an echoed secret may continue in the next chunk, and never through
/// the middle of a secret found.
fn safe_cut(scrub: &Redactor, held: &[u8]) -> usize {
    let cut = held.len().saturating_sub(scrub.max_span());
    scrub
        .find(held)
        .into_iter()
        .find(|s| s.start < cut && cut < s.end)
        .map_or(cut, |s| s.end)
}

/// The credentials a request asks for, by reference, as a recording keeps them.
fn auth_ref(auth: &Auth) -> Option<String> {
    match auth {
        Auth::None => None,
        Auth::Bearer(name) => Some(format!("bearer:{name}")),
        Auth::Basic(b) => Some(format!("basic:{}:{}", b.username, b.password_secret)),
    }
}

fn parse_method(m: &str) -> Result<reqwest::Method, HttpError> {
    if !METHODS.contains(&m) {
        return Err(HttpError::Invalid(format!(
            "method {m:?} is not allowed: use one of {}",
            METHODS.join(", ")
        )));
    }
    reqwest::Method::from_bytes(m.as_bytes())
        .map_err(|_| HttpError::Invalid(format!("invalid method {m:?}")))
}

/// The guest's headers, checked: names valid and none of the host's own.
fn guest_headers(headers: &[(String, String)]) -> Result<Vec<(HeaderName, &str)>, HttpError> {
    headers
        .iter()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            if HOST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                return Err(HttpError::Invalid(format!(
                    "the {name} header is set by the host, not the plugin"
                )));
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::Invalid(format!("invalid header name {name:?}")))?;
            Ok((name, value.as_str()))
        })
        .collect()
}

/// Longest URL the host sends or follows. Policy globs are matched against it, and a
/// glob match costs the pattern's length times the URL's: a URL of megabytes would hold a
/// host thread for minutes. Servers commonly refuse past 8 KiB anyway.
pub const MAX_URL_BYTES: usize = 16 << 10;

fn parse_url(u: &str) -> Result<Url, HttpError> {
    check_url_length(u.len(), "URL")?;
    let url = Url::parse(u).map_err(|e| HttpError::Invalid(format!("invalid URL {u:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(HttpError::Invalid(format!(
            "unsupported URL {u:?}: only http and https with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpError::Invalid(
            "credentials in a URL are refused: use auth".into(),
        ));
    }
    Ok(url)
}

fn check_url_length(len: usize, what: &str) -> Result<(), HttpError> {
    if len > MAX_URL_BYTES {
        return Err(HttpError::Invalid(format!(
            "{what} of {len} bytes: at most {MAX_URL_BYTES} are sent or followed"
        )));
    }
    Ok(())
}

/// A header value; the error names the header, never the value (it may hold a secret).
fn header_value(name: &str, v: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(v)
        .map_err(|_| HttpError::Invalid(format!("invalid value for the {name} header")))
}

/// The next URL if this is a redirect with a usable `Location`.
fn redirect_target(resp: &reqwest::Response, base: &Url) -> Option<Url> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    base.join(location).ok()
}

fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Registers `http` under `interface` (say `corral:integration/http@0.2.0`): the
/// resource and its method here, the three fetches through `lift` (their requests are
/// lifted within the call's caps).
pub fn add_to_linker(linker: &mut Linker<StepCtx>, interface: &str) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    inst.resource(
        "body",
        ResourceType::host::<BodyStream>(),
        |mut store, rep| store.data_mut().drop_body(Resource::new_own(rep)),
    )?;
    inst.func_wrap_async(
        "[method]body.read",
        |mut store: wasmtime::StoreContextMut<'_, StepCtx>,
         (body, max): (Resource<BodyStream>, u32)| {
            Box::new(async move { Ok((store.data_mut().read_body(body, max).await,)) })
        },
    )?;
    super::lift::add_fetches(&mut inst)
}

impl StepCtx {
    pub async fn fetch(&mut self, req: Request) -> Result<Response, HttpError> {
        let call = Call::new(&self.run, &self.step);
        call.fetch(req).await.map(|(resp, _hold)| resp)
    }

    pub async fn fetch_batch(&mut self, reqs: Vec<Request>) -> Vec<Result<Response, HttpError>> {
        if reqs.len() > MAX_BATCH {
            let msg = format!(
                "a batch holds at most {MAX_BATCH} requests, not {}",
                reqs.len()
            );
            return reqs
                .iter()
                .map(|_| Err(HttpError::Invalid(msg.clone())))
                .collect();
        }
        let (run, step) = (&*self.run, self.step.as_str());
        let outcomes = join_all(
            reqs.into_iter()
                .map(|r| async move { Call::new(run, step).fetch(r).await }),
        )
        .await;
        // Finished bodies stay reserved until the batch goes back to the guest.
        let (results, _held): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .map(|o| match o {
                Ok((resp, hold)) => (Ok(resp), Some(hold)),
                Err(e) => (Err(e), None),
            })
            .unzip();
        results
    }

    pub async fn fetch_streaming(
        &mut self,
        req: Request,
    ) -> Result<(ResponseHead, Resource<BodyStream>), HttpError> {
        let call = Call::new(&self.run, &self.step);
        let (head, body) = call.fetch_streaming(req).await?;
        let handle = self
            .table_mut()
            .push(body)
            .map_err(|e| HttpError::Invalid(format!("too many open bodies: {e}")))?;
        Ok((head, handle))
    }

    /// `body.read`: up to `max` bytes of a streamed body, scrubbed.
    pub async fn read_body(
        &mut self,
        body: Resource<BodyStream>,
        max: u32,
    ) -> Result<Vec<u8>, HttpError> {
        let run = self.run.clone();
        let step = self.step.clone();
        let stream = self
            .table_mut()
            .get_mut(&body)
            .map_err(|e| HttpError::Invalid(format!("no such body: {e}")))?;
        Call::scrubbing(&run, &step, stream.scrub.clone())
            .read_stream(stream, max)
            .await
    }

    /// The guest dropped a body: its reservation goes with it.
    pub fn drop_body(&mut self, body: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table_mut().delete(body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockExt;
    use crate::policy::{Grant, Policy};
    use crate::secrets::{REDACTED, SecretValue, Secrets};
    use corral_simulators::SimServer;
    use corral_simulators::attack::{AttackSim, encode};
    use std::collections::{BTreeMap, BTreeSet};

    const SECRET: &str = "unit/http-secret-4471";

    const MANIFEST: &str = r#"{"permissions":[
        {"effect":"ALLOW","actions":["http:*"],"resources":["{{config.baseUrl}}*"]},
        {"effect":"ALLOW","actions":["secret:Use"],"resources":["secret:token"],
         "condition":{"stringLike":{"http:url":"{{config.baseUrl}}api/*"}}}],
      "limits":{"maxResponseBytes":1048576,"requestsPerSecond":1000,
                "maxConcurrentRequests":16,"timeoutSeconds":20}}"#;

    /// A run of the manifest above against `base`, with `in_flight` bytes in flight.
    fn run_context(base: &str, in_flight: u64) -> Arc<RunContext> {
        let config = BTreeMap::from([("baseUrl".to_string(), base.to_string())]);
        let mut grant = Grant::new(Policy::parse(MANIFEST, "test", &config).unwrap(), None);
        grant.limits.max_in_flight_bytes = in_flight;
        let mut secrets = Secrets::default();
        secrets.insert("token", SecretValue::new(SECRET));
        let mut run = RunContext::new(
            "unit",
            "unit",
            grant,
            secrets,
            config,
            BTreeSet::from(["token".to_string()]),
            StaticHosts::default(),
        );
        // The operator wrote `base` in the config.
        run.http.operator_hosts = Url::parse(base)
            .ok()
            .and_then(|u| host_port(&u))
            .into_iter()
            .collect();
        Arc::new(run)
    }

    async fn sim() -> (SimServer, StepCtx) {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let ctx = StepCtx::new(run_context(&format!("{}/", server.origin()), 8 << 20), "s");
        (server, ctx)
    }

    /// A GET, with the token as bearer where the grant allows it.
    fn get(url: String) -> Request {
        let auth = match url.contains("/api/") {
            true => Auth::Bearer("token".into()),
            false => Auth::None,
        };
        Request {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            auth,
            body: None,
            timeout_ms: None,
        }
    }

    /// Everything the host wrote about the run: denials, limit hits and log lines.
    fn host_records(run: &RunContext) -> String {
        format!(
            "{:?} {:?} {:?}",
            run.stats.denials.locked(),
            run.stats.limit_hits.locked(),
            run.log.records()
        )
    }

    /// `text` holds the secret in none of the forms the attack simulator echoes it in.
    fn assert_clean(text: &str) {
        for form in ["raw", "json-u", "json-slash", "percent", "percent-mixed"] {
            assert!(!text.contains(&encode(form, SECRET)), "{form} in {text}");
        }
        assert!(!text.contains("http-secret"), "{text}");
    }

    #[test]
    fn basic_auth_encoding() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[tokio::test]
    async fn no_limit_value_panics() {
        for permits in [0, u64::MAX] {
            let limits = EffectiveLimits {
                max_concurrent_requests: permits,
                requests_per_second: f64::NAN,
                ..Default::default()
            };
            HttpCapability::new(&limits, StaticHosts::default());
        }
    }

    /// `run_context` with these quotas over longer windows.
    fn with_quotas(
        base: &str,
        per_minute: Option<f64>,
        per_hour: Option<f64>,
        key: Option<&str>,
    ) -> Arc<RunContext> {
        let mut run = run_context(base, 8 << 20);
        let limits = &mut Arc::get_mut(&mut run).unwrap().grant.limits;
        limits.requests_per_minute = per_minute;
        limits.requests_per_hour = per_hour;
        limits.quota_key = key.map(String::from);
        run
    }

    #[tokio::test]
    async fn an_hourly_quota_is_shared_by_the_runs_of_one_key_and_refused_past_the_deadline() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let base = format!("{}/", server.origin());
        let url = format!("{}/public", server.origin());
        let key = format!("tenant-{}", server.origin());
        let first = with_quotas(&base, None, Some(2.0), Some(&key));
        let mut a = StepCtx::new(first.clone(), "s");
        assert!(a.fetch(get(url.clone())).await.is_ok());
        // Another run of the same tenant draws from the same two.
        let mut b = StepCtx::new(with_quotas(&base, None, Some(2.0), Some(&key)), "s");
        assert!(b.fetch(get(url.clone())).await.is_ok());
        let started = Instant::now();
        let err = a.fetch(get(url.clone())).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no wait past the deadline"
        );
        assert!(
            matches!(&err, HttpError::Timeout(m) if m.contains("requestsPerHour (2)") && m.contains(&key)),
            "{err:?}"
        );
        // A run of another tenant has its own quota, and so has another plugin naming
        // the same key: it can neither drain nor tighten this plugin's.
        let mut c = StepCtx::new(
            with_quotas(&base, None, Some(2.0), Some("other-tenant")),
            "s",
        );
        assert!(c.fetch(get(url.clone())).await.is_ok());
        let fresh = format!("{key}-fresh");
        let mut other_plugin = with_quotas(&base, None, Some(0.01), Some(&fresh));
        Arc::get_mut(&mut other_plugin).unwrap().http.quota_scope = "hostile".into();
        let mut d = StepCtx::new(other_plugin, "s");
        // Its own tiny quota: one request a window, never below one.
        assert!(d.fetch(get(url.clone())).await.is_ok());
        assert!(d.fetch(get(url.clone())).await.is_err());
        let mut e = StepCtx::new(with_quotas(&base, None, Some(2.0), Some(&fresh)), "s");
        assert!(
            e.fetch(get(url)).await.is_ok(),
            "not tightened by the other plugin"
        );
    }

    #[tokio::test]
    async fn a_spent_quota_spreads_the_requests_and_says_so_once() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let base = format!("{}/", server.origin());
        let url = format!("{}/public", server.origin());
        // 120 a minute: a burst of 120, then one every half second; keyed by the host.
        let run = with_quotas(&base, Some(120.0), None, None);
        let mut ctx = StepCtx::new(run.clone(), "s");
        let started = Instant::now();
        for _ in 0..122 {
            ctx.fetch(get(url.clone())).await.unwrap();
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(800),
            "{took:?}: spread, not refused"
        );
        let waits: Vec<_> = run
            .log
            .records()
            .into_iter()
            .filter(|r| r.message.contains("is spent: waiting"))
            .collect();
        assert_eq!(waits.len(), 1, "said once per run");
        assert!(waits[0].message.contains("requestsPerMinute (120)"));
    }

    #[tokio::test]
    async fn the_providers_remaining_quota_holds_back_the_next_request() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let base = format!("{}/", server.origin());
        let key = format!("left-{}", server.origin());
        // 10,000 an hour of our own, but the provider says 1 is left, then none.
        let run = with_quotas(&base, None, Some(10_000.0), Some(&key));
        let mut ctx = StepCtx::new(run.clone(), "s");
        let url = |left: u32| get(format!("{}/quota-left?left={left}", server.origin()));
        ctx.fetch(url(1)).await.unwrap();
        ctx.fetch(url(0)).await.unwrap();
        // No token is left: the next request waits for the hour's refill (0.36 s a
        // request at 10,000 an hour), and the run says so.
        let started = Instant::now();
        ctx.fetch(url(0)).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited for the quota"
        );
        let waits = run
            .log
            .records()
            .into_iter()
            .filter(|r| {
                r.message.contains("requestsPerHour (10000)") && r.message.contains("is spent")
            })
            .count();
        assert_eq!(waits, 1);
    }

    #[tokio::test]
    async fn a_token_after_the_deadline_fails_at_once() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let mut run = run_context(&format!("{}/", server.origin()), 8 << 20);
        let slow = HttpCapability::new(
            &EffectiveLimits {
                requests_per_second: 0.0,
                ..Default::default()
            },
            StaticHosts::default(),
        );
        let http = &mut Arc::get_mut(&mut run).unwrap().http;
        let operator_hosts = std::mem::take(&mut http.operator_hosts);
        *http = slow;
        http.operator_hosts = operator_hosts;
        let mut ctx = StepCtx::new(run, "s");
        let url = format!("{}/public", server.origin());
        assert!(ctx.fetch(get(url.clone())).await.is_ok());
        let started = Instant::now();
        let err = ctx.fetch(get(url)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            matches!(&err, HttpError::Timeout(m) if m.contains("requestsPerSecond")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn framing_headers_are_the_hosts() {
        let (server, mut ctx) = sim().await;
        for name in [
            "Content-Length",
            "transfer-encoding",
            "TE",
            "Connection",
            "Keep-Alive",
            "UPGRADE",
            "Host",
            "Trailer",
            "Expect",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            let mut req = get(format!("{}/api/items", server.origin()));
            req.headers.push((name.into(), "33".into()));
            let err = ctx.fetch(req).await.unwrap_err();
            assert!(
                matches!(&err, HttpError::Invalid(m)
                    if m == &format!("the {name} header is set by the host, not the plugin")),
                "{name}: {err:?}"
            );
        }
        assert_eq!(server.requests(), Vec::new());
    }

    #[tokio::test]
    async fn only_the_documented_methods_are_sent() {
        let (server, mut ctx) = sim().await;
        for method in ["CONNECT", "TRACE", "PURGE", "get", "GET "] {
            let mut req = get(format!("{}/api/items", server.origin()));
            req.method = method.into();
            let err = ctx.fetch(req).await.unwrap_err();
            assert!(
                matches!(&err, HttpError::Invalid(m) if m.contains("is not allowed: use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")),
                "{method}: {err:?}"
            );
        }
        assert_eq!(server.requests(), Vec::new());
        for method in METHODS {
            let mut req = get(format!("{}/api/items", server.origin()));
            req.method = method.to_string();
            let resp = ctx.fetch(req).await.unwrap();
            assert_eq!(resp.status, 200, "{method}");
        }
    }

    #[tokio::test]
    async fn a_redirect_leaking_the_token_elsewhere_is_refused_scrubbed() {
        let (server, mut ctx) = sim().await;
        for form in ["raw", "percent", "percent-mixed", "percent-slash"] {
            let url = format!(
                "{}/api/redirect-echo?form={form}&to=http://elsewhere.example/leak",
                server.origin()
            );
            let err = ctx.fetch(get(url)).await.unwrap_err();
            let HttpError::Denied(text) = &err else {
                panic!("{form}: {err:?}")
            };
            assert!(
                text.starts_with(&format!(
                    "http:GET http://elsewhere.example/leak?v={REDACTED} denied: "
                )),
                "{form}: {text}"
            );
            assert_clean(text);
        }
        let records = host_records(&ctx.run);
        assert_eq!(
            records
                .matches("elsewhere.example/leak?v=[REDACTED]")
                .count(),
            8
        );
        assert_clean(&records);
    }

    #[tokio::test]
    async fn a_same_host_redirect_echoing_the_token_hands_back_a_scrubbed_url() {
        let (server, mut ctx) = sim().await;
        for form in ["raw", "percent", "percent-mixed", "percent-slash"] {
            let url = format!(
                "{}/api/redirect-echo?form={form}&to=/api/landing",
                server.origin()
            );
            let resp = ctx.fetch(get(url.clone())).await.unwrap();
            let landing = format!("{}/api/landing?v={REDACTED}", server.origin());
            assert_eq!((resp.status, resp.url.as_str()), (200, landing.as_str()));
            let (head, _body) = ctx.fetch_streaming(get(url)).await.unwrap();
            assert_eq!(head.url, landing, "{form}");
        }
    }

    /// A URL or secret name of megabytes would make every policy glob match cost
    /// megabytes times the pattern: refused before any matching, nothing sent.
    #[tokio::test]
    async fn huge_urls_and_secret_names_are_refused_before_matching() {
        let (server, mut ctx) = sim().await;
        let long = format!("{}/api/{}", server.origin(), "a*".repeat(4 << 20));
        let err = ctx.fetch(get(long)).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Invalid(m) if m.starts_with("URL of 8388") && m.ends_with("at most 16384 are sent or followed")),
            "{err:?}"
        );
        let mut req = get(format!("{}/api/items", server.origin()));
        req.auth = Auth::Bearer("t".repeat(1 << 20));
        let err = ctx.fetch(req).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Invalid(m) if m == "no secret field has a name of 1048576 bytes"),
            "{err:?}"
        );
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn encoded_echoes_are_scrubbed_from_bodies_and_headers() {
        let (server, mut ctx) = sim().await;
        for form in ["raw", "json-u", "json-slash", "percent", "percent-mixed"] {
            let url = format!("{}/api/echo-encoded?form={form}", server.origin());
            let resp = ctx.fetch(get(url)).await.unwrap();
            assert_eq!(resp.body, br#"{"v":"[REDACTED]"}"#, "{form}");
            let echo = resp.headers.iter().find(|(k, _)| k == "x-echo").unwrap();
            assert_eq!(echo.1, REDACTED, "{form}");
        }
    }

    /// Reads a streamed body to its end.
    async fn read_all(ctx: &mut StepCtx, body: &Resource<BodyStream>) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let piece = ctx
                .read_body(Resource::new_borrow(body.rep()), 1000)
                .await
                .unwrap();
            if piece.is_empty() {
                return all;
            }
            all.extend(piece);
        }
    }

    #[tokio::test]
    async fn a_recorded_run_holds_no_secret_and_replays_without_the_network() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let base = format!("{}/", server.origin());
        let dir = std::env::temp_dir().join(format!("corral-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut urls: Vec<String> = ["raw", "json-u", "json-slash", "percent", "percent-mixed"]
            .iter()
            .map(|f| format!("{}/api/echo-encoded?form={f}", server.origin()))
            .collect();
        urls.push(format!("{}/api/echo", server.origin()));
        let lines = format!("{}/lines", server.origin());

        let mut recording = run_context(&base, 8 << 20);
        let recorder = Arc::new(tape::Recorder::create(&dir, "unit").unwrap());
        Arc::get_mut(&mut recording).unwrap().http.recorder = Some(recorder.clone());
        let mut ctx = StepCtx::new(recording, "s");
        let mut live = Vec::new();
        for url in &urls {
            live.push(ctx.fetch(get(url.clone())).await.unwrap());
        }
        let (live_head, body) = ctx.fetch_streaming(get(lines.clone())).await.unwrap();
        let live_lines = read_all(&mut ctx, &body).await;
        drop(ctx.drop_body(body));
        drop(ctx);
        assert!(!recorder.incomplete());
        let text = std::fs::read_to_string(tape::file_of(&dir, "unit")).unwrap();
        assert_eq!(text.lines().count(), urls.len() + 1);
        assert_clean(&text);
        // The bearer the host added is not recorded as sent: only the guest's own
        // headers are (here none), and the guest never holds the value.
        assert!(!text.contains("requestHeaders"), "{text}");

        // Replayed: the same answers, and not one request reaches the server.
        let sent = server.requests().len();
        let mut replaying = run_context(&base, 8 << 20);
        Arc::get_mut(&mut replaying).unwrap().http.tape =
            Some(Arc::new(tape::Tape::load(&dir, "unit").unwrap()));
        let mut ctx = StepCtx::new(replaying.clone(), "s");
        for (url, was) in urls.iter().zip(&live) {
            assert_eq!(&ctx.fetch(get(url.clone())).await.unwrap(), was, "{url}");
        }
        let (head, body) = ctx.fetch_streaming(get(lines.clone())).await.unwrap();
        assert_eq!(head, live_head);
        assert_eq!(read_all(&mut ctx, &body).await, live_lines);
        assert_eq!(
            server.requests().len(),
            sent,
            "no request reached the network"
        );
        // A request with no recording fails, naming it; the policy still decides first.
        let missing = format!("{}/public?not=recorded", server.origin());
        let err = ctx.fetch(get(missing.clone())).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Invalid(m) if m.contains(&format!("no recording of GET {missing}"))),
            "{err:?}"
        );
        let elsewhere = ctx
            .fetch(get("http://198.51.100.7/api/x".into()))
            .await
            .unwrap_err();
        assert!(matches!(elsewhere, HttpError::Denied(_)), "{elsewhere:?}");
        assert_eq!(
            replaying.stats.requests.load(Ordering::Relaxed),
            urls.len() as u64 + 2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_guests_own_text_comes_back_verbatim_and_a_secret_closes_http() {
        let (server, mut ctx) = sim().await;
        // A wrong guess comes back as the guest wrote it...
        let wrong = "https://evil.example/?guess=not-the-secret";
        let err = ctx.fetch(get(wrong.into())).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Denied(m) if m.starts_with(&format!("http:GET {wrong} denied"))),
            "{err:?}"
        );
        let mut req = get(format!("{}/api/items", server.origin()));
        req.headers.push(("bad header".into(), "x".into()));
        let err = ctx.fetch(req).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Invalid(m) if m.contains("bad header")),
            "{err:?}"
        );
        // ...the right one, in any spelling or place (a Basic user name too), closes the
        // run's HTTP: never `[REDACTED]`.
        let (_, mut basic) = sim().await;
        let mut req = get(format!("{}/api/items", server.origin()));
        req.auth = Auth::Basic(BasicAuth {
            username: SECRET.into(),
            password_secret: "token".into(),
        });
        let err = basic.fetch(req).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Denied(m) if m.starts_with("HTTP is closed")),
            "{err:?}"
        );
        let encoded = SECRET.replace('-', "%2D");
        let guess = format!("https://evil.example/?guess={encoded}");
        let closed =
            "HTTP is closed for this run: the plugin sent a secret value it was never given";
        for req in [get(guess), get(format!("{}/api/items", server.origin()))] {
            let err = ctx.fetch(req).await.unwrap_err();
            assert!(
                matches!(&err, HttpError::Denied(m) if m == closed),
                "{err:?}"
            );
        }
        assert!(server.requests().is_empty());
        let records = host_records(&ctx.run);
        assert!(
            records.contains("HTTP is closed for the rest of this run"),
            "{records}"
        );
        assert_clean(&records);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_the_bytes_in_flight() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let limit = 4 << 20;
        let run = run_context(&format!("{}/", server.origin()), limit);
        let mut ctx = StepCtx::new(run.clone(), "s");
        let size = 500_000;
        let mut all_refused = 0;
        for (query, exact) in [("", true), ("&stream=1", false)] {
            let reqs = (0..40)
                .map(|i| get(format!("{}/bytes?n={size}&i={i}{query}", server.origin())))
                .collect();
            let results = ctx.fetch_batch(reqs).await;
            let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
            let refused = results
                .iter()
                .filter(|r| {
                    matches!(r, Err(HttpError::RateLimited(m))
                        if m.starts_with("maxInFlightBytes limit of 4194304 reached"))
                })
                .count() as u64;
            assert_eq!(ok + refused, 40, "{query}: {results:?}");
            assert!(
                ok * size <= limit && ok >= 1 && refused >= 1,
                "{query}: {ok}"
            );
            if exact {
                // Announced sizes are reserved whole: exactly as many as fit.
                assert_eq!(ok, limit / size);
            }
            assert_eq!(run.http.in_flight.used.load(Ordering::SeqCst), 0);
            all_refused += refused;
        }
        // Each refusal is counted as a limit hit.
        let hits = run.stats.limit_hits.locked();
        assert_eq!(hits.len() as u64, all_refused);
        assert!(hits.iter().all(|e| e.rule.starts_with("maxInFlightBytes")));
    }

    #[tokio::test]
    async fn a_streamed_body_is_counted_in_flight_until_read() {
        let (server, mut ctx) = sim().await;
        let url = format!("{}/bytes?n=294912&stream=1", server.origin());
        let (_, body) = ctx.fetch_streaming(get(url)).await.unwrap();
        let first = ctx
            .read_body(Resource::new_borrow(body.rep()), 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 10);
        assert!(ctx.run.http.in_flight.used.load(Ordering::SeqCst) > 0);
        let mut total = first.len();
        loop {
            let piece = ctx
                .read_body(Resource::new_borrow(body.rep()), 1 << 20)
                .await
                .unwrap();
            if piece.is_empty() {
                break;
            }
            total += piece.len();
        }
        assert_eq!(total, 294_912);
        assert_eq!(ctx.run.http.in_flight.used.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_secret_split_across_stream_chunks_is_scrubbed() {
        let mut secrets = Secrets::default();
        secrets.insert("token", SecretValue::new(SECRET));
        let scrub = secrets.redactor();
        for form in ["raw", "json-u", "percent-mixed"] {
            let body = format!(r#"{{"a":"x","v":"{}","b":"y"}}"#, encode(form, SECRET));
            for split in 1..body.len() {
                let (a, b) = body.as_bytes().split_at(split);
                let mut held = Vec::new();
                let mut out = scrub_stream(&scrub, &mut held, Some(a));
                out.extend(scrub_stream(&scrub, &mut held, Some(b)));
                out.extend(scrub_stream(&scrub, &mut held, None));
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    r#"{"a":"x","v":"[REDACTED]","b":"y"}"#,
                    "{form} split at {split}"
                );
            }
        }
    }
}
