//! corestream: the admin CLI (see `corestream::cli` for commands and exit
//! statuses). It speaks the Kafka protocol, so it works against any Kafka
//! cluster too.

use clap::Parser;

fn main() {
    // The load generator churns large buffers like the broker does; a
    // refusal only costs speed, so it is not reported here.
    corestream::malloc_tune::tune();
    let cli = corestream::cli::Cli::parse();
    std::process::exit(corestream::cli::run(cli));
}
