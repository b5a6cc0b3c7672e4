//! The flags of `corestream bench produce|consume|e2e`, their checks, and
//! the `config` object of the JSON summary (every flag, as used).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};

/// Largest record value, in bytes.
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// e2e values carry an 8-byte send time, so they are at least this long.
pub const E2E_RECORD_BYTES_MIN: usize = 8;
/// Most producer or consumer threads.
pub const CLIENTS_MAX: usize = 256;
/// Most requests in flight per connection (the broker's own limit is 32).
pub const IN_FLIGHT_MAX: usize = 32;
/// Largest produce batch, in bytes.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest linger, in ms.
pub const LINGER_MS_MAX: u64 = 60_000;
/// Most partitions `--partitions` may create.
pub const PARTITIONS_MAX: i32 = 100_000;
/// Records when neither `--records` nor `--duration-s` is given.
pub const RECORDS_DEFAULT: u64 = 1_000_000;

/// `corestream bench`: the load generator.
#[derive(Parser, Debug)]
#[command(
    name = "corestream bench",
    about = "Load generator: produce, consume, or both at once (e2e latency)"
)]
pub struct BenchCli {
    /// What to run.
    #[command(subcommand)]
    pub mode: Mode,
}

/// The three workloads.
#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Produce records as fast as allowed; latency is send to ack.
    Produce {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        producer: ProducerArgs,
    },
    /// Read a topic's records (from earliest by default) and count them.
    Consume {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        consumer: ConsumerArgs,
    },
    /// Produce and consume at once; latency is send to consume.
    E2e {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        producer: ProducerArgs,
        #[command(flatten)]
        consumer: ConsumerArgs,
    },
}

/// Flags of every mode.
#[derive(Args, Debug, Clone, Serialize)]
pub struct CommonArgs {
    /// Bootstrap brokers, HOST:PORT[,...] (default: the CLI's --brokers).
    #[arg(short = 'b', long = "brokers", visible_alias = "bootstrap")]
    pub brokers: Option<String>,
    /// Topic.
    #[arg(long, default_value = "corestream-bench")]
    pub topic: String,
    /// Partitions of the topic if it must be created.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Value bytes per record.
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// Records in all (with --duration-s: whichever comes first; neither:
    /// 1,000,000).
    #[arg(long)]
    pub records: Option<u64>,
    /// Seconds to run.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Requests in flight per connection (produce); fetch slots per
    /// connection, each with one fetch in flight (consume).
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// A progress line per second on stderr.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub progress: bool,
    /// No progress lines.
    #[arg(long)]
    #[serde(skip)]
    pub no_progress: bool,
}

/// acks of the produce requests.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Acks {
    /// No answer.
    #[value(name = "0")]
    #[serde(rename = "0")]
    None,
    /// The leader's write.
    #[value(name = "1")]
    #[serde(rename = "1")]
    Leader,
    /// Durable on all in-sync replicas.
    #[value(name = "all", alias = "-1")]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    /// The value on the wire.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Batch compression codecs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compressions {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as Kafka writes it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// Where consumers start.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    /// Each partition's log start.
    Earliest,
    /// Each partition's end (only records produced after the start).
    Latest,
}

/// Producer flags.
#[derive(Args, Debug, Clone, Serialize)]
pub struct ProducerArgs {
    /// Producer threads, each with its own connection per leader.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// acks: 0, 1 or all (-1).
    #[arg(long, value_enum, default_value = "all", allow_hyphen_values = true)]
    pub acks: Acks,
    /// Batch compression.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compressions,
    /// Batch size, in bytes (values plus about 12 bytes per record).
    #[arg(long, default_value_t = 64 * 1024)]
    pub batch_bytes: usize,
    /// Longest wait for a batch to fill, in ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Records per second over all producers (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    pub target_rate: f64,
    /// Idempotent producers (InitProducerId and sequence numbers).
    #[arg(long)]
    pub idempotent: bool,
    /// Copied from --max-in-flight.
    #[arg(skip)]
    #[serde(skip)]
    pub max_in_flight: usize,
}

/// Consumer flags.
#[derive(Args, Debug, Clone, Serialize)]
pub struct ConsumerArgs {
    /// Consumer threads; partitions are dealt out among them.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Start at earliest or latest (e2e always starts at latest).
    #[arg(long, value_enum, default_value = "earliest")]
    pub from: From,
    /// max_bytes of a fetch.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub fetch_max_bytes: i32,
    /// partition_max_bytes of a fetch (Kafka consumer's
    /// max.partition.fetch.bytes default: larger answers leave the records
    /// out of the CPU cache by the time they are walked, 1,800 against
    /// 2,300 MB/s at 8 MiB here).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub partition_max_bytes: i32,
    /// max_wait_ms of a fetch (how long the broker may hold an empty one).
    #[arg(long, default_value_t = 100)]
    pub fetch_wait_ms: i32,
    /// Stop a consumer that got no record for this long, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub idle_timeout_s: f64,
    /// Copied from --max-in-flight.
    #[arg(skip)]
    #[serde(skip)]
    pub max_in_flight: usize,
}

impl CommonArgs {
    /// `--records`, or the default when no `--duration-s` either.
    pub fn effective_records(&self) -> Option<u64> {
        match (self.records, self.duration_s) {
            (None, None) => Some(RECORDS_DEFAULT),
            (r, _) => r,
        }
    }

    /// Whether progress lines are printed.
    pub fn progress_on(&self) -> bool {
        self.progress && !self.no_progress
    }

    fn validate(&self) -> Result<(), String> {
        check(
            (1..=RECORD_BYTES_MAX).contains(&self.record_bytes),
            format!("--record-bytes must be within 1..={RECORD_BYTES_MAX}"),
        )?;
        check(
            (1..=PARTITIONS_MAX).contains(&self.partitions),
            format!("--partitions must be within 1..={PARTITIONS_MAX}"),
        )?;
        check(
            self.records != Some(0),
            "--records must be at least 1".into(),
        )?;
        check(
            self.duration_s.is_none_or(|s| s.is_finite() && s > 0.0),
            "--duration-s must be a positive number of seconds".into(),
        )?;
        check(
            (1..=IN_FLIGHT_MAX).contains(&self.max_in_flight),
            format!("--max-in-flight must be within 1..={IN_FLIGHT_MAX}"),
        )
    }
}

impl ProducerArgs {
    fn validate(&self) -> Result<(), String> {
        check(
            (1..=CLIENTS_MAX).contains(&self.producers),
            format!("--producers must be within 1..={CLIENTS_MAX}"),
        )?;
        check(
            self.batch_bytes <= BATCH_BYTES_MAX,
            format!("--batch-bytes must be at most {BATCH_BYTES_MAX}"),
        )?;
        check(
            self.batch_bytes >= 1,
            "--batch-bytes must be positive (a batch holds at least one record)".into(),
        )?;
        check(
            self.linger_ms <= LINGER_MS_MAX,
            format!("--linger-ms must be at most {LINGER_MS_MAX}"),
        )?;
        check(
            self.target_rate.is_finite() && self.target_rate >= 0.0,
            "--target-rate must be 0 (unlimited) or a positive records/s".into(),
        )
    }
}

impl ConsumerArgs {
    fn validate(&self) -> Result<(), String> {
        check(
            (1..=CLIENTS_MAX).contains(&self.consumers),
            format!("--consumers must be within 1..={CLIENTS_MAX}"),
        )?;
        check(
            self.fetch_max_bytes > 0 && self.partition_max_bytes > 0,
            "--fetch-max-bytes and --partition-max-bytes must be positive".into(),
        )?;
        check(
            (0..=60_000).contains(&self.fetch_wait_ms),
            "--fetch-wait-ms must be within 0..=60000".into(),
        )?;
        check(
            self.idle_timeout_s.is_finite() && self.idle_timeout_s > 0.0,
            "--idle-timeout-s must be positive".into(),
        )
    }
}

fn check(ok: bool, message: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message)
    }
}

impl Mode {
    /// The flags every mode has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Mode::Produce { common, .. }
            | Mode::Consume { common, .. }
            | Mode::E2e { common, .. } => common,
        }
    }

    /// Checks the flags against each other and their limits.
    pub fn validate(&self) -> Result<(), String> {
        let common = self.common();
        common.validate()?;
        match self {
            Mode::Produce { producer, .. } => producer.validate(),
            Mode::Consume { consumer, .. } => consumer.validate(),
            Mode::E2e {
                producer, consumer, ..
            } => {
                check(
                    common.record_bytes >= E2E_RECORD_BYTES_MIN,
                    format!("e2e needs --record-bytes of at least {E2E_RECORD_BYTES_MIN} (the send time)"),
                )?;
                producer.validate()?;
                consumer.validate()
            }
        }
    }

    /// Every flag as used, for the summary's `config`.
    pub fn config(&self, brokers: &str) -> Value {
        let mut config = json!({});
        let mut merge = |v: Value| {
            if let (Some(into), Value::Object(from)) = (config.as_object_mut(), v) {
                into.extend(from);
            }
        };
        merge(serde_json::to_value(self.common()).unwrap_or_default());
        match self {
            Mode::Produce { producer, .. } => {
                merge(serde_json::to_value(producer).unwrap_or_default())
            }
            Mode::Consume { consumer, .. } => {
                merge(serde_json::to_value(consumer).unwrap_or_default())
            }
            Mode::E2e {
                producer, consumer, ..
            } => {
                merge(serde_json::to_value(producer).unwrap_or_default());
                merge(serde_json::to_value(consumer).unwrap_or_default());
            }
        }
        config["brokers"] = json!(brokers);
        config["records"] = json!(self.common().effective_records());
        config["progress"] = json!(self.common().progress_on());
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Mode, String> {
        let argv = std::iter::once("corestream bench").chain(words.iter().copied());
        let mode = BenchCli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .mode;
        mode.validate()?;
        Ok(mode)
    }

    #[test]
    fn bench_args_produce_defaults_and_config() {
        let mode = parse(&["produce", "--json", "out.json", "--acks", "-1"]).unwrap();
        let c = mode.config("h:1");
        assert_eq!(c["acks"], "all");
        assert_eq!(c["compression"], "none");
        assert_eq!(c["batch_bytes"], 65536);
        assert_eq!(c["max_in_flight"], 5);
        assert_eq!(c["records"], RECORDS_DEFAULT);
        assert_eq!(c["json"], "out.json");
        assert_eq!(c["brokers"], "h:1");
        assert_eq!(c["progress"], true);
        assert!(c.get("consumers").is_none());
    }

    #[test]
    fn bench_args_e2e_has_both_sides_and_bootstrap_alias() {
        let mode = parse(&[
            "e2e",
            "--bootstrap",
            "x:9",
            "--target-rate",
            "1000",
            "--consumers",
            "2",
            "--no-progress",
            "--duration-s",
            "3",
        ])
        .unwrap();
        let c = mode.config("x:9");
        assert_eq!(c["target_rate"], 1000.0);
        assert_eq!(c["consumers"], 2);
        assert_eq!(c["progress"], false);
        assert_eq!(c["records"], Value::Null, "duration only: no record limit");
        assert_eq!(mode.common().brokers.as_deref(), Some("x:9"));
        assert!(parse(&["consume", "--progress", "false"]).is_ok());
    }

    #[test]
    fn bench_args_bad_flags_are_refused() {
        for bad in [
            &["produce", "--acks", "2"][..],
            &["produce", "--compression", "brotli"],
            &["produce", "--records", "0"],
            &["produce", "--max-in-flight", "0"],
            &["produce", "--max-in-flight", "33"],
            &["produce", "--producers", "0"],
            &["produce", "--duration-s", "-1"],
            &["produce", "--target-rate", "-5"],
            &["produce", "--record-bytes", "0"],
            &["consume", "--from", "middle"],
            &["consume", "--idle-timeout-s", "0"],
            &["e2e", "--record-bytes", "4"],
            &["produce", "--no-such-flag"],
            &["nonsense"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
