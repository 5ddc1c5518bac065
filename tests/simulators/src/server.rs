//! The simulator framework: an HTTP server on 127.0.0.1 that records every request,
//! checks auth, injects faults, and hands the rest to a provider's routes.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A request as a provider's routes see it.
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SimRequest {
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response from a provider's routes.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When set, the body is streamed instead (chunked, no content-length).
    pub stream: Option<Drip>,
}

/// A streamed body: `count` chunks of `chunk` bytes, `delay` apart.
#[derive(Debug, Clone, Copy)]
pub struct Drip {
    pub chunk: usize,
    pub count: usize,
    pub delay: Duration,
}

impl SimResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        SimResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("JSON values serialise"),
            stream: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a provider simulator supplies: its auth rule and its routes.
pub trait Provider: Send + Sync + 'static {
    /// Whether the request carries valid credentials.
    fn authorized(&self, req: &SimRequest) -> bool;
    /// The provider's answer to an unauthorized request.
    fn unauthorized(&self) -> SimResponse {
        SimResponse::json(401, &serde_json::json!({ "detail": "Invalid token." }))
    }
    fn handle(&self, req: &SimRequest) -> SimResponse;
}

/// Answer the next `times` requests whose path contains `path_contains` with `status`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub path_contains: String,
    pub status: u16,
    pub retry_after: Option<u32>,
    pub times: u32,
}

impl FaultRule {
    pub fn new(path_contains: &str, status: u16, times: u32) -> Self {
        FaultRule {
            path_contains: path_contains.into(),
            status,
            retry_after: None,
            times,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// One request the simulator saw and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub status: u16,
    /// Whether the status came from an injected fault.
    pub injected: bool,
    /// When it arrived, counted from the server's start.
    pub at: Duration,
}

#[derive(Default)]
struct Faults {
    rules: Vec<FaultRule>,
    delay: Duration,
}

struct Shared {
    provider: Arc<dyn Provider>,
    started: std::time::Instant,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<Faults>,
}

/// A running simulator. Dropping it stops the server.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl SimServer {
    /// Starts `provider` on 127.0.0.1 at `port` (0 picks a free one) in the current
    /// tokio runtime.
    pub async fn start(provider: Arc<dyn Provider>, port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            provider,
            started: std::time::Instant::now(),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
        });
        let app = Router::new().fallback(dispatch).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        });
        Ok(SimServer {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The most requests the server was handling at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn clear_requests(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.lock().unwrap().rules.push(rule);
    }

    /// Drops every fault rule not yet used up.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().rules.clear();
    }

    /// Delays every response by `delay` (slow-provider injection).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.lock().unwrap().delay = delay;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, SeqCst);
    let response = answer(&shared, req).await;
    shared.in_flight.fetch_sub(1, SeqCst);
    response
}

async fn answer(shared: &Shared, req: Request) -> Response {
    let at = shared.started.elapsed();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let sim_req = SimRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parse_query(parts.uri.query().unwrap_or("")),
        headers: parts.headers,
        body,
    };
    let (fault, delay) = take_fault(shared, &sim_req.path);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let injected = fault.is_some();
    let response = match fault {
        Some(f) => fault_response(&f),
        None if !shared.provider.authorized(&sim_req) => shared.provider.unauthorized(),
        None => shared.provider.handle(&sim_req),
    };
    shared.log.lock().unwrap().push(LoggedRequest {
        method: sim_req.method,
        target,
        status: response.status,
        injected,
        at,
    });
    into_axum(response)
}

fn take_fault(shared: &Shared, path: &str) -> (Option<FaultRule>, Duration) {
    let mut faults = shared.faults.lock().unwrap();
    let delay = faults.delay;
    let hit = faults
        .rules
        .iter_mut()
        .find(|r| r.times > 0 && path.contains(&r.path_contains));
    let fault = hit.map(|r| {
        r.times -= 1;
        r.clone()
    });
    (fault, delay)
}

fn fault_response(rule: &FaultRule) -> SimResponse {
    let body = serde_json::json!({ "detail": format!("injected fault {}", rule.status) });
    let resp = SimResponse::json(rule.status, &body);
    match rule.retry_after {
        Some(s) => resp.with_header("retry-after", &s.to_string()),
        None => resp,
    }
}

fn into_axum(r: SimResponse) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in &r.headers {
        builder = builder.header(k, v);
    }
    let body = match r.stream {
        None => Body::from(r.body),
        Some(drip) => Body::from_stream(drip_stream(drip)),
    };
    builder
        .body(body)
        .expect("simulator responses are well-formed")
}

fn drip_stream(d: Drip) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let chunk = Bytes::from(vec![b'x'; d.chunk]);
    futures_util::stream::unfold(0usize, move |sent| {
        let chunk = chunk.clone();
        async move {
            if sent == d.count {
                return None;
            }
            if !d.delay.is_zero() {
                tokio::time::sleep(d.delay).await;
            }
            Some((Ok(chunk), sent + 1))
        }
    })
}

/// Splits and percent-decodes a query string.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
