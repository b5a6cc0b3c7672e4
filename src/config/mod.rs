//! Broker settings: embedded defaults, overridden by a TOML file
//! (`--config`), overridden by flags and `CORESTREAM_*` environment variables.
//!
//! Every setting has a default so `corestreamd` with no arguments runs a
//! single-node broker on 127.0.0.1:9092 with its data in `./data`. A bad value
//! stops start-up with one line that names the setting (and the file, for TOML
//! errors); nothing is silently ignored, so the TOML file refuses unknown keys.
//!
//! Pieces: `flags` (the command line and environment), `file` (the TOML
//! file and locating a bad value in it), `table` (one row per numeric or
//! boolean setting and the one resolver that applies flag over file over
//! default and the row's range), `broker` (the broker's rows), `ops` and
//! `connection_limits` (settings groups with their own rules). Each group
//! resolves itself; [`Config::resolve`] assembles the groups into the
//! resolved [`Config`] and adds the file and line to an error whose value
//! came from the file.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Default Kafka listener (Kafka's own default port).
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9092";
/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "./data";
/// Kafka's `num.partitions` default.
pub const DEFAULT_PARTITIONS_DEFAULT: i32 = 1;
/// Kafka's `log.segment.bytes` default (1 GiB) and the largest segment
/// (Kafka's `segment.bytes` is an int: i32::MAX bytes), the same bound as
/// the topic config and the storage layer.
pub use crate::storage::{SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX};
/// Smallest broker-wide segment we accept, in bytes: one index interval
/// plus a header page (a topic may go lower, see `metadata::topic_config`).
pub const SEGMENT_BYTES_MIN: u64 = 64 * 1024;
/// Kafka's `socket.request.max.bytes` default: 100 MiB.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// Smallest `request-bytes-max` accepted, in bytes.
pub const REQUEST_BYTES_MAX_MIN: usize = 1024;
/// Kafka's `broker.id`/`node.id` default here (a single node).
pub const NODE_ID_DEFAULT: i32 = 0;
/// Kafka's `auto.create.topics.enable` default.
pub const AUTO_CREATE_TOPICS_DEFAULT: bool = true;
/// Milliseconds in a minute (`offsets.retention.minutes` to ms).
const MS_PER_MINUTE: u64 = 60_000;
/// Upper bound on shards: one per core, and we do not expect more cores.
pub const SHARDS_MAX: usize = 1024;
/// Partitions one CreateTopics/CreatePartitions may ask for in one topic.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;
/// Default cap on open client connections of the whole broker (Kafka's
/// `max.connections` is unbounded; every connection costs a read buffer).
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Default cap on open connections from one client IP address (Kafka's
/// `max.connections.per.ip`).
pub const CONNECTIONS_PER_IP_MAX_DEFAULT: usize = 1_000;
/// Kafka's `connections.max.idle.ms` default: 10 minutes without a request.
pub const CONNECTIONS_MAX_IDLE_MS_DEFAULT: u64 = 10 * 60 * 1000;
/// Time a started request frame has to arrive completely (slowloris guard),
/// in ms; Kafka's `request.timeout.ms` default.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Default request bytes one connection may hold in flight (being read or
/// handled); a single request up to `request_bytes_max` is always admitted
/// when the connection has nothing else in flight.
pub const CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default request bytes one shard may hold in flight over all its
/// connections; a single request is always admitted on an idle shard.
pub const SHARD_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// Smallest accepted timeout for the two connection timers, in ms.
pub const CONNECTION_TIMEOUT_MS_MIN: u64 = 100;

const _: () = assert!(CONNECTIONS_PER_IP_MAX_DEFAULT <= CONNECTIONS_MAX_DEFAULT);
const _: () = assert!(REQUEST_TIMEOUT_MS_DEFAULT <= CONNECTIONS_MAX_IDLE_MS_DEFAULT);
const _: () = assert!(
    CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT <= SHARD_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT
);
/// Kafka's `offsets.topic.num.partitions` default.
pub const OFFSETS_TOPIC_PARTITIONS_DEFAULT: i32 = 50;
/// Kafka's offsets.retention.minutes default (7 days).
pub const OFFSETS_RETENTION_MINUTES_DEFAULT: u64 = 10_080;
/// Kafka's offsets.retention.check.interval.ms default (10 minutes).
pub const OFFSETS_RETENTION_CHECK_MS_DEFAULT: u64 = 600_000;
/// Default admin HTTP listener (/metrics, health); Redpanda's admin port.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:9644";
/// `admin_listen` value that turns the admin HTTP listener off.
pub const ADMIN_LISTEN_OFF: &str = "off";
/// Default log level (an `EnvFilter` directive).
pub const LOG_LEVEL_DEFAULT: &str = "info";
/// Default bound on a graceful stop, in ms: after it the process exits
/// anyway (systemd's TimeoutStopSec in the unit is longer).
pub const SHUTDOWN_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Smallest accepted `shutdown_timeout_ms`.
pub const SHUTDOWN_TIMEOUT_MS_MIN: u64 = 1_000;

mod broker;
mod cluster;
mod connection_limits;
mod file;
mod flags;
mod inter_broker;
mod ops;
mod security;
mod table;
#[cfg(test)]
mod tests;

use broker::BrokerSettings;
pub use broker::GROUP_CONSUMER_TIMEOUT_MS_MAX;
pub use cluster::{
    ClusterConfig, Voter, AUTO_LEADER_REBALANCE_ENABLE_DEFAULT, BROKER_SESSION_TIMEOUT_MS_DEFAULT,
    BROKER_SESSION_TIMEOUT_MS_MIN, CONTROLLER_VOTERS_MAX, DEFAULT_REPLICATION_FACTOR_DEFAULT,
    LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT, LEADER_IMBALANCE_CHECK_INTERVAL_S_MIN,
    LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT, LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_MAX,
    REPLICA_LAG_TIME_MAX_MS_DEFAULT, REPLICA_LAG_TIME_MAX_MS_MIN,
};
pub use connection_limits::ConnectionLimits;
use file::{locate_error, read_file, FileConfig};

use crate::protocol::frame::FRAME_BYTES_MAX;

use crate::fetch::tail_cache::{TAIL_CACHE_SHARD_BYTES_DEFAULT, TAIL_CACHE_SHARD_BYTES_MAX};
pub use flags::Flags;
pub use ops::OpsConfig;
pub use security::{AdminToken, SecurityConfig, INITIAL_USER_PASSWORD_ENV};

/// A setting that could not be accepted; the message names it.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key or bad type.
    #[error("config file {}:{line}: key {key}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the mistake (0 if toml gave no position).
        line: usize,
        /// The key on that line ("?" if none).
        key: String,
        /// toml's message.
        message: String,
    },
    /// A value from the config file is out of range or malformed.
    #[error("config file {}:{line}: key {key}: {message}", path.display())]
    InvalidInFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written in the file.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid value for {key}: {message}")]
    Invalid {
        /// The setting's name.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The resolved, validated broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka listener address.
    pub listen: SocketAddr,
    /// Host advertised to clients.
    pub advertised_host: String,
    /// Port advertised to clients.
    pub advertised_port: i32,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Shard count.
    pub shards: usize,
    /// spin_before_park per shard, in µs (0: none).
    pub shard_spin_us: u64,
    /// Node id.
    pub node_id: i32,
    /// auto.create.topics.enable
    pub auto_create_topics: bool,
    /// num.partitions
    pub default_partitions: i32,
    /// log.segment.bytes
    pub segment_bytes: u64,
    /// socket.request.max.bytes
    pub request_bytes_max: usize,
    /// Byte budget of each shard's hot tail cache (0: off).
    pub tail_cache_bytes: usize,
    /// offsets.topic.num.partitions
    pub offsets_topic_partitions: i32,
    /// offsets.retention.minutes (or the ms override), in ms.
    pub offsets_retention_ms: u64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_ms: u64,
    /// Transaction coordinator settings.
    pub txn: TxnConfig,
    /// Test-only fault injection: drop every Nth Produce response (0 = off).
    pub fault_drop_produce_response_every: u64,
    /// Test-only fault injection: abort at a storage step (flag/env only).
    pub fault_abort_at: Option<crate::storage::fault::AbortAt>,
    /// group.initial.rebalance.delay.ms
    pub group_initial_rebalance_delay_ms: u64,
    /// group.consumer.session.timeout.ms
    pub group_consumer_session_timeout_ms: u64,
    /// group.consumer.heartbeat.interval.ms
    pub group_consumer_heartbeat_interval_ms: u64,
    /// Connection and request-memory limits.
    pub limits: ConnectionLimits,
    /// Operations settings: admin listener, log level, stop bound.
    pub ops: OpsConfig,
    /// The controller quorum; empty on a single node.
    pub cluster: ClusterConfig,
    /// Listeners, TLS, the initial SASL user.
    pub security: SecurityConfig,
    /// What this broker presents to its peers (`security::inter_broker`).
    pub inter_broker: crate::security::inter_broker::InterBrokerConfig,
    /// The TOML file this came from (SIGHUP re-reads it).
    pub config_file: Option<PathBuf>,
    /// Broker-level topic defaults (`log.retention.ms`...) and the log
    /// housekeeping settings.
    pub log_defaults: crate::metadata::LogDefaults,
}

impl Config {
    /// Resolves flags over the optional TOML file over embedded defaults.
    /// A bad value that came from the file is reported with the file, line
    /// and key (see [`locate_error`]).
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file = flags.config.clone();
        let given = flags.given_keys();
        Config::resolve_unlocated(flags).map_err(|e| locate_error(e, file.as_deref(), &given))
    }

    /// Each group resolves its own settings (flags over file over
    /// defaults, validated); this assembles them.
    fn resolve_unlocated(flags: Flags) -> Result<Config, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let b = BrokerSettings::resolve(&flags, &file)?;
        b.check_relations()?;
        let limits = ConnectionLimits::resolve(&flags, &file)?;
        let ops = OpsConfig::resolve(&flags, &file)?;
        let cluster = ClusterConfig::resolve(&flags, &file, b.node_id)?;
        let security = SecurityConfig::resolve(&flags, &file)?;
        let fault_abort_at = fault_point(&flags)?;
        let (listen, advertised_host, advertised_port) = resolve_addresses(&flags, &file)?;
        let listeners = security.listeners_or(listen, &advertised_host, advertised_port);
        let inter_broker = inter_broker::resolve(
            inter_broker::InterBrokerInput::gather(&flags, &file),
            &listeners,
            !cluster.voters.is_empty(),
        )?;
        check_tail_cache_reserve(b.tail_cache_bytes, b.shards, physical_memory_bytes())?;
        let offsets_retention_ms = flags
            .offsets_retention_ms
            .or(file.offsets_retention_ms)
            .unwrap_or_else(|| b.offsets_retention_minutes.saturating_mul(MS_PER_MINUTE));
        let unclean = flags
            .unclean_leader_election_enable
            .or(file.unclean_leader_election_enable);
        let log_defaults = resolve_log_defaults(&file, flags.segment_bytes, unclean)?;
        Ok(Config {
            log_defaults,
            limits,
            ops,
            cluster,
            security,
            inter_broker,
            config_file: flags.config.clone(),
            listen,
            advertised_host,
            advertised_port,
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            shards: b.shards,
            shard_spin_us: b.shard_spin_us,
            node_id: b.node_id,
            auto_create_topics: b.auto_create_topics,
            default_partitions: b.default_partitions,
            segment_bytes: b.segment_bytes,
            request_bytes_max: b.request_bytes_max,
            tail_cache_bytes: b.tail_cache_bytes,
            offsets_topic_partitions: b.offsets_topic_partitions,
            offsets_retention_ms,
            offsets_retention_check_ms: b.offsets_retention_check_ms,
            txn: b.txn(),
            fault_drop_produce_response_every: b.fault_drop_produce_response_every,
            fault_abort_at,
            group_initial_rebalance_delay_ms: b.group_initial_rebalance_delay_ms,
            group_consumer_session_timeout_ms: b.group_consumer_session_timeout_ms,
            group_consumer_heartbeat_interval_ms: b.group_consumer_heartbeat_interval_ms,
        })
    }
}

/// `listen` and `advertised-addr` (default: the listen address).
fn resolve_addresses(
    flags: &Flags,
    file: &FileConfig,
) -> Result<(SocketAddr, String, i32), ConfigError> {
    let listen_text = flags
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| LISTEN_DEFAULT.to_string());
    let listen = parse_addr("listen", &listen_text)?;
    let advertised_text = flags
        .advertised_addr
        .clone()
        .or_else(|| file.advertised_addr.clone())
        .unwrap_or(listen_text);
    let (host, port) = split_host_port("advertised-addr", &advertised_text)?;
    Ok((listen, host, port))
}

/// Transaction coordinator settings (Kafka's `transaction.*` broker keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// transaction.state.log.num.partitions
    pub state_partitions: i32,
    /// transaction.max.timeout.ms
    pub max_timeout_ms: i32,
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms
    pub abort_check_ms: u64,
    /// transactional.id.expiration.ms
    pub id_expiration_ms: u64,
}

/// Default spin before a shard parks, in µs (measured: docs/BENCHMARKS_HISTORY.md).
pub const SHARD_SPIN_US_DEFAULT: u64 = 0;
/// Longest spin before park a shard may be given, in µs.
pub const SHARD_SPIN_US_MAX: u64 = 10_000;

/// Kafka's default for transaction.state.log.num.partitions.
pub const TRANSACTION_STATE_PARTITIONS_DEFAULT: i32 = 50;
/// Kafka's default for transaction.max.timeout.ms (15 min).
pub const TRANSACTION_MAX_TIMEOUT_MS_DEFAULT: i32 = 900_000;
/// Kafka's default for the timed-out transaction check (10 s).
pub const TRANSACTION_ABORT_CHECK_MS_DEFAULT: u64 = 10_000;
/// Kafka's default for transactional.id.expiration.ms (7 days).
pub const TRANSACTIONAL_ID_EXPIRATION_MS_DEFAULT: u64 = 7 * 24 * 3_600_000;

/// Kafka's broker log settings from the file's `log.*`, `message.*` and
/// `compression.*` keys; `segment_bytes` (file) and `--segment-bytes` stand
/// for `log.segment.bytes`, the flag winning; `unclean` (flag over file) for
/// `unclean.leader.election.enable`.
fn resolve_log_defaults(
    file: &FileConfig,
    segment_bytes_flag: Option<u64>,
    unclean: Option<bool>,
) -> Result<crate::metadata::LogDefaults, ConfigError> {
    use crate::metadata::topic_config::toml_pairs;
    let tables = [
        ("log", &file.log),
        ("message", &file.message),
        ("compression", &file.compression),
    ];
    let segment = |b: u64| ("log.segment.bytes".to_string(), b.to_string());
    let mut pairs: Vec<(String, String)> = file.segment_bytes.map(segment).into_iter().collect();
    for (prefix, table) in tables {
        pairs.extend(table.iter().flat_map(|t| toml_pairs(prefix, t)));
    }
    pairs.extend(segment_bytes_flag.map(segment));
    let unclean_pair = |on: bool| ("unclean.leader.election.enable".to_string(), on.to_string());
    pairs.extend(unclean.map(unclean_pair));
    crate::metadata::LogDefaults::from_pairs(pairs).map_err(|e| invalid("log", e.message))
}

/// Share of the machine's RAM the tail caches' reserve may take, as a
/// fraction (3/4): it is resident from the start (`fetch::cache_arena`),
/// and the broker, its page cache and the rest of the machine need the
/// remainder.
const TAIL_CACHE_RESERVE_RAM_SHARE: (usize, usize) = (3, 4);

/// Refuses a tail-cache budget whose reserve over all `shards` would take
/// more than [`TAIL_CACHE_RESERVE_RAM_SHARE`] of `ram_bytes` (0: unknown,
/// not checked): touching it at start would end in the OOM killer.
fn check_tail_cache_reserve(
    tail_cache_bytes: usize,
    shards: usize,
    ram_bytes: usize,
) -> Result<(), ConfigError> {
    let reserve =
        crate::fetch::cache_arena::reserve_bytes_for(tail_cache_bytes).saturating_mul(shards);
    let (num, den) = TAIL_CACHE_RESERVE_RAM_SHARE;
    if ram_bytes > 0 && reserve > ram_bytes / den * num {
        return Err(invalid(
            "tail-cache-bytes",
            format!(
                "{tail_cache_bytes} per shard reserves {} MiB over {shards} shards at start, \
                 more than {num}/{den} of this machine's {} MiB of RAM",
                reserve >> 20,
                ram_bytes >> 20
            ),
        ));
    }
    Ok(())
}

/// Physical memory of the machine in bytes (0 if unknown).
fn physical_memory_bytes() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || page <= 0 {
        return 0;
    }
    (pages as usize).saturating_mul(page as usize)
}

/// The test-only fault point of `--fault-abort-at` or `--fault-panic-at`
/// (at most one of them).
fn fault_point(flags: &Flags) -> Result<Option<crate::storage::fault::AbortAt>, ConfigError> {
    use crate::storage::fault::{AbortAt, Action};
    match (&flags.fault_abort_at, &flags.fault_panic_at) {
        (Some(_), Some(_)) => Err(invalid(
            "fault-panic-at",
            "cannot be combined with fault-abort-at".into(),
        )),
        (Some(text), None) => AbortAt::parse(text, Action::Abort)
            .map(Some)
            .map_err(|message| invalid("fault-abort-at", message)),
        (None, Some(text)) => AbortAt::parse(text, Action::Panic)
            .map(Some)
            .map_err(|message| invalid("fault-panic-at", message)),
        (None, None) => Ok(None),
    }
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map_err(|e| invalid(key, format!("{text:?}: {e}")))?
        .next()
        .ok_or_else(|| invalid(key, format!("{text:?} resolves to no address")))
}

fn split_host_port(key: &'static str, text: &str) -> Result<(String, i32), ConfigError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, format!("{text:?} is not HOST:PORT")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(key, format!("{text:?} has a bad port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid(key, format!("{text:?} has an empty host")));
    }
    Ok((host.to_string(), port as i32))
}

/// The cores this process may run on (its CPU affinity mask).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
