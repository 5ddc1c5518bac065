//! The `http` interface's values, as the host holds them. Every WIT version whose `http`
//! has this shape passes these (the component model matches records and variants by
//! their field and case names, not by Rust type), so a version's adapter converts nothing.

use wasmtime::component::{ComponentType, Lift, Lower};

/// Credentials by reference: a secret config field's name, never its value.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum Auth {
    #[component(name = "none")]
    None,
    /// `Authorization: Bearer <value of the named secret>`
    #[component(name = "bearer")]
    Bearer(String),
    #[component(name = "basic")]
    Basic(BasicAuth),
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct BasicAuth {
    pub username: String,
    #[component(name = "password-secret")]
    pub password_secret: String,
}

/// A request as the guest asked for it (lifted within the call's caps by `lift`).
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
    pub body: Option<Vec<u8>>,
    #[component(name = "timeout-ms")]
    pub timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub url: String,
}

/// Why a request got no response: the text names the rule or the fault.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum HttpError {
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "timeout")]
    Timeout(String),
    #[component(name = "connect")]
    Connect(String),
    #[component(name = "too-large")]
    TooLarge(u64),
    #[component(name = "rate-limited")]
    RateLimited(String),
    #[component(name = "invalid")]
    Invalid(String),
}
