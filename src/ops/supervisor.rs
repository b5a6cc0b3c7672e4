//! The main thread once the shards run: signals, watchdog, reload, stop.
//!
//! Decisions:
//! - SIGTERM, SIGINT and SIGHUP are blocked in the main thread before any
//!   executor starts (threads inherit the mask), and only this loop takes
//!   them, with `sigtimedwait`. No signal handler runs on a shard thread.
//! - The `sigtimedwait` timeout is the watchdog interval. On each tick the
//!   main thread sends every shard a `ShardMsg::Run` job through the mesh
//!   and notifies WATCHDOG=1 only when all of them answered within one
//!   interval: the keep-alive proves every executor still runs tasks, not
//!   just that the process exists. A silent shard is logged and the
//!   keep-alive skipped, so systemd restarts a wedged broker.
//! - SIGHUP re-resolves the whole configuration (file, then flags and env
//!   on top), so a bad edit is refused with the same one-line error as at
//!   start and the running config is kept. Dynamic keys: `log_level`
//!   (filter swapped in place) and `shutdown_timeout_ms`. Other keys that
//!   changed are named in a warning: they need a restart.
//! - A stop is bounded by `shutdown_timeout_ms`: the shards stop accepting,
//!   drain in-flight requests, flush and checkpoint; if they have not all
//!   acknowledged by then, the process logs which ones and exits with
//!   [`EXIT_STOP_TIMEOUT`] (acknowledged data is already fsynced; the next
//!   start recovers the rest).

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use tracing::{error, info, warn};

use super::logging::LogControl;
use super::notify::Notifier;
use crate::config::{Config, Flags};
use crate::shard::{ShardJob, ShardMsg, ShardSender};

/// Exit status when the graceful stop overran `shutdown_timeout_ms`.
pub const EXIT_STOP_TIMEOUT: i32 = 3;
/// Signals the supervisor takes.
const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks the supervisor's signals in this thread; call before starting
/// any executor so every thread inherits the mask.
pub fn block_signals() {
    let set = signal_set();
    // SAFETY: a valid sigset; pthread_sigmask only changes this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for one of the blocked signals, at most `timeout` (forever when
/// `None`). `None` on timeout.
fn wait_signal(timeout: Option<Duration>) -> Option<libc::c_int> {
    let set = signal_set();
    loop {
        let sig = match timeout {
            Some(t) => {
                let ts = libc::timespec {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                // SAFETY: valid set and timespec; siginfo may be null.
                unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) }
            }
            // SAFETY: valid set; siginfo may be null.
            None => unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) },
        };
        if sig > 0 {
            return Some(sig);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => return None,
            _ => continue, // EINTR
        }
    }
}

/// Sends every shard a no-op job and waits up to `wait` for the answers.
/// Returns the shards that did not answer.
pub fn ping_shards(senders: &[ShardSender], wait: Duration) -> Vec<usize> {
    let (tx, rx) = std_mpsc::channel::<usize>();
    let mut answered = vec![false; senders.len()];
    for sender in senders {
        let tx = tx.clone();
        let job: ShardJob = Box::new(move |shard| {
            Box::pin(async move {
                let _ = tx.send(shard.id);
            })
        });
        let _ = sender.unbounded_send(ShardMsg::Run(job));
    }
    drop(tx);
    let deadline = Instant::now() + wait;
    while answered.iter().any(|a| !a) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(id) => {
                if let Some(a) = answered.get_mut(id) {
                    *a = true;
                }
            }
            Err(_) => break,
        }
    }
    (0..senders.len()).filter(|&i| !answered[i]).collect()
}

/// The main thread's loop after start-up.
pub struct Supervisor {
    /// sd_notify.
    pub notifier: Notifier,
    /// Log level control, when logging was set up by the binary.
    pub log: Option<LogControl>,
    /// The flags the process started with (re-applied on reload).
    pub flags: Option<Flags>,
    /// The configuration in force.
    pub config: Config,
}

impl Supervisor {
    /// Serves signals and the watchdog until SIGTERM/SIGINT.
    pub fn run_until_stop(&mut self, senders: &[ShardSender]) {
        let interval = self.notifier.watchdog_interval();
        if let Some(i) = interval {
            info!(
                "systemd watchdog on: pinging every shard each {} ms",
                i.as_millis()
            );
            self.watchdog(senders, i);
        }
        loop {
            match wait_signal(interval) {
                Some(libc::SIGHUP) => self.reload(),
                Some(sig) => {
                    info!("signal {sig} received: stopping (closing every partition cleanly)");
                    return;
                }
                None => {
                    if let Some(i) = interval {
                        self.watchdog(senders, i);
                    }
                }
            }
        }
    }

    fn watchdog(&self, senders: &[ShardSender], interval: Duration) {
        let silent = ping_shards(senders, interval);
        if silent.is_empty() {
            self.notifier.watchdog();
        } else {
            error!(
                "shards {silent:?} did not answer the watchdog ping within {} ms: \
                 withholding WATCHDOG=1",
                interval.as_millis()
            );
        }
    }

    /// SIGHUP: re-read the config; apply the dynamic keys.
    fn reload(&mut self) {
        // Certificates reload from the same files, flags or not; a
        // connection keeps the session it has (security::tls).
        if crate::security::tls::is_installed() {
            match crate::security::tls::reload() {
                Ok(()) => info!("SIGHUP: TLS certificates reloaded"),
                Err(e) => {
                    error!("SIGHUP: TLS certificates not reloaded, keeping the old ones: {e}")
                }
            }
        }
        let Some(flags) = self.flags.clone() else {
            warn!("SIGHUP: nothing to reload (started without flags)");
            return;
        };
        self.notifier.reloading();
        match Config::resolve(flags) {
            Ok(new) => {
                let restart = static_changes(&self.config, &new);
                if new.ops.log_level != self.config.ops.log_level {
                    if let Some(log) = &self.log {
                        if let Err(e) = log.set_level(&new.ops.log_level) {
                            error!("SIGHUP: {e}");
                        }
                    }
                }
                info!(
                    "SIGHUP: config reloaded; log_level={:?}, shutdown_timeout_ms={}",
                    new.ops.log_level, new.ops.shutdown_timeout_ms
                );
                if !restart.is_empty() {
                    warn!("SIGHUP: changed keys take effect only after a restart: {restart:?}");
                }
                self.config.ops.log_level = new.ops.log_level;
                self.config.ops.shutdown_timeout_ms = new.ops.shutdown_timeout_ms;
            }
            Err(e) => error!("SIGHUP: config refused, keeping the running one: {e}"),
        }
        self.notifier.ready("serving (config reloaded)");
    }

    /// Asks every shard to stop and waits at most `shutdown_timeout_ms` for
    /// all of them. `Err(shards)` names the ones that did not finish.
    pub fn stop_shards(&self, senders: &[ShardSender]) -> Result<(), Vec<usize>> {
        let timeout = Duration::from_millis(self.config.ops.shutdown_timeout_ms);
        let (done_tx, done_rx) = std_mpsc::channel::<usize>();
        let draining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(senders.len()));
        for (shard, sender) in senders.iter().enumerate() {
            let (reply, ack) = oneshot::channel();
            let stop = ShardMsg::Shutdown {
                reply,
                draining: draining.clone(),
            };
            if sender.unbounded_send(stop).is_err() {
                // Already gone: nothing to wait for, nothing it drains.
                draining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                let _ = done_tx.send(shard);
                continue;
            }
            let done = done_tx.clone();
            // One small waiter thread per shard: the main thread must not
            // block on a oneshot without a deadline.
            std::thread::spawn(move || {
                if futures::executor::block_on(ack).is_err() {
                    error!(shard, "shard stopped without closing its partitions");
                }
                let _ = done.send(shard);
            });
        }
        drop(done_tx);
        let deadline = Instant::now() + timeout;
        let mut finished = vec![false; senders.len()];
        while finished.iter().any(|f| !f) {
            match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(shard) => finished[shard] = true,
                Err(_) => break,
            }
        }
        let late: Vec<usize> = (0..senders.len()).filter(|&s| !finished[s]).collect();
        if late.is_empty() {
            Ok(())
        } else {
            Err(late)
        }
    }
}

/// Keys whose change needs a restart.
pub fn static_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks = [
        ("listen", old.listen != new.listen),
        (
            "listeners, TLS files, initial user",
            old.security != new.security,
        ),
        (
            "advertised_addr",
            (&old.advertised_host, old.advertised_port)
                != (&new.advertised_host, new.advertised_port),
        ),
        (
            "data_dir",
            old.data_dir != new.data_dir
                && new.data_dir.canonicalize().ok() != Some(old.data_dir.clone()),
        ),
        ("shards", old.shards != new.shards),
        ("node_id", old.node_id != new.node_id),
        (
            "auto_create_topics",
            old.auto_create_topics != new.auto_create_topics,
        ),
        (
            "default_partitions",
            old.default_partitions != new.default_partitions,
        ),
        ("segment_bytes", old.segment_bytes != new.segment_bytes),
        (
            "request_bytes_max",
            old.request_bytes_max != new.request_bytes_max,
        ),
        (
            "offsets_topic_partitions",
            old.offsets_topic_partitions != new.offsets_topic_partitions,
        ),
        ("connection limits", old.limits != new.limits),
        ("admin_listen", old.ops.admin_listen != new.ops.admin_listen),
        ("lag rules", old.ops.lag_rules != new.ops.lag_rules),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(k, _)| k)
        .collect()
}
