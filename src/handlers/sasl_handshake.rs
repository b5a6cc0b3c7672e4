//! SaslHandshake (key 17), v0-1: picks the connection's SASL mechanism.
//! After a v0 handshake the tokens come as raw frames (the connection loop
//! handles them); after v1 they come in SaslAuthenticate. On a listener
//! without SASL the answer is ILLEGAL_SASL_STATE, as Kafka's. An
//! unsupported mechanism is answered, then the connection closes (Kafka).
//! On an authenticated connection a handshake starts a re-authentication
//! (KIP-368, `security::reauth`) when sessions expire; otherwise it is an
//! ILLEGAL_SASL_STATE and closes the connection.

use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::info;

use super::{ApiSpec, RequestContext};
use crate::security::sasl::Mechanism;
use crate::security::sasl::{HandshakeError, SASL_MECHANISMS};
use crate::security::ConnectionContext;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::SaslHandshake,
    min: 0,
    max: 1,
};

/// Answers SaslHandshake.
pub async fn handle(ctx: &RequestContext, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    answer(&ctx.connection, &request, ctx.version)
}

/// The answer to a SaslHandshake at `version` on `connection` (public for
/// the SASL fuzz target).
pub fn answer(
    connection: &ConnectionContext,
    request: &SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let mechanisms = SASL_MECHANISMS
        .iter()
        .map(|m| StrBytes::from_static_str(m))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    if !connection.listener.protocol.uses_sasl() {
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    let name = request.mechanism.as_str();
    let authenticated = connection.sasl.borrow().is_authenticated();
    let chosen = match authenticated {
        true => begin_reauthentication(connection, name, version),
        false => connection.sasl.borrow_mut().handshake(name, version),
    };
    match chosen {
        Ok(()) => response,
        Err(HandshakeError::Unsupported) => {
            info!(peer = %connection.peer, listener = %connection.listener.protocol,
                "SASL handshake with unsupported mechanism {:?}: closing", request.mechanism.as_str());
            connection.fail_authentication();
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
        }
        Err(HandshakeError::IllegalState) => {
            connection.fail_authentication();
            response.with_error_code(ResponseError::IllegalSaslState.code())
        }
        Err(HandshakeError::MechanismChanged(was)) => {
            // Kafka refuses it too; the handshake has no message field, so
            // the reason is in the log.
            info!(peer = %connection.peer, listener = %connection.listener.protocol,
                "re-authentication with mechanism {name:?}, the session used {}: closing", was.name());
            connection.fail_authentication();
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
        }
    }
}

/// A handshake on an authenticated connection: a re-authentication when
/// sessions expire and the last one began long enough ago.
fn begin_reauthentication(
    connection: &ConnectionContext,
    name: &str,
    version: i16,
) -> Result<(), HandshakeError> {
    if let Err(refused) = connection
        .session
        .begin_reauthentication(std::time::Instant::now())
    {
        info!(peer = %connection.peer, listener = %connection.listener.protocol,
            "SASL handshake on an authenticated connection: {refused}; closing");
        return Err(HandshakeError::IllegalState);
    }
    let user = connection.principal();
    let begun = connection.sasl.borrow_mut().reauthenticate(name, version);
    if begun.is_ok() {
        info!(peer = %connection.peer, listener = %connection.listener.protocol,
            "re-authenticating {user} with {}", Mechanism::from_name(name).map_or("?", Mechanism::name));
    }
    begun
}
