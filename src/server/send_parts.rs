//! Sending a response made of parts ([`ResponseParts`]) with vectored
//! writes, so shared record slices reach the socket without being copied
//! into one buffer.
//!
//! Decisions:
//! - glommio 0.9's `TcpStream` has no vectored write (its `poll_write`
//!   sends one buffer), so the fast path is `sendmsg(2)` on the socket's fd
//!   with `MSG_DONTWAIT`: up to [`PARTS_PER_SEND_MAX`] parts per call, never
//!   blocking the shard thread. This is what glommio itself does first on
//!   every write (a non-blocking `send`, then a poll through io_uring), so
//!   mixing the two on one socket is safe: the writer task is the only
//!   writer and each call completes before the next starts.
//! - When the socket buffer is full (`EAGAIN`), the rest of the current part
//!   goes through glommio's `write_all`, which parks the task until the
//!   socket is writable (io_uring poll) instead of spinning; then vectored
//!   sends resume with the next part.
//! - `MSG_NOSIGNAL`: a vanished peer is an `EPIPE` error, never a signal.
//! - A file-range part (cold data, `protocol::record_slices::FileSlice`)
//!   goes with io_uring SPLICE (`server::splice`) on the connection's own
//!   ring, made on first use. If splicing is unavailable before a byte of
//!   the range was sent (no io_uring, an fd splice refuses), the range is
//!   read with `pread` and sent from memory: the copy fallback, counted in
//!   `fetch::metrics` (expected to stay 0).
//!
//! [`ResponseParts`]: crate::protocol::fetch_writer::ResponseParts

use std::io;
use std::os::fd::RawFd;

use bytes::Bytes;
use futures::{AsyncWrite, AsyncWriteExt};
use tracing::warn;

use super::splice::{SpliceError, Splicer};
use crate::fetch::metrics::{record_send, SendPath};
use crate::protocol::record_slices::{FileSlice, Slice};

/// Most parts one `sendmsg` call carries (Linux allows 1,024 iovecs).
pub(crate) const PARTS_PER_SEND_MAX: usize = 64;

const _: () = assert!(PARTS_PER_SEND_MAX <= 1024);

/// A connection's splice state: not tried yet, working, or unavailable.
// One per connection, and a connection that splices keeps its ring for
// life: boxing the ring would add an allocation and buy no memory.
#[allow(clippy::large_enum_variant)]
#[derive(Default)]
pub(crate) enum SpliceState {
    /// No file range sent yet.
    #[default]
    Untried,
    /// The connection's ring.
    Ready(Splicer),
    /// Setting it up failed: file ranges go through the copy fallback.
    Unavailable,
}

impl SpliceState {
    /// Releases the ring (closing its eventfd through glommio).
    pub(crate) async fn close(self) {
        if let SpliceState::Ready(splicer) = self {
            splicer.close().await;
        }
    }
}

/// Writes every part of `parts`, in order, to the socket `fd` (which
/// `writer` writes to as well): memory parts with vectored sends, file
/// ranges with splice. Returns once all bytes are handed to the kernel.
pub(crate) async fn send_parts<W: AsyncWrite + Unpin>(
    writer: &mut W,
    fd: RawFd,
    parts: &[Slice],
    splice: &mut SpliceState,
) -> io::Result<()> {
    let mut run: Vec<Bytes> = Vec::new();
    for part in parts {
        match part {
            Slice::Mem(bytes) => run.push(bytes.clone()),
            Slice::File(file) => {
                send_bytes(writer, fd, &std::mem::take(&mut run)).await?;
                send_file(writer, fd, file, splice).await?;
            }
        }
    }
    send_bytes(writer, fd, &run).await
}

/// Writes every part of `parts` through `writer`, copying: the path of TLS
/// connections, whose bytes must be encrypted in user space, so neither
/// vectored sends on the fd nor splice apply. File ranges are read with
/// `pread` (page cache) first.
pub(crate) async fn send_parts_copying<W: AsyncWrite + Unpin>(
    writer: &mut W,
    parts: &[Slice],
) -> io::Result<()> {
    for part in parts {
        match part {
            Slice::Mem(bytes) => writer.write_all(bytes).await?,
            Slice::File(file) => {
                let bytes = file.read_to_bytes()?;
                writer.write_all(&bytes).await?;
            }
        }
    }
    writer.flush().await
}

/// One file range: spliced, or read and sent when splicing is unavailable.
async fn send_file<W: AsyncWrite + Unpin>(
    writer: &mut W,
    fd: RawFd,
    file: &FileSlice,
    splice: &mut SpliceState,
) -> io::Result<()> {
    if matches!(splice, SpliceState::Untried) {
        *splice = match Splicer::new() {
            Ok(splicer) => SpliceState::Ready(splicer),
            Err(e) => {
                warn!("splice unavailable on this connection, cold fetches will copy: {e}");
                SpliceState::Unavailable
            }
        };
    }
    if let SpliceState::Ready(splicer) = splice {
        match splicer.send(fd, file).await {
            Ok(()) => {
                record_send(SendPath::Splice, file.len);
                return Ok(());
            }
            Err(SpliceError::NothingSent(e)) => {
                warn!(
                    "splice of {} bytes failed before sending, copying instead: {e}",
                    file.len
                );
            }
            Err(e @ SpliceError::Partial { .. }) => return Err(io::Error::other(e.to_string())),
        }
    }
    let bytes = file.read_to_bytes()?;
    record_send(SendPath::Copy, bytes.len());
    send_bytes(writer, fd, &[bytes]).await
}

/// Writes every part of `parts`, in order, to the socket `fd` with
/// vectored non-blocking sends, waiting through `writer` when it is full.
async fn send_bytes<W: AsyncWrite + Unpin>(
    writer: &mut W,
    fd: RawFd,
    parts: &[Bytes],
) -> io::Result<()> {
    let mut cursor = Cursor { part: 0, offset: 0 };
    cursor.skip_empty(parts);
    while cursor.part < parts.len() {
        match send_nonblocking(fd, parts, &cursor)? {
            Some(sent) => cursor.advance(parts, sent),
            None => {
                writer
                    .write_all(&parts[cursor.part][cursor.offset..])
                    .await?;
                cursor.part += 1;
                cursor.offset = 0;
                cursor.skip_empty(parts);
            }
        }
    }
    Ok(())
}

/// Position of the next unsent byte.
struct Cursor {
    part: usize,
    offset: usize,
}

impl Cursor {
    fn skip_empty(&mut self, parts: &[Bytes]) {
        while self.part < parts.len() && self.offset == parts[self.part].len() {
            self.part += 1;
            self.offset = 0;
        }
    }

    fn advance(&mut self, parts: &[Bytes], mut sent: usize) {
        while sent > 0 {
            let left = parts[self.part].len() - self.offset;
            let step = left.min(sent);
            self.offset += step;
            sent -= step;
            self.skip_empty(parts);
        }
        self.skip_empty(parts);
    }
}

/// One non-blocking `sendmsg` of up to [`PARTS_PER_SEND_MAX`] parts from
/// the cursor. `Ok(None)` if the socket buffer is full.
fn send_nonblocking(fd: RawFd, parts: &[Bytes], cursor: &Cursor) -> io::Result<Option<usize>> {
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; PARTS_PER_SEND_MAX];
    let mut count = 0;
    for (i, part) in parts[cursor.part..].iter().enumerate() {
        if count == PARTS_PER_SEND_MAX {
            break;
        }
        let bytes = if i == 0 {
            &part[cursor.offset..]
        } else {
            &part[..]
        };
        if bytes.is_empty() {
            continue;
        }
        iovecs[count] = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        count += 1;
    }
    // SAFETY: a zeroed msghdr is valid (no name, no control data); it
    // points at `iovecs[..count]`, whose entries point into `parts`, which
    // the caller keeps alive and unmodified for the duration of this
    // synchronous call. The kernel only reads the iovecs.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = count as _;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if sent >= 0 {
        if sent == 0 && count > 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sendmsg on fd {fd} sent 0 bytes"),
            ));
        }
        return Ok(Some(sent as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => Ok(None),
        io::ErrorKind::Interrupted => Ok(Some(0)),
        _ => Err(io::Error::new(
            err.kind(),
            format!("sendmsg on fd {fd} failed: {err}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn sends_every_part_in_order_through_a_full_buffer() {
        let (tx, mut rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let parts: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i as usize * 97) % 5000]))
            .collect();
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        let fd = tx.as_raw_fd();
        let mut writer = futures::io::AllowStdIo::new(&tx);
        futures::executor::block_on(send_bytes(&mut writer, fd, &parts)).unwrap();
        drop(tx);
        assert_eq!(reader.join().unwrap(), expected);
    }
}
