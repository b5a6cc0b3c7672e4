//! The controller quorum as the active controller sees it: leader, term,
//! committed and last log index, and each voter's matched index and lag.
//!
//! One home for reading openraft's `RaftMetrics`: `/metrics`
//! (`cluster::metrics`) and DescribeQuorum (`handlers::describe_quorum`,
//! which `corestream cluster info` sends) both read a [`QuorumStatus`].
//!
//! Only the Raft leader knows how far each voter has replicated
//! (openraft's replication metrics exist on the leader alone), so a
//! broker's DescribeQuorum is answered by the active controller
//! (`BrokerRequest::DescribeQuorum`), as Kafka's brokers forward it to
//! theirs. A follower's own status has no voter matches (`None`).
//!
//! Times (DescribeQuorum v1+'s LastFetchTimestamp and
//! LastCaughtUpTimestamp) are wall-clock ms, converted from the monotonic
//! instants they were taken at:
//! - a voter's **last fetch** is the last heartbeat or append it
//!   acknowledged (openraft's leader-only `heartbeat` metrics; the leader
//!   itself: now), `None` when it has not acknowledged one this term;
//! - its **last caught up** is that same time when it then held the
//!   leader's last entry, else `None`: openraft keeps no history, so a
//!   voter behind now has no known caught-up time (Kafka would report an
//!   older one);
//! - an **observer** (a broker that is not a voter) does not replicate the
//!   Raft log here (brokers get the metadata as a state, `cluster::member`),
//!   so its last fetch is its last heartbeat to this controller (the start
//!   of this controller's term for one not heard from since), and its log
//!   end and caught-up time are unknown.

use std::time::Instant;

use openraft::async_runtime::watch::WatchReceiver;
use serde::{Deserialize, Serialize};

use super::controller::Controller;

/// One voter's replication progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterStatus {
    /// The voter's node id.
    pub id: u64,
    /// Index of the last entry the leader knows this voter holds (`None`:
    /// not known, e.g. nothing replicated yet, or asked of a follower).
    pub matched_index: Option<u64>,
    /// Entries this voter is behind the leader's last log index (`None`
    /// when `matched_index` is unknown).
    pub lag_entries: Option<u64>,
    /// Its controller listener, HOST:PORT, as the membership has it.
    #[serde(default)]
    pub addr: Option<String>,
    /// When it last acknowledged the leader, wall-clock ms (module doc).
    #[serde(default)]
    pub last_fetch_ms: Option<i64>,
    /// When it last was known to hold the leader's last entry, wall-clock
    /// ms (module doc).
    #[serde(default)]
    pub last_caught_up_ms: Option<i64>,
}

/// A broker that is not a voter, as the active controller sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverStatus {
    /// Its node id.
    pub id: i32,
    /// Its last heartbeat, wall-clock ms (module doc).
    pub last_heartbeat_ms: Option<i64>,
}

/// The quorum as one voter sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    /// The node answering.
    pub node_id: u64,
    /// The leader this voter knows of.
    pub leader_id: Option<u64>,
    /// Current Raft term.
    pub term: u64,
    /// Index of the last entry known committed (0: none).
    pub committed_index: u64,
    /// Index of this voter's last log entry (0: none).
    pub last_log_index: u64,
    /// Index of the last entry applied to the metadata (0: none).
    pub applied_index: u64,
    /// Every voter of the current membership, by id.
    pub voters: Vec<VoterStatus>,
    /// Registered, unfenced brokers that are not voters, by id (known
    /// only to the active controller).
    #[serde(default)]
    pub observers: Vec<ObserverStatus>,
}

impl QuorumStatus {
    /// Whether the answering node is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.leader_id == Some(self.node_id)
    }
}

/// `controller`'s current view of the quorum, from openraft's metrics.
pub fn status(controller: &Controller) -> QuorumStatus {
    let metrics = controller.raft.metrics().borrow_watched().clone();
    let last_log_index = metrics.last_log_index.unwrap_or(0);
    let replication = metrics.replication.as_ref();
    let now = Instant::now();
    let wall = WallClock::now(now);
    let voter_ids: Vec<u64> = metrics.membership_config.voter_ids().collect();
    let voters = voter_ids
        .iter()
        .map(|&id| {
            // The leader's replication metrics list the followers (and, in
            // some openraft versions, the leader itself); the leader's own
            // log is its last index.
            let is_self = id == metrics.id && replication.is_some();
            let matched_index = match replication.and_then(|r| r.get(&id)) {
                Some(matched) => Some(matched.as_ref().map_or(0, |l| l.index)),
                None if is_self => Some(last_log_index),
                None => None,
            };
            let acked: Option<Instant> = match is_self {
                true => Some(now),
                false => metrics
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(&id))
                    .and_then(|at| at.as_ref().map(|at| **at)),
            };
            let last_fetch_ms = acked.map(|at| wall.ms_at(at));
            VoterStatus {
                id,
                matched_index,
                lag_entries: matched_index.map(|m| last_log_index.saturating_sub(m)),
                addr: metrics
                    .membership_config
                    .get_node(&id)
                    .map(|n| n.addr.clone()),
                last_fetch_ms,
                last_caught_up_ms: last_fetch_ms.filter(|_| matched_index == Some(last_log_index)),
            }
        })
        .collect();
    let observers = controller
        .observed_brokers(&voter_ids)
        .into_iter()
        .map(|(id, heard)| ObserverStatus {
            id,
            last_heartbeat_ms: heard.map(|at| wall.ms_at(at)),
        })
        .collect();
    QuorumStatus {
        node_id: metrics.id,
        leader_id: metrics.current_leader,
        term: metrics.current_term,
        committed_index: metrics.local_committed.map_or(0, |l| l.index),
        last_log_index,
        applied_index: metrics.last_applied.map_or(0, |l| l.index),
        voters,
        observers,
    }
}

/// Wall-clock ms of monotonic instants, read against one pair of "now"s
/// so every time in one answer is converted alike.
struct WallClock {
    now: Instant,
    now_ms: i64,
}

impl WallClock {
    fn now(now: Instant) -> WallClock {
        WallClock {
            now,
            now_ms: crate::clock::wall_ms(),
        }
    }

    /// `at` (not after `now`) in wall-clock ms.
    fn ms_at(&self, at: Instant) -> i64 {
        let ago = self.now.saturating_duration_since(at).as_millis();
        self.now_ms
            .saturating_sub(i64::try_from(ago).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wall_clock_converts_instants_before_now_and_clamps_later_ones() {
        let now = Instant::now();
        let wall = WallClock {
            now,
            now_ms: 10_000,
        };
        assert_eq!(wall.ms_at(now), 10_000);
        if let Some(before) = now.checked_sub(Duration::from_millis(1_500)) {
            assert_eq!(wall.ms_at(before), 8_500);
        }
        assert_eq!(wall.ms_at(now + Duration::from_secs(1)), 10_000);
    }
}
