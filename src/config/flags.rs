//! Command-line flags and `CORESTREAM_*` environment variables.

use std::path::PathBuf;

use clap::Parser;

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
    /// once. Costs CPU while idle-but-busy; see docs/BENCHMARKS_HISTORY.md.
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
    /// Bytes of recent batches each shard keeps in memory to answer
    /// consumers at the tail without a disk read (0: off; default 256 MiB).
    /// The budget plus a quarter is reserved when the shard starts.
    #[arg(long, env = "CORESTREAM_TAIL_CACHE_BYTES")]
    pub tail_cache_bytes: Option<usize>,
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
    /// Fault injection for tests: abort the process (SIGABRT, no cleanup,
    /// like kill -9 there) the Nth time a compaction or segment-deletion
    /// step is reached, `<step>[:<n>]` (n defaults to 1). Steps:
    /// `corestream::storage::fault::Step::ALL`; an unknown one is refused.
    #[arg(long, env = "CORESTREAM_FAULT_ABORT_AT")]
    pub fault_abort_at: Option<String>,
    /// Fault injection for tests: panic on the shard thread (as a bug
    /// would) the Nth time a step is reached, `<step>[:<n>]`, same steps as
    /// --fault-abort-at. The daemon's panic hook then aborts the process.
    #[arg(
        long,
        env = "CORESTREAM_FAULT_PANIC_AT",
        conflicts_with = "fault_abort_at"
    )]
    pub fault_panic_at: Option<String>,
    /// How long the first rebalance of an empty classic group waits for more
    /// members, ms, extended while they keep joining up to the rebalance
    /// timeout (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, env = "CORESTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
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
    /// Serve the web console at /ui/ on the admin listener (true|false).
    #[arg(long, env = "CORESTREAM_ADMIN_UI")]
    pub admin_ui: Option<bool>,
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
    /// The controller quorum, `id@host:port,...` (Kafka's
    /// controller.quorum.voters). Unset: a single node.
    /// `--controller-voters` is the same flag.
    #[arg(
        long,
        visible_alias = "controller-voters",
        env = "CORESTREAM_CONTROLLER_QUORUM_VOTERS"
    )]
    pub controller_quorum_voters: Option<String>,
    /// Where this voter's controller listens, HOST:PORT (default: its
    /// address in --controller-quorum-voters).
    #[arg(long, env = "CORESTREAM_CONTROLLER_LISTEN")]
    pub controller_listen: Option<String>,
    /// A broker without a heartbeat this long is fenced, ms (Kafka's
    /// broker.session.timeout.ms).
    #[arg(long, env = "CORESTREAM_BROKER_SESSION_TIMEOUT_MS")]
    pub broker_session_timeout_ms: Option<u64>,
    /// A follower not caught up with its leader for this long leaves the
    /// ISR, ms (Kafka's replica.lag.time.max.ms).
    #[arg(long, env = "CORESTREAM_REPLICA_LAG_TIME_MAX_MS")]
    pub replica_lag_time_max_ms: Option<u64>,
    /// Replicas of a topic created without a replication factor, in a
    /// cluster (Kafka's default.replication.factor).
    #[arg(long, env = "CORESTREAM_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<i16>,
    /// Whether an offline partition may be led by an out-of-sync replica,
    /// losing what it lacks, for topics that do not say (Kafka's
    /// unclean.leader.election.enable; the topic key overrides it).
    #[arg(long, env = "CORESTREAM_UNCLEAN_LEADER_ELECTION_ENABLE")]
    pub unclean_leader_election_enable: Option<bool>,
    /// Whether the controller moves leaderships back to the preferred
    /// replicas (Kafka's auto.leader.rebalance.enable).
    #[arg(long, env = "CORESTREAM_AUTO_LEADER_REBALANCE_ENABLE")]
    pub auto_leader_rebalance_enable: Option<bool>,
    /// How often the controller checks for leaderships to move back, s
    /// (Kafka's leader.imbalance.check.interval.seconds).
    #[arg(long, env = "CORESTREAM_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS")]
    pub leader_imbalance_check_interval_seconds: Option<u64>,
    /// The share of a broker's preferred partitions that may be led
    /// elsewhere before the controller moves them back, percent, 0..=100
    /// (Kafka's leader.imbalance.per.broker.percentage).
    #[arg(long, env = "CORESTREAM_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE")]
    pub leader_imbalance_per_broker_percentage: Option<u32>,
    /// Kafka listeners, `PROTOCOL://HOST:PORT,...` with PLAINTEXT, SSL,
    /// SASL_PLAINTEXT or SASL_SSL (replaces --listen).
    #[arg(long, env = "CORESTREAM_LISTENERS")]
    pub listeners: Option<String>,
    /// Address advertised per listener, same form (default: each listener's own).
    #[arg(long, env = "CORESTREAM_ADVERTISED_LISTENERS")]
    pub advertised_listeners: Option<String>,
    /// TLS certificate chain (PEM) for SSL and SASL_SSL listeners; SIGHUP reloads it.
    #[arg(long, env = "CORESTREAM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CORESTREAM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) for client certificates: turns on mutual TLS.
    #[arg(long, env = "CORESTREAM_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// SCRAM-SHA-512 user created when the data dir has no user yet; its
    /// password comes from CORESTREAM_INITIAL_USER_PASSWORD or --initial-user-password-file.
    #[arg(long, env = "CORESTREAM_INITIAL_USER")]
    pub initial_user: Option<String>,
    /// File holding the initial user's password.
    #[arg(long, env = "CORESTREAM_INITIAL_USER_PASSWORD_FILE")]
    pub initial_user_password_file: Option<PathBuf>,
    /// The listener other brokers connect to (Kafka's
    /// inter.broker.listener.name; default PLAINTEXT, or the only listener).
    #[arg(long, env = "CORESTREAM_INTER_BROKER_LISTENER_NAME")]
    pub inter_broker_listener_name: Option<String>,
    /// SASL mechanism brokers log in to each other with: PLAIN,
    /// SCRAM-SHA-256 or SCRAM-SHA-512 (default).
    #[arg(long, env = "CORESTREAM_SASL_MECHANISM_INTER_BROKER_PROTOCOL")]
    pub sasl_mechanism_inter_broker_protocol: Option<String>,
    /// This broker's user on a SASL inter-broker listener; its password
    /// comes from CORESTREAM_INTER_BROKER_PASSWORD or --inter-broker-password-file.
    #[arg(long, env = "CORESTREAM_INTER_BROKER_USERNAME")]
    pub inter_broker_username: Option<String>,
    /// File holding the inter-broker user's password.
    #[arg(long, env = "CORESTREAM_INTER_BROKER_PASSWORD_FILE")]
    pub inter_broker_password_file: Option<PathBuf>,
    /// CA bundle (PEM) other brokers' certificates must chain to, for an
    /// SSL or SASL_SSL inter-broker listener.
    #[arg(long, env = "CORESTREAM_INTER_BROKER_TLS_CA")]
    pub inter_broker_tls_ca: Option<PathBuf>,
    /// `https` (default): a peer's certificate must name its advertised
    /// host; empty: not checked (Kafka's ssl.endpoint.identification.algorithm).
    #[arg(long, env = "CORESTREAM_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM")]
    pub ssl_endpoint_identification_algorithm: Option<String>,
    /// How long a failed SASL authentication waits before its answer and
    /// close (Kafka's connection.failed.authentication.delay.ms; default 100).
    #[arg(long, env = "CORESTREAM_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS")]
    pub connection_failed_authentication_delay_ms: Option<u64>,
    /// SASL sessions end after this many ms unless the client
    /// re-authenticates on its connection (KIP-368, Kafka's
    /// connections.max.reauth.ms; default 0, never; else at least 1000).
    #[arg(long, env = "CORESTREAM_CONNECTIONS_MAX_REAUTH_MS")]
    pub connections_max_reauth_ms: Option<u64>,
    /// File holding a bearer token the admin HTTP port then requires
    /// (`Authorization: Bearer ...`) on every route but health and readiness.
    #[arg(long, env = "CORESTREAM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// `acl` turns on Kafka ACL checks on every request; `none` (the
    /// default) allows every request.
    #[arg(long, env = "CORESTREAM_AUTHORIZER")]
    pub authorizer: Option<String>,
    /// Principals allowed everything with `--authorizer acl`, e.g.
    /// `User:admin;User:broker` (`;` or `,` separated; Kafka's super.users).
    #[arg(long, env = "CORESTREAM_SUPER_USERS")]
    pub super_users: Option<String>,
    /// With `--authorizer acl`, allow requests on resources no ACL names
    /// (Kafka's allow.everyone.if.no.acl.found; default false).
    #[arg(long, env = "CORESTREAM_ALLOW_EVERYONE_IF_NO_ACL_FOUND", num_args = 0..=1, default_missing_value = "true")]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// The principal the web console acts as with `--authorizer acl`
    /// (`Type:name`, e.g. `User:console`; default `User:ANONYMOUS`, as a
    /// Kafka client without credentials).
    #[arg(long, env = "CORESTREAM_ADMIN_UI_PRINCIPAL")]
    pub admin_ui_principal: Option<String>,
}

impl Flags {
    /// snake_case names of the settings given as flags or env vars.
    pub(super) fn given_keys(&self) -> std::collections::HashSet<String> {
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
