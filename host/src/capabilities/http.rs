//! The `http` import: every request and every redirect hop is checked against the grant
//! (`http:<METHOD>` on the URL), credentials are substituted only after a `secret:Use`
//! check for that very URL, and the run's limits (request count, rate, concurrency,
//! response size, deadline) are enforced here.

use super::address::{CheckedResolver, StaticHosts, names_host, restricted_range};
use super::{Event, RunContext, RunStats, StepCtx};
use crate::bindings::http::{Auth, Host, HostBody, HttpError, Request, Response, ResponseHead};
use crate::policy::{Context, EffectiveLimits};
use futures::future::join_all;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;
use wasmtime::component::Resource;

/// Redirect hops the host follows (each one checked again).
pub const MAX_REDIRECTS: usize = 10;
/// Requests one batch call may carry.
pub const MAX_BATCH: usize = 1000;
/// Timeout for a request that does not name one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-run HTTP state: the shared client and the run's rate and concurrency limits.
pub struct HttpCapability {
    client: reqwest::Client,
    bucket: Mutex<TokenBucket>,
    concurrency: Arc<Semaphore>,
}

/// A response whose head has arrived: the body is still on the wire.
struct Head {
    resp: reqwest::Response,
    url: Url,
    /// Holds one of the run's concurrent-request slots until the body is read or dropped.
    permit: OwnedSemaphorePermit,
    /// When this request's own timeout ends.
    deadline: Instant,
    /// Secret-bearing header values sent on the final hop, scrubbed from the answer.
    sent_secrets: Vec<String>,
}

/// A body the guest reads as it streams (the WIT `body` resource).
pub struct BodyStream {
    resp: reqwest::Response,
    url: Url,
    _permit: OwnedSemaphorePermit,
    pending: Vec<u8>,
    read: u64,
    sent_secrets: Vec<String>,
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
    pub fn new(limits: &EffectiveLimits, hosts: StaticHosts) -> Self {
        HttpCapability {
            client: build_client(limits, hosts),
            bucket: Mutex::new(TokenBucket::new(limits.requests_per_second)),
            concurrency: Arc::new(Semaphore::new(
                limits.max_concurrent_requests.max(1) as usize
            )),
        }
    }
}

/// Refills at `rate` tokens a second up to a burst of `max(rate, 1)`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        TokenBucket {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// One request's journey, for error messages and counters.
struct Call<'a> {
    run: &'a RunContext,
    step: &'a str,
}

impl Call<'_> {
    fn record(&self, list: &Mutex<Vec<Event>>, action: &str, resource: &str, rule: &str) {
        RunStats::record(
            list,
            Event {
                step: self.step.to_string(),
                action: action.to_string(),
                resource: resource.to_string(),
                rule: rule.to_string(),
            },
        );
        let msg = format!("{action} {resource}: {rule}");
        self.run.log.host(self.run, self.step, "warn", &msg);
    }

    fn deny(&self, action: &str, resource: &str, rule: &str) -> HttpError {
        self.record(&self.run.stats.denials, action, resource, rule);
        HttpError::Denied(format!("{action} {resource} denied: {rule}"))
    }

    fn limit(&self, what: &str, resource: &str) -> HttpError {
        self.record(&self.run.stats.limit_hits, "http", resource, what);
        HttpError::RateLimited(what.to_string())
    }

    /// Every hop checked and sent until a response that is not a redirect.
    async fn fetch_head(&self, req: &Request) -> Result<Head, HttpError> {
        let mut method = parse_method(&req.method)?;
        let mut url = parse_url(&req.url)?;
        let mut body = req.body.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let (headers, sent_secrets) = self.authorize(&method, &url, req)?;
            let (resp, permit, deadline) = self
                .send(&method, &url, headers, body.clone(), req.timeout_ms)
                .await?;
            let Some(next) = redirect_target(&resp, &url) else {
                return Ok(Head {
                    resp,
                    url,
                    permit,
                    deadline,
                    sent_secrets,
                });
            };
            // 303, and 301/302 after a POST, turn into a GET without a body (as browsers do).
            let status = resp.status().as_u16();
            if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                method = reqwest::Method::GET;
                body = None;
            }
            url = next;
        }
        Err(HttpError::Invalid(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }

    /// One whole request: head, then the body read while it streams, within the
    /// request's timeout and `maxResponseBytes`.
    async fn fetch(&self, req: Request) -> Result<Response, HttpError> {
        let head = self.fetch_head(&req).await?;
        let (status, headers) = self.head_parts(&head.resp);
        let max = self.run.grant.limits.max_response_bytes;
        let url = head.url.clone();
        let body = tokio::time::timeout_at(head.deadline.into(), self.read(&url, head.resp, max))
            .await
            .map_err(|_| HttpError::Timeout(format!("{url} did not finish its body in time")))??;
        let resp = Response {
            status,
            headers,
            body: self.run.secrets.redact_bytes(body),
            url: url.to_string(),
        };
        Ok(redact_sent(resp, &head.sent_secrets))
    }

    /// The head of a request whose body the guest will read as it streams.
    async fn fetch_streaming(&self, req: Request) -> Result<(ResponseHead, BodyStream), HttpError> {
        let head = self.fetch_head(&req).await?;
        let (status, headers) = self.head_parts(&head.resp);
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k, redact_values(&v, &head.sent_secrets)))
            .collect();
        let max = self.run.grant.limits.max_response_bytes;
        if head.resp.content_length().is_some_and(|n| n > max) {
            return Err(self.too_large(&head.url, max));
        }
        let url = head.url.to_string();
        let body = BodyStream {
            resp: head.resp,
            url: head.url,
            _permit: head.permit,
            pending: Vec::new(),
            read: 0,
            sent_secrets: head.sent_secrets,
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

    /// Status and headers (secret values scrubbed).
    fn head_parts(&self, resp: &reqwest::Response) -> (u16, Vec<(String, String)>) {
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    self.run
                        .secrets
                        .redact(&String::from_utf8_lossy(v.as_bytes())),
                )
            })
            .collect();
        (resp.status().as_u16(), headers)
    }

    /// The next piece of a streamed body, at most `max` bytes; empty at the end.
    async fn read_stream(&self, body: &mut BodyStream, max: u32) -> Result<Vec<u8>, HttpError> {
        let limit = self.run.grant.limits.max_response_bytes;
        if body.pending.is_empty() {
            let next = tokio::time::timeout_at(self.run.deadline.into(), body.resp.chunk())
                .await
                .map_err(|_| {
                    HttpError::Timeout(format!(
                        "the run's deadline passed while reading {}",
                        body.url
                    ))
                })?
                .map_err(|e| self.transport_error(&body.url, e))?;
            let Some(chunk) = next else {
                return Ok(Vec::new());
            };
            body.read += chunk.len() as u64;
            if body.read > limit {
                return Err(self.too_large(&body.url, limit));
            }
            // Scrubbed per chunk: a secret split across two chunks is not caught (see
            // docs/security.md).
            let chunk = self.run.secrets.redact_bytes(chunk.to_vec());
            body.pending = body
                .sent_secrets
                .iter()
                .fold(chunk, |c, s| crate::secrets::replace_all(c, s.as_bytes()));
        }
        let n = (max.max(1) as usize).min(body.pending.len());
        Ok(body.pending.drain(..n).collect())
    }

    /// The policy check for one hop, then the headers with secrets substituted, and the
    /// header values that carry a secret (to scrub from the answer: a provider echoing
    /// `Basic <base64>` back would otherwise hand the guest a decodable credential).
    fn authorize(
        &self,
        method: &reqwest::Method,
        url: &Url,
        req: &Request,
    ) -> Result<(HeaderMap, Vec<String>), HttpError> {
        let action = format!("http:{method}");
        let ctx = Context::http(method.as_str(), url);
        let decision = self.run.grant.check(&action, url.as_str(), &ctx);
        if !decision.allowed {
            return Err(self.deny(&action, url.as_str(), &decision.rule));
        }
        self.check_address(&action, url, &decision.allowing)?;
        let mut headers = HeaderMap::new();
        let mut sent_secrets = Vec::new();
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::Invalid(format!("invalid header name {name:?}")))?;
            if name == reqwest::header::HOST {
                return Err(HttpError::Invalid(
                    "the Host header is set by the host from the URL".into(),
                ));
            }
            let substituted = self.substitute(value, url, &ctx)?;
            if &substituted != value {
                sent_secrets.push(substituted.clone());
            }
            headers.append(name, header_value(&substituted)?);
        }
        match &req.auth {
            Auth::None => {}
            Auth::Bearer(secret) => {
                let token = self.secret(secret, url, &ctx)?;
                let value = format!("Bearer {token}");
                headers.insert(reqwest::header::AUTHORIZATION, header_value(&value)?);
                sent_secrets.push(value);
            }
            Auth::Basic(b) => {
                let password = self.secret(&b.password_secret, url, &ctx)?;
                let encoded = base64_encode(format!("{}:{password}", b.username).as_bytes());
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    header_value(&format!("Basic {encoded}"))?,
                );
                sent_secrets.push(encoded);
            }
        }
        Ok((headers, sent_secrets))
    }

    /// Refuses an IP literal in a restricted range (and `localhost`) unless private
    /// networks are allowed or the allowing rule names that host itself. Hostnames are
    /// checked again after DNS by the client's resolver.
    fn check_address(&self, action: &str, url: &Url, allowing: &[String]) -> Result<(), HttpError> {
        if self.run.grant.limits.allow_private_networks {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        let range = match url.host() {
            Some(url::Host::Ipv4(ip)) => restricted_range(ip.into()),
            Some(url::Host::Ipv6(ip)) => restricted_range(ip.into()),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Some("loopback"),
            _ => None,
        };
        let Some(range) = range else { return Ok(()) };
        if allowing.iter().any(|r| names_host(Some(r), host)) {
            return Ok(());
        }
        let rule = format!(
            "{host} is a {range} address; allowPrivateNetworks is false and the allowing rule does not name {host} itself"
        );
        Err(self.deny(action, url.as_str(), &rule))
    }

    /// The value of a secret, after `secret:Use` on `secret:<name>` for this URL.
    fn secret(&self, name: &str, url: &Url, ctx: &Context) -> Result<String, HttpError> {
        let resource = format!("secret:{name}");
        let decision = self.run.grant.check("secret:Use", &resource, ctx);
        if !decision.allowed {
            return Err(self.deny(
                "secret:Use",
                &resource,
                &format!("{} (for {url})", decision.rule),
            ));
        }
        let value = self.run.secrets.get(name).ok_or_else(|| {
            HttpError::Invalid(format!(
                "no secret named {name} is configured for this instance"
            ))
        })?;
        Ok(value.expose().to_string())
    }

    /// Replaces every `{{secret:NAME}}` in a header value.
    fn substitute(&self, template: &str, url: &Url, ctx: &Context) -> Result<String, HttpError> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{secret:") {
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| HttpError::Invalid("unclosed {{secret:…}} in a header".into()))?;
            out.push_str(&rest[..start]);
            out.push_str(&self.secret(rest[start + 9..start + end].trim(), url, ctx)?);
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
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        timeout_ms: Option<u32>,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit, Instant), HttpError> {
        let limits = &self.run.grant.limits;
        if self.run.stats.count_request() > limits.max_requests {
            let what = format!("maxRequests limit of {} reached", limits.max_requests);
            return Err(self.limit(&what, url.as_str()));
        }
        let permit = self
            .run
            .http
            .concurrency
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        self.wait_for_token().await;
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
            .request(method.clone(), url.clone())
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
            .map_err(|e| self.transport_error(url, e))?;
        Ok((resp, permit, deadline))
    }

    async fn wait_for_token(&self) {
        loop {
            let wait = match self.run.http.bucket.lock().unwrap().take() {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads the body while it streams, stopping as soon as it passes `max` bytes.
    async fn read(
        &self,
        url: &Url,
        mut resp: reqwest::Response,
        max: u64,
    ) -> Result<Vec<u8>, HttpError> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(self.too_large(url, max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(self.too_large(url, max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self, url: &Url, max: u64) -> HttpError {
        self.record(
            &self.run.stats.limit_hits,
            "http",
            url.as_str(),
            &format!("maxResponseBytes limit of {max} reached"),
        );
        HttpError::TooLarge(max)
    }

    fn transport_error(&self, url: &Url, e: reqwest::Error) -> HttpError {
        if let Some(r) = find_source::<super::address::RestrictedAddress>(&e) {
            return self.deny("http:connect", url.as_str(), &r.to_string());
        }
        // reqwest's messages can carry the URL but never headers; scrub anyway.
        let text = self
            .run
            .secrets
            .redact(&format!("{url}: {}", error_chain(&e)));
        if e.is_timeout() {
            HttpError::Timeout(text)
        } else {
            HttpError::Connect(text)
        }
    }
}

pub fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(hit) = err.downcast_ref::<T>() {
            return Some(hit);
        }
        current = err.source();
    }
    None
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn redact_values(text: &str, sent: &[String]) -> String {
    sent.iter()
        .filter(|v| v.len() >= 4)
        .fold(text.to_string(), |t, v| {
            t.replace(v.as_str(), crate::secrets::REDACTED)
        })
}

/// The response with every secret-bearing header value this hop sent scrubbed out.
fn redact_sent(mut resp: Response, sent: &[String]) -> Response {
    for value in sent {
        resp.body = crate::secrets::replace_all(std::mem::take(&mut resp.body), value.as_bytes());
    }
    for (_, v) in resp.headers.iter_mut() {
        *v = redact_values(v, sent);
    }
    resp
}

fn parse_method(m: &str) -> Result<reqwest::Method, HttpError> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Invalid(format!(
            "invalid method {m:?}: use an upper-case token such as GET"
        )));
    }
    reqwest::Method::from_bytes(m.as_bytes())
        .map_err(|_| HttpError::Invalid(format!("invalid method {m:?}")))
}

fn parse_url(u: &str) -> Result<Url, HttpError> {
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

fn header_value(v: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(v).map_err(|_| HttpError::Invalid("invalid header value".into()))
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

impl Host for StepCtx {
    async fn fetch(&mut self, req: Request) -> Result<Response, HttpError> {
        let call = Call {
            run: &self.run,
            step: &self.step,
        };
        call.fetch(req).await
    }

    async fn fetch_batch(&mut self, reqs: Vec<Request>) -> Vec<Result<Response, HttpError>> {
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
        let call = Call {
            run: &self.run,
            step: &self.step,
        };
        join_all(reqs.into_iter().map(|r| call.fetch(r))).await
    }

    async fn fetch_streaming(
        &mut self,
        req: Request,
    ) -> Result<(ResponseHead, Resource<BodyStream>), HttpError> {
        let call = Call {
            run: &self.run,
            step: &self.step,
        };
        let (head, body) = call.fetch_streaming(req).await?;
        let handle = self
            .table_mut()
            .push(body)
            .map_err(|e| HttpError::Invalid(format!("too many open bodies: {e}")))?;
        Ok((head, handle))
    }
}

impl HostBody for StepCtx {
    async fn read(&mut self, body: Resource<BodyStream>, max: u32) -> Result<Vec<u8>, HttpError> {
        let run = self.run.clone();
        let step = self.step.clone();
        let stream = self
            .table_mut()
            .get_mut(&body)
            .map_err(|e| HttpError::Invalid(format!("no such body: {e}")))?;
        Call {
            run: &run,
            step: &step,
        }
        .read_stream(stream, max)
        .await
    }

    async fn drop(&mut self, body: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table_mut().delete(body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_encoding() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn bucket_spaces_requests() {
        let mut b = TokenBucket::new(2.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
    }
}
