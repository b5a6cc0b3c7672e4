//! SaslHandshake (key 17), v0-1: picks the connection's SASL mechanism.
//! After a v0 handshake the tokens come as raw frames (the connection loop
//! handles them); after v1 they come in SaslAuthenticate. On a listener
//! without SASL the answer is ILLEGAL_SASL_STATE, as Kafka's. An
//! unsupported mechanism is answered, then the connection closes (Kafka).

use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::info;

use super::{ApiSpec, RequestContext};
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
    let chosen = connection
        .sasl
        .borrow_mut()
        .handshake(request.mechanism.as_str(), version);
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
    }
}
