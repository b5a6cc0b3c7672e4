//! sd_notify: the only place the broker talks to its service manager.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to the unix socket
//! named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace). It is small enough to speak directly, so this module does not
//! link libsystemd's `sd_notify` (the `systemd` crate's daemon module would
//! pull in its bus feature set); it works the same on any Linux and is
//! testable with a plain datagram socket.
//!
//! Decisions:
//! - Messages are sent from the main thread only (start-up, supervisor
//!   loop, stop), never from a shard thread: a send is a syscall.
//! - Without `$NOTIFY_SOCKET` every call is a no-op, so the broker behaves
//!   the same outside systemd.
//! - A failed send is logged once per kind of failure and otherwise ignored:
//!   the broker keeps serving even if the manager went away.
//! - The watchdog interval is half of `$WATCHDOG_USEC` (systemd's advice),
//!   and only when `$WATCHDOG_PID` is unset or names this process.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tracing::warn;

/// Environment variable naming the notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Environment variable with the watchdog timeout, in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// Environment variable naming the process the watchdog is meant for.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";
/// Longest STATUS= text sent; systemd shows one line anyway.
pub const STATUS_BYTES_MAX: usize = 256;
/// Shortest watchdog ping interval accepted, whatever WATCHDOG_USEC says.
pub const WATCHDOG_INTERVAL_MIN: Duration = Duration::from_millis(100);

/// One state change for the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Start-up finished: every shard listens and recovery is done.
    Ready,
    /// Free-form status line (progress, state).
    Status(String),
    /// The watchdog keep-alive: every shard answered a ping.
    Watchdog,
    /// SIGHUP reload started; `monotonic_usec` is CLOCK_MONOTONIC now.
    Reloading {
        /// CLOCK_MONOTONIC in microseconds, as systemd 253+ asks for.
        monotonic_usec: u64,
    },
    /// Stop started.
    Stopping,
}

/// Renders notices as one sd_notify datagram: one `KEY=VALUE` per line.
/// STATUS text is cut to [`STATUS_BYTES_MAX`] and newlines become spaces,
/// because a newline would start a new assignment.
pub fn format_notices(notices: &[Notice]) -> String {
    let mut out = String::new();
    for notice in notices {
        match notice {
            Notice::Ready => out.push_str("READY=1\n"),
            Notice::Watchdog => out.push_str("WATCHDOG=1\n"),
            Notice::Stopping => out.push_str("STOPPING=1\n"),
            Notice::Reloading { monotonic_usec } => {
                out.push_str(&format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\n"))
            }
            Notice::Status(text) => {
                let mut line: String = text
                    .chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                    .collect();
                if line.len() > STATUS_BYTES_MAX {
                    let mut cut = STATUS_BYTES_MAX;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                out.push_str("STATUS=");
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

/// The parsed `$NOTIFY_SOCKET` address.
fn socket_addr(text: &str) -> std::io::Result<SocketAddr> {
    if let Some(name) = text.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else {
        SocketAddr::from_pathname(text)
    }
}

/// The connection to the service manager, or nothing outside systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr, String)>,
    watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and the watchdog variables. A malformed value
    /// is logged and treated as absent.
    pub fn from_env() -> Notifier {
        let target = std::env::var(NOTIFY_SOCKET_ENV).ok().and_then(|path| {
            let made = socket_addr(&path).and_then(|addr| Ok((UnixDatagram::unbound()?, addr)));
            match made {
                Ok((socket, addr)) => Some((socket, addr, path)),
                Err(e) => {
                    warn!("{NOTIFY_SOCKET_ENV}={path:?} unusable, not notifying systemd: {e}");
                    None
                }
            }
        });
        let watchdog_interval = watchdog_interval(
            std::env::var(WATCHDOG_USEC_ENV).ok().as_deref(),
            std::env::var(WATCHDOG_PID_ENV).ok().as_deref(),
            std::process::id(),
        );
        Notifier {
            target,
            watchdog_interval,
        }
    }

    /// A notifier that sends nothing (tests, or no systemd).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog_interval: None,
        }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send WATCHDOG=1 (half the manager's timeout), if the
    /// manager asked for a watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref().and(self.watchdog_interval)
    }

    /// Sends the notices as one datagram (no-op outside systemd).
    pub fn send(&self, notices: &[Notice]) {
        let Some((socket, addr, path)) = &self.target else {
            return;
        };
        let datagram = format_notices(notices);
        if let Err(e) = socket.send_to_addr(datagram.as_bytes(), addr) {
            warn!("sd_notify to {path} failed ({}): {e}", datagram.trim_end());
        }
    }

    /// READY=1 with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&[Notice::Ready, Notice::Status(status.to_string())]);
    }

    /// STATUS=...
    pub fn status(&self, status: &str) {
        self.send(&[Notice::Status(status.to_string())]);
    }

    /// WATCHDOG=1.
    pub fn watchdog(&self) {
        self.send(&[Notice::Watchdog]);
    }

    /// RELOADING=1 (the caller sends READY=1 when the reload is done).
    pub fn reloading(&self) {
        self.send(&[Notice::Reloading {
            monotonic_usec: monotonic_usec(),
        }]);
    }

    /// STOPPING=1 with a status line.
    pub fn stopping(&self, status: &str) {
        self.send(&[Notice::Stopping, Notice::Status(status.to_string())]);
    }
}

/// Half of `WATCHDOG_USEC` (at least [`WATCHDOG_INTERVAL_MIN`]) when the
/// watchdog is meant for `pid`.
pub fn watchdog_interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(for_pid) = for_pid {
        if for_pid.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some((Duration::from_micros(usec) / 2).max(WATCHDOG_INTERVAL_MIN))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_format_ready_and_status() {
        let text = format_notices(&[Notice::Ready, Notice::Status("serving 2 shards".into())]);
        assert_eq!(text, "READY=1\nSTATUS=serving 2 shards\n");
        assert_eq!(format_notices(&[Notice::Watchdog]), "WATCHDOG=1\n");
        assert_eq!(format_notices(&[Notice::Stopping]), "STOPPING=1\n");
        assert_eq!(
            format_notices(&[Notice::Reloading { monotonic_usec: 42 }]),
            "RELOADING=1\nMONOTONIC_USEC=42\n"
        );
    }

    #[test]
    fn notify_status_has_no_newline_and_is_bounded() {
        let text = format_notices(&[Notice::Status("a\nREADY=1".into())]);
        assert_eq!(text, "STATUS=a READY=1\n");
        let long = "é".repeat(STATUS_BYTES_MAX);
        let text = format_notices(&[Notice::Status(long)]);
        assert!(text.len() <= "STATUS=\n".len() + STATUS_BYTES_MAX);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn notify_watchdog_interval_rules() {
        assert_eq!(
            watchdog_interval(Some("2000000"), None, 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(watchdog_interval(Some("2000000"), Some("8"), 7), None);
        assert_eq!(
            watchdog_interval(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            watchdog_interval(Some("10"), None, 7),
            Some(WATCHDOG_INTERVAL_MIN)
        );
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn notify_sends_datagram_to_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                socket_addr(path.to_str().unwrap()).unwrap(),
                path.display().to_string(),
            )),
            watchdog_interval: None,
        };
        notifier.ready("up");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up\n");
    }
}
