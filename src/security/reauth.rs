//! KIP-368: SASL sessions that expire, and re-authentication on the same
//! connection.
//!
//! With `connections_max_reauth_ms` (Kafka's connections.max.reauth.ms)
//! above 0, every successful SASL authentication starts a session of that
//! length: SaslAuthenticate v1+ tells the client (`session_lifetime_ms`),
//! and a client that can re-authenticates before it ends by sending a new
//! SaslHandshake and SaslAuthenticate on the same connection (librdkafka
//! 2.2 and later, Java 2.2 and later). A request read after the session
//! ended closes the connection, whatever the client's version, as Kafka's
//! broker does: so a deleted user or a changed password stops working on
//! open connections within the lifetime, not only on new ones.
//!
//! Kafka's rules, kept here:
//! - re-authentication must use the mechanism of the first authentication
//!   and end with the same principal; otherwise it fails and the
//!   connection closes;
//! - at most one re-authentication starts per [`REAUTH_INTERVAL_MIN`];
//!   a handshake sooner than that (or with re-authentication off) is an
//!   ILLEGAL_SASL_STATE, as a second handshake always was;
//! - while it runs, the connection takes only SASL requests (the gate of
//!   `server::secure`), and the old session cannot expire under it.
//!
//! Off (0, Kafka's default) costs one `Cell` read per request.
//! `connections_max_reauth_ms` is one value for the broker, where Kafka also
//! allows one per listener and mechanism.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Kafka refuses a re-authentication started within a second of the last.
pub const REAUTH_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// One connection's SASL session clock.
#[derive(Debug, Default)]
pub struct SessionLifetime {
    /// connections.max.reauth.ms; 0 when sessions do not expire.
    max_reauth_ms: u64,
    /// When the current session ends (`None`: it does not, or no session).
    expires_at: Cell<Option<Instant>>,
    /// When the last re-authentication began.
    reauth_started_at: Cell<Option<Instant>>,
}

/// Why a re-authentication may not begin now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReauthRefused {
    /// connections_max_reauth_ms is 0: sessions never end.
    #[error("re-authentication is off (connections_max_reauth_ms = 0)")]
    Off,
    /// The last one began less than [`REAUTH_INTERVAL_MIN`] ago.
    #[error("the last re-authentication began less than {REAUTH_INTERVAL_MIN:?} ago")]
    TooSoon,
}

impl SessionLifetime {
    /// Sessions of `max_reauth_ms` (0: they never end).
    pub fn new(max_reauth_ms: u64) -> SessionLifetime {
        SessionLifetime {
            max_reauth_ms,
            ..SessionLifetime::default()
        }
    }

    /// An authentication (first or again) succeeded at `now`: the session's
    /// lifetime in ms, for SaslAuthenticate's `session_lifetime_ms` (0 when
    /// sessions do not end).
    pub fn authenticated(&self, now: Instant) -> i64 {
        if self.max_reauth_ms == 0 {
            return 0;
        }
        self.expires_at
            .set(Some(now + Duration::from_millis(self.max_reauth_ms)));
        self.lifetime_ms()
    }

    /// When the current session ends; `None` when it does not.
    #[inline]
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at.get()
    }

    /// How long ago the session ended, if it has; `None` while it lasts or
    /// when sessions do not end.
    pub fn expired_for(&self, now: Instant) -> Option<Duration> {
        let at = self.expires_at.get()?;
        (now >= at).then(|| now - at)
    }

    /// A re-authentication begins at `now`, unless refused.
    pub fn begin_reauthentication(&self, now: Instant) -> Result<(), ReauthRefused> {
        if self.max_reauth_ms == 0 {
            return Err(ReauthRefused::Off);
        }
        if let Some(last) = self.reauth_started_at.get() {
            if now.saturating_duration_since(last) < REAUTH_INTERVAL_MIN {
                return Err(ReauthRefused::TooSoon);
            }
        }
        self.reauth_started_at.set(Some(now));
        Ok(())
    }

    /// When the running re-authentication began (for its latency).
    pub fn reauth_started_at(&self) -> Option<Instant> {
        self.reauth_started_at.get()
    }

    /// connections_max_reauth_ms, for log lines.
    pub fn max_reauth_ms(&self) -> u64 {
        self.max_reauth_ms
    }

    /// A session's length in ms, for SaslAuthenticate (0: no end).
    pub fn lifetime_ms(&self) -> i64 {
        i64::try_from(self.max_reauth_ms).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reauth_off_sessions_never_end_and_reauthentication_is_refused() {
        let s = SessionLifetime::new(0);
        let t0 = Instant::now();
        assert_eq!(s.authenticated(t0), 0);
        assert_eq!(s.expired_for(t0 + Duration::from_secs(86_400)), None);
        assert_eq!(s.begin_reauthentication(t0), Err(ReauthRefused::Off));
    }

    #[test]
    fn reauth_session_ends_after_its_lifetime_and_a_new_one_extends_it() {
        let s = SessionLifetime::new(2_000);
        let t0 = Instant::now();
        assert_eq!(s.authenticated(t0), 2_000);
        assert_eq!(s.expired_for(t0 + Duration::from_millis(1_999)), None);
        assert_eq!(
            s.expired_for(t0 + Duration::from_millis(2_500)),
            Some(Duration::from_millis(500))
        );
        let t1 = t0 + Duration::from_millis(1_500);
        s.begin_reauthentication(t1).unwrap();
        assert_eq!(s.authenticated(t1), 2_000);
        assert_eq!(s.expired_for(t0 + Duration::from_millis(3_000)), None);
        assert!(s.expired_for(t1 + Duration::from_millis(2_000)).is_some());
    }

    #[test]
    fn reauth_twice_within_a_second_is_refused() {
        let s = SessionLifetime::new(60_000);
        let t0 = Instant::now();
        s.authenticated(t0);
        s.begin_reauthentication(t0).unwrap();
        assert_eq!(
            s.begin_reauthentication(t0 + Duration::from_millis(999)),
            Err(ReauthRefused::TooSoon)
        );
        s.begin_reauthentication(t0 + REAUTH_INTERVAL_MIN).unwrap();
    }
}
