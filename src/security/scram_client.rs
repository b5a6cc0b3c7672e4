//! The client side of SCRAM-SHA-256/512 (RFC 5802), for a broker logging
//! in to its peers (`replication::client`). Same crypto as the server side
//! (`scram`): PBKDF2, HMAC and the digest from `ring`.
//!
//! The client checks the server's final signature too: a peer that does
//! not know the password's ServerKey cannot pass for a broker.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::scram::{
    random_bytes, salt_password, ScramError, ScramMechanism, SCRAM_ITERATIONS_MAX,
    SCRAM_ITERATIONS_MIN,
};

/// Random bytes in the client's nonce (base64 in the message).
const CLIENT_NONCE_BYTES: usize = 24;
/// The gs2 header of a client without channel binding, base64 ("n,,").
const GS2_HEADER_B64: &str = "biws";

/// A SCRAM exchange in progress, client side.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
}

/// After client-final: what the server's final message must prove.
pub struct ScramClientFinal {
    expected_signature: Vec<u8>,
}

impl ScramClient {
    /// Starts an exchange for `user`; returns the client-first message.
    pub fn start(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<(ScramClient, String), ScramError> {
        let mut random = [0u8; CLIENT_NONCE_BYTES];
        random_bytes(&mut random)?;
        let client_nonce = B64.encode(random);
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(user));
        let first = format!("n,,{client_first_bare}");
        Ok((
            ScramClient {
                mechanism,
                password: password.as_bytes().to_vec(),
                client_nonce,
                client_first_bare,
            },
            first,
        ))
    }

    /// Takes server-first; returns client-final with the proof.
    pub fn server_first(self, text: &str) -> Result<(ScramClientFinal, String), ScramError> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        // The server's nonce must extend ours: else a replay.
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = B64
            .decode(salt.ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count"))?;
        // A peer asking for millions of rounds would stall this shard.
        if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let m = self.mechanism;
        let salted = salt_password(m, &self.password, &salt, iterations)?;
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={GS2_HEADER_B64},r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        let expected_signature = m.hmac(&server_key, auth_message.as_bytes());
        Ok((
            ScramClientFinal { expected_signature },
            format!("{without_proof},p={}", B64.encode(proof)),
        ))
    }
}

impl ScramClientFinal {
    /// Checks server-final (`v=signature`, or `e=error`).
    pub fn server_final(self, text: &str) -> Result<(), ScramError> {
        if let Some(error) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let v = text
            .strip_prefix("v=")
            .ok_or(ScramError::Malformed("no server signature"))?;
        let got = B64
            .decode(v.split(',').next().unwrap_or(""))
            .map_err(|_| ScramError::Malformed("server signature is not base64"))?;
        match got == self.expected_signature {
            true => Ok(()),
            false => Err(ScramError::ServerSignature),
        }
    }
}

/// saslname: ',' is "=2C" and '=' is "=3D".
fn encode_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::{ScramCredential, ScramServer, ScramStep};

    fn exchange(
        mechanism: ScramMechanism,
        stored_password: &str,
        sent_password: &str,
    ) -> Result<(), ScramError> {
        let credential = ScramCredential::new(mechanism, stored_password.as_bytes(), 4096)?;
        let (client, first) = ScramClient::start(mechanism, "bro,ker=1", sent_password)?;
        let mut server = ScramServer::Start(mechanism);
        let lookup = |user: &str| (user == "bro,ker=1").then(|| credential.clone());
        let ScramStep::Continue(server_first) = server.step(first.as_bytes(), lookup)? else {
            return Err(ScramError::Malformed("server ended early"));
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let (last, client_final) = client.server_first(&server_first)?;
        let lookup = |_: &str| None;
        match server.step(client_final.as_bytes(), lookup)? {
            ScramStep::Done { server_final, .. } => {
                last.server_final(&String::from_utf8(server_final).unwrap())
            }
            ScramStep::Continue(_) => Err(ScramError::Malformed("server did not end")),
        }
    }

    #[test]
    fn scram_client_logs_in_to_the_server_side_with_both_mechanisms() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            exchange(m, "secret", "secret").unwrap();
        }
    }

    #[test]
    fn scram_client_wrong_password_is_refused_by_the_server() {
        let err = exchange(ScramMechanism::Sha512, "secret", "wrong").unwrap_err();
        assert!(matches!(err, ScramError::BadProof(_)), "{err:?}");
    }

    #[test]
    fn scram_client_refuses_a_foreign_nonce_and_a_bad_server_signature() {
        let (client, _) = ScramClient::start(ScramMechanism::Sha256, "u", "p").unwrap();
        let foreign = client.server_first("r=someone-else,s=c2FsdA==,i=4096");
        assert!(matches!(foreign, Err(ScramError::Nonce)));
        let (client, first) = ScramClient::start(ScramMechanism::Sha256, "u", "p").unwrap();
        let nonce = first.rsplit_once("r=").unwrap().1;
        let (last, _) = client
            .server_first(&format!("r={nonce}xyz,s=c2FsdA==,i=4096"))
            .unwrap();
        assert!(matches!(
            last.server_final("v=AAAA"),
            Err(ScramError::ServerSignature)
        ));
        let (client, first) = ScramClient::start(ScramMechanism::Sha256, "u", "p").unwrap();
        let nonce = first.rsplit_once("r=").unwrap().1;
        let greedy = client.server_first(&format!("r={nonce}xyz,s=c2FsdA==,i=100000000"));
        assert!(matches!(greedy, Err(ScramError::Iterations(_))));
    }
}
