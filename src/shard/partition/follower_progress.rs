//! A follower's progress as its leader sees it, and Kafka's rule for
//! when it is in sync (`Replica.updateFetchState` and
//! `ReplicaState.isCaughtUp` in Kafka's broker).
//!
//! Kafka's rule, kept exactly:
//! - At each replica fetch the follower is **caught up** as of now when
//!   it fetched from at least the leader's end; otherwise as of its
//!   previous fetch when it fetched from at least the leader's end as it
//!   was at that previous fetch (it has everything the leader had then).
//!   The caught-up time never moves back.
//! - A follower is **out of sync** when its end is not the leader's end
//!   and it has not been caught up for more than `replica.lag.time.max.ms`.
//!   The first half matters for an idle partition: a follower that holds
//!   everything stays in the ISR even when it stops fetching (paused,
//!   network cut), as in Kafka, since it lacks nothing an acks=all write
//!   could need; the first write after that makes it lag, and it leaves
//!   once the lag time passes.
//! - Its **lag in time** (what `/metrics` shows) is 0 when it holds the
//!   leader's end and otherwise the time since it was last caught up: the
//!   quantity the ISR rule compares with `replica.lag.time.max.ms`, so an
//!   operator sees how close a follower is to leaving the ISR.
//!
//! "The leader's end" is its durable end: what it serves to followers.

/// A follower's progress as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FollowerProgress {
    /// Its log end offset (its last fetch offset), -1 before a fetch.
    pub(super) end: i64,
    /// When it last was caught up (monotonic ms).
    pub(super) caught_up_ms: u64,
    /// When it last fetched (monotonic ms).
    last_fetch_ms: u64,
    /// The leader's end at its last fetch (-1 before one).
    leader_end_at_last_fetch: i64,
}

impl FollowerProgress {
    /// A follower of a new leadership, or a new replica: caught up now
    /// (Kafka starts ISR members so; a replica outside the ISR is not
    /// checked for leaving it), end unknown.
    pub(super) fn new(now_ms: u64) -> FollowerProgress {
        FollowerProgress {
            end: -1,
            caught_up_ms: now_ms,
            last_fetch_ms: now_ms,
            leader_end_at_last_fetch: -1,
        }
    }

    /// A replica fetch from offset `end` when the leader's end is
    /// `leader_end` (Kafka's `updateFetchState`).
    pub(super) fn on_fetch(&mut self, end: i64, leader_end: i64, now_ms: u64) {
        if end >= leader_end {
            self.caught_up_ms = self.caught_up_ms.max(now_ms);
        } else if end >= self.leader_end_at_last_fetch {
            self.caught_up_ms = self.caught_up_ms.max(self.last_fetch_ms);
        }
        self.end = end;
        self.last_fetch_ms = now_ms;
        self.leader_end_at_last_fetch = leader_end;
    }

    /// Whether it must leave the ISR (Kafka's `!isCaughtUp`).
    pub(super) fn out_of_sync(&self, leader_end: i64, now_ms: u64, lag_max_ms: u64) -> bool {
        self.end != leader_end && self.lag_ms(leader_end, now_ms) > lag_max_ms
    }

    /// How long it has not been caught up, ms: 0 when it holds the
    /// leader's end (module doc).
    pub(super) fn lag_ms(&self, leader_end: i64, now_ms: u64) -> u64 {
        match self.end >= leader_end {
            true => 0,
            false => now_ms.saturating_sub(self.caught_up_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG_MAX_MS: u64 = 30_000;

    #[test]
    fn follower_fetching_the_leaders_end_is_caught_up_now() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(100, 100, 5_000);
        assert_eq!(f.caught_up_ms, 5_000);
        assert_eq!(f.lag_ms(100, 6_000), 0);
        assert!(!f.out_of_sync(100, 60_000, LAG_MAX_MS), "holds the end");
    }

    #[test]
    fn follower_behind_but_past_the_previous_leader_end_is_caught_up_as_of_its_previous_fetch() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(100, 120, 1_000);
        // Behind the leader at its first fetch: caught up as of start.
        assert_eq!(f.caught_up_ms, 0);
        // It now has what the leader had at its previous fetch (120),
        // though the leader moved on to 150.
        f.on_fetch(120, 150, 2_000);
        assert_eq!(f.caught_up_ms, 1_000);
        assert_eq!(f.lag_ms(150, 2_500), 1_500);
    }

    #[test]
    fn follower_that_never_catches_up_leaves_after_lag_max_and_not_before() {
        let mut f = FollowerProgress::new(0);
        // Keeps fetching, but always behind where the leader was at its
        // previous fetch (100 offsets a second written, 50 fetched).
        let mut leader_end = 1_000;
        for t in (1_000..=40_000).step_by(1_000) {
            f.on_fetch(leader_end - 150, leader_end, t);
            leader_end += 100;
        }
        assert_eq!(f.caught_up_ms, 0, "never caught up since the start");
        assert!(!f.out_of_sync(leader_end, LAG_MAX_MS, LAG_MAX_MS));
        assert!(f.out_of_sync(leader_end, LAG_MAX_MS + 1, LAG_MAX_MS));
        assert_eq!(f.lag_ms(leader_end, 40_000), 40_000);
    }

    #[test]
    fn silent_follower_holding_the_leaders_end_stays_in_sync_until_a_write() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(50, 50, 1_000);
        // Paused: no fetch for minutes, but nothing was written.
        assert!(!f.out_of_sync(50, 600_000, LAG_MAX_MS));
        assert_eq!(f.lag_ms(50, 600_000), 0);
        // A write moves the leader's end: the lag counts from its last
        // caught-up time, so it is out at once.
        assert!(f.out_of_sync(51, 600_000, LAG_MAX_MS));
        assert_eq!(f.lag_ms(51, 600_000), 599_000);
    }

    #[test]
    fn caught_up_time_never_moves_back() {
        let mut f = FollowerProgress::new(0);
        f.on_fetch(10, 10, 3_000);
        // A fetch behind the leader's current end but past its end at the
        // previous fetch would give the previous fetch's time: 3_000, not
        // earlier.
        f.on_fetch(10, 20, 4_000);
        assert_eq!(f.caught_up_ms, 3_000);
        f.on_fetch(20, 30, 5_000);
        assert_eq!(f.caught_up_ms, 4_000);
    }
}
