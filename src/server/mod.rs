//! The Kafka listener and the connection loop.
//!
//! Every shard binds the listener with SO_REUSEPORT (glommio sets it), so the
//! kernel spreads connections over shards; a connection lives and dies on
//! the shard that accepted it.

mod connection;

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use tracing::warn;

use crate::shard::Shard;

pub use connection::{serve, REQUESTS_IN_FLIGHT_MAX};

/// Pause after a failed accept (EMFILE and the like) before trying again.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Accepts connections until the task is dropped.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(serve(shard.clone(), stream)).detach();
            }
            Err(e) => {
                warn!(shard = shard.id, "accept failed: {e}");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}
