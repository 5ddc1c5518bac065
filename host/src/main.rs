use std::process::ExitCode;

fn main() -> ExitCode {
    // SAFETY: the first thing the process does; no other thread exists yet.
    unsafe { corral::malloc::bound_arenas() };
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
