//! One connection's SASL state: handshake, then PLAIN or SCRAM tokens.
//!
//! The tokens arrive either inside SaslAuthenticate requests (KIP-152, after
//! a v1 SaslHandshake) or, after a v0 SaslHandshake, as raw size-prefixed
//! frames with no Kafka header; the connection loop (`server::connection`)
//! tells which and frames the answer, this type only steps the mechanism.
//!
//! PLAIN checks the password against the user's stored SCRAM credential
//! (SCRAM-SHA-512 first, else SCRAM-SHA-256), as Redpanda does: the broker
//! never stores a password in clear. That check runs PBKDF2 with the
//! credential's iterations (4096 by default: about 5 ms per login on the
//! loaded 2-vCPU development VM, BENCHMARKS.md "Security"; four times that
//! at 16384), once per connection. It is too long for a
//! shard's executor thread (every partition of the shard would wait), so
//! [`SaslSession::step`] does not run it: it answers
//! [`SaslStep::CheckPlain`], the caller runs [`PlainCheck::verify`] where
//! it likes (the server: glommio's blocking thread pool,
//! `handlers::sasl_authenticate`), and [`SaslSession::finish_plain`] takes
//! the [`PlainVerified`] proof, which only a successful `verify` can make.
//! A cache of verified passwords was the other way considered and not
//! taken: it would keep a fast-to-brute-force image of each password in
//! memory, which is what PBKDF2 is there to prevent.

use std::collections::BTreeMap;

use super::scram::{ScramCredential, ScramError, ScramMechanism, ScramServer, ScramStep};

/// SASL mechanisms served, in the order SaslHandshake lists them.
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
/// Longest PLAIN token accepted, in bytes.
const PLAIN_TOKEN_BYTES_MAX: usize = 1024;

/// Users and their SCRAM credentials, by name and mechanism.
pub type ScramUsers = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// A SASL mechanism chosen by SaslHandshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// RFC 5802 / 7677.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    /// By SASL name; `None` when not served.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            return Some(Mechanism::Plain);
        }
        ScramMechanism::from_name(name).map(Mechanism::Scram)
    }
}

/// Where a connection is in its SASL exchange.
#[derive(Debug, Default)]
pub enum SaslSession {
    /// No handshake yet.
    #[default]
    AwaitingHandshake,
    /// Handshake done; tokens expected.
    Exchanging {
        /// The mechanism.
        mechanism: Mechanism,
        /// Tokens come as raw frames (after a v0 handshake).
        raw: bool,
        /// SCRAM's state between its two messages.
        scram: Option<ScramServer>,
        /// Re-authenticating (KIP-368) the session of this user: the
        /// exchange must end with the same one.
        reauth_of: Option<String>,
    },
    /// Authenticated.
    Authenticated {
        /// The user name (principal `User:<user>`).
        user: String,
        /// How: a re-authentication must use the same mechanism.
        mechanism: Mechanism,
    },
}

/// What a token produced.
#[derive(Debug)]
pub enum SaslStep {
    /// Send this token back and expect another.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `reply` (maybe empty).
    Done {
        /// The user name (principal `User:<user>`).
        user: String,
        /// The last server token.
        reply: Vec<u8>,
    },
    /// A well-formed PLAIN token: its password must be checked (PBKDF2)
    /// with [`PlainCheck::verify`], then handed to
    /// [`SaslSession::finish_plain`]. The session is not authenticated
    /// until then.
    CheckPlain(PlainCheck),
}

/// A PLAIN password waiting for its PBKDF2 check. `Send`, so the check can
/// run on another thread; its `Debug` never shows the password.
pub struct PlainCheck {
    user: String,
    password: Vec<u8>,
    /// The credential PLAIN checks against; `None` for an unknown user
    /// (which still fails only in `verify`, so both cases take a trip
    /// through the same path).
    credential: Option<(ScramMechanism, ScramCredential)>,
}

impl std::fmt::Debug for PlainCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlainCheck {{ user: {:?}, .. }}", self.user)
    }
}

/// Proof that a PLAIN password matched its user's credential: only
/// [`PlainCheck::verify`] makes one.
#[derive(Debug)]
pub struct PlainVerified {
    user: String,
}

impl PlainCheck {
    /// The user name the token claims.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs PBKDF2 over the password with the credential's salt and
    /// iterations and compares (constant time) with the stored key. CPU
    /// bound for milliseconds: keep it off a shard's executor thread.
    pub fn verify(self) -> Result<PlainVerified, SaslError> {
        let ok = self
            .credential
            .as_ref()
            .is_some_and(|(m, cred)| cred.matches_password(*m, &self.password));
        if ok {
            Ok(PlainVerified { user: self.user })
        } else {
            Err(SaslError::PlainFailed(self.user))
        }
    }
}

/// Why authentication failed. The log gets this text; the client gets
/// Kafka's generic message ([`SaslError::client_message`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    /// SaslAuthenticate before SaslHandshake, or after success.
    #[error("unexpected SASL token in state {0}")]
    UnexpectedToken(&'static str),
    /// A malformed PLAIN token.
    #[error("malformed PLAIN token: {0}")]
    PlainMalformed(&'static str),
    /// PLAIN with a wrong password or unknown user.
    #[error("PLAIN authentication failed for user {0:?}")]
    PlainFailed(String),
    /// A re-authentication (KIP-368) ended as another user.
    #[error("cannot change principals during re-authentication from User:{from} to User:{to}")]
    PrincipalChanged {
        /// The session's user.
        from: String,
        /// The user the new exchange proved.
        to: String,
    },
    /// The SCRAM exchange failed.
    #[error("{0}")]
    Scram(#[from] ScramError),
}

impl SaslError {
    /// What the client is told (Kafka's wording; no hint which part was wrong).
    pub fn client_message(&self, mechanism: &str) -> String {
        match self {
            // Kafka tells this one as it is: the credentials were valid.
            SaslError::PrincipalChanged { from, to } => format!(
                "Cannot change principals during re-authentication from User:{from} to User:{to}"
            ),
            _ => format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"),
        }
    }
}

impl SaslSession {
    /// Whether the client is authenticated.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, SaslSession::Authenticated { .. })
    }

    /// Whether the next frame is a raw token (v0 handshake done, not yet
    /// authenticated).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self, SaslSession::Exchanging { raw: true, .. })
    }

    /// The mechanism in use, for messages.
    pub fn mechanism_name(&self) -> &'static str {
        match self {
            SaslSession::Exchanging { mechanism, .. }
            | SaslSession::Authenticated { mechanism, .. } => mechanism.name(),
            SaslSession::AwaitingHandshake => "",
        }
    }

    /// Whether a re-authentication (KIP-368) is under way.
    pub fn is_reauthenticating(&self) -> bool {
        matches!(
            self,
            SaslSession::Exchanging {
                reauth_of: Some(_),
                ..
            }
        )
    }

    /// A SaslHandshake: selects the mechanism. `Err` when it is not
    /// served or a handshake was already made (Kafka: ILLEGAL_SASL_STATE).
    pub fn handshake(&mut self, name: &str, version: i16) -> Result<(), HandshakeError> {
        if !matches!(self, SaslSession::AwaitingHandshake) {
            return Err(HandshakeError::IllegalState);
        }
        let mechanism = Mechanism::from_name(name).ok_or(HandshakeError::Unsupported)?;
        *self = SaslSession::exchanging(mechanism, version == 0, None);
        Ok(())
    }

    /// A SaslHandshake on an authenticated session (KIP-368; the caller
    /// checked that re-authentication is on and not too soon): the same
    /// mechanism starts a new exchange that must prove the same user. A v0
    /// handshake cannot re-authenticate (its raw tokens would be taken for
    /// requests), as with Kafka.
    pub fn reauthenticate(&mut self, name: &str, version: i16) -> Result<(), HandshakeError> {
        let SaslSession::Authenticated { user, mechanism } = self else {
            return Err(HandshakeError::IllegalState);
        };
        if version == 0 {
            return Err(HandshakeError::IllegalState);
        }
        let asked = Mechanism::from_name(name).ok_or(HandshakeError::Unsupported)?;
        if asked != *mechanism {
            return Err(HandshakeError::MechanismChanged(*mechanism));
        }
        let user = std::mem::take(user);
        *self = SaslSession::exchanging(asked, false, Some(user));
        Ok(())
    }

    fn exchanging(mechanism: Mechanism, raw: bool, reauth_of: Option<String>) -> SaslSession {
        SaslSession::Exchanging {
            mechanism,
            raw,
            scram: match mechanism {
                Mechanism::Plain => None,
                Mechanism::Scram(m) => Some(ScramServer::Start(m)),
            },
            reauth_of,
        }
    }

    /// The exchange proved `user`: the session is authenticated, unless it
    /// re-authenticated another user (then it stays failed).
    fn complete(&mut self, user: &str) -> Result<(), SaslError> {
        let SaslSession::Exchanging {
            mechanism,
            reauth_of,
            ..
        } = self
        else {
            return Err(SaslError::UnexpectedToken("not exchanging"));
        };
        if let Some(from) = reauth_of.as_deref().filter(|from| *from != user) {
            let error = SaslError::PrincipalChanged {
                from: from.to_string(),
                to: user.to_string(),
            };
            *self = SaslSession::AwaitingHandshake;
            return Err(error);
        }
        *self = SaslSession::Authenticated {
            user: user.to_string(),
            mechanism: *mechanism,
        };
        Ok(())
    }

    /// One client token. On `Done` the session is authenticated; on
    /// `CheckPlain` it is once [`SaslSession::finish_plain`] takes the
    /// verified password; on failure it stays failed (the connection
    /// closes).
    pub fn step(&mut self, token: &[u8], users: &ScramUsers) -> Result<SaslStep, SaslError> {
        let step = match self {
            SaslSession::Exchanging {
                mechanism: Mechanism::Plain,
                ..
            } => plain(token, users)?,
            SaslSession::Exchanging {
                mechanism: Mechanism::Scram(m),
                scram: Some(server),
                ..
            } => {
                let m = *m;
                let lookup = |user: &str| users.get(user).and_then(|c| c.get(&m)).cloned();
                match server.step(token, lookup)? {
                    ScramStep::Continue(reply) => SaslStep::Continue(reply),
                    ScramStep::Done { user, server_final } => SaslStep::Done {
                        user,
                        reply: server_final,
                    },
                }
            }
            SaslSession::Exchanging { .. } => return Err(SaslError::UnexpectedToken("broken")),
            SaslSession::AwaitingHandshake => {
                return Err(SaslError::UnexpectedToken("awaiting handshake"))
            }
            SaslSession::Authenticated { .. } => {
                return Err(SaslError::UnexpectedToken("authenticated"))
            }
        };
        if let SaslStep::Done { user, .. } = &step {
            self.complete(user)?;
        }
        Ok(step)
    }

    /// Completes a PLAIN exchange with its verified password: the session
    /// is authenticated. Refused unless the session is still waiting for a
    /// PLAIN token.
    pub fn finish_plain(&mut self, verified: PlainVerified) -> Result<SaslStep, SaslError> {
        if !matches!(
            self,
            SaslSession::Exchanging {
                mechanism: Mechanism::Plain,
                ..
            }
        ) {
            return Err(SaslError::UnexpectedToken("not exchanging PLAIN"));
        }
        self.complete(&verified.user)?;
        Ok(SaslStep::Done {
            user: verified.user,
            reply: Vec::new(),
        })
    }

    /// [`SaslSession::step`] with any PLAIN check run right here, on this
    /// thread: for tests and tools, never for a shard's executor.
    pub fn step_inline(&mut self, token: &[u8], users: &ScramUsers) -> Result<SaslStep, SaslError> {
        match self.step(token, users)? {
            SaslStep::CheckPlain(check) => self.finish_plain(check.verify()?),
            step => Ok(step),
        }
    }
}

/// A SaslHandshake that cannot be accepted.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum HandshakeError {
    /// The mechanism is not served (UNSUPPORTED_SASL_MECHANISM).
    Unsupported,
    /// A second handshake (ILLEGAL_SASL_STATE).
    IllegalState,
    /// A re-authentication asked for another mechanism than the session's.
    MechanismChanged(Mechanism),
}

/// PLAIN: `authzid NUL authcid NUL password`, to be checked against the
/// user's SCRAM credential.
fn plain(token: &[u8], users: &ScramUsers) -> Result<SaslStep, SaslError> {
    if token.len() > PLAIN_TOKEN_BYTES_MAX {
        return Err(SaslError::PlainMalformed("token too long"));
    }
    let mut fields = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::PlainMalformed(
            "expected authzid NUL user NUL password",
        ));
    };
    let user =
        std::str::from_utf8(user).map_err(|_| SaslError::PlainMalformed("user is not UTF-8"))?;
    if user.is_empty() || password.is_empty() {
        return Err(SaslError::PlainMalformed("empty user or password"));
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(SaslError::PlainMalformed(
            "authorization id differs from user",
        ));
    }
    let credential = users.get(user).and_then(|c| {
        [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| c.get(&m).map(|cred| (m, cred.clone())))
    });
    Ok(SaslStep::CheckPlain(PlainCheck {
        user: user.to_string(),
        password: password.to_vec(),
        credential,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> ScramUsers {
        let mut u = ScramUsers::new();
        let c = ScramCredential::new(ScramMechanism::Sha256, b"pw", 4096).unwrap();
        u.entry("alice".into())
            .or_default()
            .insert(ScramMechanism::Sha256, c);
        u
    }

    #[test]
    fn sasl_plain_right_password_authenticates_wrong_fails() {
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        assert!(s.step_inline(b"\0alice\0nope", &users()).is_err());
        assert!(!s.is_authenticated());
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        assert!(matches!(
            s.step_inline(b"\0alice\0pw", &users()),
            Ok(SaslStep::Done { .. })
        ));
        assert!(s.is_authenticated());
    }

    #[test]
    fn sasl_plain_is_not_authenticated_until_the_check_is_finished() {
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        let Ok(SaslStep::CheckPlain(check)) = s.step(b"\0alice\0pw", &users()) else {
            panic!("a well-formed PLAIN token asks for a check");
        };
        assert!(!s.is_authenticated());
        assert_eq!(check.user(), "alice");
        let verified = check.verify().unwrap();
        assert!(matches!(
            s.finish_plain(verified),
            Ok(SaslStep::Done { .. })
        ));
        assert!(s.is_authenticated());
        // A verified password for one session cannot finish another that
        // is past PLAIN (or never chose it).
        let mut other = SaslSession::default();
        other.handshake("SCRAM-SHA-256", 1).unwrap();
        let mut fresh = SaslSession::default();
        fresh.handshake("PLAIN", 1).unwrap();
        let Ok(SaslStep::CheckPlain(check)) = fresh.step(b"\0alice\0pw", &users()) else {
            panic!("check expected");
        };
        assert!(other.finish_plain(check.verify().unwrap()).is_err());
        assert!(!other.is_authenticated());
    }

    #[test]
    fn sasl_plain_unknown_user_fails_in_verify() {
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        assert_eq!(
            s.step_inline(b"\0mallory\0pw", &users()).unwrap_err(),
            SaslError::PlainFailed("mallory".into())
        );
    }

    #[test]
    fn sasl_handshake_unknown_mechanism_and_second_handshake_refused() {
        let mut s = SaslSession::default();
        assert_eq!(s.handshake("GSSAPI", 1), Err(HandshakeError::Unsupported));
        s.handshake("SCRAM-SHA-512", 0).unwrap();
        assert!(s.expects_raw_token());
        assert_eq!(s.handshake("PLAIN", 1), Err(HandshakeError::IllegalState));
    }

    #[test]
    fn sasl_token_before_handshake_fails() {
        let mut s = SaslSession::default();
        assert!(s.step_inline(b"\0alice\0pw", &users()).is_err());
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        assert!(s.step_inline(b"garbage-without-nul", &users()).is_err());
    }
    fn users_alice_and_bob() -> ScramUsers {
        let mut u = users();
        let c = ScramCredential::new(ScramMechanism::Sha256, b"pw2", 4096).unwrap();
        u.entry("bob".into())
            .or_default()
            .insert(ScramMechanism::Sha256, c);
        u
    }

    fn plain_session(token: &[u8], users: &ScramUsers) -> SaslSession {
        let mut s = SaslSession::default();
        s.handshake("PLAIN", 1).unwrap();
        s.step_inline(token, users).unwrap();
        assert!(s.is_authenticated());
        s
    }

    #[test]
    fn sasl_reauthenticate_same_user_same_mechanism_succeeds() {
        let users = users_alice_and_bob();
        let mut s = plain_session(b"\0alice\0pw", &users);
        s.reauthenticate("PLAIN", 1).unwrap();
        assert!(s.is_reauthenticating() && !s.is_authenticated());
        assert!(matches!(
            s.step_inline(b"\0alice\0pw", &users),
            Ok(SaslStep::Done { .. })
        ));
        assert!(s.is_authenticated() && !s.is_reauthenticating());
    }

    #[test]
    fn sasl_reauthenticate_as_another_user_fails() {
        let users = users_alice_and_bob();
        let mut s = plain_session(b"\0alice\0pw", &users);
        s.reauthenticate("PLAIN", 1).unwrap();
        let error = s.step_inline(b"\0bob\0pw2", &users).unwrap_err();
        assert_eq!(
            error,
            SaslError::PrincipalChanged {
                from: "alice".into(),
                to: "bob".into()
            }
        );
        assert!(error
            .client_message("PLAIN")
            .starts_with("Cannot change principals during re-authentication"));
        assert!(!s.is_authenticated());
    }

    #[test]
    fn sasl_reauthenticate_other_mechanism_or_v0_or_unauthenticated_refused() {
        let users = users_alice_and_bob();
        let mut s = plain_session(b"\0alice\0pw", &users);
        assert_eq!(
            s.reauthenticate("SCRAM-SHA-256", 1),
            Err(HandshakeError::MechanismChanged(Mechanism::Plain))
        );
        assert_eq!(
            s.reauthenticate("PLAIN", 0),
            Err(HandshakeError::IllegalState)
        );
        assert!(
            s.is_authenticated(),
            "a refused re-authentication keeps the session"
        );
        let mut fresh = SaslSession::default();
        assert_eq!(
            fresh.reauthenticate("PLAIN", 1),
            Err(HandshakeError::IllegalState)
        );
    }
}
