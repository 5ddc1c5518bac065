//! Reaching the network on a guest's or the operator's behalf: which addresses are
//! restricted and the resolver that checks every name against them (`address`), used by
//! plugin egress, alert webhooks and the JupiterOne client alike.

pub mod address;

/// The first error of type `T` in `e`'s chain of sources (say, a refused address deep
/// inside a client's connect error).
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

/// An error and its sources, one line: `a: b: c`.
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
