//! Kafka-style listeners: `PLAINTEXT://127.0.0.1:9092,SASL_SSL://0.0.0.0:9094`.
//!
//! The listener name is its security protocol, as with Kafka's default
//! `listener.security.protocol.map`, so one listener per protocol at most.
//! `advertised_listeners` names, per listener, the address Metadata gives
//! clients that came in on it; a listener without one advertises its bind
//! address (as Kafka does; an unspecified host `0.0.0.0` is advertised as
//! is, so set `advertised_listeners` when binding every interface).

use std::net::{SocketAddr, ToSocketAddrs};

/// The security protocols of Kafka's listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, optionally with client certificates.
    Ssl,
    /// SASL authentication without TLS.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name for the protocol (and the listener).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn parse(name: &str) -> Option<SecurityProtocol> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether connections on this listener speak TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before other requests.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One resolved listener: what it binds and what it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Its protocol, which is also its name.
    pub protocol: SecurityProtocol,
    /// Address bound by every shard (SO_REUSEPORT).
    pub bind: SocketAddr,
    /// Host given to clients that connected here.
    pub advertised_host: String,
    /// Port given to clients that connected here.
    pub advertised_port: i32,
}

/// A listener list that does not parse; the message names the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ListenerError(pub String);

/// One `PROTOCOL://host:port` entry, unresolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerEntry {
    /// The protocol (and name).
    pub protocol: SecurityProtocol,
    /// The host as written (may be empty: every interface).
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Parses a comma-separated listener list in Kafka's form. Each protocol
/// may appear once (the name is the protocol).
pub fn parse_listener_list(text: &str) -> Result<Vec<ListenerEntry>, ListenerError> {
    let mut entries: Vec<ListenerEntry> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let entry = parse_entry(item)?;
        if entries.iter().any(|e| e.protocol == entry.protocol) {
            return Err(ListenerError(format!(
                "{item}: listener {} is given twice (the listener name is its protocol)",
                entry.protocol
            )));
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(ListenerError("no listener given".into()));
    }
    Ok(entries)
}

fn parse_entry(item: &str) -> Result<ListenerEntry, ListenerError> {
    let bad = |why: &str| ListenerError(format!("{item}: {why} (expected PROTOCOL://HOST:PORT)"));
    let (name, address) = item.split_once("://").ok_or_else(|| bad("no '://'"))?;
    let protocol = SecurityProtocol::parse(name)
        .ok_or_else(|| bad("unknown protocol; PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"))?;
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(ListenerEntry {
        protocol,
        host: host.to_string(),
        port,
    })
}

impl ListenerEntry {
    /// The address to bind: an empty host is every IPv4 interface.
    pub fn bind_addr(&self) -> Result<SocketAddr, ListenerError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                ListenerError(format!(
                    "{}://{}:{}: host does not resolve",
                    self.protocol, self.host, self.port
                ))
            })
    }
}

/// Resolves `listeners` and `advertised_listeners` into [`Listener`]s. An
/// advertised entry must name a listener that exists.
pub fn resolve_listeners(
    listeners: &[ListenerEntry],
    advertised: &[ListenerEntry],
) -> Result<Vec<Listener>, ListenerError> {
    if let Some(stray) = advertised
        .iter()
        .find(|a| !listeners.iter().any(|l| l.protocol == a.protocol))
    {
        return Err(ListenerError(format!(
            "advertised listener {} has no listener of that name",
            stray.protocol
        )));
    }
    listeners
        .iter()
        .map(|l| {
            let bind = l.bind_addr()?;
            let shown = advertised.iter().find(|a| a.protocol == l.protocol);
            let (host, port) = match shown {
                Some(a) => (a.host.clone(), a.port),
                None if l.host.is_empty() => (bind.ip().to_string(), l.port),
                None => (l.host.clone(), l.port),
            };
            Ok(Listener {
                protocol: l.protocol,
                bind,
                advertised_host: host,
                advertised_port: i32::from(port),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse_kafka_form_with_every_protocol() {
        let l = parse_listener_list(
            "PLAINTEXT://127.0.0.1:9092, SSL://:9093,sasl_plaintext://localhost:9094,SASL_SSL://[::1]:9095",
        )
        .unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[1].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[1].host, "");
        assert_eq!(l[2].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(l[3].host, "::1");
        assert_eq!(l[3].port, 9095);
    }

    #[test]
    fn listeners_refuse_unknown_protocol_duplicates_and_bad_ports() {
        assert!(parse_listener_list("FOO://a:1").is_err());
        assert!(parse_listener_list("SSL://a:1,SSL://b:2").is_err());
        assert!(parse_listener_list("SSL://a:x").is_err());
        assert!(parse_listener_list("SSL:a:1").is_err());
        assert!(parse_listener_list(" , ").is_err());
    }

    #[test]
    fn listeners_advertise_their_own_entry_or_the_bind_address() {
        let l = parse_listener_list("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093").unwrap();
        let a = parse_listener_list("SSL://broker.example:19093").unwrap();
        let r = resolve_listeners(&l, &a).unwrap();
        assert_eq!(r[0].advertised_host, "127.0.0.1");
        assert_eq!(r[0].advertised_port, 9092);
        assert_eq!(r[1].advertised_host, "broker.example");
        assert_eq!(r[1].advertised_port, 19093);
        let stray = parse_listener_list("SASL_SSL://x:1").unwrap();
        assert!(resolve_listeners(&l, &stray).is_err());
    }
}
