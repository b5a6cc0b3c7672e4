//! One client connection: read frames, run each request as its own task,
//! write the answers back in request order.
//!
//! Requests are pipelined: up to [`REQUESTS_IN_FLIGHT_MAX`] run at once, and
//! the reader stops reading while that many are unanswered, so a client that
//! floods requests or reads its answers slowly is held back by TCP rather
//! than buffered in memory. Answers are written strictly in request order, as
//! Kafka requires; a request with no answer (acks=0 produce) is skipped.

use std::rc::Rc;

use bytes::BytesMut;
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt, SinkExt, StreamExt};
use glommio::net::TcpStream;
use glommio::task::JoinHandle;
use tracing::{debug, info};

use crate::handlers::{handle_frame, Outcome};
use crate::protocol::frame::FrameDecoder;
use crate::shard::Shard;

/// Requests of one connection being handled or awaiting their turn to be
/// answered.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 32;
/// Bytes read from the socket per read call.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;

type InFlight = glommio::Task<Outcome>;

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.split();
    let (mut queue_tx, mut queue_rx) = mpsc::channel::<InFlight>(REQUESTS_IN_FLIGHT_MAX);
    let request_bytes_max = shard.config.request_bytes_max;
    let shard_id = shard.id;

    let reading = async move {
        let mut decoder = FrameDecoder::new(request_bytes_max);
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let task = glommio::spawn_local(handle_frame(shard.clone(), frame));
                        if queue_tx.send(task).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        info!(shard = shard_id, %peer, "closing connection: {e}");
                        return;
                    }
                }
            }
            match reader.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    debug!(shard = shard_id, %peer, "read failed: {e}");
                    return;
                }
            }
        }
    };
    let writing = async move {
        while let Some(task) = queue_rx.next().await {
            match task.await {
                Outcome::Respond(frame) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Outcome::NoResponse => {}
                Outcome::Close(reason) => {
                    info!(shard = shard_id, "closing connection: {reason}");
                    return;
                }
            }
        }
        let _ = writer.flush().await;
    };
    let writing: JoinHandle<()> = glommio::spawn_local(writing).detach();
    match select(Box::pin(reading), writing).await {
        // The reader is done (EOF, error or a bad frame): answer what was
        // already read, then close.
        Either::Left((_, writing)) => {
            let _ = writing.await;
        }
        // The writer gave up (peer gone or protocol violation): drop the reader.
        Either::Right(_) => {}
    }
}
