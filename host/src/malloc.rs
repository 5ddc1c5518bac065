//! glibc malloc tuning: how many arenas the process keeps, and handing freed memory back.

/// glibc's malloc arenas, at most (`MALLOC_ARENA_MAX` in the environment wins). Its
/// default, eight per core, lets each of the runtime's threads keep its own arena of freed
/// memory: a SentinelOne run of 48,000 agents peaked at 98 MiB with the default, 87 MiB
/// with two, 81 MiB with one, at the same CPU (docs/benchmarks.md). Two keep the
/// runtime's two workers from contending for one.
///
/// # Safety
/// Call before any other thread exists (glibc's parameters are not set under a lock).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub unsafe fn bound_arenas() {
    const ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; the caller runs before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// Returns the pages of freed memory the arenas keep to the system. A run's collection
/// frees its key index and the guest's buffers from a runtime thread's arena; glibc keeps
/// those pages (they are not at the top of the heap), so delivery's own memory came on
/// top of them at the run's peak (docs/benchmarks.md). Costs a walk of the arenas' free
/// lists: call once between phases, not per object.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_freed() {
    // SAFETY: malloc_trim takes each arena's lock itself; safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// # Safety
/// None needed here; unsafe to match the glibc version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub unsafe fn bound_arenas() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() {}
