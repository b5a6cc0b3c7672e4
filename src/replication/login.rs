//! A broker's SASL login to a peer, before its first request: SaslHandshake
//! v1 naming the mechanism, then SaslAuthenticate v2 frames (KIP-152)
//! carrying a PLAIN token or the three SCRAM messages
//! (`security::scram_client`). What the peer says on refusal goes into
//! the error, so the fetcher's log line tells the operator why.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{BrokerConnection, ClientError};
use crate::security::inter_broker::{InterBrokerMechanism, InterBrokerSasl};
use crate::security::scram_client::ScramClient;

/// SaslHandshake version: v1 means the tokens go in SaslAuthenticate.
pub const SASL_HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate version: v2 is flexible and carries the session
/// lifetime (KIP-368).
pub const SASL_AUTHENTICATE_VERSION: i16 = 2;
/// Bound on one login step.
const LOGIN_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs in as `sasl` says; returns the session's lifetime when the peer
/// gives one (KIP-368: the connection must be replaced before it ends).
pub async fn login(
    conn: &mut BrokerConnection,
    sasl: &InterBrokerSasl,
) -> Result<Option<Duration>, ClientError> {
    let mechanism = sasl.mechanism.name();
    let refused = |conn: &BrokerConnection, message: String| ClientError::Authentication {
        addr: conn.addr().to_string(),
        mechanism,
        user: sasl.username.clone(),
        message,
    };
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    let answer = conn
        .send(&handshake, SASL_HANDSHAKE_VERSION, LOGIN_STEP_TIMEOUT)
        .await?;
    if answer.error_code != 0 {
        let offered: Vec<String> = answer.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(refused(
            conn,
            format!("mechanism not enabled on the peer (it offers {offered:?})"),
        ));
    }
    let last = match sasl.mechanism {
        InterBrokerMechanism::Plain => {
            let token = format!("\0{}\0{}", sasl.username, sasl.password.0);
            authenticate(conn, token.into_bytes(), &refused).await?
        }
        InterBrokerMechanism::Scram(m) => {
            let (client, first) = ScramClient::start(m, &sasl.username, &sasl.password.0)
                .map_err(|e| refused(conn, e.to_string()))?;
            let server_first = authenticate(conn, first.into_bytes(), &refused).await?;
            let server_first = utf8(conn, &server_first.auth_bytes, &refused)?;
            let (check, client_final) = client
                .server_first(&server_first)
                .map_err(|e| refused(conn, e.to_string()))?;
            let server_final = authenticate(conn, client_final.into_bytes(), &refused).await?;
            let text = utf8(conn, &server_final.auth_bytes, &refused)?;
            check
                .server_final(&text)
                .map_err(|e| refused(conn, e.to_string()))?;
            server_final
        }
    };
    let lifetime = u64::try_from(last.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    Ok(lifetime)
}

/// One SaslAuthenticate round; an error code is a refusal.
async fn authenticate(
    conn: &mut BrokerConnection,
    token: Vec<u8>,
    refused: &impl Fn(&BrokerConnection, String) -> ClientError,
) -> Result<SaslAuthenticateResponse, ClientError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let answer = conn
        .send(&request, SASL_AUTHENTICATE_VERSION, LOGIN_STEP_TIMEOUT)
        .await?;
    if answer.error_code != 0 {
        let message = answer.error_message.as_ref().map_or_else(
            || format!("error code {}", answer.error_code),
            |m| m.to_string(),
        );
        return Err(refused(conn, message));
    }
    Ok(answer)
}

fn utf8(
    conn: &BrokerConnection,
    bytes: &[u8],
    refused: &impl Fn(&BrokerConnection, String) -> ClientError,
) -> Result<String, ClientError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| refused(conn, "SCRAM message is not UTF-8".into()))
}
