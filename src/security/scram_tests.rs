//! SCRAM exchanges driven by a client written from RFC 5802 here.

use super::*;

/// The client's side, for the tests.
fn client_final_for(
    mechanism: ScramMechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attr in server_first.split(',') {
        match attr.split_once('=').unwrap() {
            ("r", v) => nonce = v,
            ("s", v) => salt = B64.decode(v).unwrap(),
            ("i", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    let salted = salt_password(mechanism, password.as_bytes(), &salt, iterations).unwrap();
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    format!("{without_proof},p={}", B64.encode(proof))
}

fn exchange(mechanism: ScramMechanism, stored: &str, tried: &str) -> Result<ScramStep, ScramError> {
    let credential = ScramCredential::new(mechanism, stored.as_bytes(), 4096).unwrap();
    let mut server = ScramServer::Start(mechanism);
    let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
    let lookup = |u: &str| (u == "alice").then(|| credential.clone());
    let ScramStep::Continue(first) = server.step(format!("n,,{bare}").as_bytes(), lookup)? else {
        panic!("first step finished");
    };
    let first = String::from_utf8(first).unwrap();
    let fin = client_final_for(mechanism, tried, bare, &first);
    server.step(fin.as_bytes(), |_| None)
}

#[test]
fn scram_sha256_right_password_authenticates() {
    let step = exchange(ScramMechanism::Sha256, "s3cret", "s3cret").unwrap();
    assert!(matches!(step, ScramStep::Done { ref user, .. } if user == "alice"));
}

#[test]
fn scram_sha512_right_password_authenticates() {
    let step = exchange(ScramMechanism::Sha512, "s3cret", "s3cret").unwrap();
    assert!(matches!(step, ScramStep::Done { .. }));
}

#[test]
fn scram_sha256_wrong_proof_fails() {
    assert_eq!(
        exchange(ScramMechanism::Sha256, "s3cret", "wrong"),
        Err(ScramError::BadProof("alice".into()))
    );
}

#[test]
fn scram_sha512_wrong_proof_fails() {
    assert_eq!(
        exchange(ScramMechanism::Sha512, "s3cret", "s3cret!"),
        Err(ScramError::BadProof("alice".into()))
    );
}

#[test]
fn scram_unknown_user_fails_at_client_first() {
    let mut server = ScramServer::Start(ScramMechanism::Sha256);
    let r = server.step(b"n,,n=bob,r=abc", |_| None);
    assert_eq!(r, Err(ScramError::UnknownUser("bob".into())));
}

#[test]
fn scram_foreign_nonce_and_garbage_fail() {
    let credential = ScramCredential::new(ScramMechanism::Sha256, b"pw", 4096).unwrap();
    let mut server = ScramServer::Start(ScramMechanism::Sha256);
    server
        .step(b"n,,n=alice,r=abc", |_| Some(credential.clone()))
        .unwrap();
    let r = server.step(b"c=biws,r=abcOTHER,p=AAAA", |_| None);
    assert_eq!(r, Err(ScramError::Nonce));
    let mut fresh = ScramServer::Start(ScramMechanism::Sha256);
    assert!(fresh.step(b"\xff\xfe", |_| None).is_err());
    assert!(fresh.step(b"p=tls-unique,,n=a,r=b", |_| None).is_err());
    assert!(fresh.step(b"n,,n=a=ZZ,r=b", |_| None).is_err());
}

#[test]
fn scram_known_vector_rfc7677_sha256() {
    // RFC 7677 section 3: user "user", password "pencil".
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let salted = salt_password(ScramMechanism::Sha256, b"pencil", &salt, 4096).unwrap();
    let credential =
        ScramCredential::from_salted_password(ScramMechanism::Sha256, &salted, salt, 4096);
    let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let result = super::client_final(
        ScramMechanism::Sha256,
        client_final,
        &credential,
        &format!("{bare},{server_first}"),
        "n,,",
        "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    );
    assert_eq!(
        result.unwrap(),
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

#[test]
fn plain_password_check_uses_the_scram_credential() {
    let c = ScramCredential::new(ScramMechanism::Sha512, b"pw", 4096).unwrap();
    assert!(c.matches_password(ScramMechanism::Sha512, b"pw"));
    assert!(!c.matches_password(ScramMechanism::Sha512, b"pw2"));
}

#[test]
fn scram_nonce_exact_or_librdkafka_doubled_client_part_only() {
    let server_part = "0".repeat(2 * SERVER_NONCE_BYTES);
    let nonce = format!("cli{server_part}");
    assert!(nonce_accepted(Some(&nonce), &nonce));
    // librdkafka < 2.6.1: the client nonce once more in front.
    assert!(nonce_accepted(Some(&format!("cli{nonce}")), &nonce));
    assert!(!nonce_accepted(Some(&format!("xyz{nonce}")), &nonce));
    assert!(!nonce_accepted(Some("cli"), &nonce));
    assert!(!nonce_accepted(Some(&server_part), &nonce));
    assert!(!nonce_accepted(None, &nonce));
}
