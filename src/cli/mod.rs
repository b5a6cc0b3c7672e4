//! The `corestream` admin CLI: one tool instead of kafka-topics,
//! kafka-consumer-groups, kafka-console-producer/-consumer and
//! kafka-broker-api-versions.
//!
//! Commands: `cluster info`, `topics`, `configs`, `groups`, `users`,
//! `acls`, `quotas`, `records`,
//! `lag`, `produce`, `consume`, `api-versions`, `bench` (see
//! `corestream --help` and docs/CLI.md). The singular forms of the issue
//! (`topic`, `config get|set|delete`, `group`, `record`) are aliases.
//!
//! It speaks only the Kafka protocol ([`client`]), so it works against
//! corestream and against any Kafka cluster. Each command family has its
//! own module; output is a human-readable table by default and JSON with
//! `--json` ([`output`]).
//!
//! Exit status (docs/CLI.md): 0 success; 1 the cluster answered with an
//! error (or a protocol failure); 2 bad usage (clap's own code); 3 no
//! broker reachable.

pub mod acls;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod configs;
pub mod consume;
pub mod group_consume;
pub mod groups;
pub mod member;
pub mod output;
pub mod produce;
pub mod quotas;
pub mod records;
pub mod reset;
pub mod topics;
pub mod users;

use clap::{Parser, Subcommand};

use client::{ClientError, Cluster};

/// Exit status: the cluster answered with an error.
pub const EXIT_FAILED: i32 = 1;
/// Exit status: bad usage.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: no broker could be reached.
pub const EXIT_UNREACHABLE: i32 = 3;

/// Admin CLI for corestream and any Kafka cluster.
#[derive(Parser, Debug)]
#[command(
    name = "corestream",
    version,
    about = "Admin CLI for corestream and any Kafka cluster"
)]
pub struct Cli {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(
        short = 'b',
        long,
        visible_alias = "bootstrap",
        global = true,
        env = "CORESTREAM_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Cluster id, controller, brokers and their API versions.
    #[command(subcommand, name = "cluster")]
    ClusterInfo(cluster::ClusterCommand),
    /// Topics: list, create, describe, alter-partitions, delete.
    #[command(subcommand, visible_alias = "topic")]
    Topics(topics::TopicsCommand),
    /// Topic and broker configs: get (describe), set, delete, alter (kafka-configs).
    #[command(subcommand, visible_alias = "config")]
    Configs(configs::ConfigsCommand),
    /// Consumer groups: list, describe, lag, reset-offsets, delete.
    #[command(subcommand, visible_alias = "group")]
    Groups(groups::GroupsCommand),
    /// SASL/SCRAM users: list, set, delete (kafka-configs --entity-type users).
    #[command(subcommand, visible_alias = "user")]
    Users(users::UsersCommand),
    /// Kafka ACLs: list, add, remove (kafka-acls.sh's options).
    #[command(subcommand, visible_alias = "acl")]
    Acls(acls::AclsCommand),
    /// Client quotas: list, set, delete (kafka-configs --entity-type users/clients).
    #[command(subcommand, visible_alias = "quota")]
    Quotas(quotas::QuotasCommand),
    /// Records: delete before an offset (kafka-delete-records).
    #[command(subcommand, visible_alias = "record")]
    Records(records::RecordsCommand),
    /// Consumer lag of one group (same as `groups lag`).
    Lag(groups::LagArgs),
    /// Produce stdin lines to a topic.
    Produce(produce::ProduceArgs),
    /// Print a topic's records to stdout.
    Consume(consume::ConsumeArgs),
    /// Brokers and the API versions each serves.
    #[command(visible_alias = "cluster-info")]
    ApiVersions,
    /// Load generator: bench produce|consume|e2e [FLAGS] (`bench produce --help`).
    #[command(disable_help_flag = true)]
    Bench {
        /// The mode and its flags, parsed by `bench` itself (see
        /// `cli::bench`: its `--json FILE` differs from the global `--json`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        words: Vec<String>,
    },
}

/// Runs the CLI; returns the exit status.
pub fn run(cli: Cli) -> i32 {
    if let Command::Bench { words } = &cli.command {
        return bench::main(&cli.brokers, cli.json, words);
    }
    let mut cluster = match Cluster::connect(&cli.brokers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corestream: {e}");
            return EXIT_UNREACHABLE;
        }
    };
    let out = output::Output { json: cli.json };
    let result = match cli.command {
        Command::ClusterInfo(cmd) => cluster::run(&mut cluster, &out, cmd),
        Command::Topics(cmd) => topics::run(&mut cluster, &out, cmd),
        Command::Configs(cmd) => configs::run(&mut cluster, &out, cmd),
        Command::Groups(cmd) => groups::run(&mut cluster, &out, cmd),
        Command::Records(cmd) => records::run(&mut cluster, &out, cmd),
        Command::Users(cmd) => users::run(&mut cluster, &out, cmd),
        Command::Acls(cmd) => acls::run(&mut cluster, &out, cmd),
        Command::Quotas(cmd) => quotas::run(&mut cluster, &out, cmd),
        Command::Lag(args) => groups::lag(&mut cluster, &out, &args),
        Command::Produce(args) => produce::run(&mut cluster, &args),
        Command::Consume(args) => consume::run(&mut cluster, &out, &args),
        Command::ApiVersions => topics::api_versions(&mut cluster, &out),
        // Handled above, before connecting; kept for a total match.
        Command::Bench { words } => return bench::main(&cli.brokers, cli.json, &words),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("corestream: {e}");
            match e {
                ClientError::Connect { .. } => EXIT_UNREACHABLE,
                ClientError::Usage(_) => EXIT_USAGE,
                _ => EXIT_FAILED,
            }
        }
    }
}
