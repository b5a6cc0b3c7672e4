//! Broker settings: embedded defaults, overridden by a TOML file
//! (`--config`), overridden by flags and `CORESTREAM_*` environment variables.
//!
//! Every setting has a default so `corestreamd` with no arguments runs a
//! single-node broker on 127.0.0.1:9092 with its data in `./data`. A bad value
//! stops start-up with one line that names the setting (and the file, for TOML
//! errors); nothing is silently ignored, so the TOML file refuses unknown keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Default Kafka listener (Kafka's own default port).
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9092";
/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "./data";
/// Kafka's `num.partitions` default.
pub const DEFAULT_PARTITIONS_DEFAULT: i32 = 1;
/// Kafka's `log.segment.bytes` default: 1 GiB.
pub const SEGMENT_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Smallest segment we accept: one index interval plus a header page.
pub const SEGMENT_BYTES_MIN: u64 = 64 * 1024;
/// Kafka's `socket.request.max.bytes` default: 100 MiB.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
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

/// Command-line flags. Each one is optional so that the TOML file and the
/// embedded defaults can fill in what is not given.
#[derive(Parser, Debug, Default, Clone, serde::Serialize)]
#[command(
    name = "corestreamd",
    version,
    about = "corestream: a thread-per-core Kafka-compatible broker"
)]
pub struct Flags {
    /// TOML config file; its keys are the long flag names with '_' for '-'.
    #[arg(long, env = "CORESTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the Kafka listener binds, HOST:PORT.
    #[arg(long, env = "CORESTREAM_LISTEN")]
    pub listen: Option<String>,
    /// Address given to clients in Metadata, HOST:PORT (default: --listen).
    #[arg(long, env = "CORESTREAM_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,
    /// Directory holding partition logs and broker metadata.
    #[arg(long, env = "CORESTREAM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of shards (one per core; default: the cores this process may use).
    #[arg(long, env = "CORESTREAM_SHARDS")]
    pub shards: Option<usize>,
    /// How long an idle shard keeps polling before it parks its thread, in
    /// µs (glommio's spin_before_park): a message from another shard or a
    /// completion arriving within it is seen without a wake-up. 0 = park at
    /// once. Costs CPU while idle-but-busy; see docs/BENCHMARKS.md.
    #[arg(long, env = "CORESTREAM_SHARD_SPIN_US")]
    pub shard_spin_us: Option<u64>,
    /// This broker's node id.
    #[arg(long, env = "CORESTREAM_NODE_ID")]
    pub node_id: Option<i32>,
    /// Create unknown topics on Metadata/Produce (Kafka's auto.create.topics.enable).
    #[arg(long, env = "CORESTREAM_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic (Kafka's num.partitions).
    #[arg(long, env = "CORESTREAM_DEFAULT_PARTITIONS")]
    pub default_partitions: Option<i32>,
    /// Segment roll size in bytes (Kafka's log.segment.bytes).
    #[arg(long, env = "CORESTREAM_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// Largest request accepted, in bytes (Kafka's socket.request.max.bytes).
    #[arg(long, env = "CORESTREAM_REQUEST_BYTES_MAX")]
    pub request_bytes_max: Option<usize>,
    /// Partitions of __consumer_offsets when it is created (Kafka's
    /// offsets.topic.num.partitions); an existing topic keeps its count.
    #[arg(long, env = "CORESTREAM_OFFSETS_TOPIC_PARTITIONS")]
    pub offsets_topic_partitions: Option<i32>,
    /// Committed offsets of a group that stays Empty this long expire
    /// (Kafka's offsets.retention.minutes).
    #[arg(long, env = "CORESTREAM_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<u64>,
    /// Overrides offsets_retention_minutes in ms (for tests).
    #[arg(long, env = "CORESTREAM_OFFSETS_RETENTION_MS")]
    pub offsets_retention_ms: Option<u64>,
    /// How often expired offsets are looked for, in ms (Kafka's
    /// offsets.retention.check.interval.ms).
    #[arg(long, env = "CORESTREAM_OFFSETS_RETENTION_CHECK_MS")]
    pub offsets_retention_check_ms: Option<u64>,
    /// Partitions of __transaction_state when it is created (Kafka's
    /// transaction.state.log.num.partitions).
    #[arg(long, env = "CORESTREAM_TRANSACTION_STATE_PARTITIONS")]
    pub transaction_state_partitions: Option<i32>,
    /// Largest transaction.timeout.ms a producer may ask for (Kafka's
    /// transaction.max.timeout.ms).
    #[arg(long, env = "CORESTREAM_TRANSACTION_MAX_TIMEOUT_MS")]
    pub transaction_max_timeout_ms: Option<i32>,
    /// How often timed-out transactions are looked for and aborted, in ms
    /// (Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms).
    #[arg(long, env = "CORESTREAM_TRANSACTION_ABORT_CHECK_MS")]
    pub transaction_abort_check_ms: Option<u64>,
    /// How long a transactional id with no transaction open is kept after
    /// its last change, in ms (Kafka's transactional.id.expiration.ms).
    #[arg(long, env = "CORESTREAM_TRANSACTIONAL_ID_EXPIRATION_MS")]
    pub transactional_id_expiration_ms: Option<u64>,
    /// Fault injection for tests: close the connection instead of sending
    /// every Nth Produce response (after the records were appended), so
    /// clients retry batches the broker already has. 0 = off.
    #[arg(long, env = "CORESTREAM_FAULT_DROP_PRODUCE_RESPONSE_EVERY")]
    pub fault_drop_produce_response_every: Option<u64>,
    /// A KIP-848 consumer-group member without a heartbeat for this many ms
    /// is removed (Kafka's group.consumer.session.timeout.ms).
    #[arg(long, env = "CORESTREAM_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    pub group_consumer_session_timeout_ms: Option<u64>,
    /// Heartbeat interval handed to KIP-848 members, ms (Kafka's
    /// group.consumer.heartbeat.interval.ms).
    #[arg(long, env = "CORESTREAM_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    pub group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Open client connections allowed in total; more are closed on accept.
    #[arg(long, env = "CORESTREAM_CONNECTIONS_MAX")]
    pub connections_max: Option<usize>,
    /// Open client connections allowed per client IP address.
    #[arg(long, env = "CORESTREAM_CONNECTIONS_PER_IP_MAX")]
    pub connections_per_ip_max: Option<usize>,
    /// Close a connection idle this long, in ms (Kafka's connections.max.idle.ms).
    #[arg(long, env = "CORESTREAM_CONNECTIONS_MAX_IDLE_MS")]
    pub connections_max_idle_ms: Option<u64>,
    /// A started request must arrive completely within this many ms.
    #[arg(long, env = "CORESTREAM_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Request bytes one connection may hold in flight before it stops reading.
    #[arg(long, env = "CORESTREAM_CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX")]
    pub connection_request_bytes_in_flight_max: Option<usize>,
    /// Request bytes one shard may hold in flight before its connections stop reading.
    #[arg(long, env = "CORESTREAM_SHARD_REQUEST_BYTES_IN_FLIGHT_MAX")]
    pub shard_request_bytes_in_flight_max: Option<usize>,
    /// Admin HTTP listener (/metrics, /v1/health, /v1/ready), HOST:PORT or "off".
    #[arg(long, env = "CORESTREAM_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Log level, an EnvFilter directive ("info", "warn,corestream::group=debug");
    /// SIGHUP re-reads it from the config file. RUST_LOG overrides it at start.
    #[arg(long, env = "CORESTREAM_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// A graceful stop that takes longer than this many ms exits anyway.
    #[arg(long, env = "CORESTREAM_SHUTDOWN_TIMEOUT_MS")]
    pub shutdown_timeout_ms: Option<u64>,
    /// Commits the lag monitor keeps per group partition (Burrow's intervals).
    #[arg(long, env = "CORESTREAM_LAG_WINDOW_COMMITS")]
    pub lag_window_commits: Option<usize>,
    /// A partition with lag and no commit for this many ms (and longer than
    /// its window spans) is STOPPED.
    #[arg(long, env = "CORESTREAM_LAG_STOPPED_AFTER_MS")]
    pub lag_stopped_after_ms: Option<u64>,
}

/// The TOML file: the same keys as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    advertised_addr: Option<String>,
    data_dir: Option<PathBuf>,
    shards: Option<usize>,
    shard_spin_us: Option<u64>,
    node_id: Option<i32>,
    auto_create_topics: Option<bool>,
    default_partitions: Option<i32>,
    segment_bytes: Option<u64>,
    request_bytes_max: Option<usize>,
    offsets_topic_partitions: Option<i32>,
    offsets_retention_minutes: Option<u64>,
    offsets_retention_ms: Option<u64>,
    offsets_retention_check_ms: Option<u64>,
    transaction_state_partitions: Option<i32>,
    transaction_max_timeout_ms: Option<i32>,
    transaction_abort_check_ms: Option<u64>,
    transactional_id_expiration_ms: Option<u64>,
    fault_drop_produce_response_every: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    connections_max: Option<usize>,
    connections_per_ip_max: Option<usize>,
    connections_max_idle_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    connection_request_bytes_in_flight_max: Option<usize>,
    shard_request_bytes_in_flight_max: Option<usize>,
    admin_listen: Option<String>,
    log_level: Option<String>,
    shutdown_timeout_ms: Option<u64>,
    lag_window_commits: Option<usize>,
    lag_stopped_after_ms: Option<u64>,
    /// Kafka's broker log settings as in server.properties: TOML reads
    /// `log.retention.hours = 168` as a dotted key, so `log.*`, `message.*`
    /// and `compression.*` arrive as tables (see `metadata::topic_config`).
    log: Option<toml::Table>,
    message: Option<toml::Table>,
    compression: Option<toml::Table>,
}

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
    /// group.consumer.session.timeout.ms
    pub group_consumer_session_timeout_ms: u64,
    /// group.consumer.heartbeat.interval.ms
    pub group_consumer_heartbeat_interval_ms: u64,
    /// Connection and request-memory limits.
    pub limits: ConnectionLimits,
    /// Operations settings: admin listener, log level, stop bound.
    pub ops: OpsConfig,
    /// The TOML file this came from (SIGHUP re-reads it).
    pub config_file: Option<PathBuf>,
    /// Broker-level topic defaults (`log.retention.ms`...) and the log
    /// housekeeping settings.
    pub log_defaults: crate::metadata::LogDefaults,
}

/// Operations settings (see `src/ops/`). `log_level` is dynamic: SIGHUP
/// re-reads it; the others take effect at the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// Admin HTTP listener; `None` when turned off.
    pub admin_listen: Option<SocketAddr>,
    /// Log level directive.
    pub log_level: String,
    /// Bound on a graceful stop, in ms.
    pub shutdown_timeout_ms: u64,
    /// Consumer lag status rules (`lag_window_commits`, `lag_stopped_after_ms`).
    pub lag_rules: crate::group::lag::LagRules,
}

impl OpsConfig {
    /// Flags over file over defaults, validated.
    fn resolve(flags: &Flags, file: &FileConfig) -> Result<OpsConfig, ConfigError> {
        let admin_text = flags
            .admin_listen
            .clone()
            .or_else(|| file.admin_listen.clone())
            .unwrap_or_else(|| ADMIN_LISTEN_DEFAULT.to_string());
        let admin_listen = if admin_text == ADMIN_LISTEN_OFF {
            None
        } else {
            Some(parse_addr("admin-listen", &admin_text)?)
        };
        let log_level = flags
            .log_level
            .clone()
            .or_else(|| file.log_level.clone())
            .unwrap_or_else(|| LOG_LEVEL_DEFAULT.to_string());
        crate::ops::logging::parse_level(&log_level)
            .map_err(|e| invalid("log-level", e.to_string()))?;
        let shutdown_timeout_ms = flags
            .shutdown_timeout_ms
            .or(file.shutdown_timeout_ms)
            .unwrap_or(SHUTDOWN_TIMEOUT_MS_DEFAULT);
        if shutdown_timeout_ms < SHUTDOWN_TIMEOUT_MS_MIN {
            return Err(invalid(
                "shutdown-timeout-ms",
                format!("{shutdown_timeout_ms} is below {SHUTDOWN_TIMEOUT_MS_MIN}"),
            ));
        }
        Ok(OpsConfig {
            admin_listen,
            log_level,
            shutdown_timeout_ms,
            lag_rules: resolve_lag_rules(flags, file)?,
        })
    }
}

/// `lag_window_commits` and `lag_stopped_after_ms`, flags over file over
/// defaults, validated.
fn resolve_lag_rules(
    flags: &Flags,
    file: &FileConfig,
) -> Result<crate::group::lag::LagRules, ConfigError> {
    use crate::group::lag::{
        LagRules, LAG_STOPPED_AFTER_MS_DEFAULT, LAG_WINDOW_COMMITS_DEFAULT, LAG_WINDOW_COMMITS_MAX,
        LAG_WINDOW_COMMITS_MIN,
    };
    let window_commits = flags
        .lag_window_commits
        .or(file.lag_window_commits)
        .unwrap_or(LAG_WINDOW_COMMITS_DEFAULT);
    if !(LAG_WINDOW_COMMITS_MIN..=LAG_WINDOW_COMMITS_MAX).contains(&window_commits) {
        let range = format!("{LAG_WINDOW_COMMITS_MIN}..={LAG_WINDOW_COMMITS_MAX}");
        let message = format!("{window_commits} is not within {range}");
        return Err(invalid("lag-window-commits", message));
    }
    let stopped_after_ms = flags
        .lag_stopped_after_ms
        .or(file.lag_stopped_after_ms)
        .unwrap_or(LAG_STOPPED_AFTER_MS_DEFAULT);
    let stopped_after_ms = i64::try_from(stopped_after_ms).map_err(|_| {
        invalid(
            "lag-stopped-after-ms",
            format!("{stopped_after_ms} is too large"),
        )
    })?;
    Ok(LagRules {
        window_commits,
        stopped_after_ms,
    })
}

/// Limits that bound what clients can make the broker hold: connections,
/// time, and request bytes in flight. See `server/limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections, whole broker.
    pub connections_max: usize,
    /// Open connections per client IP address.
    pub connections_per_ip_max: usize,
    /// connections.max.idle.ms
    pub connections_max_idle_ms: u64,
    /// Time a started request frame has to arrive completely, in ms.
    pub request_timeout_ms: u64,
    /// Request bytes in flight per connection.
    pub connection_request_bytes_in_flight_max: usize,
    /// Request bytes in flight per shard.
    pub shard_request_bytes_in_flight_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            connections_per_ip_max: CONNECTIONS_PER_IP_MAX_DEFAULT,
            connections_max_idle_ms: CONNECTIONS_MAX_IDLE_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            connection_request_bytes_in_flight_max: CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT,
            shard_request_bytes_in_flight_max: SHARD_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

impl ConnectionLimits {
    /// Flags over file over defaults, validated.
    fn resolve(flags: &Flags, file: &FileConfig) -> Result<ConnectionLimits, ConfigError> {
        let d = ConnectionLimits::default();
        let limits = ConnectionLimits {
            connections_max: flags
                .connections_max
                .or(file.connections_max)
                .unwrap_or(d.connections_max),
            connections_per_ip_max: flags
                .connections_per_ip_max
                .or(file.connections_per_ip_max)
                .unwrap_or(d.connections_per_ip_max),
            connections_max_idle_ms: flags
                .connections_max_idle_ms
                .or(file.connections_max_idle_ms)
                .unwrap_or(d.connections_max_idle_ms),
            request_timeout_ms: flags
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(d.request_timeout_ms),
            connection_request_bytes_in_flight_max: flags
                .connection_request_bytes_in_flight_max
                .or(file.connection_request_bytes_in_flight_max)
                .unwrap_or(d.connection_request_bytes_in_flight_max),
            shard_request_bytes_in_flight_max: flags
                .shard_request_bytes_in_flight_max
                .or(file.shard_request_bytes_in_flight_max)
                .unwrap_or(d.shard_request_bytes_in_flight_max),
        };
        limits.validate()?;
        Ok(limits)
    }

    /// Counts and byte limits at least 1; timers at least
    /// [`CONNECTION_TIMEOUT_MS_MIN`].
    fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("connections-max", self.connections_max),
            ("connections-per-ip-max", self.connections_per_ip_max),
            (
                "connection-request-bytes-in-flight-max",
                self.connection_request_bytes_in_flight_max,
            ),
            (
                "shard-request-bytes-in-flight-max",
                self.shard_request_bytes_in_flight_max,
            ),
        ];
        for (key, value) in counts {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        let timers = [
            ("connections-max-idle-ms", self.connections_max_idle_ms),
            ("request-timeout-ms", self.request_timeout_ms),
        ];
        for (key, value) in timers {
            if value < CONNECTION_TIMEOUT_MS_MIN {
                let message = format!("{value} is below {CONNECTION_TIMEOUT_MS_MIN}");
                return Err(invalid(key, message));
            }
        }
        Ok(())
    }
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

    fn resolve_unlocated(flags: Flags) -> Result<Config, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let limits = ConnectionLimits::resolve(&flags, &file)?;
        let ops = OpsConfig::resolve(&flags, &file)?;
        let config_file = flags.config.clone();
        let listen_text = flags
            .listen
            .or(file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let listen = parse_addr("listen", &listen_text)?;
        let advertised_text = flags
            .advertised_addr
            .or(file.advertised_addr)
            .unwrap_or(listen_text);
        let (advertised_host, advertised_port) =
            split_host_port("advertised-addr", &advertised_text)?;
        let shards = match flags.shards.or(file.shards) {
            Some(n) if n == 0 || n > SHARDS_MAX => {
                return Err(invalid(
                    "shards",
                    format!("{n} is not within 1..={SHARDS_MAX}"),
                ))
            }
            Some(n) => n,
            None => available_cores(),
        };
        if let Some(us) = flags.shard_spin_us.or(file.shard_spin_us) {
            if us > SHARD_SPIN_US_MAX {
                return Err(invalid(
                    "shard-spin-us",
                    format!("{us} is not within 0..={SHARD_SPIN_US_MAX}"),
                ));
            }
        }
        let node_id = flags.node_id.or(file.node_id).unwrap_or(0);
        if node_id < 0 {
            return Err(invalid("node-id", format!("{node_id} is negative")));
        }
        let default_partitions = flags
            .default_partitions
            .or(file.default_partitions)
            .unwrap_or(DEFAULT_PARTITIONS_DEFAULT);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&default_partitions) {
            return Err(invalid(
                "default-partitions",
                format!("{default_partitions} is not within 1..={PARTITIONS_PER_TOPIC_MAX}"),
            ));
        }
        let segment_bytes = flags
            .segment_bytes
            .or(file.segment_bytes)
            .unwrap_or(SEGMENT_BYTES_DEFAULT);
        if segment_bytes < SEGMENT_BYTES_MIN || segment_bytes > u32::MAX as u64 {
            return Err(invalid(
                "segment-bytes",
                format!(
                    "{segment_bytes} is not within {SEGMENT_BYTES_MIN}..={}",
                    u32::MAX
                ),
            ));
        }
        let request_bytes_max = flags
            .request_bytes_max
            .or(file.request_bytes_max)
            .unwrap_or(REQUEST_BYTES_MAX_DEFAULT);
        if request_bytes_max < 1024 || request_bytes_max > i32::MAX as usize {
            return Err(invalid(
                "request-bytes-max",
                format!("{request_bytes_max} is not within 1024..=2^31-1"),
            ));
        }
        let offsets_topic_partitions = flags
            .offsets_topic_partitions
            .or(file.offsets_topic_partitions)
            .unwrap_or(OFFSETS_TOPIC_PARTITIONS_DEFAULT);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&offsets_topic_partitions) {
            return Err(invalid(
                "offsets-topic-partitions",
                format!("{offsets_topic_partitions} is not within 1..={PARTITIONS_PER_TOPIC_MAX}"),
            ));
        }
        let offsets_retention_ms = flags
            .offsets_retention_ms
            .or(file.offsets_retention_ms)
            .unwrap_or_else(|| {
                flags
                    .offsets_retention_minutes
                    .or(file.offsets_retention_minutes)
                    .unwrap_or(OFFSETS_RETENTION_MINUTES_DEFAULT)
                    .saturating_mul(60_000)
            });
        let offsets_retention_check_ms = flags
            .offsets_retention_check_ms
            .or(file.offsets_retention_check_ms)
            .unwrap_or(OFFSETS_RETENTION_CHECK_MS_DEFAULT);
        if offsets_retention_check_ms == 0 {
            return Err(invalid(
                "offsets-retention-check-ms",
                "must be at least 1".to_string(),
            ));
        }
        let txn = TxnConfig {
            state_partitions: flags
                .transaction_state_partitions
                .or(file.transaction_state_partitions)
                .unwrap_or(TRANSACTION_STATE_PARTITIONS_DEFAULT),
            max_timeout_ms: flags
                .transaction_max_timeout_ms
                .or(file.transaction_max_timeout_ms)
                .unwrap_or(TRANSACTION_MAX_TIMEOUT_MS_DEFAULT),
            abort_check_ms: flags
                .transaction_abort_check_ms
                .or(file.transaction_abort_check_ms)
                .unwrap_or(TRANSACTION_ABORT_CHECK_MS_DEFAULT),
            id_expiration_ms: flags
                .transactional_id_expiration_ms
                .or(file.transactional_id_expiration_ms)
                .unwrap_or(TRANSACTIONAL_ID_EXPIRATION_MS_DEFAULT),
        };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&txn.state_partitions) {
            return Err(invalid(
                "transaction-state-partitions",
                format!(
                    "{} is not within 1..={PARTITIONS_PER_TOPIC_MAX}",
                    txn.state_partitions
                ),
            ));
        }
        if txn.max_timeout_ms < 1 {
            return Err(invalid(
                "transaction-max-timeout-ms",
                "must be at least 1".to_string(),
            ));
        }
        if txn.abort_check_ms == 0 {
            return Err(invalid(
                "transaction-abort-check-ms",
                "must be at least 1".to_string(),
            ));
        }
        if txn.id_expiration_ms == 0 {
            return Err(invalid(
                "transactional-id-expiration-ms",
                "must be at least 1".to_string(),
            ));
        }
        let group_consumer_session_timeout_ms = flags
            .group_consumer_session_timeout_ms
            .or(file.group_consumer_session_timeout_ms)
            .unwrap_or(crate::group::consumer::SESSION_TIMEOUT_MS_DEFAULT);
        let group_consumer_heartbeat_interval_ms = flags
            .group_consumer_heartbeat_interval_ms
            .or(file.group_consumer_heartbeat_interval_ms)
            .unwrap_or(crate::group::consumer::HEARTBEAT_INTERVAL_MS_DEFAULT);
        // Kafka requires the interval below the session timeout, or every
        // member would expire between two heartbeats.
        if group_consumer_heartbeat_interval_ms == 0
            || group_consumer_heartbeat_interval_ms >= group_consumer_session_timeout_ms
            || group_consumer_session_timeout_ms > i32::MAX as u64
        {
            return Err(invalid(
                "group-consumer-heartbeat-interval-ms",
                format!(
                    "{group_consumer_heartbeat_interval_ms} must be at least 1 and below \
                     group-consumer-session-timeout-ms ({group_consumer_session_timeout_ms})"
                ),
            ));
        }
        let log_tables = [
            ("log", &file.log),
            ("message", &file.message),
            ("compression", &file.compression),
        ];
        let log_defaults =
            resolve_log_defaults(log_tables, file.segment_bytes, flags.segment_bytes)?;
        Ok(Config {
            log_defaults,
            limits,
            ops,
            config_file,
            listen,
            advertised_host,
            advertised_port,
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            shards,
            shard_spin_us: flags
                .shard_spin_us
                .or(file.shard_spin_us)
                .unwrap_or(SHARD_SPIN_US_DEFAULT),
            node_id,
            auto_create_topics: flags
                .auto_create_topics
                .or(file.auto_create_topics)
                .unwrap_or(true),
            default_partitions,
            segment_bytes,
            request_bytes_max,
            offsets_topic_partitions,
            offsets_retention_ms,
            offsets_retention_check_ms,
            txn,
            fault_drop_produce_response_every: flags
                .fault_drop_produce_response_every
                .or(file.fault_drop_produce_response_every)
                .unwrap_or(0),
            group_consumer_session_timeout_ms,
            group_consumer_heartbeat_interval_ms,
        })
    }
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

/// Default spin before a shard parks, in µs (measured: docs/BENCHMARKS.md).
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
/// for `log.segment.bytes`, the flag winning.
fn resolve_log_defaults(
    tables: [(&str, &Option<toml::Table>); 3],
    segment_bytes_file: Option<u64>,
    segment_bytes_flag: Option<u64>,
) -> Result<crate::metadata::LogDefaults, ConfigError> {
    use crate::metadata::topic_config::toml_pairs;
    let segment = |b: u64| ("log.segment.bytes".to_string(), b.to_string());
    let mut pairs: Vec<(String, String)> = segment_bytes_file.map(segment).into_iter().collect();
    for (prefix, table) in tables {
        pairs.extend(table.iter().flat_map(|t| toml_pairs(prefix, t)));
    }
    pairs.extend(segment_bytes_flag.map(segment));
    crate::metadata::LogDefaults::from_pairs(pairs).map_err(|e| invalid("log", e.message))
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => line_and_key(&text, span.start),
            None => (0, "?".to_string()),
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            key,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

/// The 1-based line holding byte `offset` of `text`, and the key assigned
/// on it (text before '=', or the `[table]` name).
fn line_and_key(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let content = text[start..].lines().next().unwrap_or("").trim();
    let key = match content.split_once('=') {
        Some((key, _)) => key.trim().trim_matches('"').to_string(),
        None if !content.is_empty() => content.to_string(),
        None => "?".to_string(),
    };
    (line, key)
}

/// The 1-based line where `key` (snake_case) is assigned in `text`.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Adds the file and line to an invalid value that came from the config
/// file (its key is in the file and no flag or env var overrode it).
fn locate_error(
    error: ConfigError,
    file: Option<&Path>,
    given: &std::collections::HashSet<String>,
) -> ConfigError {
    let (ConfigError::Invalid { key, message }, Some(path)) = (&error, file) else {
        return error;
    };
    let snake = key.replace('-', "_");
    if given.contains(&snake) {
        return error;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return error;
    };
    match find_key_line(&text, &snake) {
        Some(line) => ConfigError::InvalidInFile {
            path: path.to_path_buf(),
            line,
            key: snake,
            message: message.clone(),
        },
        None => error,
    }
}

impl Flags {
    /// snake_case names of the settings given as flags or env vars.
    fn given_keys(&self) -> std::collections::HashSet<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect(),
            _ => Default::default(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_without_flags() {
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.advertised_port, 9092);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.auto_create_topics);
        assert_eq!(c.default_partitions, 1);
        assert_eq!(c.segment_bytes, SEGMENT_BYTES_DEFAULT);
        assert_eq!(c.limits, ConnectionLimits::default());
        assert_eq!(c.limits.connections_max_idle_ms, 600_000);
    }

    #[test]
    fn config_limits_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "connections_per_ip_max = 5\nrequest_timeout_ms = 2000\n",
        )
        .unwrap();
        let c = Config::resolve(Flags {
            config: Some(path),
            request_timeout_ms: Some(3000),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.limits.connections_per_ip_max, 5);
        assert_eq!(c.limits.request_timeout_ms, 3000);
        let err = Config::resolve(Flags {
            connections_max: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("connections-max"), "{err}");
    }

    #[test]
    fn config_bad_shards_named() {
        let err = Config::resolve(Flags {
            shards: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("shards"), "{err}");
    }

    #[test]
    fn config_file_unknown_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbogus_key = 3\n").unwrap();
        let err = Config::resolve(Flags {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("bogus_key"), "{err}");
    }

    #[test]
    fn config_flag_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "default_partitions = 4\nnode_id = 3\n").unwrap();
        let c = Config::resolve(Flags {
            config: Some(path),
            node_id: Some(7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.default_partitions, 4);
        assert_eq!(c.node_id, 7);
    }
}

#[cfg(test)]
mod error_location_tests {
    use super::*;

    fn resolve_file(text: &str, flags: Flags) -> (String, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corestream.toml");
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        let result = Config::resolve(Flags {
            config: Some(path),
            ..flags
        });
        (shown, result)
    }

    #[test]
    fn config_error_unknown_key_names_file_line_key() {
        let (path, r) = resolve_file(
            "listen = \"127.0.0.1:1\"\n\nbogus_key = 3\n",
            Flags::default(),
        );
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:3: key bogus_key: ")),
            "{text}"
        );
        assert!(text.contains("unknown field"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn config_error_bad_type_names_file_line_key() {
        let (path, r) = resolve_file("node_id = 1\nshards = \"four\"\n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key shards: ")),
            "{text}"
        );
    }

    #[test]
    fn config_error_bad_syntax_names_line() {
        let (path, r) = resolve_file("node_id = 1\nlisten = \n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key listen: ")),
            "{text}"
        );
    }

    #[test]
    fn config_error_out_of_range_value_names_file_line_key() {
        let (path, r) = resolve_file("node_id = 1\n  segment_bytes = 5\n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key segment_bytes: ")),
            "{text}"
        );
        let (_, r) = resolve_file("log_level = \"info,=[\"\n", Flags::default());
        assert!(r.unwrap_err().to_string().contains(":1: key log_level: "));
    }

    #[test]
    fn config_error_from_flag_does_not_blame_file() {
        let flags = Flags {
            segment_bytes: Some(5),
            ..Default::default()
        };
        let (_, r) = resolve_file("segment_bytes = 1048576\n", flags);
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with("invalid value for segment-bytes"),
            "{text}"
        );
    }

    #[test]
    fn config_ops_keys_defaults_and_overrides() {
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.ops.admin_listen, Some("127.0.0.1:9644".parse().unwrap()));
        assert_eq!(c.ops.log_level, "info");
        assert_eq!(c.ops.shutdown_timeout_ms, SHUTDOWN_TIMEOUT_MS_DEFAULT);
        let (_, r) = resolve_file(
            "admin_listen = \"off\"\nlog_level = \"debug\"\nshutdown_timeout_ms = 5000\n",
            Flags::default(),
        );
        let c = r.unwrap();
        assert_eq!(c.ops.admin_listen, None);
        assert_eq!(c.ops.log_level, "debug");
        assert_eq!(c.ops.shutdown_timeout_ms, 5000);
    }

    #[test]
    fn config_lag_rules_defaults_file_and_range() {
        use crate::group::lag::LagRules;
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.ops.lag_rules, LagRules::default());
        let flags = Flags {
            lag_stopped_after_ms: Some(1500),
            ..Default::default()
        };
        let (_, r) = resolve_file("lag_window_commits = 4\nlag_stopped_after_ms = 9\n", flags);
        let rules = r.unwrap().ops.lag_rules;
        assert_eq!((rules.window_commits, rules.stopped_after_ms), (4, 1500));
        let (path, r) = resolve_file("node_id = 1\nlag_window_commits = 1\n", Flags::default());
        let text = r.unwrap_err().to_string();
        let want = format!("config file {path}:2: key lag_window_commits: ");
        assert!(text.starts_with(&want), "{text}");
    }
}
