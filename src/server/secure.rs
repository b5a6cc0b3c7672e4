//! The connection's security steps: the TLS handshake on SSL and SASL_SSL
//! listeners, and the gate in front of SASL authentication.
//!
//! Before a SASL client is authenticated its requests are handled one at a
//! time, in the reader (not pipelined): only ApiVersions, SaslHandshake and
//! SaslAuthenticate are allowed, and after a v0 SaslHandshake the next
//! frames are raw SASL tokens without a Kafka header, answered with a raw
//! size-prefixed token (Kafka's pre-KIP-152 framing). Any other API closes
//! the connection with a log line naming it, as Kafka does; so does a
//! failed authentication, after its answer is written.

use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::{select, Either};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use kafka_protocol::messages::ApiKey;
use tracing::info;

use crate::config::ConnectionLimits;
use crate::handlers::{handle_frame, sasl_authenticate, Outcome};
use crate::protocol::frame::FRAME_SIZE_PREFIX_BYTES;
use crate::security::{tls, ConnectionContext};
use crate::shard::Shard;

/// Longest a TLS handshake may take before the connection is closed
/// (bounded further by `request_timeout_ms`).
pub(super) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server side of the TLS handshake; `None` (logged) when it
/// fails or times out. With client certificates the principal becomes the
/// certificate's subject.
pub(super) async fn tls_accept(
    stream: TcpStream,
    connection: &ConnectionContext,
    limits: ConnectionLimits,
) -> Option<TlsStream<TcpStream>> {
    let peer = &connection.peer;
    let listener = connection.listener.protocol;
    let Some(acceptor) = tls::acceptor() else {
        info!(%peer, %listener, "closing connection: TLS is not configured");
        return None;
    };
    let timeout = TLS_HANDSHAKE_TIMEOUT.min(Duration::from_millis(limits.request_timeout_ms));
    let accepted = match select(acceptor.accept(stream), Timer::new(timeout)).await {
        Either::Left((accepted, _)) => accepted,
        Either::Right(_) => {
            info!(%peer, %listener, "closing connection: TLS handshake not done within {} ms", timeout.as_millis());
            return None;
        }
    };
    let stream = match accepted {
        Ok(stream) => stream,
        Err(e) => {
            info!(%peer, %listener, "closing connection: TLS handshake failed: {e}");
            return None;
        }
    };
    let subject = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(tls::subject_principal);
    if let Some(subject) = subject {
        info!(%peer, %listener, "TLS client certificate: principal User:{subject}");
        *connection.principal.borrow_mut() = format!("User:{subject}");
    }
    Some(stream)
}

/// Handles one frame of a SASL connection not yet authenticated; `None`
/// means close now (logged).
pub(super) async fn before_authentication(
    shard: &Rc<Shard>,
    frame: Bytes,
    connection: &Rc<ConnectionContext>,
) -> Option<Outcome> {
    if connection.sasl.borrow().expects_raw_token() {
        let users = shard.snapshot().users.clone();
        // A failure is logged by `step`.
        let reply = sasl_authenticate::step(connection, &frame, &users)
            .await
            .ok()?;
        return Some(Outcome::Respond(size_prefixed(&reply)));
    }
    let key = frame
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .unwrap_or(-1);
    let allowed = [
        ApiKey::ApiVersions,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
    ];
    if !allowed.iter().any(|a| *a as i16 == key) {
        let api = ApiKey::try_from(key)
            .map(|k| format!("{k:?}"))
            .unwrap_or_else(|_| format!("API key {key}"));
        info!(peer = %connection.peer, listener = %connection.listener.protocol,
            "closing connection: {api} request before SASL authentication");
        return None;
    }
    Some(handle_frame(shard.clone(), frame, None, connection.clone(), 0).await)
}

/// A raw SASL token as a size-prefixed frame.
fn size_prefixed(token: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(FRAME_SIZE_PREFIX_BYTES + token.len());
    out.put_u32(token.len() as u32);
    out.put_slice(token);
    out.freeze()
}
