//! What one call may copy out of guest memory, bounded before it is copied.
//!
//! In the canonical ABI a `list<string>` element is a pointer and a length, so a guest
//! can pass a long list whose elements all point at the same large string: lifted into
//! owned `String`s, the copy is the list's length times that string, however little
//! memory the guest has. (wasmtime's own per-call "hostcall fuel", 128 MiB by default,
//! turns that into a trap; the caps here are tighter, named, and seen by the guest.)
//!
//! **Imports.** [`add_to_linker`] replaces the imports that take lists — `graph`'s two
//! emits, `log`, and `http`'s three fetches — with functions whose parameters are lifted
//! lazily (`WasmList`, `WasmStr`, and [`LazyRequest`] for a request). Element counts are
//! checked before any element is read, and bytes are counted string by string and
//! refused before one past the cap is copied. Within the caps the owned values go to the
//! `Host` implementations in `graph`, `log` and `http`, unchanged. Caps per call:
//!
//! - every string of the call together, with request bodies: the instance's
//!   `memoryMiB` in bytes (a guest can pass anything it can hold without aliasing);
//! - [`MAX_EMIT_ITEMS`] objects per emit, [`MAX_LOG_FIELDS`] fields per log line,
//!   [`MAX_HEADERS`] headers per request, `http::MAX_BATCH` requests per batch.
//!
//! A call over a cap is recorded as a limit hit and answered with `graph-error::limit`
//! (emits), `http-error::invalid` (fetches), or a dropped, counted line (`log`).
//!
//! **Exports.** Results of `manifest` and `disabled-steps` cannot be lifted lazily: the
//! guest's post-return frees them as soon as they are lifted. They are lifted into
//! owned values through [`Capped`] lists, which refuse a list longer than its cap before
//! copying any of it, while the store's hostcall fuel is set to the call's byte cap
//! (wasmtime checks it before copying each string or list). See [`manifest`] and
//! [`disabled_steps`].

use super::{Event, RunStats, StepCtx};
use crate::bindings::{Plugin, connector, graph, http, log};
use crate::capabilities::http::{BodyStream, MAX_BATCH};
use corral_core::manifest::caps;
use std::marker::PhantomData;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext,
};
use wasmtime::component::{
    ComponentType, Func, Lift, Linker, Resource, WasmList, WasmStr,
};
use wasmtime::{Store, StoreContextMut, ValRaw};

/// Objects one `emit-entities` or `emit-relationships` call may carry.
pub const MAX_EMIT_ITEMS: usize = 100_000;
/// Fields one log line may carry (the first 32 are kept).
pub const MAX_LOG_FIELDS: usize = 64;
/// Headers one request may carry.
pub const MAX_HEADERS: usize = 256;
/// Past this many requests, an oversized batch traps instead of being answered with one
/// error per request: the answer itself would cost the host memory.
pub const MAX_BATCH_ANSWERED: usize = 16 * MAX_BATCH;
/// What a manifest may take to copy: its text (`caps::MANIFEST_BYTES`) and, with room to
/// spare, its lists at their caps.
pub const MANIFEST_LIFT_BYTES: usize = 2 * caps::MANIFEST_BYTES;

/// Replaces the list-taking imports of the bindgen linker with bounded ones.
pub fn add_to_linker(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = shadow_imports(linker);
    linker.allow_shadowing(false);
    added
}

fn shadow_imports(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    let mut g = linker.instance("corral:integration/graph@0.1.0")?;
    g.func_wrap(
        "emit-entities",
        |store: StoreContextMut<'_, StepCtx>, (items,): (WasmList<WasmStr>,)| {
            Ok((emit(store, items, Emit::Entities)?,))
        },
    )?;
    g.func_wrap(
        "emit-relationships",
        |store: StoreContextMut<'_, StepCtx>, (items,): (WasmList<WasmStr>,)| {
            Ok((emit(store, items, Emit::Relationships)?,))
        },
    )?;

    let mut l = linker.instance("corral:integration/log@0.1.0")?;
    l.func_wrap(
        "log",
        |store: StoreContextMut<'_, StepCtx>,
         (level, message, fields): (log::Level, WasmStr, WasmList<Pair>)| {
            guest_log(store, level, message, fields)
        },
    )?;

    let mut h = linker.instance("corral:integration/http@0.1.0")?;
    h.func_wrap_async(
        "fetch",
        |mut store: StoreContextMut<'_, StepCtx>, (req,): (LazyRequest,)| {
            Box::new(async move {
                let out = match one_request(&mut store, &req, "fetch")? {
                    Ok(req) => http::Host::fetch(store.data_mut(), req).await,
                    Err(rule) => Err(http::HttpError::Invalid(rule)),
                };
                Ok((out,))
            })
        },
    )?;
    h.func_wrap_async(
        "fetch-streaming",
        |mut store: StoreContextMut<'_, StepCtx>, (req,): (LazyRequest,)| {
            Box::new(async move {
                let out: Result<(http::ResponseHead, Resource<BodyStream>), _> =
                    match one_request(&mut store, &req, "fetch-streaming")? {
                        Ok(req) => http::Host::fetch_streaming(store.data_mut(), req).await,
                        Err(rule) => Err(http::HttpError::Invalid(rule)),
                    };
                Ok((out,))
            })
        },
    )?;
    h.func_wrap_async(
        "fetch-batch",
        |mut store: StoreContextMut<'_, StepCtx>, (reqs,): (WasmList<LazyRequest>,)| {
            Box::new(async move {
                let n = reqs.len();
                let out = match batch(&mut store, &reqs)? {
                    Ok(reqs) => http::Host::fetch_batch(store.data_mut(), reqs).await,
                    Err(rule) if n > MAX_BATCH_ANSWERED => return Err(wasmtime::Error::msg(rule)),
                    Err(rule) => (0..n)
                        .map(|_| Err(http::HttpError::Invalid(rule.clone())))
                        .collect(),
                };
                Ok((out,))
            })
        },
    )?;
    Ok(())
}

/// Why a lift stopped: a cap (the guest is told) or a fault in what the guest passed
/// (an out-of-bounds pointer, invalid UTF-8: a trap, as the bindgen lift would).
enum Stop {
    Over(String),
    Fault(wasmtime::Error),
}

impl From<wasmtime::Error> for Stop {
    fn from(e: wasmtime::Error) -> Self {
        Stop::Fault(e)
    }
}

/// A lifted value, or the rule that refused it; a fault is the outer error.
type Bounded<T> = wasmtime::Result<Result<T, String>>;

/// Sorts a lift's outcome: a refusal is recorded as a limit hit of `call` (and logged
/// when `log_line`), then handed back as the rule's text.
fn settle<T>(
    ctx: &StepCtx,
    call: &str,
    log_line: bool,
    lifted: Result<T, Stop>,
) -> Bounded<T> {
    match lifted {
        Ok(v) => Ok(Ok(v)),
        Err(Stop::Fault(e)) => Err(e),
        Err(Stop::Over(rule)) => {
            RunStats::record(
                &ctx.run.stats.limit_hits,
                Event {
                    step: ctx.step.clone(),
                    action: "limit".into(),
                    resource: call.into(),
                    rule: rule.clone(),
                },
            );
            if log_line {
                ctx.run.log.host(&ctx.run, &ctx.step, "warn", &rule);
            }
            Ok(Err(rule))
        }
    }
}

/// The bytes one call may still copy: the instance's `memoryMiB`, counted down.
struct Budget {
    call: &'static str,
    cap: usize,
    left: usize,
    mib: u64,
}

impl Budget {
    fn new(ctx: &StepCtx, call: &'static str) -> Self {
        let (cap, mib) = memory_cap(ctx);
        Budget {
            call,
            cap,
            left: cap,
            mib,
        }
    }

    /// `n` things where `max` are allowed; checked before any of them is read.
    fn count(&self, n: usize, max: usize, what: &str) -> Result<(), Stop> {
        if n > max {
            return Err(Stop::Over(format!(
                "{}: {n} {what}; at most {max} are allowed",
                self.call
            )));
        }
        Ok(())
    }

    fn take(&mut self, bytes: usize) -> Result<(), Stop> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(Stop::Over(format!(
                "{}: the call carries more than {} bytes; at most memoryMiB ({} MiB) are allowed per call",
                self.call, self.cap, self.mib
            ))),
        }
    }

    /// The string, copied only if it fits. (Reading its length validates it in place;
    /// the copy is what the budget bounds.)
    fn string(
        &mut self,
        store: &StoreContextMut<'_, StepCtx>,
        s: &WasmStr,
    ) -> Result<String, Stop> {
        let text = s.to_str(store)?;
        self.take(text.len())?;
        Ok(text.into_owned())
    }

    fn bytes(
        &mut self,
        store: &StoreContextMut<'_, StepCtx>,
        list: &WasmList<u8>,
    ) -> Result<Vec<u8>, Stop> {
        self.take(list.len())?;
        Ok(list.as_le_slice(store).to_vec())
    }
}

/// The instance's memory limit in bytes, and in MiB.
fn memory_cap(ctx: &StepCtx) -> (usize, u64) {
    let mib = ctx.run.grant.limits.memory_mib;
    let bytes = usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    (bytes, mib)
}

/// The elements of a lazily lifted list, each still lazy (a few words each). Callers
/// check the list's length first.
fn elements<T: Lift>(
    store: &mut StoreContextMut<'_, StepCtx>,
    list: &WasmList<T>,
) -> wasmtime::Result<Vec<T>> {
    list.iter(store)?.collect()
}

#[derive(Clone, Copy)]
enum Emit {
    Entities,
    Relationships,
}

fn emit(
    mut store: StoreContextMut<'_, StepCtx>,
    items: WasmList<WasmStr>,
    kind: Emit,
) -> wasmtime::Result<Result<graph::EmitReport, graph::GraphError>> {
    let call = match kind {
        Emit::Entities => "emit-entities",
        Emit::Relationships => "emit-relationships",
    };
    let lifted = lift_strings(&mut store, &items, call);
    let items = match settle(store.data(), call, true, lifted)? {
        Ok(items) => items,
        Err(rule) => return Ok(Err(graph::GraphError::Limit(rule))),
    };
    let ctx = store.data_mut();
    match kind {
        Emit::Entities => graph::Host::emit_entities(ctx, items),
        Emit::Relationships => graph::Host::emit_relationships(ctx, items),
    }
}

fn lift_strings(
    store: &mut StoreContextMut<'_, StepCtx>,
    list: &WasmList<WasmStr>,
    call: &'static str,
) -> Result<Vec<String>, Stop> {
    let mut budget = Budget::new(store.data(), call);
    budget.count(list.len(), MAX_EMIT_ITEMS, "items in one call")?;
    elements(store, list)?
        .iter()
        .map(|s| budget.string(store, s))
        .collect()
}

/// A `tuple<string, string>`, lazily.
type Pair = (WasmStr, WasmStr);

fn guest_log(
    mut store: StoreContextMut<'_, StepCtx>,
    level: log::Level,
    message: WasmStr,
    fields: WasmList<Pair>,
) -> wasmtime::Result<()> {
    let lifted = lift_line(&mut store, &message, &fields);
    match settle(store.data(), "log", false, lifted)? {
        Ok((message, fields)) => log::Host::log(store.data_mut(), level, message, fields),
        Err(_) => {
            // Refused lines are dropped and counted like lines past the run's log caps
            // (and not logged: a guest provoking refusals must not flood the log).
            store.data().run.log.count_dropped();
            Ok(())
        }
    }
}

type Line = (String, Vec<(String, String)>);

fn lift_line(
    store: &mut StoreContextMut<'_, StepCtx>,
    message: &WasmStr,
    fields: &WasmList<Pair>,
) -> Result<Line, Stop> {
    let mut budget = Budget::new(store.data(), "log");
    budget.count(fields.len(), MAX_LOG_FIELDS, "fields in one line")?;
    let message = budget.string(store, message)?;
    let fields = elements(store, fields)?
        .iter()
        .map(|(k, v)| Ok((budget.string(store, k)?, budget.string(store, v)?)))
        .collect::<Result<_, Stop>>()?;
    Ok((message, fields))
}

/// `basic-auth`, lazily.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct LazyBasicAuth {
    username: WasmStr,
    #[component(name = "password-secret")]
    password_secret: WasmStr,
}

/// `auth`, lazily.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum LazyAuth {
    #[component(name = "none")]
    None,
    #[component(name = "bearer")]
    Bearer(WasmStr),
    #[component(name = "basic")]
    Basic(LazyBasicAuth),
}

/// `request`, lazily: nothing of it is copied until [`LazyRequest::lift`] counts it.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct LazyRequest {
    method: WasmStr,
    url: WasmStr,
    headers: WasmList<Pair>,
    auth: LazyAuth,
    body: Option<WasmList<u8>>,
    #[component(name = "timeout-ms")]
    timeout_ms: Option<u32>,
}

impl LazyRequest {
    fn lift(
        &self,
        store: &mut StoreContextMut<'_, StepCtx>,
        budget: &mut Budget,
    ) -> Result<http::Request, Stop> {
        budget.count(self.headers.len(), MAX_HEADERS, "headers in one request")?;
        let method = budget.string(store, &self.method)?;
        let url = budget.string(store, &self.url)?;
        let headers = elements(store, &self.headers)?
            .iter()
            .map(|(k, v)| Ok((budget.string(store, k)?, budget.string(store, v)?)))
            .collect::<Result<_, Stop>>()?;
        let auth = match &self.auth {
            LazyAuth::None => http::Auth::None,
            LazyAuth::Bearer(secret) => http::Auth::Bearer(budget.string(store, secret)?),
            LazyAuth::Basic(b) => http::Auth::Basic(http::BasicAuth {
                username: budget.string(store, &b.username)?,
                password_secret: budget.string(store, &b.password_secret)?,
            }),
        };
        let body = match &self.body {
            None => None,
            Some(list) => Some(budget.bytes(store, list)?),
        };
        Ok(http::Request {
            method,
            url,
            headers,
            auth,
            body,
            timeout_ms: self.timeout_ms,
        })
    }
}

fn one_request(
    store: &mut StoreContextMut<'_, StepCtx>,
    req: &LazyRequest,
    call: &'static str,
) -> Bounded<http::Request> {
    let mut budget = Budget::new(store.data(), call);
    let lifted = req.lift(store, &mut budget);
    settle(store.data(), call, true, lifted)
}

fn batch(
    store: &mut StoreContextMut<'_, StepCtx>,
    reqs: &WasmList<LazyRequest>,
) -> Bounded<Vec<http::Request>> {
    let lifted = (|| {
        let mut budget = Budget::new(store.data(), "fetch-batch");
        budget.count(reqs.len(), MAX_BATCH, "requests in one batch")?;
        elements(store, reqs)?
            .iter()
            .map(|r| r.lift(store, &mut budget))
            .collect::<Result<Vec<_>, Stop>>()
    })();
    settle(store.data(), "fetch-batch", true, lifted)
}

// ---------------------------------------------------------------------------------
// Exports: owned lifts with capped lists, under the store's hostcall fuel.

/// The cap of a [`Capped`] list, and its name in the refusal: `{PATH}: {n} {WHAT}: at
/// most {MAX} are allowed` (the manifest checker's wording).
pub trait Cap {
    const PATH: &'static str;
    const WHAT: &'static str;
    const MAX: usize;
}

/// A `list<T>` lifted into a `Vec<T>` only if it holds at most `C::MAX` elements: its
/// length is read from the list's (pointer, length) pair before any element is.
pub struct Capped<T, C>(pub Vec<T>, PhantomData<fn() -> C>);

/// A list longer than its cap, refused before any of it was copied.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {n} {what}: at most {max} are allowed")]
pub struct TooLong {
    path: &'static str,
    what: &'static str,
    n: usize,
    max: usize,
}

impl<T, C: Cap> Capped<T, C> {
    fn check(len: u32) -> wasmtime::Result<()> {
        let n = usize::try_from(len)?;
        if n > C::MAX {
            return Err(wasmtime::Error::new(TooLong {
                path: C::PATH,
                what: C::WHAT,
                n,
                max: C::MAX,
            }));
        }
        Ok(())
    }
}

// SAFETY: the type information is `Vec<T>`'s (a list is a pointer pair whatever its
// element), and lifting delegates to `Vec<T>`'s after reading the length.
unsafe impl<T: ComponentType, C> ComponentType for Capped<T, C> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<T> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: see `ComponentType` above; the length is read from the same pair `Vec<T>`
// reads (flat: the second value; in memory: the second little-endian `u32`).
unsafe impl<T: Lift, C: Cap> Lift for Capped<T, C> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Self::check(src[1].get_u32())?;
        let list = <Vec<T> as Lift>::linear_lift_from_flat(cx, ty, src)?;
        Ok(Capped(list, PhantomData))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let len: [u8; 4] = bytes
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| wasmtime::format_err!("list pointer pair out of bounds"))?;
        Self::check(u32::from_le_bytes(len))?;
        let list = <Vec<T> as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        Ok(Capped(list, PhantomData))
    }
}

macro_rules! caps {
    ($($name:ident = ($path:expr, $what:expr, $max:expr);)*) => {$(
        pub struct $name;
        impl Cap for $name {
            const PATH: &'static str = $path;
            const WHAT: &'static str = $what;
            const MAX: usize = $max;
        }
    )*};
}

caps! {
    Steps = ("steps", "steps", caps::STEPS);
    ConfigFields = ("configFields", "config fields", caps::CONFIG_FIELDS);
    DependsOn = ("steps[*].dependsOn", "dependencies", caps::DEPENDS_ON_PER_STEP);
    StepTypes = ("steps[*]", "declared types", caps::TYPES_PER_STEP);
    DisabledSteps = ("disabled-steps", "steps", caps::STEPS);
}

/// `step`, with its lists capped.
#[derive(ComponentType, Lift)]
#[component(record)]
struct CappedStep {
    id: String,
    name: String,
    entities: Capped<connector::EntityType, StepTypes>,
    relationships: Capped<connector::RelationshipType, StepTypes>,
    #[component(name = "depends-on")]
    depends_on: Capped<String, DependsOn>,
}

/// `plugin-manifest`, with its lists capped.
#[derive(ComponentType, Lift)]
#[component(record)]
struct CappedManifest {
    id: String,
    version: String,
    name: String,
    description: String,
    #[component(name = "config-fields")]
    config_fields: Capped<connector::ConfigField, ConfigFields>,
    steps: Capped<CappedStep, Steps>,
    capabilities: String,
}

impl From<CappedManifest> for connector::PluginManifest {
    fn from(m: CappedManifest) -> Self {
        connector::PluginManifest {
            id: m.id,
            version: m.version,
            name: m.name,
            description: m.description,
            config_fields: m.config_fields.0,
            steps: m
                .steps
                .0
                .into_iter()
                .map(|s| connector::Step {
                    id: s.id,
                    name: s.name,
                    entities: s.entities.0,
                    relationships: s.relationships.0,
                    depends_on: s.depends_on.0,
                })
                .collect(),
            capabilities: m.capabilities,
        }
    }
}

/// Why an export's result was refused before it was copied.
enum Refusal {
    TooLong(String),
    /// More bytes to copy than the call's fuel.
    Bytes,
}

/// wasmtime's text for hostcall fuel running out (its error type is private).
const FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Calls a no-argument export whose result is lifted as `R`, with at most `fuel` bytes
/// copied out of guest memory. A trap or other fault is the outer error.
async fn call_bounded<R>(
    func: Func,
    store: &mut Store<StepCtx>,
    fuel: usize,
) -> wasmtime::Result<Result<R, Refusal>>
where
    R: Lift + Send + Sync + 'static,
{
    let typed = func.typed::<(), (R,)>(&*store)?;
    let before = store.hostcall_fuel();
    store.set_hostcall_fuel(fuel);
    let out = typed.call_async(&mut *store, ()).await;
    store.set_hostcall_fuel(before);
    match out {
        Ok((r,)) => Ok(Ok(r)),
        Err(e) => {
            if let Some(t) = e.chain().find_map(|c| c.downcast_ref::<TooLong>()) {
                return Ok(Err(Refusal::TooLong(t.to_string())));
            }
            if e.chain().any(|c| c.to_string().contains(FUEL_EXHAUSTED)) {
                return Ok(Err(Refusal::Bytes));
            }
            Err(e)
        }
    }
}

/// Calls `manifest`. A manifest with a list over its cap in `caps`, or more than
/// [`MANIFEST_LIFT_BYTES`] to copy, is refused before it is copied, as `invalid
/// manifest: …` in the checker's wording.
pub async fn manifest(
    plugin: &Plugin,
    store: &mut Store<StepCtx>,
) -> wasmtime::Result<Result<connector::PluginManifest, String>> {
    manifest_of(*plugin.corral_integration_connector().func_manifest().func(), store).await
}

async fn manifest_of(
    func: Func,
    store: &mut Store<StepCtx>,
) -> wasmtime::Result<Result<connector::PluginManifest, String>> {
    let out = call_bounded::<CappedManifest>(func, store, MANIFEST_LIFT_BYTES).await?;
    Ok(out.map(Into::into).map_err(|r| {
        let why = match r {
            Refusal::TooLong(text) => text,
            Refusal::Bytes => format!(
                "$: more than {MANIFEST_LIFT_BYTES} bytes to copy from guest memory; a manifest holds at most {} bytes of text",
                caps::MANIFEST_BYTES
            ),
        };
        format!("invalid manifest: {why}")
    }))
}

/// Calls `disabled-steps`: at most `caps::STEPS` ids, and at most the instance's
/// `memoryMiB` copied. The refusal is recorded as a limit hit.
pub async fn disabled_steps(
    plugin: &Plugin,
    store: &mut Store<StepCtx>,
) -> wasmtime::Result<Result<Vec<String>, String>> {
    let func = *plugin
        .corral_integration_connector()
        .func_disabled_steps()
        .func();
    disabled_steps_of(func, store).await
}

async fn disabled_steps_of(
    func: Func,
    store: &mut Store<StepCtx>,
) -> wasmtime::Result<Result<Vec<String>, String>> {
    let (cap, mib) = memory_cap(store.data());
    let out = call_bounded::<Capped<String, DisabledSteps>>(func, store, cap).await?;
    let lifted = out.map(|c| c.0).map_err(|r| match r {
        Refusal::TooLong(text) => Stop::Over(text),
        Refusal::Bytes => Stop::Over(format!(
            "disabled-steps: more than {cap} bytes to copy from guest memory; at most memoryMiB ({mib} MiB) are allowed per call"
        )),
    });
    settle(store.data(), "disabled-steps", false, lifted)
}

