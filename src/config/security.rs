//! Security settings: listeners, TLS files, the first SASL user.
//!
//! `listeners` / `advertised_listeners` take Kafka's form
//! (`PLAINTEXT://127.0.0.1:9092,SASL_SSL://0.0.0.0:9094`, see
//! `security::listener`). `listen` / `advertised_addr` stay as the
//! shorthand for one PLAINTEXT listener; given with `listeners`, they add
//! that PLAINTEXT listener to the list (naming PLAINTEXT in both is an
//! error: a listener name appears once). A TLS listener needs
//! `tls_cert` and `tls_key`. The initial user's password is never a flag or
//! key: it comes from `CORESTREAM_INITIAL_USER_PASSWORD` or from the file
//! named by `initial_user_password_file`, read at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::file::FileConfig;
use super::flags::Flags;
use super::*;
use crate::security::acl::{parse_principal, parse_super_users, AclAuthorizer};
use crate::security::listener::{parse_listener_list, resolve_listeners, Listener};
use crate::security::tls::TlsFiles;
use crate::security::SecurityProtocol;

/// Environment variable holding the initial user's password.
pub const INITIAL_USER_PASSWORD_ENV: &str = "CORESTREAM_INITIAL_USER_PASSWORD";

/// Kafka's default `connection.failed.authentication.delay.ms`.
pub(super) const CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_DEFAULT: u64 = 100;
/// Upper bound: the delay holds a connection (and the client's retry), so
/// it must stay well inside the clients' request timeouts.
pub(super) const CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_MAX: u64 = 10_000;
/// Shortest session accepted, ms: a client re-authenticates at 85-95 % of
/// its session, and Kafka refuses a re-authentication within a second of
/// the last, so a shorter one could not be kept alive.
pub(super) const CONNECTIONS_MAX_REAUTH_MS_MIN: u64 = 1_000;
/// Shortest admin token accepted: a guessable token is no guard.
pub(super) const ADMIN_TOKEN_BYTES_MIN: usize = 16;

/// The admin HTTP port's bearer token. `Debug` never shows it: the config
/// is logged at start.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Whether `presented` is the token, in time independent of where
    /// they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Reads the token file: its first line, trimmed, at least
/// [`ADMIN_TOKEN_BYTES_MIN`] bytes.
fn read_admin_token(path: &std::path::Path) -> Result<AdminToken, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            "admin-token-file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < ADMIN_TOKEN_BYTES_MIN {
        return Err(invalid(
            "admin-token-file",
            format!(
                "{}: the token must be at least {ADMIN_TOKEN_BYTES_MIN} bytes",
                path.display()
            ),
        ));
    }
    Ok(AdminToken(token.to_string()))
}

/// Resolved security settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// The listeners from `listeners`; empty when `listen` is used instead
    /// (see [`Config::listeners`]).
    pub listeners: Vec<Listener>,
    /// TLS material, when given.
    pub tls: Option<TlsFiles>,
    /// User created with SCRAM-SHA-512 on a data dir that has no user yet.
    pub initial_user: Option<String>,
    /// File holding the initial user's password (else the env variable).
    pub initial_user_password_file: Option<PathBuf>,
    /// Wait before a failed SASL authentication is answered and closed.
    pub connection_failed_authentication_delay_ms: u64,
    /// SASL sessions end after this unless re-authenticated (KIP-368,
    /// Kafka's connections.max.reauth.ms); 0: they never end.
    pub connections_max_reauth_ms: u64,
    /// Bearer token the admin HTTP port requires, when set.
    pub admin_token: Option<AdminToken>,
    /// The ACL authorizer (`authorizer = "acl"`); `None` allows every
    /// request.
    pub authorizer: Option<AclAuthorizer>,
    /// The principal the web console's Kafka requests act as
    /// (`admin_ui_principal`, `Type:name`); checked by the authorizer like
    /// any client's (`console::access`).
    pub admin_ui_principal: String,
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            listeners: Vec::new(),
            tls: None,
            initial_user: None,
            initial_user_password_file: None,
            connection_failed_authentication_delay_ms:
                CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_DEFAULT,
            connections_max_reauth_ms: 0,
            admin_token: None,
            authorizer: None,
            admin_ui_principal: crate::security::ANONYMOUS_PRINCIPAL.to_string(),
        }
    }
}

impl SecurityConfig {
    /// Flags over file, validated.
    pub(super) fn resolve(flags: &Flags, file: &FileConfig) -> Result<SecurityConfig, ConfigError> {
        let text = |f: &Option<String>, t: &Option<String>| f.clone().or_else(|| t.clone());
        let listeners_text = text(&flags.listeners, &file.listeners);
        let advertised_text = text(&flags.advertised_listeners, &file.advertised_listeners);
        let listen_text = text(&flags.listen, &file.listen);
        let advertised_addr = text(&flags.advertised_addr, &file.advertised_addr);
        let mut listeners = Vec::new();
        if let Some(listeners_text) = &listeners_text {
            // `listen` (and `advertised_addr`) given too: one more
            // listener, the PLAINTEXT one they stand for.
            let mut all = listeners_text.clone();
            let mut shown = advertised_text.clone().unwrap_or_default();
            if let Some(listen) = &listen_text {
                all = format!("PLAINTEXT://{listen},{all}");
                if let Some(addr) = &advertised_addr {
                    shown = format!("PLAINTEXT://{addr},{shown}");
                }
            }
            let parsed = parse_listener_list(&all).map_err(|e| invalid("listeners", e.0))?;
            let advertised = match shown.trim_matches(',').is_empty() {
                true => Vec::new(),
                false => {
                    parse_listener_list(&shown).map_err(|e| invalid("advertised-listeners", e.0))?
                }
            };
            listeners =
                resolve_listeners(&parsed, &advertised).map_err(|e| invalid("listeners", e.0))?;
        } else if advertised_text.is_some() {
            return Err(invalid(
                "advertised-listeners",
                "needs listeners (with listen, use advertised_addr)".into(),
            ));
        }
        let path = |f: &Option<PathBuf>, t: &Option<PathBuf>| f.clone().or_else(|| t.clone());
        let cert = path(&flags.tls_cert, &file.tls_cert);
        let key = path(&flags.tls_key, &file.tls_key);
        let client_ca = path(&flags.tls_client_ca, &file.tls_client_ca);
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None) if client_ca.is_none() => None,
            _ => {
                return Err(invalid(
                    "tls-cert",
                    "tls_cert and tls_key go together (and tls_client_ca needs them)".into(),
                ))
            }
        };
        if let Some(l) = listeners.iter().find(|l| l.protocol.uses_tls()) {
            if tls.is_none() {
                return Err(invalid(
                    "listeners",
                    format!("listener {} needs tls_cert and tls_key", l.protocol),
                ));
            }
        }
        let delay_ms = flags
            .connection_failed_authentication_delay_ms
            .or(file.connection_failed_authentication_delay_ms)
            .unwrap_or(CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_DEFAULT);
        if delay_ms > CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_MAX {
            return Err(invalid(
                "connection-failed-authentication-delay-ms",
                format!("at most {CONNECTION_FAILED_AUTHENTICATION_DELAY_MS_MAX} ms"),
            ));
        }
        let connections_max_reauth_ms = flags
            .connections_max_reauth_ms
            .or(file.connections_max_reauth_ms)
            .unwrap_or(0);
        if connections_max_reauth_ms != 0
            && connections_max_reauth_ms < CONNECTIONS_MAX_REAUTH_MS_MIN
        {
            return Err(invalid(
                "connections-max-reauth-ms",
                format!("0 (off) or at least {CONNECTIONS_MAX_REAUTH_MS_MIN} ms"),
            ));
        }
        let admin_token = match path(&flags.admin_token_file, &file.admin_token_file) {
            Some(p) => Some(read_admin_token(&p)?),
            None => None,
        };
        let authorizer = resolve_authorizer(flags, file)?;
        // Kafka UIs connect as a configured user; without one, the console
        // is what a client without credentials is: User:ANONYMOUS.
        let admin_ui_principal = match text(&flags.admin_ui_principal, &file.admin_ui_principal) {
            Some(p) => parse_principal(&p).map_err(|e| invalid("admin-ui-principal", e.0))?,
            None => crate::security::ANONYMOUS_PRINCIPAL.to_string(),
        };
        Ok(SecurityConfig {
            authorizer,
            admin_ui_principal,
            connection_failed_authentication_delay_ms: delay_ms,
            connections_max_reauth_ms,
            admin_token,
            listeners,
            tls,
            initial_user: text(&flags.initial_user, &file.initial_user),
            initial_user_password_file: path(
                &flags.initial_user_password_file,
                &file.initial_user_password_file,
            ),
        })
    }
}

/// The `authorizer`, `super_users` and `allow_everyone_if_no_acl_found`
/// settings: the latter two need `authorizer = "acl"`.
fn resolve_authorizer(
    flags: &Flags,
    file: &FileConfig,
) -> Result<Option<AclAuthorizer>, ConfigError> {
    let kind = flags.authorizer.clone().or_else(|| file.authorizer.clone());
    let super_users = flags
        .super_users
        .clone()
        .or_else(|| file.super_users.clone());
    let allow_everyone = flags
        .allow_everyone_if_no_acl_found
        .or(file.allow_everyone_if_no_acl_found);
    match kind.as_deref().map(str::trim) {
        None | Some("none") | Some("") => {
            if super_users.is_some() || allow_everyone.is_some() {
                return Err(invalid(
                    "super-users",
                    "super_users and allow_everyone_if_no_acl_found need authorizer = \"acl\""
                        .into(),
                ));
            }
            Ok(None)
        }
        Some("acl") => Ok(Some(AclAuthorizer {
            super_users: parse_super_users(super_users.as_deref().unwrap_or(""))
                .map_err(|e| invalid("super-users", e.0))?,
            allow_everyone_if_no_acl_found: allow_everyone.unwrap_or(false),
        })),
        Some(other) => Err(invalid(
            "authorizer",
            format!("{other:?} is not an authorizer (none or acl)"),
        )),
    }
}

impl SecurityConfig {
    /// Every Kafka listener: `listeners`, or the PLAINTEXT one `listen`
    /// (advertised as `host:port`) stands for.
    pub fn listeners_or(&self, listen: SocketAddr, host: &str, port: i32) -> Vec<Listener> {
        if !self.listeners.is_empty() {
            return self.listeners.clone();
        }
        vec![Listener {
            protocol: SecurityProtocol::Plaintext,
            bind: listen,
            advertised_host: host.to_string(),
            advertised_port: port,
        }]
    }
}

impl Config {
    /// Every Kafka listener: `listeners`, or the PLAINTEXT one `listen`
    /// stands for.
    pub fn listeners(&self) -> Vec<Listener> {
        self.security
            .listeners_or(self.listen, &self.advertised_host, self.advertised_port)
    }
}
