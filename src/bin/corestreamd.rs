//! corestreamd: the broker daemon.
//!
//! Exit status: 0 after a clean stop, 1 when start-up failed, 2 for a bad
//! flag or config value, 3 when a stop overran `shutdown_timeout_ms`, 78
//! when the data dir belongs to another node id or cluster.

use clap::Parser;
use corestream::config::{Config, Flags};
use corestream::ops::logging::LogControl;

/// Keeps a hostile array length in a request from aborting the broker: see
/// `corestream::alloc`.
#[global_allocator]
static ALLOCATOR: corestream::alloc::BrokerAllocator = corestream::alloc::BrokerAllocator;

/// Exit status for a flag or config value that was refused.
const EXIT_BAD_CONFIG: i32 = 2;
/// Exit status for a broker that could not start.
const EXIT_START_FAILED: i32 = 1;

fn main() {
    // Before any thread exists: see `corestream::malloc_tune`.
    let malloc_refused = corestream::malloc_tune::tune();
    // A shard that panics must take the process with it: see
    // `corestream::ops::fatal`.
    corestream::ops::fatal::abort_on_panic();
    let flags = Flags::parse();
    let config = match Config::resolve(flags.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corestreamd: {e}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    };
    let log = LogControl::init(&config.ops.log_level);
    if !malloc_refused.is_empty() {
        tracing::warn!(settings = ?malloc_refused, "malloc settings refused: large buffers may be unmapped and faulted in again");
    }
    corestream::storage::fault::arm(config.fault_abort_at);
    if let Err(e) = corestream::shard::run_supervised(config, Some(flags), Some(log)) {
        tracing::error!("{e}");
        eprintln!("corestreamd: {e}");
        let status = match e {
            corestream::shard::StartError::Identity(_) => {
                corestream::cluster::identity::EXIT_IDENTITY_MISMATCH
            }
            _ => EXIT_START_FAILED,
        };
        std::process::exit(status);
    }
}
