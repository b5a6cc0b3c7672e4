//! One client connection: read frames, run each request as its own task,
//! write the answers back in request order. A request's task outlives its
//! connection unless it is a Fetch (see [`Handling`]).
//!
//! Requests are pipelined: up to [`REQUESTS_IN_FLIGHT_MAX`] are in flight,
//! and the reader stops reading while that many are unanswered, so a client
//! that floods requests or reads its answers slowly is held back by TCP
//! rather than buffered in memory. Which of them may *run* at once is the
//! order gate's call (`request_order.rs`): their effects land as if they
//! ran one at a time, in order, as in Kafka. Answers are written strictly
//! in request order; a request with no answer (acks=0 produce) is skipped.
//!
//! Memory and time limits (see `limits.rs` and `config::ConnectionLimits`):
//! - a frame's declared size is reserved from the connection's and the
//!   shard's request budgets before its body is read; the reader waits while
//!   either is full, and the reservation goes with the frame to its handler
//!   task and is released when the handler finishes;
//! - the read buffer never grows past the frame being read plus one read
//!   chunk, and reads go straight into the buffer the frame is split from;
//!   an idle connection's buffer is 4 KiB (`read_buffer.rs` sizes it);
//! - once a frame's first byte arrived, the whole frame must arrive within
//!   `request_timeout_ms` (slowloris), else the connection is closed;
//! - a connection with nothing in flight that sends nothing for
//!   `connections_max_idle_ms` is closed.
//!
//! - at most [`FETCHES_IN_FLIGHT_MAX`] Fetch responses per connection exist
//!   at once (handled or waiting to be written): a consumer that reads its
//!   responses slowly holds back its own next fetches instead of making the
//!   broker buffer them.
//!
//! The timers cost one timer per read call, never per byte.
//!
//! Security (`secure.rs`): on SSL and SASL_SSL listeners the TLS handshake
//! runs first and the loop runs over the TLS stream (`fd` is `None`: no
//! raw `recv`, no vectored sends or splice; responses are copied into TLS
//! records). On SASL listeners, frames before authentication are handled
//! one at a time by the reader itself.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, SinkExt, StreamExt};
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::task::JoinHandle;
use glommio::timer::Timer;
use tracing::{debug, info};

use super::limits::{ByteBudget, Reserved};
use super::read_buffer::{prepare_read, shrink_when_idle, READ_CHUNK_BYTES, READ_IDLE_BYTES};
use super::request_order::{Footprint, OrderGate};
use crate::config::ConnectionLimits;
use crate::handlers::{handle_frame, Outcome};
use crate::protocol::frame::{FrameDecoder, FRAME_SIZE_PREFIX_BYTES};
use crate::security::{ConnectionContext, Listener};
use crate::shard::Shard;

/// Requests of one connection being handled or awaiting their turn to be
/// answered.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 32;
/// Fetch requests of one connection whose responses are not yet written to
/// the socket. A Fetch response can be large (up to the handler's
/// `FETCH_RESPONSE_BYTES_MAX`); a client that pipelines fetches and reads
/// slowly would otherwise pin that many of them. With this cap the reader
/// waits (and TCP pushes back on the client) until the writer has sent one,
/// so a slow consumer costs at most this many responses. librdkafka and
/// the Java client keep one fetch per connection in flight anyway.
pub const FETCHES_IN_FLIGHT_MAX: u64 = 2;

/// Kafka's API key for Fetch, read from a frame's first two bytes.
const FETCH_API_KEY: i16 = 1;
/// SaslHandshake's key: on an authenticated connection it begins a
/// re-authentication (KIP-368).
const SASL_HANDSHAKE_API_KEY: i16 = 17;

/// A request being handled, with the fetch slot it holds until its response
/// is written.
type InFlight = (Handling, Option<StaticPermit>);

/// A request's handler task. Every request but Fetch runs to completion
/// even if its client goes away first (a dropped connection drops its
/// queue): a produce, commit or transaction step stopped half-way would
/// leave the partition, group or coordinator between two states. A Fetch
/// only reads, and a long poll may wait for seconds, so it is cancelled
/// with its connection instead of outliving it.
enum Handling {
    ToCompletion(JoinHandle<Outcome>),
    Cancellable(glommio::Task<Outcome>),
    /// Handled already (before SASL authentication).
    Ready(Outcome),
}

impl Handling {
    async fn outcome(self) -> Outcome {
        match self {
            Handling::Cancellable(task) => task.await,
            Handling::Ready(outcome) => outcome,
            Handling::ToCompletion(handle) => handle
                .await
                .unwrap_or_else(|| Outcome::Close("request handler stopped".into())),
        }
    }
}

/// Serves one connection until the client closes it, breaks the protocol or
/// runs into a limit. `shard_budget` is the shard's request-byte budget;
/// `listener` is the listener it came in on (TLS, SASL, advertised address).
pub async fn serve(
    shard: Rc<Shard>,
    stream: TcpStream,
    shard_budget: Rc<ByteBudget>,
    listener: Rc<Listener>,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    let connection = Rc::new(
        ConnectionContext::new(listener, peer)
            .with_max_reauth_ms(shard.config.security.connections_max_reauth_ms),
    );
    if !connection.listener.protocol.uses_tls() {
        // For raw reads (`read_waiting`) and vectored sends of multi-part
        // responses (send_parts.rs); the fd lives as long as the stream's halves.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let (reader, writer) = stream.split();
        return run(shard, reader, writer, Some(fd), shard_budget, connection).await;
    }
    let limits = shard.config.limits;
    let Some(tls) = super::secure::tls_accept(stream, &connection, limits).await else {
        return;
    };
    let (reader, writer) = tls.split();
    run(shard, reader, writer, None, shard_budget, connection).await
}

/// The connection loop over a plain socket (`fd` given: raw reads,
/// vectored sends and splice) or a TLS stream (`fd` `None`: reads and
/// writes through the stream, file ranges copied).
async fn run<R, W>(
    shard: Rc<Shard>,
    reader: R,
    mut writer: W,
    fd: Option<std::os::fd::RawFd>,
    shard_budget: Rc<ByteBudget>,
    connection: Rc<ConnectionContext>,
) where
    R: AsyncRead + Unpin + 'static,
    W: AsyncWrite + Unpin + 'static,
{
    let peer = connection.peer.clone();
    let (mut queue_tx, mut queue_rx) = mpsc::channel::<InFlight>(REQUESTS_IN_FLIGHT_MAX);
    let shard_id = shard.id;
    let limits = shard.config.limits;
    let fetch_slots = Rc::new(Semaphore::new(FETCHES_IN_FLIGHT_MAX));
    let order = OrderGate::new();
    let mut frames = FrameReader::new(
        reader,
        fd,
        shard.config.request_bytes_max,
        limits,
        shard_budget,
    );

    let reading = async move {
        loop {
            // KIP-219: a throttled connection reads nothing until its
            // throttle time is over (`quota`); one `Cell` read otherwise.
            if let Some(until) = connection.muted() {
                glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
                frames.restart_timers();
                continue;
            }
            let (frame, held) = match frames.next_frame().await {
                Ok(next) => next,
                Err(Stop::Eof) => return,
                Err(Stop::ReadFailed(e)) => {
                    debug!(shard = shard_id, %peer, "read failed: {e}");
                    return;
                }
                Err(stop) => {
                    info!(shard = shard_id, %peer, "closing connection: {stop}");
                    return;
                }
            };
            if shard.is_stopping() {
                // The broker is stopping: this request is not handled (the
                // client sees the connection close and retries elsewhere,
                // as when a Kafka broker shuts down); those already read
                // are answered first.
                info!(shard = shard_id, %peer, "closing connection: broker is stopping");
                return;
            }
            if let Some(ago) = connection.session_expired_for() {
                // KIP-368: a request after the SASL session ended closes the
                // connection (Kafka's broker does the same, whatever the
                // client's version); the client reconnects and logs in anew.
                info!(shard = shard_id, %peer, principal = %connection.principal(),
                    "closing connection: SASL session ended {} ms ago and was not re-authenticated (connections_max_reauth_ms = {})",
                    ago.as_millis(), connection.session.max_reauth_ms());
                crate::ops::metrics::expired_session_closed();
                return;
            }
            let api_key = match frame.get(..2) {
                Some(b) => i16::from_be_bytes([b[0], b[1]]),
                None => -1,
            };
            // A SaslHandshake on an authenticated SASL connection begins a
            // re-authentication (KIP-368): it takes the same one-at-a-time
            // path, which also closes the connection when it is refused.
            let reauthenticating =
                api_key == SASL_HANDSHAKE_API_KEY && connection.listener.protocol.uses_sasl();
            if reauthenticating || connection.needs_authentication() {
                // Before SASL authentication: one request at a time, only
                // ApiVersions and the SASL ones (`secure.rs`).
                let outcome =
                    super::secure::before_authentication(&shard, frame, &connection).await;
                drop(held);
                let Some(outcome) = outcome else { return };
                if connection.auth_failed.get() {
                    // Kafka's connection.failed.authentication.delay.ms: a
                    // client guessing passwords gets its answer (and the
                    // close) only after this, one guess per connection.
                    let delay_ms = shard
                        .config
                        .security
                        .connection_failed_authentication_delay_ms;
                    glommio::timer::sleep(Duration::from_millis(delay_ms)).await;
                }
                if queue_tx
                    .send((Handling::Ready(outcome), None))
                    .await
                    .is_err()
                    || connection.auth_failed.get()
                {
                    return;
                }
                continue;
            }
            let is_fetch = api_key == FETCH_API_KEY;
            let fetch_slot = if is_fetch {
                match fetch_slots.acquire_static_permit(1).await {
                    Ok(slot) => Some(slot),
                    Err(_) => return,
                }
            } else {
                None
            };
            // Waits (reading nothing more) until the connection's earlier
            // requests allow this one to run.
            let admission = order.admit(Footprint::of(&frame)).await;
            // Quotas are charged as the frame is read, before the next
            // one is (`quota` module doc).
            let throttle_ms = match shard.quotas_configured() {
                true => crate::quota::on_request_read(&shard, &connection, &frame),
                false => 0,
            };
            let shard = shard.clone();
            let connection = connection.clone();
            let task = glommio::spawn_local(async move {
                let outcome =
                    handle_frame(shard, frame, Some(admission), connection, throttle_ms).await;
                drop(held);
                outcome
            });
            let task = if is_fetch {
                Handling::Cancellable(task)
            } else {
                Handling::ToCompletion(task.detach())
            };
            if queue_tx.send((task, fetch_slot)).await.is_err() {
                return;
            }
        }
    };
    let writing = async move {
        let mut splice = super::send_parts::SpliceState::default();
        // `_fetch_slot` is released when this iteration ends: after the
        // response went to the socket.
        while let Some((task, _fetch_slot)) = queue_rx.next().await {
            match task.outcome().await {
                Outcome::Respond(frame) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                    // TLS: push the record out now (a plain socket has no
                    // user-space buffer to flush).
                    if fd.is_none() && writer.flush().await.is_err() {
                        return;
                    }
                }
                Outcome::RespondParts(parts) => {
                    let sent = match fd {
                        Some(fd) => {
                            super::send_parts::send_parts(
                                &mut writer,
                                fd,
                                parts.parts(),
                                &mut splice,
                            )
                            .await
                        }
                        None => {
                            super::send_parts::send_parts_copying(&mut writer, parts.parts()).await
                        }
                    };
                    if sent.is_err() {
                        splice.close().await;
                        return;
                    }
                }
                Outcome::NoResponse => {}
                Outcome::Close(reason) => {
                    info!(shard = shard_id, "closing connection: {reason}");
                    splice.close().await;
                    return;
                }
            }
        }
        splice.close().await;
        let _ = writer.flush().await;
    };
    let writing: JoinHandle<()> = glommio::spawn_local(writing).detach();
    match select(Box::pin(reading), writing).await {
        // The reader is done (EOF, error, a bad frame or a limit): answer
        // what was already read, then close.
        Either::Left((_, writing)) => {
            let _ = writing.await;
        }
        // The writer gave up (peer gone or protocol violation): drop the reader.
        Either::Right(_) => {}
    }
}

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("end of stream")]
    Eof,
    #[error("read failed: {0}")]
    ReadFailed(std::io::Error),
    #[error("{0}")]
    BadFrame(crate::protocol::frame::FrameError),
    #[error("request of {frame_bytes} bytes not received within request_timeout_ms {timeout_ms} ({received} bytes arrived)")]
    RequestTimeout {
        frame_bytes: usize,
        received: usize,
        timeout_ms: u64,
    },
    #[error("idle for connections_max_idle_ms {0}")]
    Idle(u64),
}

/// Budget reservations travelling with one frame.
type Held = (Reserved, Reserved);

/// Splits frames off the socket under the connection's limits.
struct FrameReader<R> {
    reader: R,
    /// The socket under `reader`, for reads that skip zeroing
    /// (`read_waiting`); `None` under TLS, where bytes must go through
    /// the TLS stream.
    fd: Option<std::os::fd::RawFd>,
    buf: BytesMut,
    decoder: FrameDecoder,
    limits: ConnectionLimits,
    connection_budget: Rc<ByteBudget>,
    shard_budget: Rc<ByteBudget>,
    /// Reservations for the frame being read, once its size is known.
    admitted: Option<Held>,
    /// When the frame being read started (first byte, or admission).
    frame_started: Option<Instant>,
    /// When a read last returned bytes.
    last_read: Instant,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(
        reader: R,
        fd: Option<std::os::fd::RawFd>,
        request_bytes_max: usize,
        limits: ConnectionLimits,
        shard_budget: Rc<ByteBudget>,
    ) -> Self {
        FrameReader {
            reader,
            fd,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(request_bytes_max),
            limits,
            connection_budget: ByteBudget::new(limits.connection_request_bytes_in_flight_max),
            shard_budget,
            admitted: None,
            frame_started: None,
            last_read: Instant::now(),
        }
    }

    /// The next whole frame and its reservations.
    async fn next_frame(&mut self) -> Result<(Bytes, Held), Stop> {
        loop {
            if let Some(frame_bytes) = self.frame_bytes()? {
                if self.admitted.is_none() {
                    self.admit(frame_bytes).await;
                }
                if let Some(frame) = self.decoder.decode(&mut self.buf).map_err(Stop::BadFrame)? {
                    // `admit` above filled it; an empty slot would be a bug
                    // here, answered with a close rather than a panic.
                    let Some(held) = self.admitted.take() else {
                        return Err(Stop::Eof);
                    };
                    self.frame_started = (!self.buf.is_empty()).then(Instant::now);
                    return Ok((frame, held));
                }
            }
            self.fill().await?;
        }
    }

    /// Restarts the request and idle timers after the connection was
    /// muted: that wait was the broker's doing, not the client's.
    fn restart_timers(&mut self) {
        self.last_read = Instant::now();
        if self.frame_started.is_some() {
            self.frame_started = Some(self.last_read);
        }
    }

    /// Size of the frame at the front of the buffer, once its prefix is in.
    fn frame_bytes(&self) -> Result<Option<usize>, Stop> {
        self.decoder
            .peek_frame_bytes(&self.buf)
            .map_err(Stop::BadFrame)
    }

    /// Reserves the frame's bytes from both budgets, waiting (reading
    /// nothing) while either is full. The request timer restarts after the
    /// wait: waiting is the broker's doing, not the client's.
    async fn admit(&mut self, frame_bytes: usize) {
        let bytes = FRAME_SIZE_PREFIX_BYTES + frame_bytes;
        let connection = self.connection_budget.reserve(bytes).await;
        let shard = self.shard_budget.reserve(bytes).await;
        self.admitted = Some((connection, shard));
        self.frame_started = Some(Instant::now());
    }

    /// Reads once into the buffer, under the request or idle deadline.
    async fn fill(&mut self) -> Result<(), Stop> {
        let frame_total_bytes = self
            .frame_bytes()?
            .map(|frame_bytes| FRAME_SIZE_PREFIX_BYTES + frame_bytes);
        let mut want = prepare_read(&mut self.buf, frame_total_bytes);
        let old_len = self.buf.len();
        // A busy connection: what is already waiting lands in the buffer's
        // spare capacity, which is not zeroed first.
        let mut result = self.read_waiting(want);
        if result.is_none() {
            if old_len == 0 && want > READ_IDLE_BYTES {
                // A big buffer with nothing in it and nothing waiting: the
                // connection went idle, so it waits with a small buffer.
                self.buf.clear();
                want = shrink_when_idle(&mut self.buf);
            }
            // The read below waits; it needs initialized memory, so it
            // asks for at most one chunk (later reads of a big frame find
            // its bytes waiting and skip the zeroing).
            self.buf.resize(old_len + want.min(READ_CHUNK_BYTES), 0);
        }
        let (deadline, is_request) = self.deadline();
        if result.is_none() {
            let timer = Timer::new(deadline.saturating_duration_since(Instant::now()));
            let read = self.reader.read(&mut self.buf[old_len..]);
            result = match select(read, timer).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(_) => None,
            };
        }
        let read = result.as_ref().map_or(0, |r| *r.as_ref().unwrap_or(&0));
        // After `read_waiting` the length is already `old_len + read`.
        self.buf.truncate(old_len + read);
        match result {
            Some(Ok(0)) => Err(Stop::Eof),
            Some(Ok(_)) => {
                self.last_read = Instant::now();
                self.frame_started.get_or_insert(self.last_read);
                Ok(())
            }
            Some(Err(e)) => Err(Stop::ReadFailed(e)),
            None if is_request => Err(self.request_timeout()),
            None => self.idle_expired(),
        }
    }

    /// Reads what the socket already holds, up to `want` bytes, straight
    /// into the buffer's spare capacity (`prepare_read` reserved it), and
    /// extends the buffer by what arrived. `None` when nothing is waiting.
    ///
    /// This is what glommio's own read does first (a `MSG_DONTWAIT` recv),
    /// minus the `&mut [u8]` it needs, which forced zeroing `want` bytes
    /// before every read: 5 % of the broker's CPU under produce load.
    /// glommio's stream keeps no receive buffer of its own
    /// (`NonBuffered`), so bytes cannot be read out of order.
    fn read_waiting(&mut self, want: usize) -> Option<std::io::Result<usize>> {
        let fd = self.fd?;
        let spare = self.buf.spare_capacity_mut();
        let len = want.min(spare.len());
        // SAFETY: `fd` is this connection's socket, open while `reader`
        // lives; recv writes at most `len` bytes into memory we own.
        let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT) };
        let Ok(n) = usize::try_from(n) else {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => None,
                _ => Some(Err(e)),
            };
        };
        // SAFETY: recv initialized the first `n <= len` spare bytes.
        unsafe { self.buf.set_len(self.buf.len() + n) };
        Some(Ok(n))
    }

    /// The deadline of the next read, and whether it is the request timer.
    fn deadline(&self) -> (Instant, bool) {
        match self.frame_started {
            Some(started) => (started + ms(self.limits.request_timeout_ms), true),
            None => (
                self.last_read + ms(self.limits.connections_max_idle_ms),
                false,
            ),
        }
    }

    fn request_timeout(&self) -> Stop {
        let frame_bytes = self.frame_bytes().ok().flatten().unwrap_or(0);
        Stop::RequestTimeout {
            frame_bytes,
            received: self.buf.len(),
            timeout_ms: self.limits.request_timeout_ms,
        }
    }

    /// Idle timer fired: close unless requests are still being handled.
    fn idle_expired(&mut self) -> Result<(), Stop> {
        if self.connection_budget.used() > 0 {
            self.last_read = Instant::now();
            return Ok(());
        }
        Err(Stop::Idle(self.limits.connections_max_idle_ms))
    }
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
