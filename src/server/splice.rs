//! Sending a segment file range to a socket without passing the bytes
//! through user space: io_uring SPLICE file -> pipe -> socket, on a small
//! ring of the connection's own.
//!
//! Decisions:
//! - glommio 0.9 has no splice/sendfile and its rings are private, so the
//!   connection owns a 4-entry `io-uring` ring, created on its first file
//!   range (idle and hot-tail connections never make one). One ring per
//!   connection, not per shard: the connection's writer sends one response
//!   at a time, so the ring has at most one operation in flight and needs
//!   no dispatcher, and a slow reader only ever stalls its own ring.
//! - Nothing blocks the shard thread, and no kernel thread waits on a slow
//!   reader. File -> pipe is an io_uring SPLICE, which the kernel always
//!   runs in an io-wq worker (a page-cache miss waits there, for the disk
//!   only). Pipe -> socket is a non-blocking `splice(2)` on the shard thread
//!   (the socket is made O_NONBLOCK around the call, as glommio does around
//!   its own `accept`; glommio's sockets are otherwise blocking and it
//!   writes with MSG_DONTWAIT): an io_uring SPLICE into a full socket would
//!   park an io-wq worker per slow consumer. When the socket is full, the
//!   task waits for POLLOUT with an io_uring POLL_ADD (armed on the
//!   socket's wait queue, no worker). The task waits for every completion
//!   by reading the ring's registered eventfd through glommio
//!   (`BufferedFile::read_at`, an io_uring READ on glommio's own ring that
//!   completes when the counter is non-zero), so the shard keeps running
//!   other tasks meanwhile.
//! - The pipe is enlarged to [`SPLICE_PIPE_BYTES`] when the system allows
//!   (fewer round trips per MiB); chunks never exceed its size, and what a
//!   short socket splice leaves in the pipe is drained before the next
//!   file chunk, so bytes stay in order.
//! - The file is a buffered fd of the segment (O_DIRECT writes keep the
//!   page cache coherent: they invalidate the range they write).
//! - Failure before any byte of a range reached the socket is
//!   [`SpliceError::NothingSent`]: the caller sends the range with a copy
//!   instead (counted as the copy fallback). After that, the frame is
//!   broken and the connection must close.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use glommio::io::BufferedFile;
use io_uring::{opcode, types, IoUring};

use crate::protocol::record_slices::FileSlice;

/// Pipe capacity asked for, in bytes (Linux's default
/// `/proc/sys/fs/pipe-max-size`, so unprivileged processes get it).
pub(crate) const SPLICE_PIPE_BYTES: usize = 1 << 20;
/// Pipe capacity when enlarging fails: Linux's default pipe size.
const PIPE_BYTES_DEFAULT: usize = 64 << 10;
/// Submission-queue entries of a connection's ring (one op in flight).
const RING_ENTRIES: u32 = 4;

/// Why a range was not (wholly) spliced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpliceError {
    /// No byte reached the socket: the range can be sent another way.
    #[error("splice unavailable: {0}")]
    NothingSent(io::Error),
    /// Part of the range reached the socket: the frame is broken.
    #[error("splice failed after {sent} bytes: {source}")]
    Partial {
        /// Bytes already in the socket.
        sent: usize,
        /// What failed.
        source: io::Error,
    },
}

/// A connection's splice machinery: ring, pipe, and the eventfd the ring
/// signals. `!Send`: it lives in the connection's writer task.
pub(crate) struct Splicer {
    ring: IoUring,
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    pipe_bytes: usize,
    /// The ring's eventfd, read through glommio to wait for completions.
    completions: BufferedFile,
}

impl Splicer {
    /// A ring, a pipe and an eventfd.
    pub(crate) fn new() -> io::Result<Splicer> {
        let ring = IoUring::new(RING_ENTRIES)
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring setup: {e}")))?;
        let (pipe_read, pipe_write) = pipe()?;
        // SAFETY: F_SETPIPE_SZ / F_GETPIPE_SZ on a pipe fd we own; a
        // refused resize is harmless (over the per-user pipe budget a pipe
        // may even be a single page), so the size is read back.
        let got = unsafe {
            libc::fcntl(
                pipe_write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                SPLICE_PIPE_BYTES as libc::c_int,
            );
            libc::fcntl(pipe_write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let pipe_bytes = if got > 0 {
            got as usize
        } else {
            PIPE_BYTES_DEFAULT
        };
        // Blocking mode on purpose: io_uring answers EAGAIN for a READ on
        // an O_NONBLOCK file instead of waiting for it.
        // SAFETY: plain syscall; the result is checked.
        let event = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if event < 0 {
            return Err(os_error("eventfd"));
        }
        // SAFETY: `event` is a fresh fd we own.
        let event = unsafe { OwnedFd::from_raw_fd(event) };
        ring.submitter()
            .register_eventfd(event.as_raw_fd())
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring eventfd: {e}")))?;
        // SAFETY: ownership of the fd moves into the BufferedFile.
        let completions = unsafe { BufferedFile::from_raw_fd(into_raw(event)) };
        Ok(Splicer {
            ring,
            pipe_read,
            pipe_write,
            pipe_bytes,
            completions,
        })
    }

    /// Sends the whole range to `socket`. Returns once every byte is in the
    /// socket's buffer.
    pub(crate) async fn send(
        &mut self,
        socket: RawFd,
        file: &FileSlice,
    ) -> Result<(), SpliceError> {
        let mut sent = 0usize;
        let broke = |sent: usize, source: io::Error| match sent {
            0 => SpliceError::NothingSent(source),
            _ => SpliceError::Partial { sent, source },
        };
        while sent < file.len {
            let chunk = (file.len - sent).min(self.pipe_bytes);
            let position = file.position + sent as u64;
            let filled = self
                .splice(
                    file.raw_fd(),
                    position as i64,
                    self.pipe_write.as_raw_fd(),
                    -1,
                    chunk,
                )
                .await
                .map_err(|e| broke(sent, e))?;
            if filled == 0 {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "segment ends early");
                return Err(broke(sent, eof));
            }
            let mut in_pipe = filled;
            while in_pipe > 0 {
                let partial = |source| SpliceError::Partial { sent, source };
                let moved = splice_to_socket(self.pipe_read.as_raw_fd(), socket, in_pipe);
                let Some(out) = moved.map_err(partial)? else {
                    self.wait_writable(socket).await.map_err(partial)?;
                    continue;
                };
                if out == 0 {
                    let closed = io::Error::new(io::ErrorKind::WriteZero, "socket took 0 bytes");
                    return Err(SpliceError::Partial {
                        sent,
                        source: closed,
                    });
                }
                in_pipe -= out;
                sent += out;
            }
        }
        Ok(())
    }

    /// Closes the eventfd through glommio (an explicit close, rather than
    /// the drop-time one glommio logs about).
    pub(crate) async fn close(self) {
        let _ = self.completions.close().await;
    }

    /// One SPLICE of up to `len` bytes; the bytes moved.
    async fn splice(
        &mut self,
        fd_in: RawFd,
        off_in: i64,
        fd_out: RawFd,
        off_out: i64,
        len: usize,
    ) -> io::Result<usize> {
        let entry = opcode::Splice::new(
            types::Fd(fd_in),
            off_in,
            types::Fd(fd_out),
            off_out,
            len as u32,
        )
        .build();
        self.run(entry).await
    }

    /// Waits until `socket` is writable (or in error: the next splice says).
    async fn wait_writable(&mut self, socket: RawFd) -> io::Result<()> {
        let entry = opcode::PollAdd::new(types::Fd(socket), libc::POLLOUT as u32).build();
        self.run(entry).await.map(|_| ())
    }

    /// Submits one operation and waits for its completion; its result.
    async fn run(&mut self, entry: io_uring::squeue::Entry) -> io::Result<usize> {
        let entry = entry.user_data(1);
        // SAFETY: the fds stay open until the completion is reaped below
        // (the caller holds them); the entry refers to no user memory.
        unsafe {
            self.ring
                .submission()
                .push(&entry)
                .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        self.ring
            .submit()
            .map_err(|e| io::Error::new(e.kind(), format!("io_uring submit: {e}")))?;
        loop {
            if let Some(cqe) = self.ring.completion().next() {
                let result = cqe.result();
                return if result < 0 {
                    Err(io::Error::from_raw_os_error(-result))
                } else {
                    Ok(result as usize)
                };
            }
            self.completions
                .read_at(0, 8)
                .await
                .map_err(|e| io::Error::other(format!("waiting on the io_uring eventfd: {e}")))?;
        }
    }
}

/// A non-blocking `splice(2)` of up to `len` bytes from `pipe` into
/// `socket`; `None` when the socket is full. The socket is O_NONBLOCK only
/// for the call (its other users expect a blocking fd and use
/// MSG_DONTWAIT); nothing else runs on this thread meanwhile.
fn splice_to_socket(pipe: RawFd, socket: RawFd, len: usize) -> io::Result<Option<usize>> {
    // SAFETY: fcntl and splice on fds the caller holds open; no pointers
    // but the null offsets (pipe and socket have no file position).
    let (moved, err) = unsafe {
        let flags = libc::fcntl(socket, libc::F_GETFL);
        if flags < 0 {
            return Err(os_error("fcntl F_GETFL on the socket"));
        }
        libc::fcntl(socket, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let moved = libc::splice(
            pipe,
            std::ptr::null_mut(),
            socket,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        );
        let err = io::Error::last_os_error();
        libc::fcntl(socket, libc::F_SETFL, flags);
        (moved, err)
    };
    match moved {
        n if n >= 0 => Ok(Some(n as usize)),
        // Full (or interrupted): wait for POLLOUT, then try again.
        _ if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) =>
        {
            Ok(None)
        }
        _ => Err(io::Error::new(
            err.kind(),
            format!("splice into socket fd {socket}: {err}"),
        )),
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(os_error("pipe2"));
    }
    // SAFETY: both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn into_raw(fd: OwnedFd) -> RawFd {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
