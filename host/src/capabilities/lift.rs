//! What one call may copy out of guest memory, bounded before it is copied.
//!
//! In the canonical ABI a `list<string>` element is a pointer and a length, so a guest
//! can pass a long list whose elements all point at the same large string: lifted into
//! owned `String`s, the copy is the list's length times that string, however little
//! memory the guest has. (wasmtime's own per-call "hostcall fuel", 128 MiB by default,
//! turns that into a trap; the caps here are tighter, named, and seen by the guest.)
//!
//! **Imports.** The imports that take lists — `graph`'s two emits ([`add_emits`]),
//! `log` ([`add_log`]), and `http`'s three fetches ([`add_fetches`]) — are registered
//! with parameters lifted lazily (`WasmList`, `WasmStr`, and [`LazyRequest`] for a
//! request), under whichever WIT version's interface the capability names. Element
//! counts are checked before any element is read, and bytes are counted string by
//! string and refused before one past the cap is copied. Within the caps the owned
//! values go to the capabilities in `graph`, `log` and `http`, unchanged. Caps per call:
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

use super::graph::{EmitReport, GraphError};
use super::http::{self, BodyStream, HttpError, MAX_BATCH};
use super::log::{FieldValue, Fields, Level};
use super::{Event, RunStats, StepCtx};
use corral_core::manifest::{self, Manifest, caps};
use std::marker::PhantomData;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Func, Lift, LinkerInstance, Resource, WasmList, WasmStr};
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

/// `emit-entities` and `emit-relationships`, their lists bounded before copying.
pub fn add_emits(inst: &mut LinkerInstance<'_, StepCtx>) -> wasmtime::Result<()> {
    inst.func_wrap(
        "emit-entities",
        |store: StoreContextMut<'_, StepCtx>, (items,): (WasmList<WasmStr>,)| {
            Ok((emit(store, items, Emit::Entities)?,))
        },
    )?;
    inst.func_wrap(
        "emit-relationships",
        |store: StoreContextMut<'_, StepCtx>, (items,): (WasmList<WasmStr>,)| {
            Ok((emit(store, items, Emit::Relationships)?,))
        },
    )
}

/// `log`, its message and fields bounded before copying; `fields` says how the
/// interface's version passes field values.
pub fn add_log(inst: &mut LinkerInstance<'_, StepCtx>, fields: Fields) -> wasmtime::Result<()> {
    match fields {
        Fields::Text => inst.func_wrap(
            "log",
            |store: StoreContextMut<'_, StepCtx>,
             (level, message, fields): (Level, WasmStr, WasmList<Pair<WasmStr>>)| {
                guest_log(store, level, message, fields)
            },
        ),
        Fields::Typed => inst.func_wrap(
            "log",
            |store: StoreContextMut<'_, StepCtx>,
             (level, message, fields): (Level, WasmStr, WasmList<Pair<LazyFieldValue>>)| {
                guest_log(store, level, message, fields)
            },
        ),
    }
}

/// `fetch`, `fetch-streaming` and `fetch-batch`, their requests bounded before copying.
pub fn add_fetches(inst: &mut LinkerInstance<'_, StepCtx>) -> wasmtime::Result<()> {
    inst.func_wrap_async(
        "fetch",
        |mut store: StoreContextMut<'_, StepCtx>, (req,): (LazyRequest,)| {
            Box::new(async move {
                let out = match one_request(&mut store, &req, "fetch")? {
                    Ok(req) => store.data_mut().fetch(req).await,
                    Err(rule) => Err(HttpError::Invalid(rule)),
                };
                Ok((out,))
            })
        },
    )?;
    inst.func_wrap_async(
        "fetch-streaming",
        |mut store: StoreContextMut<'_, StepCtx>, (req,): (LazyRequest,)| {
            Box::new(async move {
                let out: Result<(http::ResponseHead, Resource<BodyStream>), _> =
                    match one_request(&mut store, &req, "fetch-streaming")? {
                        Ok(req) => store.data_mut().fetch_streaming(req).await,
                        Err(rule) => Err(HttpError::Invalid(rule)),
                    };
                Ok((out,))
            })
        },
    )?;
    inst.func_wrap_async(
        "fetch-batch",
        |mut store: StoreContextMut<'_, StepCtx>, (reqs,): (WasmList<LazyRequest>,)| {
            Box::new(async move {
                let n = reqs.len();
                let out = match batch(&mut store, &reqs)? {
                    Ok(reqs) => store.data_mut().fetch_batch(reqs).await,
                    Err(rule) if n > MAX_BATCH_ANSWERED => return Err(wasmtime::Error::msg(rule)),
                    Err(rule) => (0..n)
                        .map(|_| Err(HttpError::Invalid(rule.clone())))
                        .collect(),
                };
                Ok((out,))
            })
        },
    )
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
fn settle<T>(ctx: &StepCtx, call: &str, log_line: bool, lifted: Result<T, Stop>) -> Bounded<T> {
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

/// Element `i` of a lazily lifted list, itself still lazy. Each element is read in a
/// lift context of its own: wasmtime charges its hostcall fuel for a lazy string as if
/// it were copied, so one context for a whole aliased list would run out of fuel (a
/// trap) before [`Budget`] could refuse the call. Callers check the list's length first.
fn element<T: Lift>(
    store: &mut StoreContextMut<'_, StepCtx>,
    list: &WasmList<T>,
    i: usize,
) -> wasmtime::Result<T> {
    list.get(&mut *store, i)
        .unwrap_or_else(|| Err(wasmtime::format_err!("list index {i} out of bounds")))
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
) -> wasmtime::Result<Result<EmitReport, GraphError>> {
    let call = match kind {
        Emit::Entities => "emit-entities",
        Emit::Relationships => "emit-relationships",
    };
    let lifted = lift_strings(&mut store, &items, call);
    let items = match settle(store.data(), call, true, lifted)? {
        Ok(items) => items,
        Err(rule) => return Ok(Err(GraphError::Limit(rule))),
    };
    let ctx = store.data_mut();
    Ok(match kind {
        Emit::Entities => ctx.emit_entities(items),
        Emit::Relationships => ctx.emit_relationships(items),
    })
}

fn lift_strings(
    store: &mut StoreContextMut<'_, StepCtx>,
    list: &WasmList<WasmStr>,
    call: &'static str,
) -> Result<Vec<String>, Stop> {
    let mut budget = Budget::new(store.data(), call);
    budget.count(list.len(), MAX_EMIT_ITEMS, "items in one call")?;
    (0..list.len())
        .map(|i| {
            let s = element(store, list, i)?;
            budget.string(store, &s)
        })
        .collect()
}

/// A `tuple<string, V>`, lazily.
type Pair<V> = (WasmStr, V);

/// A field value as a WIT version passes it, lifted within the call's budget.
trait LazyField: Lift {
    fn lift_value(
        &self,
        store: &StoreContextMut<'_, StepCtx>,
        budget: &mut Budget,
    ) -> Result<FieldValue, Stop>;
}

impl LazyField for WasmStr {
    fn lift_value(
        &self,
        store: &StoreContextMut<'_, StepCtx>,
        budget: &mut Budget,
    ) -> Result<FieldValue, Stop> {
        Ok(FieldValue::Text(budget.string(store, self)?))
    }
}

/// `field-value` (WIT 0.2), lazily.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum LazyFieldValue {
    #[component(name = "text")]
    Text(WasmStr),
    #[component(name = "integer")]
    Integer(i64),
    #[component(name = "float")]
    Float(f64),
    #[component(name = "boolean")]
    Boolean(bool),
}

impl LazyField for LazyFieldValue {
    fn lift_value(
        &self,
        store: &StoreContextMut<'_, StepCtx>,
        budget: &mut Budget,
    ) -> Result<FieldValue, Stop> {
        Ok(match self {
            LazyFieldValue::Text(s) => FieldValue::Text(budget.string(store, s)?),
            LazyFieldValue::Integer(n) => FieldValue::Integer(*n),
            LazyFieldValue::Float(x) => FieldValue::float(*x),
            LazyFieldValue::Boolean(b) => FieldValue::Boolean(*b),
        })
    }
}

fn guest_log<V: LazyField>(
    mut store: StoreContextMut<'_, StepCtx>,
    level: Level,
    message: WasmStr,
    fields: WasmList<Pair<V>>,
) -> wasmtime::Result<()> {
    let lifted = lift_line(&mut store, &message, &fields);
    match settle(store.data(), "log", false, lifted)? {
        Ok((message, fields)) => {
            store.data_mut().guest_log(level, message, fields);
            Ok(())
        }
        Err(_) => {
            // Refused lines are dropped and counted like lines past the run's log caps
            // (and not logged: a guest provoking refusals must not flood the log).
            store.data().run.log.count_dropped();
            Ok(())
        }
    }
}

fn pairs(
    store: &mut StoreContextMut<'_, StepCtx>,
    list: &WasmList<Pair<WasmStr>>,
    budget: &mut Budget,
) -> Result<Vec<(String, String)>, Stop> {
    (0..list.len())
        .map(|i| {
            let (k, v) = element(store, list, i)?;
            Ok((budget.string(store, &k)?, budget.string(store, &v)?))
        })
        .collect()
}

type Line = (String, Vec<(String, FieldValue)>);

fn lift_line<V: LazyField>(
    store: &mut StoreContextMut<'_, StepCtx>,
    message: &WasmStr,
    fields: &WasmList<Pair<V>>,
) -> Result<Line, Stop> {
    let mut budget = Budget::new(store.data(), "log");
    budget.count(fields.len(), MAX_LOG_FIELDS, "fields in one line")?;
    let message = budget.string(store, message)?;
    let fields = (0..fields.len())
        .map(|i| {
            let (k, v) = element(store, fields, i)?;
            Ok((budget.string(store, &k)?, v.lift_value(store, &mut budget)?))
        })
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
    headers: WasmList<Pair<WasmStr>>,
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
        let headers = pairs(store, &self.headers, budget)?;
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
        (0..reqs.len())
            .map(|i| element(store, reqs, i)?.lift(store, &mut budget))
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

/// `config-field`, as the export passes it.
#[derive(ComponentType, Lift)]
#[component(record)]
struct WireConfigField {
    name: String,
    secret: bool,
    optional: bool,
    description: String,
    #[component(name = "default-value")]
    default_value: Option<String>,
}

/// `entity-type`, as the export passes it.
#[derive(ComponentType, Lift)]
#[component(record)]
struct WireEntityType {
    #[component(name = "resource-name")]
    resource_name: String,
    #[component(name = "type-name")]
    type_name: String,
    #[component(name = "class-name")]
    class_name: String,
}

/// `relationship-type`, as the export passes it.
#[derive(ComponentType, Lift)]
#[component(record)]
struct WireRelationshipType {
    #[component(name = "type-name")]
    type_name: String,
    #[component(name = "class-name")]
    class_name: String,
    #[component(name = "source-type")]
    source_type: String,
    #[component(name = "target-type")]
    target_type: String,
    mapped: bool,
}

/// `step`, with its lists capped.
#[derive(ComponentType, Lift)]
#[component(record)]
struct CappedStep {
    id: String,
    name: String,
    entities: Capped<WireEntityType, StepTypes>,
    relationships: Capped<WireRelationshipType, StepTypes>,
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
    config_fields: Capped<WireConfigField, ConfigFields>,
    steps: Capped<CappedStep, Steps>,
    capabilities: String,
}

/// The host's manifest, not yet checked (`corral_core::manifest::check` does that). A
/// secret field's default is dropped: a secret has no default.
impl From<CappedManifest> for Manifest {
    fn from(m: CappedManifest) -> Self {
        let field = |f: WireConfigField| manifest::ConfigField {
            default: f.default_value.filter(|_| !f.secret),
            name: f.name,
            secret: f.secret,
            optional: f.optional,
            description: f.description,
        };
        let entity = |e: WireEntityType| manifest::EntityType {
            resource_name: e.resource_name,
            type_name: e.type_name,
            class_name: e.class_name,
        };
        let relationship = |r: WireRelationshipType| manifest::RelationshipType {
            type_name: r.type_name,
            class_name: r.class_name,
            source_type: r.source_type,
            target_type: r.target_type,
            mapped: r.mapped,
        };
        let step = |s: CappedStep| manifest::StepInfo {
            id: s.id,
            name: s.name,
            entities: s.entities.0.into_iter().map(entity).collect(),
            relationships: s.relationships.0.into_iter().map(relationship).collect(),
            depends_on: s.depends_on.0,
        };
        Manifest {
            id: m.id,
            version: m.version,
            name: m.name,
            description: m.description,
            config_fields: m.config_fields.0.into_iter().map(field).collect(),
            steps: m.steps.0.into_iter().map(step).collect(),
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

/// Checks that `manifest` and `disabled-steps` have the types the capped lifts expect,
/// without calling them: a component whose exports are mistyped is refused when it is
/// linked, not when a run first reaches them.
pub fn check_export_types(
    manifest: Func,
    disabled_steps: Func,
    store: &Store<StepCtx>,
) -> wasmtime::Result<()> {
    manifest.typed::<(), (CappedManifest,)>(store)?;
    disabled_steps.typed::<(), (Capped<String, DisabledSteps>,)>(store)?;
    Ok(())
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
    func: Func,
    store: &mut Store<StepCtx>,
) -> wasmtime::Result<Result<Manifest, String>> {
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

#[cfg(test)]
mod tests {
    //! Guests written in WAT, so a test can alias what no bindings would: every element
    //! of a list pointing at one 4 MiB string of `x` at 1 MiB (`BIG`).

    use super::*;
    use crate::capabilities::RunContext;
    use crate::lock::LockExt;
    use crate::policy::{Grant, Policy};
    use std::sync::Arc;
    use wasmtime::component::{Component, Instance};
    use wasmtime::{Config, Engine};

    /// The instance's `memoryMiB` in these tests, so the byte cap is 8 MiB.
    const MEMORY_MIB: u64 = 8;
    const CAP: usize = 8 << 20;

    /// Imports `graph`, `log` and `http` as the WIT declares them; `run(case)` carries
    /// out one attack and returns the text the host answered (or `ok` / `logged`).
    const IMPORTER: &str = r#"
(component
  (import "corral:integration/graph@0.1.0" (instance $graph
    (type $rejection (record (field "index" u32) (field "key" string) (field "reason" string)))
    (export "rejection" (type $rejection-e (eq $rejection)))
    (type $report (record (field "accepted" u32) (field "rejected" (list $rejection-e))))
    (export "emit-report" (type $report-e (eq $report)))
    (type $err (variant (case "denied" string) (case "limit" string) (case "invalid" string)))
    (export "graph-error" (type $err-e (eq $err)))
    (export "emit-entities" (func (param "entities" (list string)) (result (result $report-e (error $err-e)))))
    (export "emit-relationships" (func (param "relationships" (list string)) (result (result $report-e (error $err-e)))))
  ))
  (import "corral:integration/log@0.1.0" (instance $log
    (type $level (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level-e (eq $level)))
    (export "log" (func (param "level" $level-e) (param "message" string) (param "fields" (list (tuple string string)))))
  ))
  (import "corral:integration/http@0.1.0" (instance $http
    (type $basic (record (field "username" string) (field "password-secret" string)))
    (export "basic-auth" (type $basic-e (eq $basic)))
    (type $auth (variant (case "none") (case "bearer" string) (case "basic" $basic-e)))
    (export "auth" (type $auth-e (eq $auth)))
    (type $request (record (field "method" string) (field "url" string)
      (field "headers" (list (tuple string string))) (field "auth" $auth-e)
      (field "body" (option (list u8))) (field "timeout-ms" (option u32))))
    (export "request" (type $request-e (eq $request)))
    (type $response (record (field "status" u16) (field "headers" (list (tuple string string)))
      (field "body" (list u8)) (field "url" string)))
    (export "response" (type $response-e (eq $response)))
    (type $herr (variant (case "denied" string) (case "timeout" string) (case "connect" string)
      (case "too-large" u64) (case "rate-limited" string) (case "invalid" string)))
    (export "http-error" (type $herr-e (eq $herr)))
    (export "fetch" (func (param "req" $request-e) (result (result $response-e (error $herr-e)))))
    (export "fetch-batch" (func (param "reqs" (list $request-e)) (result (list (result $response-e (error $herr-e))))))
  ))

  (core module $libc
    (memory (export "memory") 200)
    (global $heap (mut i32) (i32.const 0x900000))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.const 1) (i32.div_u
          (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
          (i32.const 65536)))))))
      (local.get $p))
  )
  (core instance $libc (instantiate $libc))

  (alias export $graph "emit-entities" (func $emit-entities))
  (alias export $graph "emit-relationships" (func $emit-relationships))
  (alias export $log "log" (func $log))
  (alias export $http "fetch" (func $fetch))
  (alias export $http "fetch-batch" (func $fetch-batch))
  (core func $emit-entities-l (canon lower (func $emit-entities) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $emit-relationships-l (canon lower (func $emit-relationships) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $log-l (canon lower (func $log) (memory (core memory $libc "memory"))))
  (core func $fetch-l (canon lower (func $fetch) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $fetch-batch-l (canon lower (func $fetch-batch) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))

  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "emit-entities" (func $emit-entities (param i32 i32 i32)))
    (import "host" "emit-relationships" (func $emit-relationships (param i32 i32 i32)))
    (import "host" "log" (func $log (param i32 i32 i32 i32 i32)))
    (import "host" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "host" "fetch-batch" (func $fetch-batch (param i32 i32 i32)))

    ;; RET 0x100: return area; 0x200: ("ok"), 0x220: ("logged"); 0x300 "GET";
    ;; 0x310 a URL; BIG 0x100000: 4 MiB of `x`; LIST 0x500000.
    (data (i32.const 0x200) "\f0\01\00\00\02\00\00\00")
    (data (i32.const 0x1f0) "ok")
    (data (i32.const 0x220) "\e0\01\00\00\06\00\00\00")
    (data (i32.const 0x1e0) "logged")
    (data (i32.const 0x300) "GET")
    (data (i32.const 0x310) "http://127.0.0.1:9/")

    (func $alias (param $base i32) (param $n i32) (param $stride i32) (param $ptr i32) (param $len i32)
      (local $i i32)
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (local.get $base) (local.get $ptr))
        (i32.store offset=4 (local.get $base) (local.get $len))
        (local.set $base (i32.add (local.get $base) (local.get $stride)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

    ;; `n` pairs of (BIG, `len` bytes of it) at LIST.
    (func $pairs (param $n i32) (param $len i32)
      (call $alias (i32.const 0x500000) (local.get $n) (i32.const 16) (i32.const 0x100000) (local.get $len))
      (call $alias (i32.const 0x500008) (local.get $n) (i32.const 16) (i32.const 0x100000) (local.get $len)))

    ;; `n` GET requests at LIST, each with BIG as its body when `body`.
    (func $requests (param $n i32) (param $body i32)
      (local $a i32) (local $i i32)
      (local.set $a (i32.const 0x500000))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store offset=0 (local.get $a) (i32.const 0x300))
        (i32.store offset=4 (local.get $a) (i32.const 3))
        (i32.store offset=8 (local.get $a) (i32.const 0x310))
        (i32.store offset=12 (local.get $a) (i32.const 19))
        (i32.store offset=16 (local.get $a) (i32.const 0))
        (i32.store offset=20 (local.get $a) (i32.const 0))
        (i32.store8 offset=24 (local.get $a) (i32.const 0))
        (i32.store8 offset=44 (local.get $a) (local.get $body))
        (i32.store offset=48 (local.get $a) (i32.const 0x100000))
        (i32.store offset=52 (local.get $a) (i32.const 0x400000))
        (i32.store8 offset=56 (local.get $a) (i32.const 0))
        (local.set $a (i32.add (local.get $a) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

    ;; The error's text, the first rejection's reason, or `ok`.
    (func $graph-result (result i32)
      (if (result i32) (i32.load8_u (i32.const 0x100))
        (then (i32.const 0x108))
        (else (if (result i32) (i32.load offset=12 (i32.const 0x100))
          (then (i32.add (i32.load offset=8 (i32.const 0x100)) (i32.const 12)))
          (else (i32.const 0x200))))))

    (func $http-result (result i32)
      (if (result i32) (i32.load8_u (i32.const 0x100))
        (then (i32.const 0x110))
        (else (i32.const 0x200))))

    (func (export "run") (param $case i32) (result i32)
      (memory.fill (i32.const 0x100000) (i32.const 0x78) (i32.const 0x400000))
      (block $b9 (block $b8 (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
        (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 (local.get $case)))
        ;; 0: 200,000 items, all BIG: 800 GB if copied.
        (call $alias (i32.const 0x500000) (i32.const 200000) (i32.const 8) (i32.const 0x100000) (i32.const 0x400000))
        (call $emit-entities (i32.const 0x500000) (i32.const 200000) (i32.const 0x100))
        (return (call $graph-result)))
        ;; 1: 1,000 items, all BIG: 4 GB, under the count cap.
        (call $alias (i32.const 0x500000) (i32.const 1000) (i32.const 8) (i32.const 0x100000) (i32.const 0x400000))
        (call $emit-relationships (i32.const 0x500000) (i32.const 1000) (i32.const 0x100))
        (return (call $graph-result)))
        ;; 2: one item, `x`: passed through, and rejected as JSON.
        (call $alias (i32.const 0x500000) (i32.const 1) (i32.const 8) (i32.const 0x100000) (i32.const 1))
        (call $emit-entities (i32.const 0x500000) (i32.const 1) (i32.const 0x100))
        (return (call $graph-result)))
        ;; 3: a line with 100,000 fields.
        (call $pairs (i32.const 100000) (i32.const 0x400000))
        (call $log (i32.const 2) (i32.const 0x100000) (i32.const 1) (i32.const 0x500000) (i32.const 100000))
        (return (i32.const 0x220)))
        ;; 4: a line with 64 fields, all BIG: 512 MiB.
        (call $pairs (i32.const 64) (i32.const 0x400000))
        (call $log (i32.const 2) (i32.const 0x100000) (i32.const 1) (i32.const 0x500000) (i32.const 64))
        (return (i32.const 0x220)))
        ;; 5: a line with one field `x=x`: kept.
        (call $pairs (i32.const 1) (i32.const 1))
        (call $log (i32.const 3) (i32.const 0x100000) (i32.const 1) (i32.const 0x500000) (i32.const 1))
        (return (i32.const 0x220)))
        ;; 6: a fetch with 100,000 headers, all BIG.
        (call $pairs (i32.const 100000) (i32.const 0x400000))
        (call $fetch (i32.const 0x300) (i32.const 3) (i32.const 0x310) (i32.const 19)
          (i32.const 0x500000) (i32.const 100000)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0)
          (i32.const 0x100))
        (return (call $http-result)))
        ;; 7: a batch of 1,000 requests, each with BIG as its body: 4 GB.
        (call $requests (i32.const 1000) (i32.const 1))
        (call $fetch-batch (i32.const 0x500000) (i32.const 1000) (i32.const 0x100))
        (return (i32.add (i32.load (i32.const 0x100)) (i32.const 16))))
        ;; 8: a batch of 2,000 requests.
        (call $requests (i32.const 2000) (i32.const 0))
        (call $fetch-batch (i32.const 0x500000) (i32.const 2000) (i32.const 0x100))
        (return (i32.add (i32.load (i32.const 0x100)) (i32.const 16))))
      ;; 9: a batch of 20,000 requests.
      (call $requests (i32.const 20000) (i32.const 0))
      (call $fetch-batch (i32.const 0x500000) (i32.const 20000) (i32.const 0x100))
      (i32.add (i32.load (i32.const 0x100)) (i32.const 16)))
  )
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance
      (export "emit-entities" (func $emit-entities-l))
      (export "emit-relationships" (func $emit-relationships-l))
      (export "log" (func $log-l))
      (export "fetch" (func $fetch-l))
      (export "fetch-batch" (func $fetch-batch-l))))))
  (func $run (param "case" u32) (result string)
    (canon lift (core func $main "run") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (export "run" (func $run))
)
"#;

    /// Exports functions typed like `manifest` and `disabled-steps`, each returning one
    /// hostile (or one fine) result.
    const EXPORTER: &str = r#"
(component
  (core module $m
    (memory (export "memory") 200)
    ;; RET 0x100; MANIFEST 0x400; 0x300 "ab"; BIG 0x100000 (4 MiB of `x`);
    ;; DEPS 0x480000; LIST 0x500000.
    (data (i32.const 0x300) "ab")

    (func $alias (param $base i32) (param $n i32) (param $stride i32) (param $ptr i32) (param $len i32)
      (local $i i32)
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (local.get $base) (local.get $ptr))
        (i32.store offset=4 (local.get $base) (local.get $len))
        (local.set $base (i32.add (local.get $base) (local.get $stride)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

    (func $list (param $ptr i32) (param $len i32) (result i32)
      (i32.store (i32.const 0x100) (local.get $ptr))
      (i32.store offset=4 (i32.const 0x100) (local.get $len))
      (i32.const 0x100))

    ;; A manifest whose four texts are `a`, with `steps` steps at LIST.
    (func $manifest (param $steps i32) (result i32)
      (call $alias (i32.const 0x400) (i32.const 4) (i32.const 8) (i32.const 0x300) (i32.const 1))
      (i32.store offset=40 (i32.const 0x400) (i32.const 0x500000))
      (i32.store offset=44 (i32.const 0x400) (local.get $steps))
      (i32.const 0x400))

    (func (export "disabled-many") (result i32)
      (call $alias (i32.const 0x500000) (i32.const 100000) (i32.const 8) (i32.const 0x300) (i32.const 1))
      (call $list (i32.const 0x500000) (i32.const 100000)))

    (func (export "disabled-alias") (result i32)
      (memory.fill (i32.const 0x100000) (i32.const 0x78) (i32.const 0x400000))
      (call $alias (i32.const 0x500000) (i32.const 256) (i32.const 8) (i32.const 0x100000) (i32.const 0x400000))
      (call $list (i32.const 0x500000) (i32.const 256)))

    (func (export "disabled-ok") (result i32)
      (call $alias (i32.const 0x500000) (i32.const 1) (i32.const 8) (i32.const 0x300) (i32.const 1))
      (call $alias (i32.const 0x500008) (i32.const 1) (i32.const 8) (i32.const 0x301) (i32.const 1))
      (call $list (i32.const 0x500000) (i32.const 2)))

    ;; 100,000 steps (empty).
    (func (export "manifest-chain") (result i32)
      (call $manifest (i32.const 100000)))

    ;; 256 steps, each depending on the same 64 ids of 64 KiB: 1 GiB if copied.
    (func (export "manifest-alias") (result i32)
      (local $a i32) (local $i i32)
      (memory.fill (i32.const 0x100000) (i32.const 0x78) (i32.const 0x400000))
      (call $alias (i32.const 0x480000) (i32.const 64) (i32.const 8) (i32.const 0x100000) (i32.const 0x10000))
      (local.set $a (i32.const 0x500000))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 256)))
        (i32.store offset=32 (local.get $a) (i32.const 0x480000))
        (i32.store offset=36 (local.get $a) (i32.const 64))
        (local.set $a (i32.add (local.get $a) (i32.const 40)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (call $manifest (i32.const 256)))

    ;; One step `a` (named `a`) depending on `b`; one secret config field `a`.
    (func (export "manifest-ok") (result i32)
      (call $alias (i32.const 0x500000) (i32.const 2) (i32.const 8) (i32.const 0x300) (i32.const 1))
      (i32.store offset=32 (i32.const 0x500000) (i32.const 0x480000))
      (i32.store offset=36 (i32.const 0x500000) (i32.const 1))
      (call $alias (i32.const 0x480000) (i32.const 1) (i32.const 8) (i32.const 0x301) (i32.const 1))
      (call $alias (i32.const 0x490000) (i32.const 1) (i32.const 8) (i32.const 0x300) (i32.const 1))
      (i32.store8 offset=8 (i32.const 0x490000) (i32.const 1))
      (call $alias (i32.const 0x49000c) (i32.const 1) (i32.const 8) (i32.const 0x301) (i32.const 1))
      (i32.store offset=32 (i32.const 0x400) (i32.const 0x490000))
      (i32.store offset=36 (i32.const 0x400) (i32.const 1))
      (call $manifest (i32.const 1)))
  )
  (core instance $i (instantiate $m))

  (type $cf-def (record (field "name" string) (field "secret" bool) (field "optional" bool)
    (field "description" string) (field "default-value" (option string))))
  (export $cf "config-field" (type $cf-def))
  (type $et-def (record (field "resource-name" string) (field "type-name" string) (field "class-name" string)))
  (export $et "entity-type" (type $et-def))
  (type $rt-def (record (field "type-name" string) (field "class-name" string)
    (field "source-type" string) (field "target-type" string) (field "mapped" bool)))
  (export $rt "relationship-type" (type $rt-def))
  (type $step-def (record (field "id" string) (field "name" string) (field "entities" (list $et))
    (field "relationships" (list $rt)) (field "depends-on" (list string))))
  (export $step "step" (type $step-def))
  (type $pm-def (record (field "id" string) (field "version" string) (field "name" string)
    (field "description" string) (field "config-fields" (list $cf)) (field "steps" (list $step))
    (field "capabilities" string)))
  (export $pm "plugin-manifest" (type $pm-def))

  (func $disabled-many (result (list string)) (canon lift (core func $i "disabled-many") (memory (core memory $i "memory"))))
  (func $disabled-alias (result (list string)) (canon lift (core func $i "disabled-alias") (memory (core memory $i "memory"))))
  (func $disabled-ok (result (list string)) (canon lift (core func $i "disabled-ok") (memory (core memory $i "memory"))))
  (func $manifest-chain (result $pm) (canon lift (core func $i "manifest-chain") (memory (core memory $i "memory"))))
  (func $manifest-alias (result $pm) (canon lift (core func $i "manifest-alias") (memory (core memory $i "memory"))))
  (func $manifest-ok (result $pm) (canon lift (core func $i "manifest-ok") (memory (core memory $i "memory"))))
  (export "disabled-many" (func $disabled-many))
  (export "disabled-alias" (func $disabled-alias))
  (export "disabled-ok" (func $disabled-ok))
  (export "manifest-chain" (func $manifest-chain))
  (export "manifest-alias" (func $manifest-alias))
  (export "manifest-ok" (func $manifest-ok))
)
"#;

    fn engine() -> Engine {
        let mut config = Config::new();
        config.wasm_component_model(true).concurrency_support(false);
        Engine::new(&config).unwrap()
    }

    fn run_context() -> Arc<RunContext> {
        let mut grant = Grant::new(Policy::nothing("lift test"), None);
        grant.limits.memory_mib = MEMORY_MIB;
        crate::capabilities::tests::context_granted(grant, &[], &[])
    }

    /// WASI and the four 0.1 interfaces the WAT guests import, as the capabilities
    /// register them (the plugin layer does the same for every version).
    fn linker(engine: &Engine) -> wasmtime::component::Linker<StepCtx> {
        use crate::capabilities::{config, graph, http, log};
        let mut linker = wasmtime::component::Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        let name = |i: &str| format!("corral:integration/{i}@0.1.0");
        http::add_to_linker(&mut linker, &name("http")).unwrap();
        graph::add_to_linker(&mut linker, &name("graph")).unwrap();
        log::add_to_linker(&mut linker, &name("log"), log::Fields::Text).unwrap();
        config::add_to_linker(&mut linker, &name("config")).unwrap();
        linker
    }

    /// A fresh instance of `wat` linked against the capabilities' entries.
    async fn instance(wat: &str) -> (Store<StepCtx>, Instance, Arc<RunContext>) {
        let engine = engine();
        let linker = linker(&engine);
        let component = Component::new(&engine, wat).unwrap();
        let run = run_context();
        let mut store = Store::new(&engine, StepCtx::new(run.clone(), "attack"));
        let instance = linker
            .instantiate_async(&mut store, &component)
            .await
            .unwrap();
        (store, instance, run)
    }

    /// Runs attack `case` of [`IMPORTER`] in a fresh instance.
    async fn attack(case: u32) -> (wasmtime::Result<String>, Arc<RunContext>) {
        let (mut store, instance, run) = instance(IMPORTER).await;
        let f = instance
            .get_typed_func::<(u32,), (String,)>(&mut store, "run")
            .unwrap();
        let out = f.call_async(&mut store, (case,)).await.map(|(s,)| s);
        (out, run)
    }

    fn limit_rules(run: &RunContext) -> Vec<String> {
        let hits = run.stats.limit_hits.locked();
        hits.iter()
            .map(|e| format!("{}: {}", e.resource, e.rule))
            .collect()
    }

    fn bytes_rule(call: &str) -> String {
        format!(
            "{call}: the call carries more than {CAP} bytes; at most memoryMiB ({MEMORY_MIB} MiB) are allowed per call"
        )
    }

    #[tokio::test]
    async fn an_aliased_emit_is_refused_by_count_before_copying() {
        let (out, run) = attack(0).await;
        let rule = "emit-entities: 200000 items in one call; at most 100000 are allowed";
        assert_eq!(out.unwrap(), rule);
        assert_eq!(limit_rules(&run), [format!("emit-entities: {rule}")]);
        assert!(run.graph.store.locked().entity_count() == 0);
    }

    #[tokio::test]
    async fn an_aliased_emit_is_refused_by_bytes_before_copying() {
        let (out, run) = attack(1).await;
        assert_eq!(out.unwrap(), bytes_rule("emit-relationships"));
        assert_eq!(limit_rules(&run).len(), 1);
    }

    #[tokio::test]
    async fn an_emit_within_the_caps_reaches_the_graph() {
        let (out, run) = attack(2).await;
        let reason = out.unwrap();
        assert!(
            !reason.is_empty() && !reason.contains("at most"),
            "{reason}"
        );
        assert_eq!(run.stats.rejections.locked().len(), 1);
        assert!(limit_rules(&run).is_empty());
    }

    #[tokio::test]
    async fn aliased_log_lines_are_dropped_and_counted() {
        for (case, rule) in [
            (
                3,
                "log: 100000 fields in one line; at most 64 are allowed".to_string(),
            ),
            (4, bytes_rule("log")),
        ] {
            let (out, run) = attack(case).await;
            assert_eq!(out.unwrap(), "logged");
            assert_eq!(run.log.dropped(), 1, "case {case}");
            assert!(run.log.records().is_empty(), "case {case}");
            assert_eq!(limit_rules(&run), [format!("log: {rule}")]);
        }
        let (out, run) = attack(5).await;
        assert_eq!(out.unwrap(), "logged");
        let records = run.log.records();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].message, "x");
        assert_eq!(
            records[0].fields,
            [("x".to_string(), FieldValue::Text("x".into()))]
        );
        assert_eq!(run.log.dropped(), 0);
    }

    #[tokio::test]
    async fn aliased_requests_are_invalid_before_anything_is_sent() {
        let cases = [
            (
                6,
                "fetch: 100000 headers in one request; at most 256 are allowed".to_string(),
            ),
            (7, bytes_rule("fetch-batch")),
            (
                8,
                "fetch-batch: 2000 requests in one batch; at most 1000 are allowed".to_string(),
            ),
        ];
        for (case, rule) in cases {
            let (out, run) = attack(case).await;
            assert_eq!(out.unwrap(), rule, "case {case}");
            assert_eq!(
                run.stats
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed),
                0
            );
            assert_eq!(limit_rules(&run).len(), 1, "case {case}");
        }
    }

    #[tokio::test]
    async fn a_batch_too_large_to_answer_traps() {
        let (out, _run) = attack(9).await;
        let err = format!("{:#}", out.unwrap_err());
        assert!(
            err.contains("fetch-batch: 20000 requests in one batch; at most 1000 are allowed"),
            "{err}"
        );
    }

    /// Export `name` of [`EXPORTER`] in a fresh instance.
    async fn export(name: &str) -> (Store<StepCtx>, Func, Arc<RunContext>) {
        let (mut store, instance, run) = instance(EXPORTER).await;
        let func = instance.get_func(&mut store, name).unwrap();
        (store, func, run)
    }

    #[tokio::test]
    async fn a_manifest_over_its_caps_is_refused_before_copying() {
        let (mut store, f, _) = export("manifest-chain").await;
        let out = manifest(f, &mut store).await.unwrap();
        assert_eq!(
            out.unwrap_err(),
            "invalid manifest: steps: 100000 steps: at most 256 are allowed"
        );
        let (mut store, f, _) = export("manifest-alias").await;
        let out = manifest(f, &mut store).await.unwrap();
        assert_eq!(
            out.unwrap_err(),
            "invalid manifest: $: more than 2097152 bytes to copy from guest memory; a manifest holds at most 1048576 bytes of text"
        );
    }

    #[tokio::test]
    async fn a_manifest_within_its_caps_is_lifted_whole() {
        let (mut store, f, _) = export("manifest-ok").await;
        let m = manifest(f, &mut store).await.unwrap().unwrap();
        let texts = [&m.id, &m.version, &m.name, &m.description];
        assert!(texts.iter().all(|t| t.as_str() == "a"), "{texts:?}");
        assert_eq!(m.steps.len(), 1);
        assert_eq!(
            (m.steps[0].id.as_str(), m.steps[0].name.as_str()),
            ("a", "a")
        );
        assert_eq!(m.steps[0].depends_on, ["b"]);
        assert_eq!(m.config_fields.len(), 1);
        let field = &m.config_fields[0];
        assert_eq!(
            (field.name.as_str(), field.description.as_str()),
            ("a", "b")
        );
        assert!(field.secret && !field.optional && field.default.is_none());
        assert_eq!(m.capabilities, "");
        assert_eq!(store.hostcall_fuel(), 128 << 20, "the fuel is restored");
    }

    #[tokio::test]
    async fn disabled_steps_over_their_caps_are_refused_and_recorded() {
        let cases = [
            (
                "disabled-many",
                "disabled-steps: 100000 steps: at most 256 are allowed".to_string(),
            ),
            (
                "disabled-alias",
                format!(
                    "disabled-steps: more than {CAP} bytes to copy from guest memory; at most memoryMiB ({MEMORY_MIB} MiB) are allowed per call"
                ),
            ),
        ];
        for (name, rule) in cases {
            let (mut store, f, run) = export(name).await;
            let out = disabled_steps(f, &mut store).await.unwrap();
            assert_eq!(out.unwrap_err(), rule);
            assert_eq!(limit_rules(&run), [format!("disabled-steps: {rule}")]);
        }
        let (mut store, f, run) = export("disabled-ok").await;
        let out = disabled_steps(f, &mut store).await.unwrap();
        assert_eq!(out.unwrap(), ["a", "b"]);
        assert!(limit_rules(&run).is_empty());
    }
}
