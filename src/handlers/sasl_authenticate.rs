//! SaslAuthenticate (key 36), v0-2 (KIP-152): one SASL token in, one out.
//! A failure answers SASL_AUTHENTICATION_FAILED with Kafka's generic
//! message, logs the reason with the client's address (never a secret),
//! and the connection closes after the answer. Success sets the
//! connection's principal to `User:<name>`. `session_lifetime_ms` is the
//! session's length when `connections_max_reauth_ms` is set (KIP-368,
//! `security::reauth`), else 0; a re-authentication ends here too, and
//! must prove the session's user.
//!
//! A PLAIN password's PBKDF2 check (milliseconds of CPU) runs on glommio's
//! blocking thread pool ([`verify_off_shard`]), one at a time per shard
//! ([`PLAIN_CHECKS_IN_FLIGHT_MAX`]), so a login never stalls the shard's
//! partitions and a burst of logins never fills the pool that file
//! creation and removal also use. [`answer_with`] and [`step_with`] take
//! the check's runner as an argument so the fuzz target can drive exactly
//! this code with the check run inline.

use std::future::Future;

use bytes::Bytes;
use glommio::sync::Semaphore;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::{debug, info, warn};

use super::{ApiSpec, RequestContext};
use crate::security::sasl::{PlainCheck, PlainVerified, SaslError, SaslStep};
use crate::security::{ConnectionContext, ScramUsers};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::SaslAuthenticate,
    min: 0,
    max: 2,
};

/// PLAIN password checks of one shard on the blocking pool at once. The
/// pool has one thread per shard; more than one check queued there would
/// only delay the file operations queued behind them.
pub const PLAIN_CHECKS_IN_FLIGHT_MAX: u64 = 1;

thread_local! {
    /// The shard's gate for PLAIN checks (one executor per thread).
    static PLAIN_CHECK_GATE: std::rc::Rc<Semaphore> =
        std::rc::Rc::new(Semaphore::new(PLAIN_CHECKS_IN_FLIGHT_MAX));
}

/// Answers SaslAuthenticate.
pub async fn handle(
    ctx: &RequestContext,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let users = ctx.shard.snapshot().users.clone();
    answer_with(&ctx.connection, &request, &users, verify_off_shard).await
}

/// The answer to one SaslAuthenticate on `connection`, with PLAIN checks
/// run by `verify`.
pub async fn answer_with<V, F>(
    connection: &ConnectionContext,
    request: &SaslAuthenticateRequest,
    users: &ScramUsers,
    verify: V,
) -> SaslAuthenticateResponse
where
    V: FnOnce(PlainCheck) -> F,
    F: Future<Output = Result<PlainVerified, SaslError>>,
{
    let response = SaslAuthenticateResponse::default();
    if !connection.listener.protocol.uses_sasl() || connection.sasl.borrow().expects_raw_token() {
        connection.fail_authentication();
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    match step_with(connection, &request.auth_bytes, users, verify).await {
        Ok(reply) => {
            let lifetime_ms = match connection.sasl.borrow().is_authenticated() {
                true => connection.session.lifetime_ms(),
                false => 0,
            };
            response
                .with_auth_bytes(Bytes::from(reply))
                .with_session_lifetime_ms(lifetime_ms)
        }
        Err(message) => response
            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

/// Steps the connection's SASL exchange with one token, PLAIN checks off
/// the shard thread. Shared with the raw (v0) token path.
pub async fn step(
    connection: &ConnectionContext,
    token: &[u8],
    users: &ScramUsers,
) -> Result<Vec<u8>, String> {
    step_with(connection, token, users, verify_off_shard).await
}

/// Steps the connection's SASL exchange with one token: the server's
/// reply, or the message for the client (the connection is then marked
/// to close). `verify` runs a PLAIN password check. No `RefCell` borrow is
/// held across its await: the reader handles one frame at a time before
/// authentication, and nothing else touches the session meanwhile.
pub async fn step_with<V, F>(
    connection: &ConnectionContext,
    token: &[u8],
    users: &ScramUsers,
    verify: V,
) -> Result<Vec<u8>, String>
where
    V: FnOnce(PlainCheck) -> F,
    F: Future<Output = Result<PlainVerified, SaslError>>,
{
    let mechanism = connection.sasl.borrow().mechanism_name();
    let reauthenticating = connection.sasl.borrow().is_reauthenticating();
    let what = match reauthenticating {
        true => "re-authentication",
        false => "authentication",
    };
    let stepped = connection.sasl.borrow_mut().step(token, users);
    let stepped = match stepped {
        Ok(SaslStep::CheckPlain(check)) => match verify(check).await {
            Ok(verified) => connection.sasl.borrow_mut().finish_plain(verified),
            Err(e) => Err(e),
        },
        other => other,
    };
    match stepped {
        Ok(SaslStep::Continue(reply)) => Ok(reply),
        Ok(SaslStep::Done { user, reply }) => {
            connection.session.authenticated(std::time::Instant::now());
            if reauthenticating {
                // The same user (`SaslSession` checked): the principal stays.
                debug!(peer = %connection.peer, listener = %connection.listener.protocol,
                    mechanism, "re-authenticated User:{user}");
                crate::ops::metrics::reauthentication();
                return Ok(reply);
            }
            info!(peer = %connection.peer, listener = %connection.listener.protocol,
                mechanism, "authenticated User:{user}");
            *connection.principal.borrow_mut() = format!("User:{user}");
            crate::ops::metrics::authentication(true);
            Ok(reply)
        }
        Ok(SaslStep::CheckPlain(check)) => {
            // `finish_plain` never asks for a second check.
            warn!(peer = %connection.peer, "authentication failed: PLAIN check for {:?} left unfinished", check.user());
            connection.fail_authentication();
            Err(SaslError::UnexpectedToken("unfinished").client_message(mechanism))
        }
        Err(e) => {
            warn!(peer = %connection.peer, listener = %connection.listener.protocol,
                mechanism, "{what} failed: {e}");
            connection.fail_authentication();
            Err(e.client_message(mechanism))
        }
    }
}

/// Runs a PLAIN check on the executor's blocking thread pool, at most
/// [`PLAIN_CHECKS_IN_FLIGHT_MAX`] per shard at once.
pub async fn verify_off_shard(check: PlainCheck) -> Result<PlainVerified, SaslError> {
    let gate = PLAIN_CHECK_GATE.with(std::rc::Rc::clone);
    // The semaphore is never closed, so acquiring only waits.
    let _permit = gate.acquire_permit(1).await;
    glommio::executor()
        .spawn_blocking(move || check.verify())
        .await
}
