//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side,
//! written against the RFC with `ring`'s HMAC, digest and PBKDF2 (the same
//! crypto rustls already links) rather than a SASL framework: the exchange
//! is three messages and the proof check is the part that matters.
//!
//! The broker keeps only Kafka's stored form of a password: salt,
//! iterations, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
//! ServerKey = HMAC(SaltedPassword, "Server Key"). A client proof is checked
//! by recovering ClientKey = proof XOR HMAC(StoredKey, AuthMessage) and
//! comparing H(ClientKey) with StoredKey in constant time; a wrong password
//! therefore fails (tested below), and so does a nonce the server did not
//! issue or a channel-binding value that is not the one announced.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// Kafka's default SCRAM iteration count.
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;
/// Fewest iterations Kafka accepts for a credential.
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;
/// Most iterations Kafka accepts for a credential.
pub const SCRAM_ITERATIONS_MAX: u32 = 16384;
/// Salt length of credentials the broker makes, in bytes.
pub const SCRAM_SALT_BYTES: usize = 32;
/// Random bytes in the server's nonce part.
const SERVER_NONCE_BYTES: usize = 24;
/// Longest SCRAM message accepted, in bytes.
pub const SCRAM_MESSAGE_BYTES_MAX: usize = 4096;

/// A SCRAM mechanism.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (Kafka's mechanism type 1).
    Sha256,
    /// SCRAM-SHA-512 (Kafka's mechanism type 2).
    Sha512,
}

impl ScramMechanism {
    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// By SASL name.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        [ScramMechanism::Sha256, ScramMechanism::Sha512]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Kafka's ScramMechanism type byte (DescribeUserScramCredentials).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// By Kafka's type byte.
    pub fn from_kafka_type(t: i8) -> Option<ScramMechanism> {
        match t {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn output_bytes(self) -> usize {
        self.digest_algorithm().output_len()
    }

    pub(super) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    pub(super) fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }
}

/// The stored form of one user's password for one mechanism. Its `Debug`
/// shows the iterations only: metadata changes are logged.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    /// The salt, raw bytes.
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    /// H(ClientKey).
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ScramCredential {{ iterations: {}, .. }}",
            self.iterations
        )
    }
}

mod b64 {
    use base64::Engine as _;
    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::B64.encode(v))
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        super::B64
            .decode(text)
            .map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// Fills `out` from the system's secure random source.
pub fn random_bytes(out: &mut [u8]) -> Result<(), ScramError> {
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), out)
        .map_err(|_| ScramError::Random)
}

impl ScramCredential {
    /// The credential for `password` with this `salt` and iteration count
    /// (AlterUserScramCredentials sends the salted password already).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// Salts and iterates `password` with a fresh random salt.
    pub fn new(
        mechanism: ScramMechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        let mut salt = vec![0u8; SCRAM_SALT_BYTES];
        random_bytes(&mut salt)?;
        let salted = salt_password(mechanism, password, &salt, iterations)?;
        Ok(ScramCredential::from_salted_password(
            mechanism, &salted, salt, iterations,
        ))
    }

    /// Whether `password` is this credential's password (SASL PLAIN).
    pub fn matches_password(&self, mechanism: ScramMechanism, password: &[u8]) -> bool {
        let Ok(salted) = salt_password(mechanism, password, &self.salt, self.iterations) else {
            return false;
        };
        let client_key = mechanism.hmac(&salted, b"Client Key");
        constant_time_eq(&mechanism.hash(&client_key), &self.stored_key)
    }
}

/// PBKDF2 of `password` (Hi() in RFC 5802).
pub fn salt_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, ScramError> {
    let rounds = NonZeroU32::new(iterations).ok_or(ScramError::Iterations(iterations))?;
    let mut out = vec![0u8; mechanism.output_bytes()];
    pbkdf2::derive(
        mechanism.pbkdf2_algorithm(),
        rounds,
        salt,
        password,
        &mut out,
    );
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a SCRAM exchange failed. The text goes to the log and, for the
/// client, Kafka's generic message is used instead (no user enumeration).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding requested (not offered by the broker).
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// Kafka's delegation-token extension (not supported).
    #[error("delegation token authentication is not supported")]
    TokenAuth,
    /// No such user, or no credential for this mechanism.
    #[error("unknown user {0:?} for this mechanism")]
    UnknownUser(String),
    /// The nonce of the final message is not the one the server sent.
    #[error("nonce mismatch")]
    Nonce,
    /// The proof does not match the stored key: wrong password.
    #[error("invalid client proof for user {0:?}")]
    BadProof(String),
    /// An iteration count of 0.
    #[error("invalid iteration count {0}")]
    Iterations(u32),
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// Client side: the server ended the exchange with `e=...`.
    #[error("the server refused: {0}")]
    ServerError(String),
    /// Client side: the server's signature is not the one the password
    /// gives (the peer does not know the credential).
    #[error("the server's signature does not match the password")]
    ServerSignature,
}

/// The server's side of one SCRAM exchange.
#[derive(Debug)]
pub enum ScramServer {
    /// Waiting for client-first.
    Start(ScramMechanism),
    /// server-first sent; waiting for client-final.
    SentFirst {
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The user.
        user: String,
        /// Their credential.
        credential: ScramCredential,
        /// client-first-bare + "," + server-first.
        auth_prefix: String,
        /// The gs2 header the client sent.
        gs2_header: String,
        /// The combined nonce.
        nonce: String,
    },
}

/// What one SCRAM step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this and wait for the next client message.
    Continue(Vec<u8>),
    /// Authenticated as this user; send the server-final message.
    Done {
        /// The user name.
        user: String,
        /// server-final.
        server_final: Vec<u8>,
    },
}

impl ScramServer {
    /// Takes one client message; `lookup` finds a user's credential.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, ScramError> {
        if message.len() > SCRAM_MESSAGE_BYTES_MAX {
            return Err(ScramError::Malformed("message too long"));
        }
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match self {
            ScramServer::Start(mechanism) => {
                let mechanism = *mechanism;
                let (next, reply) = client_first(mechanism, text, lookup)?;
                *self = next;
                Ok(ScramStep::Continue(reply.into_bytes()))
            }
            ScramServer::SentFirst {
                mechanism,
                user,
                credential,
                auth_prefix,
                gs2_header,
                nonce,
            } => {
                let server_final =
                    client_final(*mechanism, text, credential, auth_prefix, gs2_header, nonce)
                        .map_err(|e| match e {
                            ScramError::BadProof(_) => ScramError::BadProof(user.clone()),
                            other => other,
                        })?;
                Ok(ScramStep::Done {
                    user: user.clone(),
                    server_final: server_final.into_bytes(),
                })
            }
        }
    }
}

fn client_first(
    mechanism: ScramMechanism,
    text: &str,
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<(ScramServer, String), ScramError> {
    // gs2-header: cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed("empty"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    }
    let gs2_header = format!("{flag},{authzid},");
    let mut user = None;
    let mut client_nonce = None;
    for attr in bare.split(',') {
        match attr.split_once('=') {
            Some(("n", v)) => user = Some(decode_saslname(v)?),
            Some(("r", v)) => client_nonce = Some(v),
            Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
            Some(("tokenauth", v)) if v.eq_ignore_ascii_case("true") => {
                return Err(ScramError::TokenAuth)
            }
            _ => {}
        }
    }
    let user = user.ok_or(ScramError::Malformed("no user name"))?;
    let client_nonce = client_nonce
        .filter(|n| !n.is_empty())
        .ok_or(ScramError::Malformed("no nonce"))?;
    if !authzid.is_empty() && authzid != format!("a={user}") {
        return Err(ScramError::Malformed("authorization id differs from user"));
    }
    let credential = lookup(&user).ok_or_else(|| ScramError::UnknownUser(user.clone()))?;
    let mut random = [0u8; SERVER_NONCE_BYTES];
    random_bytes(&mut random)?;
    // The server's part is hex: alphanumerics only, as Kafka's own.
    let nonce = format!("{client_nonce}{}", hex_lower(&random));
    let server_first = format!(
        "r={nonce},s={},i={}",
        B64.encode(&credential.salt),
        credential.iterations
    );
    let auth_prefix = format!("{bare},{server_first}");
    Ok((
        ScramServer::SentFirst {
            mechanism,
            user,
            credential,
            auth_prefix,
            gs2_header,
            nonce,
        },
        server_first,
    ))
}

fn client_final(
    mechanism: ScramMechanism,
    text: &str,
    credential: &ScramCredential,
    auth_prefix: &str,
    gs2_header: &str,
    nonce: &str,
) -> Result<String, ScramError> {
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed("no proof"))?;
    let mut binding = None;
    let mut got_nonce = None;
    for attr in without_proof.split(',') {
        match attr.split_once('=') {
            Some(("c", v)) => binding = Some(v),
            Some(("r", v)) => got_nonce = Some(v),
            _ => {}
        }
    }
    let binding = binding.ok_or(ScramError::Malformed("no channel binding"))?;
    if B64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
        return Err(ScramError::ChannelBinding);
    }
    if !nonce_accepted(got_nonce, nonce) {
        return Err(ScramError::Nonce);
    }
    let proof = B64
        .decode(proof)
        .map_err(|_| ScramError::Malformed("proof is not base64"))?;
    let auth_message = format!("{auth_prefix},{without_proof}");
    let signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err(ScramError::BadProof(String::new()));
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    if !constant_time_eq(&mechanism.hash(&client_key), &credential.stored_key) {
        return Err(ScramError::BadProof(String::new()));
    }
    let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", B64.encode(server_signature)))
}

/// Whether client-final's `r=` is the nonce the server sent. librdkafka
/// before 2.6.1 (still in distributions: kcat on Debian 12 has 2.0.2)
/// sends its own nonce once more in front (librdkafka PR 4895; Kafka
/// 3.8.1 accepted it too). That form is accepted as well: it still holds
/// the server's random part in full, so a replayed exchange still fails.
fn nonce_accepted(got: Option<&str>, nonce: &str) -> bool {
    let Some(got) = got else { return false };
    if got == nonce {
        return true;
    }
    let client_part = nonce
        .len()
        .checked_sub(2 * SERVER_NONCE_BYTES)
        .and_then(|n| nonce.get(..n));
    match (client_part, got.strip_suffix(nonce)) {
        (Some(client), Some(prefix)) => !client.is_empty() && prefix == client,
        _ => false,
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// saslname: "=2C" is ',' and "=3D" is '='; any other '=' is an error.
fn decode_saslname(v: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
