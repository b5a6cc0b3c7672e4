//! What a broker presents to the other brokers of its cluster, as Kafka's
//! `inter.broker.listener.name`, `sasl.mechanism.inter.broker.protocol`
//! and the broker's own client TLS settings define it.
//!
//! Decisions:
//! - Peers are reached on their *inter-broker listener*, one of the
//!   listeners each broker registers (`cluster::state::BrokerEndpoint`);
//!   every broker of a cluster names the same one, as in Kafka.
//! - On a SASL listener the broker logs in as its own user (SCRAM or
//!   PLAIN against the same cluster-wide credentials clients use), so ACLs
//!   apply to it like to any principal: replication needs CLUSTER_ACTION
//!   on the cluster, or the broker's user among `super_users`.
//! - On a TLS listener the peer's certificate must chain to
//!   `inter_broker_tls_ca`; its name (DNS or IP SAN) must match the
//!   address the peer advertises unless `ssl_endpoint_identification_algorithm`
//!   is empty: Kafka's default is `https`, hostname checked.
//! - The rustls client config is built once at start and shared by every
//!   connection (`Arc`): a reconnect costs a handshake, not a file read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

use super::scram::ScramMechanism;
use super::tls::TlsError;
use super::SecurityProtocol;

/// Environment variable holding the broker's inter-broker password.
pub const INTER_BROKER_PASSWORD_ENV: &str = "CORESTREAM_INTER_BROKER_PASSWORD";

/// The SASL mechanism a broker logs in to its peers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterBrokerMechanism {
    /// SASL PLAIN: the password is sent (use it over TLS only).
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramMechanism),
}

impl InterBrokerMechanism {
    /// By Kafka's name (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    pub fn from_name(name: &str) -> Option<InterBrokerMechanism> {
        if name.trim().eq_ignore_ascii_case("PLAIN") {
            return Some(InterBrokerMechanism::Plain);
        }
        ScramMechanism::from_name(name.trim()).map(InterBrokerMechanism::Scram)
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            InterBrokerMechanism::Plain => "PLAIN",
            InterBrokerMechanism::Scram(m) => m.name(),
        }
    }
}

/// A password that never appears in `Debug` output (the config is logged).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The broker's own SASL login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterBrokerSasl {
    /// Mechanism.
    pub mechanism: InterBrokerMechanism,
    /// The broker's user name (principal `User:<name>`).
    pub username: String,
    /// Its password.
    pub password: Password,
}

/// How the broker checks its peers' certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterBrokerTls {
    /// CA bundle (PEM) the peers' certificates chain to.
    pub ca: PathBuf,
    /// Check the certificate's name against the advertised host (Kafka's
    /// `ssl.endpoint.identification.algorithm=https`, the default).
    pub verify_hostname: bool,
}

/// Everything a broker needs to open a connection to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterBrokerConfig {
    /// The listener (name = protocol) peers are reached on.
    pub listener: SecurityProtocol,
    /// Login, when the listener uses SASL.
    pub sasl: Option<InterBrokerSasl>,
    /// Certificate checks, when the listener uses TLS.
    pub tls: Option<InterBrokerTls>,
}

impl Default for InterBrokerConfig {
    fn default() -> InterBrokerConfig {
        InterBrokerConfig {
            listener: SecurityProtocol::Plaintext,
            sasl: None,
            tls: None,
        }
    }
}

/// What a connection to a peer uses: the settings and the TLS config
/// built from them (once, at start).
#[derive(Clone)]
pub struct PeerSecurity {
    /// The SASL login, if any.
    pub sasl: Option<InterBrokerSasl>,
    /// The rustls client config, if the listener uses TLS.
    pub tls: Option<Arc<ClientConfig>>,
}

impl PeerSecurity {
    /// Plain TCP, no login (a cluster whose inter-broker listener is
    /// PLAINTEXT).
    pub fn plaintext() -> PeerSecurity {
        PeerSecurity {
            sasl: None,
            tls: None,
        }
    }

    /// Builds the TLS client config from `config`'s CA file.
    pub fn build(config: &InterBrokerConfig) -> Result<PeerSecurity, TlsError> {
        let tls = match &config.tls {
            Some(t) => Some(Arc::new(client_config(&t.ca, t.verify_hostname)?)),
            None => None,
        };
        Ok(PeerSecurity {
            sasl: config.sasl.clone(),
            tls,
        })
    }
}

/// The process-wide peer settings, built once at start (`install`).
static PEER: std::sync::RwLock<Option<PeerSecurity>> = std::sync::RwLock::new(None);

/// Builds the peer settings from `config` (reading the CA file) and
/// installs them for every shard.
pub fn install(config: &InterBrokerConfig) -> Result<(), TlsError> {
    let built = PeerSecurity::build(config)?;
    *PEER.write().unwrap_or_else(|p| p.into_inner()) = Some(built);
    Ok(())
}

/// What connections to peers use: the installed settings, or plain TCP
/// before any were installed (a unit test's shard).
pub fn peer_security() -> PeerSecurity {
    PEER.read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(PeerSecurity::plaintext)
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |message: String| TlsError::File {
        what: "inter-broker-tls-ca",
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

/// A rustls client config (TLS 1.2 and 1.3, ring) trusting `ca`.
pub fn client_config(ca: &Path, verify_hostname: bool) -> Result<ClientConfig, TlsError> {
    // ring, as the server side (see `tls::build`).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(read_roots(ca)?);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let config = match verify_hostname {
        true => builder.with_webpki_verifier(webpki).with_no_client_auth(),
        false => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Checks the chain, the validity dates and the signatures like the WebPKI
/// verifier, but not the name: `ssl_endpoint_identification_algorithm`
/// empty. The WebPKI verifier checks the name last, after the chain, so a
/// name error is the only one this lets through.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match checked {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inter_broker_mechanism_parses_kafka_names() {
        assert_eq!(
            InterBrokerMechanism::from_name("plain"),
            Some(InterBrokerMechanism::Plain)
        );
        assert_eq!(
            InterBrokerMechanism::from_name("SCRAM-SHA-512"),
            Some(InterBrokerMechanism::Scram(ScramMechanism::Sha512))
        );
        assert_eq!(InterBrokerMechanism::from_name("GSSAPI"), None);
    }

    #[test]
    fn inter_broker_password_debug_is_redacted() {
        let sasl = InterBrokerSasl {
            mechanism: InterBrokerMechanism::Plain,
            username: "broker".into(),
            password: Password("hunter2".into()),
        };
        assert!(!format!("{sasl:?}").contains("hunter2"));
    }

    #[test]
    fn inter_broker_tls_ca_missing_or_empty_is_a_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            client_config(&empty, true),
            Err(TlsError::File { .. })
        ));
        assert!(client_config(&dir.path().join("missing.pem"), false).is_err());
    }
}
