//! Secret values: held only by the host, substituted into requests after the policy
//! check, and scrubbed from anything that leaves the host (errors, logs, files).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A credential value. `Debug` and `Display` never print it.
#[derive(Clone)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        SecretValue(value.into())
    }

    /// The value, for the one place that needs it: the outgoing request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The secret config fields of one instance, by field name.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    values: BTreeMap<String, SecretValue>,
}

pub const REDACTED: &str = "[REDACTED]";

impl Secrets {
    pub fn insert(&mut self, name: impl Into<String>, value: SecretValue) {
        self.values.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `text` with every secret value replaced by `[REDACTED]`. Applied to whatever a
    /// provider or a guest hands back, in case it echoes a credential.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.values() {
            // Very short values would redact ordinary text; they are also too weak to
            // matter, and they are still never logged by the host itself.
            if v.expose().len() >= 4 && out.contains(v.expose()) {
                out = out.replace(v.expose(), REDACTED);
            }
        }
        out
    }
}

impl Secrets {
    /// `bytes` with every secret value replaced, for response bodies: a provider that
    /// echoes the request (headers included) must not hand the credential to the guest.
    pub fn redact_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        self.values
            .values()
            .fold(bytes, |b, v| replace_all(b, v.expose().as_bytes()))
    }
}

/// `bytes` with every occurrence of `needle` (4 bytes or longer) replaced by `[REDACTED]`.
pub fn replace_all(bytes: Vec<u8>, needle: &[u8]) -> Vec<u8> {
    if needle.len() < 4 || !contains(&bytes, needle) {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(needle) {
            out.extend_from_slice(REDACTED.as_bytes());
            i += needle.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_redact_hide_the_value() {
        let mut s = Secrets::default();
        s.insert("token", SecretValue::new("hunter2-secret"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            s.redact("Bearer hunter2-secret was refused"),
            "Bearer [REDACTED] was refused"
        );
        assert_eq!(
            s.redact_bytes(b"{\"auth\":\"Bearer hunter2-secret\"}".to_vec()),
            b"{\"auth\":\"Bearer [REDACTED]\"}".to_vec()
        );
    }
}
