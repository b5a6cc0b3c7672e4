//! The server's SASL exchange, driven by arbitrary client behaviour: frames
//! go through the same gate a SASL connection's reader applies before
//! authentication (`server::secure`: raw tokens after a v0 handshake, else
//! only ApiVersions, SaslHandshake and SaslAuthenticate), are decoded with
//! the codec and answered by the real handlers
//! (`handlers::sasl_handshake::answer`, `handlers::sasl_authenticate::answer_with`,
//! with the PLAIN password check run inline instead of on glommio's
//! blocking pool), against a fixed credential store.
//!
//! Oracle (independent of the server's SCRAM code: written from RFC 5802
//! here on `ring` directly). Whenever a connection becomes authenticated:
//! - its principal is `User:<u>` for a user `u` of the store;
//! - with PLAIN, the last token is exactly `[authzid] NUL u NUL password`
//!   with `u`'s password (its SCRAM-SHA-512 one, else SCRAM-SHA-256);
//! - with SCRAM, exactly two tokens were accepted, and the second carries
//!   the proof that `u`'s clear password gives over the AuthMessage made
//!   of the tokens and the server's answer, and the server's final message
//!   carries the matching server signature.
//!
//! So no input can authenticate without the right password (the server's
//! nonce is random, so a proof cannot be precomputed by the fuzzer either).
//! Liveness, the other way: a PLAIN token or a SCRAM exchange that an
//! honest client builds with the right password must authenticate.
//!
//! Input: a listener byte, then ops `[op][len][len bytes]`, see [`Op`].
//! The harness can act as an honest client (it reads the salt, iterations
//! and nonce from the server's answer and computes the proof), so the
//! fuzzer reaches the success paths and the proof check, not just parsing.
//! The store's credentials use few PBKDF2 iterations: the logic is the
//! same at any count, and at Kafka's 4096 each PLAIN check would cost the
//! fuzzer milliseconds.
#![no_main]

use std::rc::Rc;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use corestream::handlers::{sasl_authenticate, sasl_handshake};
use corestream::protocol::frame::parse_request_header;
use corestream::security::scram::{salt_password, ScramCredential, ScramMechanism};
use corestream::security::{ConnectionContext, Listener, ScramUsers, SecurityProtocol};
use futures::executor::block_on;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use libfuzzer_sys::fuzz_target;
use ring::{digest, hmac, pbkdf2};

/// PBKDF2 iterations of the store's credentials (see the module doc).
const FUZZ_ITERATIONS: u32 = 8;
/// Ops run per input at most.
const OPS_MAX: usize = 16;

/// The store: user, mechanism, clear password. carol has a different
/// password per mechanism (PLAIN must use the SCRAM-SHA-512 one); bob has
/// SCRAM-SHA-256 only; the fourth name needs saslname escapes.
const STORE: &[(&str, ScramMechanism, &[u8])] = &[
    ("alice", ScramMechanism::Sha512, b"alice-pw"),
    ("alice", ScramMechanism::Sha256, b"alice-pw"),
    ("bob", ScramMechanism::Sha256, b"bob-pw"),
    ("carol", ScramMechanism::Sha512, b"carol-512"),
    ("carol", ScramMechanism::Sha256, b"carol-256"),
    ("e,v=e", ScramMechanism::Sha512, b"eve-pw"),
];
const USER_NAMES: &[&str] = &["alice", "bob", "carol", "e,v=e"];
const MECHANISM_NAMES: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "scram-sha-512"];

fn users() -> &'static ScramUsers {
    static USERS: OnceLock<ScramUsers> = OnceLock::new();
    USERS.get_or_init(|| {
        let mut users = ScramUsers::new();
        for (user, mechanism, password) in STORE {
            let salt = format!("salt-{user}-{}", mechanism.name()).into_bytes();
            let salted = salt_password(*mechanism, password, &salt, FUZZ_ITERATIONS)
                .expect("iterations are not zero");
            let credential =
                ScramCredential::from_salted_password(*mechanism, &salted, salt, FUZZ_ITERATIONS);
            users
                .entry(user.to_string())
                .or_default()
                .insert(*mechanism, credential);
        }
        users
    })
}

/// The oracle's own knowledge: a user's clear password for a mechanism.
fn password(user: &str, mechanism: ScramMechanism) -> Option<&'static [u8]> {
    STORE
        .iter()
        .find(|(u, m, _)| *u == user && *m == mechanism)
        .map(|(_, _, p)| *p)
}

/// PLAIN's rule: the SCRAM-SHA-512 password, else the SCRAM-SHA-256 one.
fn plain_password(user: &str) -> Option<&'static [u8]> {
    password(user, ScramMechanism::Sha512).or_else(|| password(user, ScramMechanism::Sha256))
}

/// What one op does (the op byte's low 3 bits; its high bits are options).
#[derive(Clone, Copy)]
enum Op {
    /// The payload as one frame (after the size prefix).
    RawFrame,
    /// SaslHandshake v(bit 3) naming a mechanism (payload[0]) or the
    /// payload as the name.
    Handshake,
    /// The payload as a SASL token.
    Token,
    /// An honest PLAIN token: user, authzid form and password chosen by the
    /// payload (the right password or the payload's rest).
    Plain,
    /// An honest SCRAM client-first: user, gs2 header, nonce from the payload.
    ScramFirst,
    /// SCRAM client-final with the proof computed from a password (the
    /// right one or the payload's rest), the channel binding and nonce
    /// the server expects or mangled.
    ScramFinal,
    /// SCRAM client-final with the server's nonce and the payload as proof.
    ScramFinalProof,
}

impl Op {
    fn from_byte(b: u8) -> Op {
        match b & 7 {
            0 | 7 => Op::RawFrame,
            1 => Op::Handshake,
            2 => Op::Token,
            3 => Op::Plain,
            4 => Op::ScramFirst,
            5 => Op::ScramFinal,
            _ => Op::ScramFinalProof,
        }
    }
}

/// What the client side saw of the current exchange.
#[derive(Default)]
struct Exchange {
    /// Tokens the server accepted (answered without error), with answers.
    accepted: Vec<(Vec<u8>, Vec<u8>)>,
    /// The mechanism the accepted handshake chose: `None` for PLAIN.
    mechanism: Option<Option<ScramMechanism>>,
    /// The user of an honest client-first the server accepted.
    honest_first: Option<&'static str>,
}

struct Client {
    connection: ConnectionContext,
    exchange: Exchange,
    correlation_id: i32,
    /// The server closed (or would close) the connection.
    closed: bool,
}

fuzz_target!(|data: &[u8]| {
    let Some((&listener_byte, mut rest)) = data.split_first() else {
        return;
    };
    let protocol = if listener_byte & 1 == 0 {
        SecurityProtocol::SaslSsl
    } else {
        SecurityProtocol::SaslPlaintext
    };
    let listener = Rc::new(Listener {
        protocol,
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 9094)),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9094,
    });
    let mut client = Client {
        connection: ConnectionContext::new(listener, "127.0.0.1:40000".into()),
        exchange: Exchange::default(),
        correlation_id: 0,
        closed: false,
    };
    for _ in 0..OPS_MAX {
        let [op, len, tail @ ..] = rest else { break };
        let len = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        client.run(*op, payload);
        if client.closed {
            break;
        }
    }
});

impl Client {
    fn run(&mut self, op: u8, payload: &[u8]) {
        match Op::from_byte(op) {
            Op::RawFrame => self.frame(Bytes::copy_from_slice(payload)),
            Op::Handshake => self.handshake(op, payload),
            Op::Token => {
                self.token(op, payload.to_vec());
            }
            Op::Plain => self.plain(op, payload),
            Op::ScramFirst => self.scram_first(op, payload),
            Op::ScramFinal => self.scram_final(op, payload),
            Op::ScramFinalProof => self.scram_final_proof(op, payload),
        }
    }

    fn handshake(&mut self, op: u8, payload: &[u8]) {
        let version = i16::from((op >> 3) & 1);
        let name = match payload.split_first() {
            Some((&pick, _)) if pick < 0xf0 => {
                MECHANISM_NAMES[usize::from(pick) % MECHANISM_NAMES.len()].to_string()
            }
            Some((_, rest)) => String::from_utf8_lossy(rest).into_owned(),
            None => String::new(),
        };
        let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(name));
        let frame = self.encode(ApiKey::SaslHandshake, version, &request);
        self.frame(frame);
    }

    /// A token the way the connection sends it now: a raw frame after a
    /// v0 handshake, else in a SaslAuthenticate (v0-2 from the op byte).
    /// Returns whether the server accepted it.
    fn token(&mut self, op: u8, token: Vec<u8>) -> bool {
        let before = self.exchange.accepted.len();
        if self.connection.sasl.borrow().expects_raw_token() {
            self.frame(Bytes::from(token));
        } else {
            let version = i16::from((op >> 3) % 3);
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
            let frame = self.encode(ApiKey::SaslAuthenticate, version, &request);
            self.frame(frame);
        }
        self.exchange.accepted.len() > before
    }

    /// One frame through the pre-authentication gate and the handlers, as
    /// `server::secure::before_authentication` does.
    fn frame(&mut self, frame: Bytes) {
        if self.connection.sasl.borrow().expects_raw_token() {
            let was_authenticated = self.authenticated();
            let answer = block_on(sasl_authenticate::step_with(
                &self.connection,
                &frame,
                users(),
                |check| std::future::ready(check.verify()),
            ));
            self.after_token(frame.to_vec(), answer, was_authenticated);
            return;
        }
        let mut body = frame;
        let Ok(header) = parse_request_header(&mut body) else {
            self.closed = true;
            return;
        };
        let version = header.api_version;
        match header.api_key.filter(|_| header.body_decodable()) {
            Some(ApiKey::ApiVersions) => {}
            Some(ApiKey::SaslHandshake) => {
                let Ok(request) = SaslHandshakeRequest::decode(&mut body, version) else {
                    self.closed = true;
                    return;
                };
                let response = sasl_handshake::answer(&self.connection, &request, version);
                let failed = self.connection.auth_failed.get();
                assert_eq!(
                    response.error_code != 0,
                    failed,
                    "a refused handshake closes"
                );
                if !failed {
                    let name = self.connection.sasl.borrow().mechanism_name();
                    self.exchange = Exchange {
                        mechanism: Some(ScramMechanism::from_name(name)),
                        ..Exchange::default()
                    };
                    assert!(name == "PLAIN" || ScramMechanism::from_name(name).is_some());
                }
                self.closed |= failed;
            }
            Some(ApiKey::SaslAuthenticate) => {
                let Ok(request) = SaslAuthenticateRequest::decode(&mut body, version) else {
                    self.closed = true;
                    return;
                };
                let was_authenticated = self.authenticated();
                let response = block_on(sasl_authenticate::answer_with(
                    &self.connection,
                    &request,
                    users(),
                    |check| std::future::ready(check.verify()),
                ));
                let answer = answer_of(&response);
                self.after_token(request.auth_bytes.to_vec(), answer, was_authenticated);
            }
            // Any other API before authentication closes the connection.
            _ => self.closed = true,
        }
    }

    /// Checks the oracle after one answered token.
    fn after_token(
        &mut self,
        token: Vec<u8>,
        answer: Result<Vec<u8>, String>,
        was_authenticated: bool,
    ) {
        let failed = self.connection.auth_failed.get();
        assert_eq!(
            answer.is_err(),
            failed,
            "an error answer, and only that, closes"
        );
        let Ok(reply) = answer else {
            assert!(!self.authenticated() || was_authenticated);
            self.closed = true;
            return;
        };
        assert!(
            !was_authenticated,
            "a token after authentication was accepted"
        );
        self.exchange.accepted.push((token, reply));
        if self.authenticated() {
            self.check_authentication();
        }
    }

    fn authenticated(&self) -> bool {
        self.connection.sasl.borrow().is_authenticated()
    }

    /// The oracle: this authentication is backed by the right password.
    fn check_authentication(&self) {
        let principal = self.connection.principal();
        let user = principal
            .strip_prefix("User:")
            .unwrap_or_else(|| panic!("principal {principal:?} is not User:<name>"));
        assert!(
            USER_NAMES.contains(&user),
            "authenticated as unknown user {user:?}"
        );
        match self.exchange.mechanism {
            Some(None) => {
                let [(token, reply)] = &self.exchange.accepted[..] else {
                    panic!(
                        "PLAIN authenticated after {} tokens",
                        self.exchange.accepted.len()
                    );
                };
                assert!(reply.is_empty());
                assert!(
                    plain_token_proves(token, user),
                    "PLAIN without {user}'s password authenticated"
                );
            }
            Some(Some(mechanism)) => {
                let [(first, server_first), (last, server_final)] = &self.exchange.accepted[..]
                else {
                    panic!(
                        "SCRAM authenticated after {} tokens",
                        self.exchange.accepted.len()
                    );
                };
                let password = password(user, mechanism)
                    .unwrap_or_else(|| panic!("{user} has no {} credential", mechanism.name()));
                let bare =
                    client_first_bare(first).expect("accepted client-first has a gs2 header");
                let server_first = std::str::from_utf8(server_first).expect("server-first is text");
                let last = std::str::from_utf8(last).expect("accepted client-final is text");
                let (without_proof, proof) = last
                    .rsplit_once(",p=")
                    .expect("accepted client-final has a proof");
                let auth_message = format!("{bare},{server_first},{without_proof}");
                let (salt, iterations) =
                    salt_and_iterations(server_first).expect("server-first has s= and i=");
                let (want_proof, want_signature) =
                    scram_proof(mechanism, password, &salt, iterations, &auth_message);
                assert_eq!(
                    B64.decode(proof).ok(),
                    Some(want_proof),
                    "SCRAM without {user}'s password authenticated"
                );
                let want_final = format!("v={}", B64.encode(want_signature));
                assert_eq!(server_final, want_final.as_bytes());
            }
            None => panic!("authenticated without a handshake"),
        }
    }

    /// An honest PLAIN token: payload[0] picks the user, payload[1] the
    /// authzid form, payload[2] whether the password is the right one
    /// (else the payload's rest).
    fn plain(&mut self, op: u8, payload: &[u8]) {
        let pick = |i: usize| payload.get(i).copied().unwrap_or(0);
        let user = USER_NAMES[usize::from(pick(0)) % USER_NAMES.len()];
        let authzid: &[u8] = match pick(1) % 3 {
            0 => b"",
            1 => user.as_bytes(),
            _ => b"mallory",
        };
        let right = pick(2) % 2 == 0;
        let password = match (right, plain_password(user)) {
            (true, Some(p)) => p.to_vec(),
            _ => payload.get(3..).unwrap_or_default().to_vec(),
        };
        let token = [authzid, b"\0", user.as_bytes(), b"\0", &password].concat();
        let expect_success = self.exchange.mechanism == Some(None)
            && self.exchange.accepted.is_empty()
            && !self.authenticated()
            && plain_token_proves(&token, user);
        let accepted = self.token(op, token);
        if expect_success {
            assert!(
                accepted && self.authenticated(),
                "PLAIN with {user}'s password refused"
            );
        }
    }

    /// An honest client-first: payload[0] picks the user, payload[1] the
    /// gs2 header, the rest is the nonce (printable, no commas).
    fn scram_first(&mut self, op: u8, payload: &[u8]) {
        let pick = |i: usize| payload.get(i).copied().unwrap_or(0);
        let user = USER_NAMES[usize::from(pick(0)) % USER_NAMES.len()];
        let plain_name = !user.contains([',', '=']);
        let gs2 = match pick(1) % 3 {
            0 => "n,,".to_string(),
            1 => "y,,".to_string(),
            _ if plain_name => format!("n,a={user},"),
            _ => "n,,".to_string(),
        };
        let nonce: String = payload
            .get(2..)
            .unwrap_or_default()
            .iter()
            .map(|b| char::from(0x21 + b % 0x5e))
            .filter(|c| *c != ',')
            .collect();
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let token = format!("{gs2}n={name},r={nonce}").into_bytes();
        let scram = matches!(self.exchange.mechanism, Some(Some(_)));
        let fresh = scram && self.exchange.accepted.is_empty() && !self.authenticated();
        let accepted = self.token(op, token);
        if fresh && !nonce.is_empty() {
            if let Some(Some(m)) = self.exchange.mechanism {
                assert_eq!(
                    accepted,
                    password(user, m).is_some(),
                    "client-first for {user}"
                );
            }
        }
        if accepted && fresh {
            self.exchange.honest_first = Some(user);
        }
    }

    /// client-final from the last server-first: payload[0] bit 0 = the
    /// right password (else payload[1..]), bit 1 = mangle the channel
    /// binding, bit 2 = mangle the nonce.
    fn scram_final(&mut self, op: u8, payload: &[u8]) {
        let flags = payload.first().copied().unwrap_or(0);
        let Some(Some(mechanism)) = self.exchange.mechanism else {
            self.token(op, payload.to_vec());
            return;
        };
        let Some((first, server_first)) = self.exchange.accepted.first().cloned() else {
            self.token(op, payload.to_vec());
            return;
        };
        let server_first = String::from_utf8_lossy(&server_first).into_owned();
        let (Some(bare), Some((salt, iterations)), Some(nonce)) = (
            client_first_bare(&first),
            salt_and_iterations(&server_first),
            attribute(&server_first, "r"),
        ) else {
            self.token(op, payload.to_vec());
            return;
        };
        let gs2 = &first[..first.len() - bare.len()];
        let honest_user = self.exchange.honest_first;
        let right = flags & 1 == 0;
        let password = match (right, honest_user.and_then(|u| password(u, mechanism))) {
            (true, Some(p)) => p.to_vec(),
            _ => payload.get(1..).unwrap_or_default().to_vec(),
        };
        let binding = if flags & 2 == 0 {
            B64.encode(gs2)
        } else {
            B64.encode(b"p=tls-unique,,")
        };
        let nonce = if flags & 4 == 0 {
            nonce.to_string()
        } else {
            format!("{nonce}x")
        };
        let without_proof = format!("c={binding},r={nonce}");
        let auth_message = format!("{bare},{server_first},{without_proof}");
        // Iterations are the server's (a client would use them); capped so
        // a broken server-first cannot stall the fuzzer.
        let (proof, _) = scram_proof(
            mechanism,
            &password,
            &salt,
            iterations.min(64),
            &auth_message,
        );
        let token = format!("{without_proof},p={}", B64.encode(proof)).into_bytes();
        let expect_success = honest_user.is_some()
            && right
            && flags & 6 == 0
            && self.exchange.accepted.len() == 1
            && !self.authenticated();
        let accepted = self.token(op, token);
        if expect_success {
            assert!(
                accepted && self.authenticated(),
                "SCRAM with the right password refused"
            );
        }
    }

    /// client-final with the server's nonce and binding but the payload as
    /// the proof: authenticates only if the payload is the right proof.
    fn scram_final_proof(&mut self, op: u8, payload: &[u8]) {
        let Some((first, server_first)) = self.exchange.accepted.first().cloned() else {
            self.token(op, payload.to_vec());
            return;
        };
        let server_first = String::from_utf8_lossy(&server_first).into_owned();
        let (Some(bare), Some(nonce)) = (client_first_bare(&first), attribute(&server_first, "r"))
        else {
            self.token(op, payload.to_vec());
            return;
        };
        let gs2 = &first[..first.len() - bare.len()];
        let token = format!("c={},r={nonce},p={}", B64.encode(gs2), B64.encode(payload));
        self.token(op, token.into_bytes());
    }

    fn encode(&mut self, key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("fuzz")));
        let mut out = BytesMut::new();
        header
            .encode(&mut out, key.request_header_version(version))
            .expect("header encodes");
        body.encode(&mut out, version).expect("request encodes");
        out.freeze()
    }
}

/// A SaslAuthenticate answer as the raw path's result.
fn answer_of(response: &SaslAuthenticateResponse) -> Result<Vec<u8>, String> {
    if response.error_code == 0 {
        Ok(response.auth_bytes.to_vec())
    } else {
        Err(response
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default())
    }
}

/// Whether a PLAIN token carries `user`'s password (RFC 4616, parsed here
/// independently of the server).
fn plain_token_proves(token: &[u8], user: &str) -> bool {
    let fields: Vec<&[u8]> = token.split(|b| *b == 0).collect();
    let [authzid, authcid, given] = fields[..] else {
        return false;
    };
    authcid == user.as_bytes()
        && (authzid.is_empty() || authzid == user.as_bytes())
        && Some(given) == plain_password(user)
}

/// client-first-bare: the client-first message after its gs2 header
/// (`flag,[authzid],`).
fn client_first_bare(first: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(first).ok()?;
    let (_, rest) = text.split_once(',')?;
    let (_, bare) = rest.split_once(',')?;
    Some(bare)
}

/// An attribute's value in a SCRAM message.
fn attribute<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split(',').find_map(|a| {
        a.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn salt_and_iterations(server_first: &str) -> Option<(Vec<u8>, u32)> {
    let salt = B64.decode(attribute(server_first, "s")?).ok()?;
    let iterations = attribute(server_first, "i")?.parse().ok()?;
    (iterations > 0).then_some((salt, iterations))
}

/// RFC 5802: (ClientProof, ServerSignature) for a clear password.
fn scram_proof(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &str,
) -> (Vec<u8>, Vec<u8>) {
    let (pbkdf2_alg, hmac_alg, digest_alg, len) = match mechanism {
        ScramMechanism::Sha256 => (
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
            32,
        ),
        ScramMechanism::Sha512 => (
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
            64,
        ),
    };
    let mut salted = vec![0u8; len];
    let rounds = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
    pbkdf2::derive(pbkdf2_alg, rounds, salt, password, &mut salted);
    let mac = |key: &[u8], data: &[u8]| {
        hmac::sign(&hmac::Key::new(hmac_alg, key), data)
            .as_ref()
            .to_vec()
    };
    let client_key = mac(&salted, b"Client Key");
    let stored_key = digest::digest(digest_alg, &client_key).as_ref().to_vec();
    let signature = mac(&stored_key, auth_message.as_bytes());
    let proof = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = mac(&salted, b"Server Key");
    (proof, mac(&server_key, auth_message.as_bytes()))
}
