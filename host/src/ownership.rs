//! Whether a path on disk is this process's own: what it may trust to hold only what it
//! wrote itself (the compiled-component cache, a run's spare output tree).

use std::os::unix::fs::MetadataExt;

/// This process's user (the owner of `/proc/self`).
pub fn user() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Owned by `user` and writable by no one else.
pub fn private(meta: &std::fs::Metadata, user: u32) -> bool {
    meta.uid() == user && meta.mode() & 0o022 == 0
}
