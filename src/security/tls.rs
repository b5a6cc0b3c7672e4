//! TLS for the SSL and SASL_SSL listeners: rustls (ring provider, TLS 1.2
//! and 1.3) driven through futures-rustls over glommio's `TcpStream`.
//!
//! Decisions:
//! - The server config lives in one process-wide slot, read once per TLS
//!   accept (never per request): SIGHUP builds a new config from the same
//!   files and swaps it in. Connections keep the session they negotiated,
//!   so a reload drops none of them; new connections get the new
//!   certificate. A reload that fails (a missing or bad file) keeps the old
//!   config and is logged.
//! - With `tls_client_ca`, client certificates are required and verified
//!   against it (Kafka's `ssl.client.auth=required`); the principal is the
//!   certificate's subject in RFC 2253 form, `User:CN=alice,O=acme`, as
//!   Kafka's default `ssl.principal.mapping.rules`. Without it an SSL
//!   client is `User:ANONYMOUS`.
//! - Zero-copy fetch (splice, vectored sends from the tail cache) cannot
//!   work under TLS: the bytes must be encrypted in user space. TLS
//!   connections take a copying write path instead (`server::connection`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The PEM files TLS is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS config could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {path}: {message}")]
    File {
        /// Which file it is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// A reload was asked with no TLS configured.
    #[error("TLS is not configured")]
    NotConfigured,
}

struct Installed {
    files: TlsFiles,
    config: Arc<ServerConfig>,
}

/// The process-wide TLS config (see the module doc).
static TLS: RwLock<Option<Installed>> = RwLock::new(None);

/// Builds the server config from `files` and installs it.
pub fn install(files: &TlsFiles) -> Result<(), TlsError> {
    let config = Arc::new(build(files)?);
    let mut slot = TLS.write().unwrap_or_else(|p| p.into_inner());
    *slot = Some(Installed {
        files: files.clone(),
        config,
    });
    Ok(())
}

/// Re-reads the installed files (SIGHUP). The old config stays on error.
pub fn reload() -> Result<(), TlsError> {
    let files = {
        let slot = TLS.read().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .map(|i| i.files.clone())
            .ok_or(TlsError::NotConfigured)?
    };
    install(&files)
}

/// Whether TLS is installed.
pub fn is_installed() -> bool {
    TLS.read().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// An acceptor with the current config, for one new connection.
pub fn acceptor() -> Option<futures_rustls::TlsAcceptor> {
    let slot = TLS.read().unwrap_or_else(|p| p.into_inner());
    slot.as_ref()
        .map(|i| futures_rustls::TlsAcceptor::from(i.config.clone()))
}

fn file_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(String) -> TlsError + 'a {
    move |message| TlsError::File {
        what,
        path: path.to_path_buf(),
        message,
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path)(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(what, path)(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(what, path)("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Builds a rustls server config (TLS 1.2 and 1.3, ring).
pub fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    // The ring provider, as chosen for this project (no C/CMake build of
    // aws-lc); rustls marks it deprecated because ring has no
    // post-quantum key exchange. Classic X25519/P-256 remain.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("tls-cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error("tls-key", &files.key)(e.to_string()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls-client-ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("tls-client-ca", ca)(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))
}

/// Kafka's default SSL principal: the client certificate's subject in
/// RFC 2253 form (last RDN first, `CN=alice,O=acme`); `None` when the
/// certificate does not parse.
pub fn subject_principal(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut rdns = Vec::new();
    for rdn in parsed.subject().iter() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type();
                let name = x509_parser::objects::oid2abbrev(oid, registry)
                    .map(str::to_string)
                    .unwrap_or_else(|_| oid.to_id_string());
                let value = attr.as_str().map(escape_rfc2253).unwrap_or_default();
                format!("{name}={value}")
            })
            .collect();
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
