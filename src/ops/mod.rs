//! Operations: what an operator and systemd see of the broker.
//!
//! - [`notify`]: every sd_notify message (READY, STATUS, WATCHDOG,
//!   STOPPING, RELOADING) goes through this one module.
//! - [`logging`]: tracing to journald (structured fields) under systemd,
//!   to stderr otherwise, with a log level that SIGHUP can change.
//! - [`supervisor`]: the main thread after start-up: signals (stop, reload),
//!   the watchdog that pings every shard, and the bounded stop.
//! - [`metrics`]: per-shard counters kept in thread-locals (no shared
//!   locks), gathered by a scrape with `Shard::run_on` jobs; [`exposition`]
//!   renders them in the Prometheus text format ([`replication_metrics`]:
//!   follower lag in time and replication's user-space copies).
//! - [`fatal`]: the daemon's panic hook: any panic aborts the process.
//! - [`admin`]: the admin HTTP port (`admin_listen`) on shard 0: `/metrics`,
//!   health and readiness, consumer lag as JSON, and the web console
//!   (`crate::console`); [`http`] is its bounded HTTP/1.1 reader.
//!
//! Nothing here runs on a shard's hot path except the counter updates,
//! which are `Cell` increments on the shard's own thread.

pub mod admin;
pub mod exposition;
pub mod fatal;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod replication_metrics;
pub mod supervisor;
