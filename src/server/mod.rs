//! The Kafka listener and the connection loop.
//!
//! Every shard binds the listener with SO_REUSEPORT (glommio sets it), so the
//! kernel spreads accepts over shards. The kernel's spread is a hash of the
//! 4-tuple, so a handful of clients (the usual benchmark or service: one
//! connection per client) often lands mostly on one shard, which then does
//! all of their socket copies while the other cores idle: 4 producers gave
//! 27,783 Produce requests on shard 0 against 3,969 on shard 1. So, like
//! Seastar's default connection distribution, the accepting shard hands the
//! connection to the shard with the fewest open connections (itself on a
//! tie): the socket is duplicated into an `OwnedFd` (which is `Send`), the
//! accepting shard's stream dropped, and the target wraps the fd in a
//! stream of its own reactor. (glommio's `shared_accept` would do this but
//! its `AcceptedTcpStream` is a `Copy` raw fd that leaks when dropped.) The counts are per-shard relaxed atomics
//! touched once per accept and once per close. A connection then lives and
//! dies on the shard that serves it.
//!
//! Every shard binds every configured listener (`security::listener`:
//! PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) and runs one accept loop per
//! listener; a connection knows its listener for good (TLS, SASL,
//! advertised address). TLS connections read and write through rustls and
//! take a copying write path (no splice, no vectored sends on the fd);
//! plain ones keep the zero-copy paths (`secure.rs`, `send_parts.rs`).
//!
//! Limits (`limits.rs`): a connection over `connections_max` or
//! `connections_per_ip_max` is closed right after accept (logged at most
//! once a second); each shard has one request-byte budget shared by its
//! connections.

mod connection;
pub mod limits;
mod read_buffer;
pub mod request_order;
mod secure;
mod send_parts;
mod splice;

use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd};

use glommio::net::{TcpListener, TcpStream};
use tracing::warn;

use crate::security::Listener;
use crate::shard::Shard;

pub use connection::{serve, FETCHES_IN_FLIGHT_MAX, REQUESTS_IN_FLIGHT_MAX};
use limits::{
    ByteBudget, ConnectionSlot, RateLimitedLog, ShardPlace, CONNECTIONS, SHARD_CONNECTIONS,
};

/// Pause after a failed accept (EMFILE and the like) before trying again.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Accepts connections on one of the shard's listeners (`spec` says which)
/// until the task is dropped.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, spec: Rc<Listener>) {
    let limits = shard.config.limits;
    let refusals = RateLimitedLog::default();
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                warn!(shard = shard.id, "accept failed: {e}");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        // A peer already gone has no address: dropping the stream closes it.
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let admitted = CONNECTIONS.admit(
            peer.ip(),
            limits.connections_max,
            limits.connections_per_ip_max,
        );
        let slot = match admitted {
            Ok(slot) => slot,
            Err(refusal) => {
                drop(stream);
                if let Some(suppressed) = refusals.allow() {
                    warn!(shard = shard.id, %peer, suppressed, "refusing connection: {refusal}");
                }
                continue;
            }
        };
        let placed = SHARD_CONNECTIONS.place(shard.id, shard.shard_count());
        if placed.shard() == shard.id {
            serve_here(&shard, stream, slot, placed, spec.clone());
            continue;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        // SAFETY: `fd` is the open socket `stream` owns, borrowed only for
        // the duplication below, before `stream` is dropped.
        let duplicated = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
        drop(stream);
        let fd = match duplicated {
            Ok(fd) => fd,
            Err(e) => {
                warn!(shard = shard.id, %peer, "handing a connection to shard {} failed: {e}", placed.shard());
                continue;
            }
        };
        // A target that is stopping drops the job: the fd closes and the
        // places are given back.
        let spec = Listener::clone(&spec);
        shard.send_job(placed.shard(), move |target| async move {
            // SAFETY: `fd` is a connected TCP socket this job owns.
            let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
            serve_here(&target, stream, slot, placed, Rc::new(spec));
        });
    }
}

/// Serves a connection on this shard until it closes.
fn serve_here(
    shard: &Rc<Shard>,
    stream: TcpStream,
    slot: ConnectionSlot,
    placed: ShardPlace,
    listener: Rc<Listener>,
) {
    let serving = serve(shard.clone(), stream, shard_budget(shard), listener);
    let counted = crate::ops::metrics::connection_opened();
    glommio::spawn_local(async move {
        serving.await;
        drop((slot, placed, counted));
    })
    .detach();
}

thread_local! {
    /// This shard's request-byte budget, shared by its connections.
    static SHARD_BUDGET: OnceCell<Rc<ByteBudget>> = const { OnceCell::new() };
}

fn shard_budget(shard: &Shard) -> Rc<ByteBudget> {
    SHARD_BUDGET.with(|b| {
        b.get_or_init(|| ByteBudget::new(shard.config.limits.shard_request_bytes_in_flight_max))
            .clone()
    })
}
