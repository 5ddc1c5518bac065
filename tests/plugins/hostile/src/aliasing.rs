//! Aliased lists: every element of a long list points at the same 4 MiB string (or
//! body). In the canonical ABI an element is only a pointer and a length, so a few MiB
//! of guest memory describe terabytes for a host that copies each element. wit-bindgen's
//! safe types cannot express this, so these attacks call the imports through their raw
//! lowered signatures (checked against the SDK's: the same core imports, all `i32`).
//!
//! Each attack reports what the host answered; the host must refuse before copying.

/// The shared string: 4 MiB of `x` (valid UTF-8, so only its size can be refused).
#[cfg(target_arch = "wasm32")]
const BIG: usize = 4 << 20;

/// A `string` or `list` as the canonical ABI lays it out in memory.
#[cfg(target_arch = "wasm32")]
#[repr(C)]
#[derive(Clone, Copy)]
struct Slice {
    ptr: *const u8,
    len: usize,
}

/// A `tuple<string, string>`.
#[cfg(target_arch = "wasm32")]
#[repr(C)]
#[derive(Clone, Copy)]
struct Pair {
    k: Slice,
    v: Slice,
}

/// A `tuple<string, field-value>` with a `text` value (24 bytes, aligned to 8: the
/// variant's case at 8, its payload at 16).
#[cfg(target_arch = "wasm32")]
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct TextField {
    k: Slice,
    case: u32,
    _pad: u32,
    v: Slice,
}

/// `http.request` in memory (64 bytes): `auth` is a u8 case and 16 bytes of payload at
/// offset 4; `body` and `timeout-ms` are options (a u8 case, then the value at 4).
#[cfg(target_arch = "wasm32")]
#[repr(C)]
#[derive(Clone, Copy)]
struct Request {
    method: Slice,
    url: Slice,
    headers: Slice,
    auth: [u32; 5],
    body_case: u32,
    body: Slice,
    timeout_case: u32,
    timeout_ms: u32,
}

/// Where a result that does not fit in one value is written (16 to 40 bytes here).
#[cfg(target_arch = "wasm32")]
#[repr(C, align(8))]
struct RetArea([u8; 64]);

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "corral:integration/graph@0.2.0")]
unsafe extern "C" {
    #[link_name = "emit-entities"]
    fn emit_entities(items: *const Slice, len: usize, ret: *mut RetArea);
    #[link_name = "emit-relationships"]
    fn emit_relationships(items: *const Slice, len: usize, ret: *mut RetArea);
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "corral:integration/log@0.2.0")]
unsafe extern "C" {
    fn log(level: i32, msg: *const u8, msg_len: usize, fields: *const TextField, len: usize);
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "corral:integration/http@0.2.0")]
unsafe extern "C" {
    /// `request` flattened: method, url, headers, auth (case + 4), body (case + 2),
    /// timeout (case + 1): 16 values, then the return area.
    fn fetch(
        method: *const u8,
        method_len: usize,
        url: *const u8,
        url_len: usize,
        headers: *const Pair,
        headers_len: usize,
        auth_case: i32,
        auth0: i32,
        auth1: i32,
        auth2: i32,
        auth3: i32,
        body_case: i32,
        body: *const u8,
        body_len: usize,
        timeout_case: i32,
        timeout_ms: i32,
        ret: *mut RetArea,
    );
    #[link_name = "fetch-streaming"]
    fn fetch_streaming(
        method: *const u8,
        method_len: usize,
        url: *const u8,
        url_len: usize,
        headers: *const Pair,
        headers_len: usize,
        auth_case: i32,
        auth0: i32,
        auth1: i32,
        auth2: i32,
        auth3: i32,
        body_case: i32,
        body: *const u8,
        body_len: usize,
        timeout_case: i32,
        timeout_ms: i32,
        ret: *mut RetArea,
    );
    #[link_name = "fetch-batch"]
    fn fetch_batch(reqs: *const Request, len: usize, ret: *mut RetArea);
}

#[cfg(target_arch = "wasm32")]
const GET: &str = "GET";
/// Never reached: the host refuses before any policy check or connection.
#[cfg(target_arch = "wasm32")]
const URL: &str = "http://127.0.0.1:9/aliased";

#[cfg(target_arch = "wasm32")]
fn slice(s: &str) -> Slice {
    Slice {
        ptr: s.as_ptr(),
        len: s.len(),
    }
}

/// `n` copies of one (pointer, length): nothing is copied but the pair.
#[cfg(target_arch = "wasm32")]
fn aliases<T: Copy>(n: usize, item: T) -> Vec<T> {
    vec![item; n]
}

/// The string the host lowered at `(ptr, len)` in a return area (left allocated).
#[cfg(target_arch = "wasm32")]
unsafe fn text_at(area: &RetArea, offset: usize) -> String {
    let word = |at: usize| u32::from_le_bytes(area.0[at..at + 4].try_into().unwrap()) as usize;
    let (ptr, len) = (word(offset), word(offset + 4));
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// `result<emit-report, graph-error>`: case at 0; the report or the error at 4.
#[cfg(target_arch = "wasm32")]
fn graph_outcome(area: &RetArea) -> String {
    if area.0[0] == 0 {
        let accepted = u32::from_le_bytes(area.0[4..8].try_into().unwrap());
        return format!("accepted {accepted}");
    }
    let case = ["denied", "limit", "invalid"]
        .get(area.0[4] as usize)
        .copied()
        .unwrap_or("?");
    format!("{case}: {}", unsafe { text_at(area, 8) })
}

/// `http-error` at `offset` of `bytes` (case, then the payload 8 bytes on).
#[cfg(target_arch = "wasm32")]
fn http_error(area: &RetArea, offset: usize) -> String {
    let cases = [
        "denied",
        "timeout",
        "connect",
        "too-large",
        "rate-limited",
        "invalid",
    ];
    let case = area.0[offset] as usize;
    if case == 3 {
        return "too-large".into();
    }
    let name = cases.get(case).copied().unwrap_or("?");
    format!("{name}: {}", unsafe { text_at(area, offset + 8) })
}

/// `result<_, http-error>`: case at 0, the error at 8.
#[cfg(target_arch = "wasm32")]
fn http_outcome(area: &RetArea) -> String {
    if area.0[0] == 0 {
        return "sent".into();
    }
    http_error(area, 8)
}

#[cfg(target_arch = "wasm32")]
fn emit(n: usize, relationships: bool) -> String {
    let big = "x".repeat(BIG);
    let items = aliases(n, slice(&big));
    let mut area = RetArea([0; 64]);
    unsafe {
        if relationships {
            emit_relationships(items.as_ptr(), items.len(), &mut area);
        } else {
            emit_entities(items.as_ptr(), items.len(), &mut area);
        }
    }
    graph_outcome(&area)
}

#[cfg(target_arch = "wasm32")]
fn fetch_with_headers(n: usize, streaming: bool) -> String {
    let big = "x".repeat(BIG);
    let headers = aliases(
        n,
        Pair {
            k: slice(&big),
            v: slice(&big),
        },
    );
    let call = if streaming { fetch_streaming } else { fetch };
    let mut area = RetArea([0; 64]);
    unsafe {
        call(
            GET.as_ptr(),
            GET.len(),
            URL.as_ptr(),
            URL.len(),
            headers.as_ptr(),
            headers.len(),
            0,
            0,
            0,
            0,
            0,
            0,
            std::ptr::null(),
            0,
            0,
            0,
            &mut area,
        );
    }
    http_outcome(&area)
}

/// The attack named `name`, if it is one of these.
#[cfg(target_arch = "wasm32")]
pub fn attack(name: &str) -> Option<String> {
    let outcome = match name {
        // 500,000 items of 4 MiB: 2 TB if copied. Over the count cap.
        "alias-emit" => emit(500_000, false),
        // 100,000 items of 4 MiB: 400 GB, within the count cap, over the bytes.
        "alias-emit-bytes" => emit(100_000, true),
        // A line of 200,000 fields, then one of 64 fields, every key and value 4 MiB.
        "alias-log" => {
            let big = "x".repeat(BIG);
            let pair = TextField {
                k: slice(&big),
                case: 0,
                _pad: 0,
                v: slice(&big),
            };
            for n in [200_000, 64] {
                let fields = aliases(n, pair);
                unsafe { log(2, big.as_ptr(), 1, fields.as_ptr(), fields.len()) };
            }
            "logged twice".into()
        }
        // A fetch with 200,000 headers of 4 MiB each, then a streaming fetch with 256.
        "alias-headers" => format!(
            "{} / {}",
            fetch_with_headers(200_000, false),
            fetch_with_headers(256, true)
        ),
        // A batch of 1,000 requests, each with the same 4 MiB body: 4 GB.
        "alias-batch" => {
            let big = "x".repeat(BIG);
            let req = Request {
                method: slice(GET),
                url: slice(URL),
                headers: Slice {
                    ptr: std::ptr::null(),
                    len: 0,
                },
                auth: [0; 5],
                body_case: 1,
                body: slice(&big),
                timeout_case: 0,
                timeout_ms: 0,
            };
            let reqs = aliases(1000, req);
            let mut area = RetArea([0; 64]);
            unsafe { fetch_batch(reqs.as_ptr(), reqs.len(), &mut area) };
            let word = |at: usize| u32::from_le_bytes(area.0[at..at + 4].try_into().unwrap());
            let (ptr, len) = (word(0) as usize, word(4) as usize);
            if len == 0 {
                return Some("no results".into());
            }
            // The first `result<response, http-error>` (40 bytes): the error at 8.
            let mut first = RetArea([0; 64]);
            first.0[..40]
                .copy_from_slice(unsafe { std::slice::from_raw_parts(ptr as *const u8, 40) });
            let outcome = if first.0[0] == 0 {
                "sent".to_string()
            } else {
                http_error(&first, 8)
            };
            format!("{len} results, the first {outcome}")
        }
        _ => return None,
    };
    Some(outcome)
}

/// Off wasm32 (the workspace builds this crate for the host too) there is no import to
/// call.
#[cfg(not(target_arch = "wasm32"))]
pub fn attack(_name: &str) -> Option<String> {
    None
}
