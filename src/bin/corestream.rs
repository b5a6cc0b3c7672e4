//! corestream: the admin CLI (see `corestream::cli` for commands and exit
//! statuses). It speaks the Kafka protocol, so it works against any Kafka
//! cluster too.

use clap::Parser;

fn main() {
    let cli = corestream::cli::Cli::parse();
    std::process::exit(corestream::cli::run(cli));
}
