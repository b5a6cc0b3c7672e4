//! CPU cost of one SASL login on the broker side, the figure behind the
//! decision to run PLAIN's password check off the shard thread
//! (`handlers::sasl_authenticate`): PLAIN derives the password with PBKDF2
//! (the credential's iterations, Kafka's default 4096) on every login,
//! while a SCRAM server only checks a proof (a few HMACs; the client did
//! the PBKDF2). Measured: `PlainCheck::verify` through the session, and a
//! whole SCRAM exchange on the server (client-first, client-final; the
//! client's proof is computed in the loop from a cached salted password,
//! a few microseconds).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ring::{digest, hmac};

use corestream::security::sasl::{SaslSession, SaslStep, ScramUsers};
use corestream::security::scram::{
    salt_password, ScramCredential, ScramMechanism, SCRAM_ITERATIONS_DEFAULT,
};

const USER: &str = "bench";
const PASSWORD: &[u8] = b"bench-password";
const SALT: &[u8] = b"0123456789abcdef0123456789abcdef";

fn users(mechanism: ScramMechanism, iterations: u32) -> ScramUsers {
    let salted = salt_password(mechanism, PASSWORD, SALT, iterations).unwrap();
    let credential =
        ScramCredential::from_salted_password(mechanism, &salted, SALT.to_vec(), iterations);
    let mut users = ScramUsers::new();
    users
        .entry(USER.to_string())
        .or_default()
        .insert(mechanism, credential);
    users
}

fn plain_login(c: &mut Criterion) {
    let token = [b"\0", USER.as_bytes(), b"\0", PASSWORD].concat();
    for (mechanism, iterations) in [
        (ScramMechanism::Sha512, SCRAM_ITERATIONS_DEFAULT),
        (ScramMechanism::Sha256, SCRAM_ITERATIONS_DEFAULT),
        (ScramMechanism::Sha512, 16384),
    ] {
        let users = users(mechanism, iterations);
        let name = format!("plain_login/{}/{iterations}", mechanism.name());
        c.bench_function(&name, |b| {
            b.iter(|| {
                let mut session = SaslSession::default();
                session.handshake("PLAIN", 1).unwrap();
                let Ok(SaslStep::CheckPlain(check)) = session.step(&token, &users) else {
                    panic!("PLAIN token refused");
                };
                let verified = check.verify().unwrap();
                black_box(session.finish_plain(verified).unwrap());
            })
        });
    }
}

fn scram_login(c: &mut Criterion) {
    for mechanism in [ScramMechanism::Sha512, ScramMechanism::Sha256] {
        let users = users(mechanism, SCRAM_ITERATIONS_DEFAULT);
        let salted = salt_password(mechanism, PASSWORD, SALT, SCRAM_ITERATIONS_DEFAULT).unwrap();
        let (hmac_alg, digest_alg) = match mechanism {
            ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
            ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
        };
        let mac = |key: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(hmac_alg, key), data)
                .as_ref()
                .to_vec()
        };
        let client_key = mac(&salted, b"Client Key");
        let stored_key = digest::digest(digest_alg, &client_key).as_ref().to_vec();
        let bare = format!("n={USER},r=benchnonce");
        let name = format!(
            "scram_login/{}/{SCRAM_ITERATIONS_DEFAULT}",
            mechanism.name()
        );
        c.bench_function(&name, |b| {
            b.iter(|| {
                let mut session = SaslSession::default();
                session.handshake(mechanism.name(), 1).unwrap();
                let Ok(SaslStep::Continue(server_first)) =
                    session.step(format!("n,,{bare}").as_bytes(), &users)
                else {
                    panic!("client-first refused");
                };
                let server_first = String::from_utf8(server_first).unwrap();
                let nonce = server_first
                    .split(',')
                    .find_map(|a| a.strip_prefix("r="))
                    .unwrap();
                let without_proof = format!("c=biws,r={nonce}");
                let auth_message = format!("{bare},{server_first},{without_proof}");
                let signature = mac(&stored_key, auth_message.as_bytes());
                let proof: Vec<u8> = client_key
                    .iter()
                    .zip(&signature)
                    .map(|(k, s)| k ^ s)
                    .collect();
                let last = format!("{without_proof},p={}", B64.encode(proof));
                black_box(session.step(last.as_bytes(), &users).unwrap());
                assert!(session.is_authenticated());
            })
        });
    }
}

criterion_group!(benches, plain_login, scram_login);
criterion_main!(benches);
