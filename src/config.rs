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

/// Command-line flags. Each one is optional so that the TOML file and the
/// embedded defaults can fill in what is not given.
#[derive(Parser, Debug, Default)]
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
}

/// The TOML file: the same keys as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    advertised_addr: Option<String>,
    data_dir: Option<PathBuf>,
    shards: Option<usize>,
    node_id: Option<i32>,
    auto_create_topics: Option<bool>,
    default_partitions: Option<i32>,
    segment_bytes: Option<u64>,
    request_bytes_max: Option<usize>,
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
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, which names the line and key.
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
}

impl Config {
    /// Resolves flags over the optional TOML file over embedded defaults.
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
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
        Ok(Config {
            listen,
            advertised_host,
            advertised_port,
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            shards,
            node_id,
            auto_create_topics: flags
                .auto_create_topics
                .or(file.auto_create_topics)
                .unwrap_or(true),
            default_partitions,
            segment_bytes,
            request_bytes_max,
        })
    }
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim().replace('\n', " "),
    })
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
