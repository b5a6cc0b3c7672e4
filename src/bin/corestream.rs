//! corestream: the admin CLI. It will speak the Kafka protocol (topics,
//! configs, groups, lag, produce, consume, bench); for now it only describes
//! itself.

use clap::Parser;

/// corestream admin CLI (work in progress: the operations issue grows it).
#[derive(Parser, Debug)]
#[command(
    name = "corestream",
    version,
    about = "Admin CLI for corestream and any Kafka cluster"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("corestream: no subcommands yet; see --help");
}
