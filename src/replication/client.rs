//! A broker's own Kafka connection to another broker, on the shard's
//! executor: one request at a time, size-framed, `kafka-protocol` bodies.
//! The followers' fetchers use it; a response larger than
//! [`RESPONSE_BYTES_MAX`] or one that does not answer the request closes
//! the connection with an error (the fetcher reconnects).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};

use crate::protocol::request_frame::put_request;

/// Client id in the request header: the leader's logs name replica fetches.
pub const CLIENT_ID: &str = "corestream-replica";
/// Largest response accepted, bytes: a replica fetch asks for at most
/// [`super::fetcher::FETCH_MAX_BYTES`], plus framing.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Connecting longer than this counts as a failure.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// No answer in time.
    #[error("{addr}: no answer within {0:?}", .timeout)]
    Timeout {
        /// The peer.
        addr: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// One connection to a broker's Kafka listener.
pub struct BrokerConnection {
    addr: String,
    stream: TcpStream,
    correlation_id: i32,
}

impl BrokerConnection {
    /// Connects to `addr` (HOST:PORT).
    pub async fn connect(addr: &str) -> Result<BrokerConnection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_string(),
            source,
        };
        let connecting = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT);
        let stream = connecting
            .await
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        Ok(BrokerConnection {
            addr: addr.to_string(),
            stream,
            correlation_id: 0,
        })
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
