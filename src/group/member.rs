//! One member of a classic group, and the answers its long-polls wait for.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

/// A member as listed to the leader in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol (the subscription).
    pub metadata: Bytes,
}

/// What a JoinGroup is answered with (before version-specific encoding).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinResult {
    /// Kafka error code, 0 = none.
    pub error: i16,
    /// Generation id, -1 on error.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member id of the member answered (assigned by the coordinator).
    pub member_id: String,
    /// Every member with its metadata: for the leader only.
    pub members: Vec<JoinMember>,
    /// The leader must not compute a new assignment (static leader rejoin).
    pub skip_assignment: bool,
}

impl JoinResult {
    /// An error answer.
    pub fn error(code: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error: code,
            generation_id: -1,
            member_id: member_id.to_string(),
            ..JoinResult::default()
        }
    }
}

/// What a SyncGroup is answered with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResult {
    /// Kafka error code, 0 = none.
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment, passed through untouched.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    pub fn error(code: i16) -> SyncResult {
        SyncResult {
            error: code,
            ..SyncResult::default()
        }
    }
}

/// One member. `!Send` in practice (it lives in a shard's coordinator).
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// The client's client.id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// session.timeout.ms.
    pub session_timeout: Duration,
    /// Time the member may take to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// Protocols it supports, in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation.
    pub assignment: Bytes,
    /// Last sign of life (heartbeat, join, sync).
    pub last_seen: Instant,
    /// Its pending JoinGroup, answered when the join phase completes.
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// Its pending SyncGroup, answered when the leader's assignment arrives.
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// Whether the member takes part in the current join phase.
    pub fn awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    /// Whether its session ran out: no heartbeat for a session timeout while
    /// not parked in a join or sync (a parked request is a sign of life).
    pub fn expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now.saturating_duration_since(self.last_seen) > self.session_timeout
    }

    /// Its metadata for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Answers its pending join, if any.
    pub fn answer_join(&mut self, result: JoinResult, now: Instant) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(result);
        }
        self.last_seen = now;
    }

    /// Answers its pending sync, if any.
    pub fn answer_sync(&mut self, result: SyncResult, now: Instant) {
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(result);
        }
        self.last_seen = now;
    }
}
