//! A broker's own Kafka connection to another broker, on the shard's
//! executor: one request at a time, size-framed, `kafka-protocol` bodies.
//! The followers' fetchers and the transaction coordinator's remote calls
//! (`txn::remote`) use it; a response larger than [`RESPONSE_BYTES_MAX`]
//! or one that does not answer the request closes the connection with an
//! error (the caller reconnects).
//!
//! The connection speaks what the peer's inter-broker listener asks for
//! (`security::inter_broker`): TLS through futures-rustls, as the server
//! side, and a SASL login (`login`) before the first request, so the
//! leader sees the broker's own principal, not `User:ANONYMOUS`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use pki_types::ServerName;

use crate::protocol::request_frame::put_request;
use crate::security::inter_broker::PeerSecurity;

/// Client id in the request header: the leader's logs name replica fetches.
pub const CLIENT_ID: &str = "corestream-replica";
/// Largest response accepted, bytes: a replica fetch asks for at most
/// [`super::fetcher::FETCH_MAX_BYTES`], plus framing.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Connecting longer than this counts as a failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The TLS handshake and the SASL login together, at most (as the server
/// side's TLS handshake bound).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong on a broker-to-broker connection.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("{addr}: {source}")]
    Io {
        /// The peer.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The peer sent something we cannot take.
    #[error("{addr}: {message}")]
    Protocol {
        /// The peer.
        addr: String,
        /// What was wrong.
        message: String,
    },
    /// The TLS handshake failed (certificate not trusted, wrong name...).
    #[error("{addr}: TLS: {message}")]
    Tls {
        /// The peer.
        addr: String,
        /// What rustls said.
        message: String,
    },
    /// The peer refused the broker's SASL login.
    #[error("{addr}: SASL {mechanism} login as {user:?} refused: {message}")]
    Authentication {
        /// The peer.
        addr: String,
        /// Mechanism tried.
        mechanism: &'static str,
        /// The broker's user.
        user: String,
        /// The peer's message or the local check that failed.
        message: String,
    },
    /// No answer in time.
    #[error("{addr}: no answer within {0:?}", .timeout)]
    Timeout {
        /// The peer.
        addr: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// The byte stream under a connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.read_exact(buf).await,
            Stream::Tls(s) => s.read_exact(buf).await,
        }
    }
}

/// One connection to a broker's Kafka listener.
pub struct BrokerConnection {
    addr: String,
    stream: Stream,
    correlation_id: i32,
    /// When the peer's SASL session ends (KIP-368): the connection must be
    /// replaced before then.
    session_ends: Option<Instant>,
}

impl BrokerConnection {
    /// Connects to `addr` (HOST:PORT) with plain TCP and no login.
    pub async fn connect(addr: &str) -> Result<BrokerConnection, ClientError> {
        BrokerConnection::connect_secured(addr, &PeerSecurity::plaintext()).await
    }

    /// Connects to `addr` (HOST:PORT, the peer's inter-broker listener)
    /// and, as `security` says, runs the TLS handshake (the certificate
    /// checked against HOST) and the SASL login, within
    /// [`LOGIN_TIMEOUT`].
    pub async fn connect_secured(
        addr: &str,
        security: &PeerSecurity,
    ) -> Result<BrokerConnection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_string(),
            source,
        };
        let connecting = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT);
        let tcp = connecting
            .await
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        tcp.set_nodelay(true)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let secure = async {
            let stream = match &security.tls {
                None => Stream::Plain(tcp),
                Some(config) => Stream::Tls(Box::new(tls_connect(addr, config, tcp).await?)),
            };
            let mut conn = BrokerConnection {
                addr: addr.to_string(),
                stream,
                correlation_id: 0,
                session_ends: None,
            };
            if let Some(sasl) = &security.sasl {
                let lifetime = super::login::login(&mut conn, sasl).await?;
                conn.session_ends = lifetime.map(|l| Instant::now() + l);
            }
            Ok::<BrokerConnection, ClientError>(conn)
        };
        let timer = glommio::timer::sleep(LOGIN_TIMEOUT);
        futures::pin_mut!(secure, timer);
        match futures::future::select(secure, timer).await {
            futures::future::Either::Left((done, _)) => done,
            futures::future::Either::Right(_) => Err(ClientError::Timeout {
                addr: addr.to_string(),
                timeout: LOGIN_TIMEOUT,
            }),
        }
    }

    /// The peer, HOST:PORT.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the SASL session is over or about to be (within
    /// `margin`): replace the connection before the next request.
    pub fn session_ending(&self, margin: Duration) -> bool {
        self.session_ends
            .is_some_and(|end| Instant::now() + margin >= end)
    }

    /// Sends `request` at `version` and reads its answer, within `timeout`.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let frame = self.encode(request, version)?;
        let addr = self.addr.clone();
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await?;
            let size = i32::from_be_bytes(size);
            if size < 0 || size as usize > RESPONSE_BYTES_MAX {
                return Err(std::io::Error::other(format!(
                    "response size {size} out of range"
                )));
            }
            let mut body = vec![0u8; size as usize];
            self.stream.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        };
        let timer = glommio::timer::sleep(timeout);
        futures::pin_mut!(exchange, timer);
        let mut body = match futures::future::select(exchange, timer).await {
            futures::future::Either::Left((Ok(body), _)) => body,
            futures::future::Either::Left((Err(source), _)) => {
                return Err(ClientError::Io { addr, source })
            }
            futures::future::Either::Right(_) => {
                return Err(ClientError::Timeout { addr, timeout })
            }
        };
        let protocol = |message: String| ClientError::Protocol {
            addr: self.addr.clone(),
            message,
        };
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| protocol(format!("response header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(protocol(format!(
                "correlation id {} answers a request we did not send ({})",
                header.correlation_id, self.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| protocol(format!("response: {e}")))
    }

    fn encode<R: Request>(&mut self, request: &R, version: i16) -> Result<Bytes, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut frame = BytesMut::new();
        put_request(&mut frame, request, version, self.correlation_id, CLIENT_ID).map_err(
            |message| ClientError::Protocol {
                addr: self.addr.clone(),
                message,
            },
        )?;
        Ok(frame.freeze())
    }
}

/// The TLS client handshake; the certificate must chain to the CA and, with
/// hostname checks on, name the host of `addr`.
async fn tls_connect(
    addr: &str,
    config: &std::sync::Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, ClientError> {
    let tls = |message: String| ClientError::Tls {
        addr: addr.to_string(),
        message,
    };
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| tls(format!("{host:?} is not a server name: {e}")))?;
    futures_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| tls(e.to_string()))
}
