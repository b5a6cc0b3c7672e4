//! Replica fetches this broker refused as a leader: the follower's
//! principal lacks CLUSTER_ACTION. Counted in /metrics
//! (`corestream_replica_fetches_denied_total`) and logged sparingly, since
//! a refused follower retries every second.

use std::cell::Cell;

use tracing::warn;

use crate::security::ConnectionContext;

/// Log one refused replica fetch in this many (one line every few minutes
/// per refused fetcher).
const LOG_EVERY: u64 = 100;

thread_local! {
    /// Replica fetches this shard refused, for [`LOG_EVERY`].
    static DENIALS: Cell<u64> = const { Cell::new(0) };
}

/// Counts a replica fetch refused for want of CLUSTER_ACTION, and logs the
/// first and then one in [`LOG_EVERY`].
pub(crate) fn record(connection: &ConnectionContext) {
    crate::ops::metrics::record_replica_fetch_denied();
    let n = DENIALS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    if n % LOG_EVERY == 1 {
        warn!(
            principal = %connection.principal(),
            peer = %connection.peer,
            denied = n,
            "replica fetch denied: the principal lacks CLUSTER_ACTION on the cluster \
             (grant it, or make the broker user a super user); answered TOPIC_AUTHORIZATION_FAILED"
        );
    }
}
