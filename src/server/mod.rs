//! The Kafka listener and the connection loop.
//!
//! Every shard binds the listener with SO_REUSEPORT (glommio sets it), so the
//! kernel spreads connections over shards; a connection lives and dies on
//! the shard that accepted it.
//!
//! Limits (`limits.rs`): a connection over `connections_max` or
//! `connections_per_ip_max` is closed right after accept (logged at most
//! once a second); each shard has one request-byte budget shared by its
//! connections.

mod connection;
pub mod limits;
mod read_buffer;
mod send_parts;
mod splice;

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use tracing::warn;

use crate::shard::Shard;

pub use connection::{serve, FETCHES_IN_FLIGHT_MAX, REQUESTS_IN_FLIGHT_MAX};
use limits::{ByteBudget, RateLimitedLog, CONNECTIONS};

/// Pause after a failed accept (EMFILE and the like) before trying again.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Accepts connections until the task is dropped.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let limits = shard.config.limits;
    let shard_budget = ByteBudget::new(limits.shard_request_bytes_in_flight_max);
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
        match admitted {
            Ok(slot) => {
                let serving = serve(shard.clone(), stream, shard_budget.clone());
                let counted = crate::ops::metrics::connection_opened();
                glommio::spawn_local(async move {
                    serving.await;
                    drop(slot);
                    drop(counted);
                })
                .detach();
            }
            Err(refusal) => {
                drop(stream);
                if let Some(suppressed) = refusals.allow() {
                    warn!(shard = shard.id, %peer, suppressed, "refusing connection: {refusal}");
                }
            }
        }
    }
}
