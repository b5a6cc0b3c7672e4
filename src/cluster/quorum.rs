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
    let voters = metrics
        .membership_config
        .voter_ids()
        .map(|id| {
            // The leader's replication metrics list the followers (and, in
            // some openraft versions, the leader itself); the leader's own
            // log is its last index.
            let matched_index = match replication.and_then(|r| r.get(&id)) {
                Some(matched) => Some(matched.as_ref().map_or(0, |l| l.index)),
                None if id == metrics.id && replication.is_some() => Some(last_log_index),
                None => None,
            };
            VoterStatus {
                id,
                matched_index,
                lag_entries: matched_index.map(|m| last_log_index.saturating_sub(m)),
            }
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
    }
}
