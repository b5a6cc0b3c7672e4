//! What bounds the memory and sockets clients can make the broker hold.
//!
//! - [`ConnectionTable`]: open connections in total and per client IP.
//!   A connection over either limit is closed right after accept. The
//!   counters are the one piece of state shared by the shards, on purpose:
//!   relaxed atomics touched once per accept and once per close, never on
//!   the request path. Per-IP counts live in [`IP_SLOTS`] hashed slots, so
//!   two addresses sharing a slot share a limit (conservative: a collision
//!   can only refuse early, never admit more than the limit per address).
//! - [`ShardConnections`]: open connections per shard, so an accept goes to
//!   the least-loaded shard (see `server/mod.rs`). Relaxed atomics too,
//!   touched once per accept and once per close.
//! - [`ByteBudget`]: request bytes in flight, one per connection and one per
//!   shard. A request frame's declared size is reserved from both before its
//!   body is read, and released when its handler finishes. The reader waits
//!   (reads nothing, so TCP pushes back on the client) while a budget is
//!   full, except that a budget with nothing reserved admits any one frame
//!   (up to `socket.request.max.bytes`): an admitted frame can always
//!   complete, so no reader waits forever. A frame whose bytes do not arrive
//!   within `request_timeout_ms` closes its connection, which frees its
//!   reservation (a client cannot hold budget by sending slowly).
//! - [`RateLimitedLog`]: refusals are logged at most once per interval with a
//!   count of those suppressed, so a connection flood does not flood logs.
//!
//! What a shard holds for requests is then at most its budget (or one frame
//! larger than it) plus, per connection, one read chunk of the next frame.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Shards whose connections are counted for placement (the config's
/// `SHARDS_MAX`; a shard id at or over it is never a target).
pub const PLACED_SHARDS_MAX: usize = crate::config::SHARDS_MAX;
/// Hashed per-IP connection counters.
pub const IP_SLOTS: usize = 4096;
/// Shortest interval between two log lines about refused connections.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

const _: () = assert!(IP_SLOTS.is_power_of_two());

/// Open connections, in total and per IP slot.
pub struct ConnectionTable {
    total: AtomicUsize,
    per_ip: [AtomicU32; IP_SLOTS],
}

/// The whole broker's connection counts.
pub static CONNECTIONS: ConnectionTable = ConnectionTable::new();

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `connections_max` reached.
    #[error("broker has {0} connections open (connections_max)")]
    Total(usize),
    /// `connections_per_ip_max` reached for this address.
    #[error("client address has {0} connections open (connections_per_ip_max)")]
    PerIp(usize),
}

/// One admitted connection; dropping it gives its place back.
#[must_use]
pub struct ConnectionSlot {
    table: &'static ConnectionTable,
    slot: usize,
}

impl ConnectionTable {
    /// No connections.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ConnectionTable {
            total: AtomicUsize::new(0),
            per_ip: [const { AtomicU32::new(0) }; IP_SLOTS],
        }
    }

    /// Admits a connection from `ip` if both limits allow it.
    pub fn admit(
        &'static self,
        ip: IpAddr,
        total_max: usize,
        per_ip_max: usize,
    ) -> Result<ConnectionSlot, Refusal> {
        let total = self.total.fetch_add(1, Ordering::Relaxed);
        if total >= total_max {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Total(total));
        }
        let slot = ip_slot(ip);
        let per_ip = self.per_ip[slot].fetch_add(1, Ordering::Relaxed) as usize;
        if per_ip >= per_ip_max {
            self.per_ip[slot].fetch_sub(1, Ordering::Relaxed);
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::PerIp(per_ip));
        }
        Ok(ConnectionSlot { table: self, slot })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.table.per_ip[self.slot].fetch_sub(1, Ordering::Relaxed);
        self.table.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open connections per shard.
pub struct ShardConnections {
    open: [AtomicUsize; PLACED_SHARDS_MAX],
}

/// The whole broker's per-shard connection counts.
pub static SHARD_CONNECTIONS: ShardConnections = ShardConnections::new();

/// A connection counted against a shard; dropping it gives the place back.
#[must_use]
pub struct ShardPlace {
    table: &'static ShardConnections,
    shard: usize,
}

impl ShardPlace {
    /// The shard the connection is placed on.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

impl ShardConnections {
    /// No connections.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ShardConnections {
            open: [const { AtomicUsize::new(0) }; PLACED_SHARDS_MAX],
        }
    }

    /// Places a connection accepted on shard `here` (of `shards`) on the
    /// shard with the fewest open connections, `here` on a tie, and counts
    /// it there. Two shards placing at once may both pick the same target:
    /// the next accepts even it out.
    pub fn place(&'static self, here: usize, shards: usize) -> ShardPlace {
        let shards = shards.clamp(1, PLACED_SHARDS_MAX);
        let here = here.min(shards - 1);
        let mut best = (self.open(here), here);
        for shard in 0..shards {
            let open = self.open(shard);
            if open < best.0 {
                best = (open, shard);
            }
        }
        self.open[best.1].fetch_add(1, Ordering::Relaxed);
        ShardPlace {
            table: self,
            shard: best.1,
        }
    }

    /// Connections placed on `shard` and open now.
    pub fn open(&self, shard: usize) -> usize {
        self.open
            .get(shard)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

impl Drop for ShardPlace {
    fn drop(&mut self) {
        self.table.open[self.shard].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Slot of an address (IPv4-mapped IPv6 counts as the IPv4 address).
fn ip_slot(ip: IpAddr) -> usize {
    let key: u128 = match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => u128::from(v6),
        },
    };
    let folded = (key as u64) ^ ((key >> 64) as u64);
    // Fibonacci hashing: the top bits of a multiplicative hash.
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - IP_SLOTS.trailing_zeros())) as usize
}

/// Bytes in flight against a limit, on one shard. `!Send`.
pub struct ByteBudget {
    limit: usize,
    used: Cell<usize>,
    waiters: RefCell<Vec<Waker>>,
}

/// Bytes reserved from a [`ByteBudget`]; dropping it releases them.
#[must_use]
pub struct Reserved {
    budget: Rc<ByteBudget>,
    bytes: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes (> 0).
    pub fn new(limit: usize) -> Rc<Self> {
        assert!(limit > 0, "a byte budget needs a positive limit");
        Rc::new(ByteBudget {
            limit,
            used: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// True if `bytes` more may be reserved now: they fit, or nothing is
    /// reserved (one request of any size is always admitted).
    pub fn fits(&self, bytes: usize) -> bool {
        self.used.get() == 0 || self.used.get().saturating_add(bytes) <= self.limit
    }

    /// Waits until `bytes` fit, then reserves them.
    pub async fn reserve(self: &Rc<Self>, bytes: usize) -> Reserved {
        poll_fn(|cx| match self.fits(bytes) {
            true => Poll::Ready(()),
            false => {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        self.used.set(self.used.get() + bytes);
        Reserved {
            budget: self.clone(),
            bytes,
        }
    }

    fn release(&self, bytes: usize) {
        self.used.set(self.used.get() - bytes);
        // Few waiters (one per blocked connection); each re-checks.
        for waker in self.waiters.take() {
            waker.wake();
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Logs at most once per [`REFUSAL_LOG_INTERVAL`], counting the rest.
#[derive(Default)]
pub struct RateLimitedLog {
    last: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl RateLimitedLog {
    /// Returns how many calls were suppressed since the last `Some`, when a
    /// line may be logged now; `None` when this call is suppressed.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let due = self
            .last
            .get()
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if !due {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.last.set(Some(now));
        Some(self.suppressed.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::FutureExt;

    #[test]
    fn shard_connections_place_on_the_least_loaded_shard_and_give_back() {
        static TABLE: ShardConnections = ShardConnections::new();
        // Every accept on shard 0 of 3: spread 0, 1, 2, then round again.
        let first: Vec<ShardPlace> = (0..3).map(|_| TABLE.place(0, 3)).collect();
        assert_eq!(
            first.iter().map(ShardPlace::shard).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        // A tie keeps the connection where it was accepted.
        assert_eq!(
            TABLE.place(2, 3).shard(),
            2,
            "a dropped place is given back at once"
        );
        let kept = TABLE.place(2, 3);
        assert_eq!(kept.shard(), 2);
        assert_eq!((TABLE.open(0), TABLE.open(1), TABLE.open(2)), (1, 1, 2));
        assert_eq!(
            TABLE.place(2, 3).shard(),
            0,
            "shard 0 has fewest (first of a tie)"
        );
        drop(first);
        assert_eq!((TABLE.open(0), TABLE.open(1), TABLE.open(2)), (0, 0, 1));
        // Out-of-range ids are clamped, never indexed.
        assert_eq!(TABLE.place(5000, 1).shard(), 0);
        assert_eq!(TABLE.place(0, 0).shard(), 0);
    }

    #[test]
    fn connection_table_limits_total_and_per_ip() {
        static TABLE: ConnectionTable = ConnectionTable::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = TABLE.admit(a, 3, 2).unwrap();
        let a2 = TABLE.admit(a, 3, 2).unwrap();
        assert_eq!(TABLE.admit(a, 3, 2).err(), Some(Refusal::PerIp(2)));
        let b1 = TABLE.admit(b, 3, 2).unwrap();
        assert_eq!(TABLE.admit(b, 3, 2).err(), Some(Refusal::Total(3)));
        assert_eq!(TABLE.open(), 3);
        drop(a1);
        let again = TABLE.admit(a, 3, 2).unwrap();
        drop((a2, b1, again));
        assert_eq!(TABLE.open(), 0);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_slot(mapped), ip_slot(a));
    }

    #[test]
    fn byte_budget_waits_and_admits_one_oversized() {
        let budget = ByteBudget::new(100);
        let big = block_on(budget.reserve(500));
        assert_eq!(budget.used(), 500, "an empty budget admits any one frame");
        let mut waiting = Box::pin(budget.reserve(10));
        assert!(
            waiting.as_mut().now_or_never().is_none(),
            "full budget waits"
        );
        drop(big);
        let small = block_on(waiting);
        assert_eq!(budget.used(), 10);
        let also = block_on(budget.reserve(90));
        assert!(!budget.fits(1));
        drop((small, also));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn rate_limited_log_counts_suppressed() {
        let log = RateLimitedLog::default();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        log.last.set(Some(Instant::now() - REFUSAL_LOG_INTERVAL));
        assert_eq!(log.allow(), Some(2));
    }
}
