//! Where log lines go, and the log level SIGHUP can change.
//!
//! Decisions:
//! - Under systemd, stderr is a stream into journald and systemd says so in
//!   `$JOURNAL_STREAM` (`device:inode` of that stream). When stderr is that
//!   stream, events go to the journal natively (the `systemd` crate's
//!   `journal::send`), one entry per event with structured fields:
//!   `PRIORITY`, `MESSAGE`, `SHARD`, `TOPIC`, `PARTITION`, `GROUP`, and any
//!   other tracing field upper-cased, so `journalctl -u corestreamd
//!   SHARD=1` works. Otherwise (a terminal, a test harness, a pipe) the
//!   familiar `tracing_subscriber` text goes to stderr.
//! - The level filter sits behind a `reload` layer: SIGHUP re-reads
//!   `log_level` from the config file and swaps the filter in place, with
//!   no restart. `RUST_LOG`, when set, wins at start (developer override).
//! - Kafka's BROKER_LOGGER resource (DescribeConfigs, IncrementalAlterConfigs
//!   type 8) sets one logger's level at run time: here a logger is a tracing
//!   target (`corestream::group`) or `root`, and the filter becomes the root
//!   level plus one directive per logger. As in Kafka these changes are not
//!   persisted; a SIGHUP reload replaces them with the file's `log_level`.
//!   The logger table is process-wide behind a mutex: the filter it edits
//!   is process-wide already, and only admin requests touch it.
//! - Sending a journal entry is one `sendmsg` on a datagram socket, the same
//!   class of syscall as the stderr write it replaces; logging is rare on
//!   the hot path (errors and state changes only).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// Environment variable systemd sets when stderr is connected to journald.
pub const JOURNAL_STREAM_ENV: &str = "JOURNAL_STREAM";
/// Identifier of our journal entries (`journalctl -t corestreamd`).
pub const SYSLOG_IDENTIFIER: &str = "corestreamd";

/// Kafka's name of the root logger.
pub const ROOT_LOGGER: &str = "root";
/// Longest logger name accepted, bytes.
const LOGGER_NAME_BYTES_MAX: usize = 256;

/// The BROKER_LOGGER table: the root directive and per-logger levels.
struct BrokerLoggers {
    handle: reload::Handle<EnvFilter, Registry>,
    root: String,
    levels: BTreeMap<String, String>,
}

static BROKER_LOGGERS: OnceLock<Mutex<BrokerLoggers>> = OnceLock::new();

/// Kafka's log4j level names to tracing's.
fn tracing_level(kafka_level: &str) -> Option<&'static str> {
    match kafka_level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" => Some("warn"),
        "ERROR" | "FATAL" => Some("error"),
        "OFF" => Some("off"),
        _ => None,
    }
}

fn valid_logger_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= LOGGER_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// The loggers with a level, `root` first (DescribeConfigs on
/// BROKER_LOGGER); `None` before logging is initialised.
pub fn broker_loggers() -> Option<Vec<(String, String)>> {
    let loggers = BROKER_LOGGERS.get()?.lock().ok()?;
    let mut out = vec![(ROOT_LOGGER.to_string(), loggers.root.to_uppercase())];
    out.extend(
        loggers
            .levels
            .iter()
            .map(|(name, level)| (name.clone(), level.to_uppercase())),
    );
    Some(out)
}

/// Sets (`Some` Kafka level) or removes (`None`: back to the root level)
/// one logger's level; `root` sets the root level.
pub fn set_broker_logger(name: &str, level: Option<&str>) -> Result<(), LogLevelError> {
    let bad = |message: &str| LogLevelError {
        directive: format!("{name}={}", level.unwrap_or("")),
        message: message.to_string(),
    };
    if !valid_logger_name(name) {
        return Err(bad(
            "a logger is `root` or a tracing target such as corestream::group",
        ));
    }
    let level =
        match level {
            Some(l) => Some(tracing_level(l).ok_or_else(|| {
                bad("valid levels are TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF")
            })?),
            None => None,
        };
    let table = BROKER_LOGGERS
        .get()
        .ok_or_else(|| bad("logging is not initialised"))?;
    let mut loggers = table.lock().map_err(|_| bad("logger table poisoned"))?;
    match (name == ROOT_LOGGER, level) {
        (true, Some(l)) => loggers.root = l.to_string(),
        (true, None) => return Err(bad("the root logger cannot be removed")),
        (false, Some(l)) => {
            loggers.levels.insert(name.to_string(), l.to_string());
        }
        (false, None) => {
            loggers.levels.remove(name);
        }
    }
    let mut directive = loggers.root.clone();
    for (target, level) in &loggers.levels {
        let _ = write!(directive, ",{target}={level}");
    }
    let filter = parse_level(&directive)?;
    loggers
        .handle
        .reload(filter)
        .map_err(|e| bad(&e.to_string()))
}

/// Changes the log level of the running process.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// Whether events go to the journal (else stderr).
    pub to_journal: bool,
}

/// A log level directive that does not parse.
#[derive(thiserror::Error, Debug)]
#[error("bad log level {directive:?}: {message}")]
pub struct LogLevelError {
    /// What was given.
    pub directive: String,
    /// tracing's reason.
    pub message: String,
}

/// Directive added unless the operator names glommio: glommio logs at
/// debug level from `Drop` of files held in thread-locals, which runs while
/// a shard thread's thread-locals are being destroyed; the fmt layer's own
/// thread-local buffer may be gone by then and the process aborts. Its
/// debug lines are not worth that.
pub const GLOMMIO_IO_DIRECTIVE: &str = "glommio::io=info";

/// Parses an `EnvFilter` directive ("info", "warn,corestream::group=debug").
pub fn parse_level(directive: &str) -> Result<EnvFilter, LogLevelError> {
    let filter = EnvFilter::try_new(directive).map_err(|e| LogLevelError {
        directive: directive.to_string(),
        message: e.to_string(),
    })?;
    Ok(with_noisy_crates_capped(filter, directive))
}

/// Added unless the operator names openraft: it logs every step of an
/// election and each start-up at info level, with multi-kilobyte state
/// dumps; its warnings (an unreachable peer) are what an operator needs.
pub const OPENRAFT_DIRECTIVE: &str = "openraft=warn";

fn with_noisy_crates_capped(filter: EnvFilter, directive: &str) -> EnvFilter {
    let caps = [
        ("glommio", GLOMMIO_IO_DIRECTIVE),
        ("openraft", OPENRAFT_DIRECTIVE),
    ];
    caps.iter()
        .filter(|(target, _)| !directive.contains(target))
        .fold(filter, |filter, (_, cap)| match cap.parse() {
            Ok(d) => filter.add_directive(d),
            Err(_) => filter,
        })
}

impl LogControl {
    /// Installs the global subscriber: journal or stderr (see module doc),
    /// filtered by `RUST_LOG` if set, else by `level`.
    pub fn init(level: &str) -> LogControl {
        let from_env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
        let filter = EnvFilter::try_from_default_env()
            .map(|f| with_noisy_crates_capped(f, from_env.as_deref().unwrap_or_default()))
            .or_else(|_| parse_level(level))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let (filter, handle) = reload::Layer::new(filter);
        let to_journal = stderr_is_journal();
        let stderr = (!to_journal).then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        });
        let journal = to_journal.then_some(JournalLayer);
        let _ = BROKER_LOGGERS.set(Mutex::new(BrokerLoggers {
            handle: handle.clone(),
            root: from_env.unwrap_or_else(|| level.to_string()),
            levels: BTreeMap::new(),
        }));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(stderr)
            .with(journal)
            .try_init();
        LogControl { handle, to_journal }
    }

    /// Replaces the level filter (SIGHUP); BROKER_LOGGER levels set at run
    /// time are dropped.
    pub fn set_level(&self, level: &str) -> Result<(), LogLevelError> {
        let filter = parse_level(level)?;
        if let Some(Ok(mut loggers)) = BROKER_LOGGERS.get().map(Mutex::lock) {
            loggers.root = level.to_string();
            loggers.levels.clear();
        }
        self.handle.reload(filter).map_err(|e| LogLevelError {
            directive: level.to_string(),
            message: e.to_string(),
        })
    }
}

/// True when `$JOURNAL_STREAM` names the file stderr is open on.
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var(JOURNAL_STREAM_ENV) else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat on fd 2 with a zeroed out-struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut st) } != 0 {
        return false;
    }
    st.st_dev == dev && st.st_ino == ino
}

/// syslog priority of a tracing level.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// A journal field name from a tracing field name: upper-case ASCII,
/// digits and '_' only, not starting with '_' (reserved for trusted fields).
pub fn journal_field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('_') || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'F');
    }
    out
}

/// Collects an event's fields as journal `KEY=value` assignments.
#[derive(Default)]
struct JournalFields {
    message: String,
    fields: Vec<String>,
}

impl Visit for JournalFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl JournalFields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            let name = journal_field_name(field.name());
            // Keep the text readable too: "msg shard=1 topic=t".
            let _ = write!(self.message, " {}={value}", field.name());
            self.fields.push(format!("{name}={value}"));
        }
    }
}

/// Sends each event to journald as one structured entry.
struct JournalLayer;

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let entry = journal_entry(event);
        let refs: Vec<&str> = entry.iter().map(String::as_str).collect();
        systemd::journal::send(&refs);
    }
}

/// The journal entry of one event: `MESSAGE` (with the fields appended as
/// text), `PRIORITY`, identifier, target, code location, thread, then each
/// tracing field as its own journal field (`shard` -> `SHARD`).
fn journal_entry(event: &Event<'_>) -> Vec<String> {
    let meta = event.metadata();
    let mut visitor = JournalFields::default();
    event.record(&mut visitor);
    let mut entry = vec![
        format!("MESSAGE={}", visitor.message.trim_start()),
        format!("PRIORITY={}", priority(meta.level())),
        format!("SYSLOG_IDENTIFIER={SYSLOG_IDENTIFIER}"),
        format!("TARGET={}", meta.target()),
    ];
    if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
        entry.push(format!("CODE_FILE={file}"));
        entry.push(format!("CODE_LINE={line}"));
    }
    if let Some(name) = std::thread::current().name() {
        entry.push(format!("THREAD={name}"));
    }
    entry.extend(visitor.fields);
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_journal_field_names() {
        assert_eq!(journal_field_name("shard"), "SHARD");
        assert_eq!(journal_field_name("topic.name"), "TOPIC_NAME");
        assert_eq!(journal_field_name("_secret"), "F_SECRET");
        assert_eq!(journal_field_name("1x"), "F1X");
    }

    #[test]
    fn logging_priorities_and_levels() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::INFO), 6);
        assert!(parse_level("warn,corestream::group=debug").is_ok());
        assert!(parse_level("info,=[").is_err());
    }

    /// Captures the journal entries the journal layer would send.
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.lock().unwrap().push(journal_entry(event));
        }
    }

    #[test]
    fn logging_journal_entry_has_structured_fields() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(shard = 1, topic = "orders", partition = 7, "flush failed");
        });
        let entries = seen.lock().unwrap();
        let entry = &entries[0];
        for field in [
            "MESSAGE=flush failed shard=1 topic=orders partition=7",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=corestreamd",
            "SHARD=1",
            "TOPIC=orders",
            "PARTITION=7",
        ] {
            assert!(entry.iter().any(|f| f == field), "{field} not in {entry:?}");
        }
        assert!(entry.iter().any(|f| f.starts_with("CODE_LINE=")));
    }
}
