//! corestreamd: the broker daemon.

use clap::Parser;
use corestream::config::{Config, Flags};

/// Keeps a hostile array length in a request from aborting the broker: see
/// `corestream::alloc`.
#[global_allocator]
static ALLOCATOR: corestream::alloc::BrokerAllocator = corestream::alloc::BrokerAllocator;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Config::resolve(Flags::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corestreamd: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = corestream::shard::run(config) {
        eprintln!("corestreamd: {e}");
        std::process::exit(1);
    }
}
