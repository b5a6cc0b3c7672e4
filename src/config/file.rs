//! The TOML config file, and finding the line of a bad value in it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The TOML file: the same keys as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) listeners: Option<String>,
    pub(super) advertised_listeners: Option<String>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) tls_client_ca: Option<PathBuf>,
    pub(super) initial_user: Option<String>,
    pub(super) initial_user_password_file: Option<PathBuf>,
    pub(super) connection_failed_authentication_delay_ms: Option<u64>,
    pub(super) connections_max_reauth_ms: Option<u64>,
    pub(super) inter_broker_listener_name: Option<String>,
    pub(super) sasl_mechanism_inter_broker_protocol: Option<String>,
    pub(super) inter_broker_username: Option<String>,
    pub(super) inter_broker_password_file: Option<PathBuf>,
    pub(super) inter_broker_tls_ca: Option<PathBuf>,
    pub(super) ssl_endpoint_identification_algorithm: Option<String>,
    pub(super) admin_token_file: Option<PathBuf>,
    pub(super) authorizer: Option<String>,
    pub(super) super_users: Option<String>,
    pub(super) allow_everyone_if_no_acl_found: Option<bool>,
    pub(super) admin_ui_principal: Option<String>,
    pub(super) advertised_addr: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) shards: Option<usize>,
    pub(super) shard_spin_us: Option<u64>,
    pub(super) node_id: Option<i32>,
    pub(super) auto_create_topics: Option<bool>,
    pub(super) default_partitions: Option<i32>,
    pub(super) segment_bytes: Option<u64>,
    pub(super) request_bytes_max: Option<usize>,
    pub(super) tail_cache_bytes: Option<usize>,
    pub(super) offsets_topic_partitions: Option<i32>,
    pub(super) offsets_retention_minutes: Option<u64>,
    pub(super) offsets_retention_ms: Option<u64>,
    pub(super) offsets_retention_check_ms: Option<u64>,
    pub(super) transaction_state_partitions: Option<i32>,
    pub(super) transaction_max_timeout_ms: Option<i32>,
    pub(super) transaction_abort_check_ms: Option<u64>,
    pub(super) transactional_id_expiration_ms: Option<u64>,
    pub(super) fault_drop_produce_response_every: Option<u64>,
    pub(super) group_initial_rebalance_delay_ms: Option<u64>,
    pub(super) group_consumer_session_timeout_ms: Option<u64>,
    pub(super) group_consumer_heartbeat_interval_ms: Option<u64>,
    pub(super) connections_max: Option<usize>,
    pub(super) connections_per_ip_max: Option<usize>,
    pub(super) connections_max_idle_ms: Option<u64>,
    pub(super) request_timeout_ms: Option<u64>,
    pub(super) connection_request_bytes_in_flight_max: Option<usize>,
    pub(super) shard_request_bytes_in_flight_max: Option<usize>,
    pub(super) admin_listen: Option<String>,
    pub(super) admin_ui: Option<bool>,
    pub(super) log_level: Option<String>,
    pub(super) shutdown_timeout_ms: Option<u64>,
    pub(super) lag_window_commits: Option<usize>,
    pub(super) lag_stopped_after_ms: Option<u64>,
    #[serde(alias = "controller_voters")]
    pub(super) controller_quorum_voters: Option<String>,
    pub(super) controller_listen: Option<String>,
    pub(super) broker_session_timeout_ms: Option<u64>,
    pub(super) replica_lag_time_max_ms: Option<u64>,
    pub(super) default_replication_factor: Option<i16>,
    pub(super) unclean_leader_election_enable: Option<bool>,
    pub(super) auto_leader_rebalance_enable: Option<bool>,
    pub(super) leader_imbalance_check_interval_seconds: Option<u64>,
    pub(super) leader_imbalance_per_broker_percentage: Option<u32>,
    /// Kafka's broker log settings as in server.properties: TOML reads
    /// `log.retention.hours = 168` as a dotted key, so `log.*`, `message.*`
    /// and `compression.*` arrive as tables (see `metadata::topic_config`).
    pub(super) log: Option<toml::Table>,
    pub(super) message: Option<toml::Table>,
    pub(super) compression: Option<toml::Table>,
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
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
pub(super) fn locate_error(
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
