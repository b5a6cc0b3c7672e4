//! Pipelined requests on one connection: a writer half that sends without
//! waiting, a reader half (on its own thread) that takes the answers in
//! order.
//!
//! The admin client ([`crate::cli::client::Conn`]) waits for each answer;
//! throughput needs several requests in flight per connection (Kafka's
//! producer default is 5), which Kafka allows: a broker answers a
//! connection's requests in the order it received them. The connection is
//! opened (and its API versions learned) by `Conn::connect`, then split.
//!
//! The reader takes each frame into a buffer from a small per-connection
//! pool, handed back when the last `Bytes` view of the answer is dropped: a
//! fresh zeroed allocation per answer (megabytes for a fetch) cost the
//! consumer about a tenth of its CPU in memset and page faults.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};

use crate::cli::client::{ClientError, Conn, CLIENT_ID};
use crate::protocol::request_frame::put_request;

/// Socket read buffer of a reader half, in bytes.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Frame buffers a reader half keeps for reuse (a consumer has at most a
/// few answers in flight and queued).
const FRAME_POOL_BUFFERS_MAX: usize = 16;

/// Spare frame buffers of one reader half. Each keeps the length it was
/// last filled to (those bytes are initialised), so reuse zero-fills only
/// growth.
type FramePool = Arc<Mutex<Vec<Vec<u8>>>>;

/// One frame's bytes; its buffer goes back to the pool when dropped.
struct PooledFrame {
    buf: Vec<u8>,
    len: usize,
    pool: FramePool,
}

impl AsRef<[u8]> for PooledFrame {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledFrame {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < FRAME_POOL_BUFFERS_MAX {
                pool.push(buf);
            }
        }
    }
}

/// The sending half.
pub struct PipeWriter {
    stream: TcpStream,
    /// The broker's address.
    pub addr: String,
    correlation_id: i32,
    frame: BytesMut,
}

/// The receiving half.
pub struct PipeReader {
    stream: BufReader<TcpStream>,
    /// The broker's address.
    pub addr: String,
    pool: FramePool,
}

/// Splits an open connection into its two halves.
pub fn split(conn: Conn) -> Result<(PipeWriter, PipeReader), ClientError> {
    let addr = conn.addr.clone();
    let (stream, _) = conn.into_stream();
    let read = stream.try_clone().map_err(|source| ClientError::Io {
        api: "socket clone".into(),
        addr: addr.clone(),
        source,
    })?;
    Ok((
        PipeWriter {
            stream,
            addr: addr.clone(),
            correlation_id: 0,
            frame: BytesMut::new(),
        },
        PipeReader {
            stream: BufReader::with_capacity(READ_BUFFER_BYTES, read),
            addr,
            pool: FramePool::default(),
        },
    ))
}

impl PipeWriter {
    /// Sends `request` at `version` without waiting; returns its
    /// correlation id.
    pub fn send<R: Request>(&mut self, request: &R, version: i16) -> Result<i32, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        put_request(
            &mut self.frame,
            request,
            version,
            self.correlation_id,
            CLIENT_ID,
        )
        .map_err(|message| ClientError::Protocol {
            api: format!("api {}", R::KEY),
            addr: self.addr.clone(),
            message,
        })?;
        self.stream
            .write_all(&self.frame)
            .map_err(|source| ClientError::Io {
                api: format!("api {}", R::KEY),
                addr: self.addr.clone(),
                source,
            })?;
        Ok(self.correlation_id)
    }
}

impl PipeReader {
    /// Reads the next answer, which must be the one to `correlation_id`.
    pub fn recv<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<R::Response, ClientError> {
        let addr = self.addr.clone();
        let mut body = self.read_frame().map_err(|source| ClientError::Io {
            api: format!("api {}", R::KEY),
            addr: addr.clone(),
            source,
        })?;
        let protocol = |message: String| ClientError::Protocol {
            api: format!("api {}", R::KEY),
            addr: addr.clone(),
            message,
        };
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| protocol(format!("response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(protocol(format!(
                "answer to correlation id {} where {correlation_id} was next",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| protocol(format!("response: {e}")))
    }

    fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let size = crate::cli::client::read_frame_size(&mut self.stream)?;
        let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut buf = spare.unwrap_or_default();
        if buf.len() < size {
            buf.resize(size, 0);
        }
        self.stream.read_exact(&mut buf[..size])?;
        Ok(Bytes::from_owner(PooledFrame {
            buf,
            len: size,
            pool: Arc::clone(&self.pool),
        }))
    }
}
