//! SaslAuthenticate (key 36), v0-2 (KIP-152): one SASL token in, one out.
//! A failure answers SASL_AUTHENTICATION_FAILED with Kafka's generic
//! message, logs the reason with the client's address (never a secret),
//! and the connection closes after the answer. Success sets the
//! connection's principal to `User:<name>`. `session_lifetime_ms` is 0:
//! no re-authentication deadline (KIP-368 is not enforced yet).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::{ApiSpec, RequestContext};
use crate::security::sasl::SaslStep;
use crate::security::ConnectionContext;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::SaslAuthenticate,
    min: 0,
    max: 2,
};

/// Answers SaslAuthenticate.
pub async fn handle(
    ctx: &RequestContext,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let connection = &ctx.connection;
    let response = SaslAuthenticateResponse::default();
    if !connection.listener.protocol.uses_sasl() || connection.sasl.borrow().expects_raw_token() {
        connection.fail_authentication();
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    let users = ctx.shard.snapshot().users.clone();
    match step(connection, &request.auth_bytes, &users) {
        Ok(reply) => response.with_auth_bytes(Bytes::from(reply)),
        Err(message) => response
            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

/// Steps the connection's SASL exchange with one token: the server's
/// reply, or the message for the client (the connection is then marked
/// to close). Shared with the raw (v0) token path.
pub fn step(
    connection: &ConnectionContext,
    token: &[u8],
    users: &crate::security::ScramUsers,
) -> Result<Vec<u8>, String> {
    let mut sasl = connection.sasl.borrow_mut();
    let mechanism = sasl.mechanism_name();
    match sasl.step(token, users) {
        Ok(SaslStep::Continue(reply)) => Ok(reply),
        Ok(SaslStep::Done { user, reply }) => {
            info!(peer = %connection.peer, listener = %connection.listener.protocol,
                mechanism, "authenticated User:{user}");
            *connection.principal.borrow_mut() = format!("User:{user}");
            crate::ops::metrics::authentication(true);
            Ok(reply)
        }
        Err(e) => {
            warn!(peer = %connection.peer, listener = %connection.listener.protocol,
                mechanism, "authentication failed: {e}");
            connection.fail_authentication();
            Err(e.client_message(mechanism))
        }
    }
}
