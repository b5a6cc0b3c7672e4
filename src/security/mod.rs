//! Security: Kafka-style listeners, TLS, SASL (PLAIN, SCRAM-SHA-256/512)
//! and the SCRAM credential store.
//!
//! - `acl`: Kafka ACLs and the per-shard authorizer check.
//! - `listener`: parsing `PROTOCOL://host:port` lists; each listener is
//!   bound by every shard (SO_REUSEPORT) and advertises its own address to
//!   the clients that came in on it.
//! - `inter_broker`: what a broker presents to its peers (listener, SASL
//!   login, the CA their certificates chain to); `scram_client` is the
//!   client side of SCRAM it logs in with.
//! - `tls`: rustls server config, reloadable on SIGHUP, and the mTLS
//!   principal.
//! - `sasl` / `scram`: one connection's SASL state and the SCRAM exchange.
//! - `reauth`: KIP-368 session lifetimes and re-authentication.
//!   Credentials (salted, iterated; never a clear password) are part of the
//!   metadata snapshot (`metadata::Snapshot::users`), changed through the
//!   metadata owner like topics (`MetaChange::AlterScramCredentials`) and
//!   persisted with them in `meta/topics.json`.
//!
//! Each connection carries a [`ConnectionContext`]: its listener, its
//! peer, its SASL state and its principal (`User:ANONYMOUS` until
//! authenticated). It is made once per connection; a request holds an
//! `Rc` to it, so a PLAINTEXT request pays a reference count, nothing more.

pub mod acl;
pub mod initial_user;
pub mod inter_broker;
pub mod listener;
pub mod reauth;
pub mod sasl;
pub mod scram;
pub mod scram_client;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub use listener::{Listener, SecurityProtocol};
pub use sasl::{SaslSession, ScramUsers};

/// Kafka's principal for a client that did not authenticate.
pub const ANONYMOUS_PRINCIPAL: &str = "User:ANONYMOUS";

/// What one connection knows about its security.
#[derive(Debug)]
pub struct ConnectionContext {
    /// The listener the client came in on.
    pub listener: Rc<Listener>,
    /// The client's address, for logs.
    pub peer: String,
    /// The client's IP address alone, as ACL hosts name it.
    pub host: String,
    /// `User:<name>`; [`ANONYMOUS_PRINCIPAL`] until authenticated.
    pub principal: RefCell<String>,
    /// SASL state (SASL listeners only).
    pub sasl: RefCell<SaslSession>,
    /// Authentication failed: answer what is queued, then close.
    pub auth_failed: Cell<bool>,
    /// Quota throttle (KIP-219): the reader reads no request before this
    /// (`quota`).
    pub muted_until: Cell<Option<std::time::Instant>>,
    /// The SASL session's end (KIP-368, `reauth`).
    pub session: reauth::SessionLifetime,
}

impl ConnectionContext {
    /// A fresh connection on `listener` from `peer`.
    pub fn new(listener: Rc<Listener>, peer: String) -> ConnectionContext {
        ConnectionContext {
            listener,
            host: host_of(&peer),
            peer,
            principal: RefCell::new(ANONYMOUS_PRINCIPAL.to_string()),
            sasl: RefCell::new(SaslSession::default()),
            auth_failed: Cell::new(false),
            muted_until: Cell::new(None),
            session: reauth::SessionLifetime::default(),
        }
    }

    /// SASL sessions on this connection end after `max_reauth_ms` unless
    /// the client re-authenticates (KIP-368; 0: they never end).
    pub fn with_max_reauth_ms(mut self, max_reauth_ms: u64) -> ConnectionContext {
        self.session = reauth::SessionLifetime::new(max_reauth_ms);
        self
    }

    /// How long ago the authenticated SASL session ended (KIP-368), if it
    /// has: the connection must then close. `None` while a
    /// re-authentication runs (the old session cannot end under it), and
    /// after one `Cell` read when sessions do not end.
    #[inline]
    pub fn session_expired_for(&self) -> Option<std::time::Duration> {
        let at = self.session.expires_at()?;
        let now = std::time::Instant::now();
        (now >= at && self.sasl.borrow().is_authenticated()).then(|| now - at)
    }

    /// Mutes the connection for `ms` from now (a quota throttle), unless
    /// it is already muted for longer.
    pub fn mute_for(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        if self.muted_until.get().is_none_or(|at| at < until) {
            self.muted_until.set(Some(until));
        }
    }

    /// The end of the connection's mute, if it is still muted; clears a
    /// mute that is over.
    pub fn muted(&self) -> Option<std::time::Instant> {
        let until = self.muted_until.get()?;
        if until <= std::time::Instant::now() {
            self.muted_until.set(None);
            return None;
        }
        Some(until)
    }

    /// Whether requests other than the SASL ones may run yet.
    pub fn needs_authentication(&self) -> bool {
        self.listener.protocol.uses_sasl() && !self.sasl.borrow().is_authenticated()
    }

    /// The connection's principal, e.g. `User:alice`.
    pub fn principal(&self) -> String {
        self.principal.borrow().clone()
    }

    /// Marks the SASL exchange as failed (the connection answers what is
    /// queued, after `connection_failed_authentication_delay_ms`, then
    /// closes) and counts it once in /metrics.
    pub fn fail_authentication(&self) {
        if !self.auth_failed.replace(true) {
            crate::ops::metrics::authentication(false);
        }
    }
}

/// The IP of a `host:port` (or `[v6]:port`) peer; the whole text when it
/// is not one (the console's internal client).
fn host_of(peer: &str) -> String {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => peer.to_string(),
    }
}
