//! Inter-broker settings, Kafka's names: `inter_broker_listener_name`,
//! `sasl_mechanism_inter_broker_protocol`, and the broker's own login
//! (`inter_broker_username`, its password from
//! `CORESTREAM_INTER_BROKER_PASSWORD` or `inter_broker_password_file`,
//! never a flag or key) and certificate checks (`inter_broker_tls_ca`,
//! `ssl_endpoint_identification_algorithm`, `https` or empty).
//!
//! The listener defaults to PLAINTEXT when the broker has one (Kafka's
//! `security.inter.broker.protocol` default), else to its only listener;
//! a broker with several listeners and no PLAINTEXT must name one. Only a
//! cluster needs it: a single node has no peer, and its settings are not
//! checked beyond their syntax.

use std::path::{Path, PathBuf};

use super::file::FileConfig;
use super::flags::Flags;
use super::*;
use crate::security::inter_broker::{
    InterBrokerConfig, InterBrokerMechanism, InterBrokerSasl, InterBrokerTls, Password,
    INTER_BROKER_PASSWORD_ENV,
};
use crate::security::{Listener, SecurityProtocol};

/// Kafka's default `sasl.mechanism.inter.broker.protocol` is GSSAPI, which
/// corestream does not serve; SCRAM-SHA-512 is what `--initial-user` makes.
pub(super) const INTER_BROKER_MECHANISM_DEFAULT: InterBrokerMechanism =
    InterBrokerMechanism::Scram(crate::security::scram::ScramMechanism::Sha512);

/// The settings as given, before they are checked against the listeners.
#[derive(Default)]
pub(super) struct InterBrokerInput {
    pub(super) listener: Option<String>,
    pub(super) mechanism: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_env: Option<String>,
    pub(super) ca: Option<PathBuf>,
    pub(super) endpoint_identification: Option<String>,
}

impl InterBrokerInput {
    /// Flags over file; the password from the env variable unless a file
    /// is named.
    pub(super) fn gather(flags: &Flags, file: &FileConfig) -> InterBrokerInput {
        let text = |f: &Option<String>, t: &Option<String>| f.clone().or_else(|| t.clone());
        let path = |f: &Option<PathBuf>, t: &Option<PathBuf>| f.clone().or_else(|| t.clone());
        InterBrokerInput {
            listener: text(
                &flags.inter_broker_listener_name,
                &file.inter_broker_listener_name,
            ),
            mechanism: text(
                &flags.sasl_mechanism_inter_broker_protocol,
                &file.sasl_mechanism_inter_broker_protocol,
            ),
            username: text(&flags.inter_broker_username, &file.inter_broker_username),
            password_file: path(
                &flags.inter_broker_password_file,
                &file.inter_broker_password_file,
            ),
            password_env: std::env::var(INTER_BROKER_PASSWORD_ENV).ok(),
            ca: path(&flags.inter_broker_tls_ca, &file.inter_broker_tls_ca),
            endpoint_identification: text(
                &flags.ssl_endpoint_identification_algorithm,
                &file.ssl_endpoint_identification_algorithm,
            ),
        }
    }
}

/// Checks the settings against `listeners`; `clustered` says whether the
/// node has peers (see the module doc).
pub(super) fn resolve(
    input: InterBrokerInput,
    listeners: &[Listener],
    clustered: bool,
) -> Result<InterBrokerConfig, ConfigError> {
    let verify_hostname = match input.endpoint_identification.as_deref().map(str::trim) {
        None => true,
        Some(a) if a.eq_ignore_ascii_case("https") => true,
        Some("") | Some("none") => false,
        Some(other) => {
            return Err(invalid(
                "ssl-endpoint-identification-algorithm",
                format!("{other:?}: https (check the peer's name) or empty (do not)"),
            ))
        }
    };
    let mechanism = match &input.mechanism {
        Some(name) => Some(InterBrokerMechanism::from_name(name).ok_or_else(|| {
            invalid(
                "sasl-mechanism-inter-broker-protocol",
                format!("{name:?}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            )
        })?),
        None => None,
    };
    if !clustered {
        return Ok(InterBrokerConfig::default());
    }
    let listener = inter_broker_listener(input.listener.as_deref(), listeners)?;
    let sasl = match listener.uses_sasl() {
        true => Some(sasl_login(&input, listener, mechanism)?),
        false if input.username.is_some() || mechanism.is_some() => {
            return Err(invalid(
                "inter-broker-username",
                format!(
                    "the inter-broker listener {listener} does not use SASL: \
                     remove the inter-broker login or choose a SASL listener"
                ),
            ))
        }
        false => None,
    };
    let tls = match (listener.uses_tls(), input.ca) {
        (true, Some(ca)) => Some(InterBrokerTls {
            ca,
            verify_hostname,
        }),
        (true, None) => {
            return Err(invalid(
                "inter-broker-tls-ca",
                format!(
                    "the inter-broker listener {listener} uses TLS: \
                     inter_broker_tls_ca must name the CA the brokers' certificates chain to"
                ),
            ))
        }
        (false, _) => None,
    };
    Ok(InterBrokerConfig {
        listener,
        sasl,
        tls,
    })
}

/// The named listener, which must be one of the broker's; unnamed, the
/// PLAINTEXT one or the only one.
fn inter_broker_listener(
    name: Option<&str>,
    listeners: &[Listener],
) -> Result<SecurityProtocol, ConfigError> {
    let defined = || {
        listeners
            .iter()
            .map(|l| l.protocol.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = "inter-broker-listener-name";
    match name.map(str::trim) {
        Some(name) => listeners
            .iter()
            .map(|l| l.protocol)
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                invalid(
                    key,
                    format!(
                        "{name:?} names no listener of this broker (listeners: {})",
                        defined()
                    ),
                )
            }),
        None => {
            let plaintext = listeners
                .iter()
                .any(|l| l.protocol == SecurityProtocol::Plaintext);
            match (plaintext, listeners) {
                (true, _) => Ok(SecurityProtocol::Plaintext),
                (false, [only]) => Ok(only.protocol),
                (false, _) => Err(invalid(
                    key,
                    format!(
                        "no PLAINTEXT listener and several others ({}): name the one brokers use",
                        defined()
                    ),
                )),
            }
        }
    }
}

fn sasl_login(
    input: &InterBrokerInput,
    listener: SecurityProtocol,
    mechanism: Option<InterBrokerMechanism>,
) -> Result<InterBrokerSasl, ConfigError> {
    let username = input
        .username
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                "inter-broker-username",
                format!(
                    "the inter-broker listener {listener} uses SASL: set inter_broker_username"
                ),
            )
        })?;
    let password = match &input.password_file {
        Some(path) => read_password(path)?,
        None => input.password_env.clone().unwrap_or_default(),
    };
    if password.is_empty() {
        return Err(invalid(
            "inter-broker-password-file",
            format!(
                "the inter-broker user {username} has no password: set \
                 {INTER_BROKER_PASSWORD_ENV} or inter_broker_password_file"
            ),
        ));
    }
    Ok(InterBrokerSasl {
        mechanism: mechanism.unwrap_or(INTER_BROKER_MECHANISM_DEFAULT),
        username,
        password: Password(password),
    })
}

/// The file's text without its trailing newline (as `--initial-user`).
fn read_password(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| {
            invalid(
                "inter-broker-password-file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::listener::{parse_listener_list, resolve_listeners};

    fn listeners(text: &str) -> Vec<Listener> {
        resolve_listeners(&parse_listener_list(text).unwrap(), &[]).unwrap()
    }

    fn sasl_ssl_input() -> InterBrokerInput {
        InterBrokerInput {
            listener: Some("SASL_SSL".into()),
            mechanism: Some("SCRAM-SHA-256".into()),
            username: Some("broker".into()),
            password_env: Some("pw".into()),
            ca: Some("/ca.pem".into()),
            ..Default::default()
        }
    }

    #[test]
    fn inter_broker_sasl_ssl_resolves_login_and_hostname_check() {
        let l = listeners("PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094");
        let c = resolve(sasl_ssl_input(), &l, true).unwrap();
        assert_eq!(c.listener, SecurityProtocol::SaslSsl);
        let sasl = c.sasl.unwrap();
        assert_eq!(sasl.username, "broker");
        assert_eq!(sasl.password.0, "pw");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-256");
        let tls = c.tls.unwrap();
        assert!(tls.verify_hostname, "Kafka's default is https");
        let off = InterBrokerInput {
            endpoint_identification: Some(String::new()),
            ..sasl_ssl_input()
        };
        assert!(!resolve(off, &l, true).unwrap().tls.unwrap().verify_hostname);
    }

    #[test]
    fn inter_broker_listener_defaults_to_plaintext_or_the_only_one() {
        let both = listeners("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093");
        let c = resolve(InterBrokerInput::default(), &both, true).unwrap();
        assert_eq!(c.listener, SecurityProtocol::Plaintext);
        let only = listeners("SSL://127.0.0.1:9093");
        let input = InterBrokerInput {
            ca: Some("/ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(input, &only, true).unwrap().listener,
            SecurityProtocol::Ssl
        );
        let two = listeners("SSL://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094");
        let err = resolve(InterBrokerInput::default(), &two, true).unwrap_err();
        assert!(
            err.to_string().contains("name the one brokers use"),
            "{err}"
        );
    }

    #[test]
    fn inter_broker_refuses_undefined_listener_missing_login_and_missing_ca() {
        let l = listeners("PLAINTEXT://127.0.0.1:9092");
        let err = resolve(sasl_ssl_input(), &l, true).unwrap_err();
        assert!(err.to_string().contains("names no listener"), "{err}");
        let l = listeners("PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094");
        let no_user = InterBrokerInput {
            username: None,
            ..sasl_ssl_input()
        };
        let err = resolve(no_user, &l, true).unwrap_err();
        assert!(
            err.to_string().contains("set inter_broker_username"),
            "{err}"
        );
        let no_password = InterBrokerInput {
            password_env: None,
            ..sasl_ssl_input()
        };
        let err = resolve(no_password, &l, true).unwrap_err();
        assert!(err.to_string().contains("has no password"), "{err}");
        let no_ca = InterBrokerInput {
            ca: None,
            ..sasl_ssl_input()
        };
        let err = resolve(no_ca, &l, true).unwrap_err();
        assert!(err.to_string().contains("inter_broker_tls_ca"), "{err}");
        let login_on_plaintext = InterBrokerInput {
            listener: Some("PLAINTEXT".into()),
            ..sasl_ssl_input()
        };
        assert!(resolve(login_on_plaintext, &l, true).is_err());
    }

    #[test]
    fn inter_broker_bad_mechanism_or_algorithm_refused_even_on_a_single_node() {
        let l = listeners("PLAINTEXT://127.0.0.1:9092");
        let gssapi = InterBrokerInput {
            mechanism: Some("GSSAPI".into()),
            ..Default::default()
        };
        assert!(resolve(gssapi, &l, false).is_err());
        let algorithm = InterBrokerInput {
            endpoint_identification: Some("http".into()),
            ..Default::default()
        };
        assert!(resolve(algorithm, &l, false).is_err());
        let fine = resolve(InterBrokerInput::default(), &l, false).unwrap();
        assert_eq!(fine, InterBrokerConfig::default());
    }

    #[test]
    fn inter_broker_password_file_loses_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        let l = listeners("SASL_PLAINTEXT://127.0.0.1:9094");
        let input = InterBrokerInput {
            listener: None,
            username: Some("broker".into()),
            password_file: Some(path),
            password_env: Some("ignored".into()),
            ..Default::default()
        };
        let c = resolve(input, &l, true).unwrap();
        assert_eq!(c.sasl.unwrap().password.0, "s3cret");
    }
}
