//! Attacks on the `http` import beyond the basic ones in `lib.rs`: each returns the
//! host's answer as text, or `None` when the name is not one of these attacks.

use corral_sdk::bindings::corral::integration::http as wit_http;
use corral_sdk::error::describe_http_error;
use corral_sdk::http::{self, RequestExt};

pub fn attack(name: &str, base: &str, target: &str) -> Option<String> {
    let outcome = match name {
        // A header that frames the request (`target` is `Name: value`).
        "frame-header" => {
            let (header, value) = target.split_once(':').unwrap_or((target, ""));
            let req = http::get(format!("{base}api/framed"))
                .bearer("token")
                .header(header.trim(), value.trim());
            super::fetch_text(req)
        }
        // A GET announcing a body it does not send, then an allowed request that would
        // travel as that body on a kept-alive connection: the origin would read a second
        // request the policy never checked, with the credential.
        "smuggle" => {
            let smuggler = http::get(format!("{base}public")).header("Content-Length", "33");
            let carrier = http::get(format!("{base}api/items")).bearer("token");
            format!(
                "{}; {}",
                super::fetch_text(smuggler),
                super::fetch_text(carrier)
            )
        }
        // Any method, `target` (the manifest grants only GET).
        "method-any" => {
            let mut req = http::get(format!("{base}api/items"));
            req.method = target.into();
            super::fetch_text(req)
        }
        // A provider redirecting with the credential in the URL (`target` is the query
        // of the simulator's `/api/redirect-echo`): what URL does the guest get back?
        "redirect-echo" => {
            let req = http::get(format!("{base}api/redirect-echo?{target}")).bearer("token");
            match wit_http::fetch(&req) {
                Ok(r) => format!("status {} url {}", r.status, r.url),
                Err(e) => describe_http_error(&e),
            }
        }
        "redirect-echo-stream" => {
            let req = http::get(format!("{base}api/redirect-echo?{target}")).bearer("token");
            match wit_http::fetch_streaming(&req) {
                Ok((head, _body)) => format!("status {} url {}", head.status, head.url),
                Err(e) => describe_http_error(&e),
            }
        }
        // A provider echoing the credential encoded (`target` is the form) in the body
        // and a header.
        "echo-encoded" => {
            let req = http::get(format!("{base}api/echo-encoded?form={target}")).bearer("token");
            match wit_http::fetch(&req) {
                Ok(r) => {
                    let header = r.headers.iter().find(|(k, _)| k == "x-echo");
                    format!(
                        "{} | {}",
                        String::from_utf8_lossy(&r.body),
                        header.map_or("", |(_, v)| v.as_str())
                    )
                }
                Err(e) => describe_http_error(&e),
            }
        }
        // A guess at the secret in the guest's own URL (`target`, `...guess=VALUE`): does
        // the answer tell the guest that its guess is the secret? (The step error itself
        // is scrubbed by the host, so the guest reports what it saw.)
        "redaction-oracle" => {
            let guess = target.rsplit_once("guess=").map_or("", |(_, g)| g);
            let answer = super::fetch_text(http::get(target));
            format!(
                "guess echoed verbatim: {}, [REDACTED] seen: {}",
                answer.contains(guess),
                answer.contains("[REDACTED]")
            )
        }
        // One batch of `count` responses of `size` bytes each (`target` is
        // `count:size`): how many came back, and the distinct errors.
        "in-flight-batch" => {
            let (count, size) = target.split_once(':').unwrap_or(("0", "0"));
            let count: usize = count.parse().unwrap_or(0);
            let reqs: Vec<http::Request> = (0..count)
                .map(|i| http::get(format!("{base}bytes?n={size}&i={i}")))
                .collect();
            let results = wit_http::fetch_batch(&reqs);
            let ok = results.iter().filter(|r| r.is_ok()).count();
            let mut errors: Vec<String> = results
                .iter()
                .filter_map(|r| r.as_ref().err().map(describe_http_error))
                .collect();
            errors.dedup();
            format!("{ok} ok, {} failed: {}", count - ok, errors.join(" / "))
        }
        _ => return None,
    };
    Some(outcome)
}
