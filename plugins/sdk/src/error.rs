//! One error type for connector code, convertible to the WIT `step-error`.

use crate::bindings::corral::integration::http::HttpError;
use crate::bindings::exports::corral::integration::connector::StepError;
use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The provider refused the credentials.
    Authentication(String),
    /// The instance config is missing or malformed.
    Config(String),
    /// The provider failed, answered an error status, or answered garbage.
    Provider(String),
    /// The host refused or failed a request (denial, limit, transport).
    Http(String),
    /// The host refused to store graph objects.
    Graph(String),
    /// The run's key/value store refused a value, or held one of the wrong shape.
    Kv(String),
}

impl Error {
    /// The J1 `PROVIDER_API_ERROR` shape: "Provider API failed at URL: STATUS TEXT".
    pub fn provider_status(url: &str, status: u16) -> Self {
        Error::Provider(format!(
            "Provider API failed at {url}: {status} {}",
            status_text(status)
        ))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Authentication(m) => write!(f, "authentication failed: {m}"),
            Error::Config(m) => write!(f, "config error: {m}"),
            Error::Provider(m) | Error::Http(m) => f.write_str(m),
            Error::Graph(m) => write!(f, "graph error: {m}"),
            Error::Kv(m) => write!(f, "kv error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        match e {
            Error::Authentication(m) => StepError::Authentication(m),
            Error::Config(m) => StepError::Config(m),
            Error::Provider(m) => StepError::Provider(m),
            other => StepError::Other(other.to_string()),
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Error::Http(describe_http_error(&e))
    }
}

pub fn describe_http_error(e: &HttpError) -> String {
    match e {
        HttpError::Denied(m) => format!("denied: {m}"),
        HttpError::Timeout(m) => format!("timeout: {m}"),
        HttpError::Connect(m) => format!("connect: {m}"),
        HttpError::TooLarge(n) => format!("response larger than {n} bytes"),
        HttpError::RateLimited(m) => format!("rate limited by host: {m}"),
        HttpError::Invalid(m) => format!("invalid request: {m}"),
    }
}

/// The reason phrase for common statuses, as providers' error messages quote it.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
