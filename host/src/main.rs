use std::process::ExitCode;

/// glibc's malloc arenas, at most (`MALLOC_ARENA_MAX` in the environment wins). Its
/// default, eight per core, lets each of the runtime's threads keep its own arena of freed
/// memory: a SentinelOne run of 48,000 agents peaked at 98 MiB with the default, 87 MiB
/// with two, 81 MiB with one, at the same CPU (docs/benchmarks.md). Two keep the
/// runtime's two workers from contending for one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    const ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; called before any other thread
        // exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}

fn main() -> ExitCode {
    bound_malloc_arenas();
    // A service (or a cluster worker) reports swaps, refusals and runs; one-shot verbs
    // print only errors.
    let serving = matches!(std::env::args().nth(1).as_deref(), Some("serve" | "worker"));
    let default = if serving {
        "warn,corral::serve=info,corral::cluster=info"
    } else {
        "error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(corral::stderr_log::OneLinePerRecord)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    corral::cli::main()
}
