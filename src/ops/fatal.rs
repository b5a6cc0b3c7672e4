//! A panic anywhere in the daemon aborts the whole process.
//!
//! # Why
//!
//! Each shard is a thread running a glommio executor. Without this hook a
//! panic (a bug; bad input never panics by design) unwinds and ends only
//! that thread: the process stays up with its partitions' owner gone.
//! Requests routed to the dead shard wait forever, a panic during start-up
//! leaves a process that never reports ready, and systemd sees a running
//! service until the watchdog (if configured) notices. Redpanda treats a
//! failed assertion the same way: it aborts.
//!
//! Aborting leaves the files exactly as a `kill -9` would. Recovery at the
//! next start is the path every crash test already proves (acknowledged
//! data is on disk), and the unit's `Restart=on-failure` starts it.
//!
//! # What
//!
//! [`abort_on_panic`] keeps the default hook (message, location, and a
//! backtrace as `RUST_BACKTRACE` asks), then logs one error line and calls
//! [`std::process::abort`] (SIGABRT, so a core dump is possible where the
//! system keeps them). Only `corestreamd` installs it: the library's tests
//! and the admin CLI keep ordinary unwinding.

/// Installs the hook for the whole process; call once, first in `main`.
pub fn abort_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        // stderr is unbuffered and the default hook has already written the
        // message there; the tracing line is for journald's structured view.
        tracing::error!(
            thread = name,
            "panic on thread {name}: aborting the process (acknowledged data is on disk; \
             the next start recovers the rest)"
        );
        eprintln!("corestreamd: panic on thread {name}: aborting");
        std::process::abort();
    }));
}
