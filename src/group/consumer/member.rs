//! A member of a KIP-848 consumer group: what it subscribed to, its epoch
//! and the partitions it owns, plus the deadlines the coordinator keeps for
//! it in memory (session, revocation).

use std::time::Instant;

use super::records::{CurrentAssignmentValue, MemberMetadataValue};
use super::TopicPartitions;

/// Epoch a member sends to leave (and gets back).
pub const LEAVE_EPOCH: i32 = -1;
/// Epoch a static member sends to leave temporarily: it keeps its
/// partitions until its session expires or its instance id rejoins.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reconciliation (Kafka's MemberState; the codes are
/// what the current-assignment record stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Owns exactly its target assignment at the assignment epoch.
    #[default]
    Stable,
    /// Must give up partitions before it moves to the next epoch.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
    /// A code this broker does not know (from a newer record).
    Unknown,
}

impl MemberState {
    /// The stored code.
    pub fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i8) -> MemberState {
        match code {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// One member. Its metadata is persisted as key 5, its reconciled state as
/// key 8; the deadlines are not (a restart gives every member a fresh
/// session, as for classic groups).
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    /// Member id.
    pub member_id: String,
    /// Subscription, client and assignor (key 5).
    pub metadata: MemberMetadataValue,
    /// Current epoch; [`STATIC_LEAVE_EPOCH`] for a static member away.
    pub member_epoch: i32,
    /// The epoch before the last bump (a lost response may be retried with it).
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions it owns.
    pub assigned: TopicPartitions,
    /// Partitions it was asked to give up and still owns.
    pub pending_revocation: TopicPartitions,
    /// The session ends here unless a heartbeat comes first.
    pub session_deadline: Instant,
    /// Set while revoking: a member that has not revoked by then is fenced.
    pub revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    /// A new member at epoch 0, owning nothing.
    pub fn new(member_id: &str, now: Instant) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            metadata: MemberMetadataValue {
                rebalance_timeout_ms: -1,
                ..MemberMetadataValue::default()
            },
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: TopicPartitions::new(),
            pending_revocation: TopicPartitions::new(),
            session_deadline: now,
            revocation_deadline: None,
        }
    }

    /// The reconciled state as stored (key 8).
    pub fn current_value(&self) -> CurrentAssignmentValue {
        CurrentAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state,
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    /// Restores the reconciled state from key 8.
    pub fn apply_current_value(&mut self, v: CurrentAssignmentValue) {
        self.member_epoch = v.member_epoch;
        self.previous_member_epoch = v.previous_member_epoch;
        self.state = v.state;
        self.assigned = v.assigned;
        self.pending_revocation = v.pending_revocation;
    }

    /// Whether it owns `partition` of `topic`, including while revoking it.
    pub fn owns(&self, topic: &uuid::Uuid, partition: i32) -> bool {
        let has = |tps: &TopicPartitions| tps.get(topic).is_some_and(|s| s.contains(&partition));
        has(&self.assigned) || has(&self.pending_revocation)
    }
}
