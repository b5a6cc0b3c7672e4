//! The consumer-group entry points of [`GroupCoordinator`] (on the shard
//! owning the group's offsets partition): heartbeat, describe, the member
//! check of offset requests, session expiry, and rebuilding groups from
//! their records at replay.
//!
//! Every change is written to `__consumer_offsets` (one batch, fdatasync)
//! before the heartbeat that caused it is answered. The state machine's
//! dirty keys are taken in the same borrow as the change, so concurrent
//! heartbeats never write each other's records twice or out of order.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::member::ConsumerMember;
use super::records::{self as rec, ConsumerKey};
use super::{
    ConsumerGroup, HeartbeatError, HeartbeatIn, HeartbeatOut, Settings, TopicCatalog, TopicInfo,
    TopicPartitions,
};
use crate::group::coordinator::{Entry, GroupCoordinator};
use crate::group::records::{CodecError, RecordKey};
use crate::group::state::{Group, GROUP_MEMBERS_MAX};
use crate::group::store::{self, KeyValue};
use crate::metadata::Snapshot;
use crate::shard::Shard;

/// The metadata snapshot as the state machine's topic catalog.
pub struct SnapshotCatalog(pub Arc<Snapshot>);

impl TopicCatalog for SnapshotCatalog {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.0.topic(name).map(|t| TopicInfo {
            id: t.id,
            partitions: t.partition_count(),
        })
    }
    fn names(&self) -> Vec<String> {
        self.0.topics.keys().map(|k| k.to_string()).collect()
    }
}

/// A member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct DescribedConsumerMember {
    /// The member's state.
    pub member: ConsumerMember,
    /// Its target assignment.
    pub target: TopicPartitions,
}

/// A group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupDescription {
    /// Error code.
    pub error: i16,
    /// Error message.
    pub message: Option<String>,
    /// State name.
    pub state: &'static str,
    /// Group epoch.
    pub group_epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// Assignor name.
    pub assignor: String,
    /// Members.
    pub members: Vec<DescribedConsumerMember>,
}

fn settings(shard: &Shard) -> Settings {
    Settings {
        session_timeout_ms: shard.config.group_consumer_session_timeout_ms,
        members_max: GROUP_MEMBERS_MAX,
    }
}

/// The value to write for `key`: the group's current state, or a tombstone.
fn value_of(g: &ConsumerGroup, key: &ConsumerKey) -> Option<Bytes> {
    match key {
        ConsumerKey::GroupMetadata(_) => Some(rec::encode_epoch(g.group_epoch)),
        ConsumerKey::PartitionMetadata(_) => Some(rec::encode_partition_metadata(&g.subscribed)),
        ConsumerKey::TargetAssignmentMetadata(_) => Some(rec::encode_epoch(g.assignment_epoch)),
        ConsumerKey::MemberMetadata(_, m) => g.members.get(m).map(|m| m.metadata.encode()),
        ConsumerKey::TargetAssignmentMember(_, m) => g.target.get(m).map(rec::encode_target_member),
        ConsumerKey::CurrentMemberAssignment(_, m) => {
            g.members.get(m).map(|m| m.current_value().encode())
        }
    }
}

/// Records for what changed in `g`.
pub fn dirty_records(g: &mut ConsumerGroup) -> Vec<KeyValue> {
    let keys = g.take_dirty();
    keys.iter().map(|k| (k.encode(), value_of(g, k))).collect()
}

/// Tombstones for every record of `g` (group deleted or converted).
pub fn tombstones(g: &ConsumerGroup) -> Vec<KeyValue> {
    let mut all = g.clone();
    all.mark_all_dirty();
    all.take_dirty()
        .into_iter()
        .rev() // member records before the group's own
        .map(|k| (k.encode(), None))
        .collect()
}

fn not_consumer_group(group_id: &str) -> HeartbeatError {
    HeartbeatError {
        code: ResponseError::GroupIdNotFound.code(),
        message: Some(format!("Group {group_id} is not a consumer group.")),
    }
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat, answered once its changes are durable.
    pub async fn consumer_heartbeat(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        req: HeartbeatIn,
    ) -> Result<HeartbeatOut, HeartbeatError> {
        let no_message = |code| HeartbeatError {
            code,
            message: None,
        };
        self.ready(shard, partition).await.map_err(no_message)?;
        let settings = settings(shard);
        let catalog = SnapshotCatalog(shard.snapshot());
        let joining = req.member_epoch == 0;
        let (result, records) = {
            let mut groups = self.groups.borrow_mut();
            if !joining && groups.get(group_id).is_none_or(|e| e.consumer.is_none()) {
                if groups
                    .get(group_id)
                    .is_some_and(|e| e.group.member_count() > 0)
                {
                    return Err(not_consumer_group(group_id));
                }
                return Err(HeartbeatError {
                    code: ResponseError::UnknownMemberId.code(),
                    message: Some(format!(
                        "Member {} is not a member of group {group_id}.",
                        req.member_id
                    )),
                });
            }
            let entry = groups
                .entry(group_id.to_string())
                .or_insert_with(|| Entry::new(group_id, partition));
            if entry.consumer.is_none()
                && (entry.group.member_count() > 0 || entry.group.has_pending())
            {
                return Err(not_consumer_group(group_id));
            }
            let mut records = Vec::new();
            if entry.consumer.is_none() && entry.group.protocol_type().is_some() {
                // An empty classic group becomes a consumer group, as in
                // Kafka: its metadata record goes, its offsets stay.
                let key = RecordKey::Group {
                    group: group_id.to_string(),
                };
                records.push((key.encode(), None));
                entry.group = Group::new(group_id);
            }
            let g = entry
                .consumer
                .get_or_insert_with(|| ConsumerGroup::new(group_id));
            let result = g.heartbeat(req, crate::clock::monotonic(), &catalog, &settings);
            records.extend(dirty_records(g));
            if g.members.is_empty() && g.group_epoch == 0 {
                entry.consumer = None; // a refused first join leaves nothing
            }
            (result, records)
        };
        store::append(shard, partition, &records)
            .await
            .map_err(no_message)?;
        result
    }

    /// ConsumerGroupDescribe of one group.
    pub async fn consumer_describe(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
    ) -> ConsumerGroupDescription {
        if let Err(code) = self.ready(shard, partition).await {
            return ConsumerGroupDescription {
                error: code,
                state: "Dead",
                ..Default::default()
            };
        }
        let groups = self.groups.borrow();
        let not_found = |message: String| ConsumerGroupDescription {
            error: ResponseError::GroupIdNotFound.code(),
            message: Some(message),
            state: "Dead",
            ..Default::default()
        };
        let Some(entry) = groups.get(group_id) else {
            return not_found(format!("Group {group_id} not found."));
        };
        let Some(g) = entry.consumer.as_ref() else {
            return not_found(format!("Group {group_id} is not a consumer group."));
        };
        ConsumerGroupDescription {
            error: 0,
            message: None,
            state: g.state().name(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor(),
            members: g
                .members
                .values()
                .map(|m| DescribedConsumerMember {
                    member: m.clone(),
                    target: g.target.get(&m.member_id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// OffsetFetch v9's member check for consumer groups (an admin fetch,
    /// without member id, is always allowed).
    pub async fn check_offset_fetch(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        member_id: Option<String>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        self.ready(shard, partition).await?;
        let Some(member_id) = member_id.filter(|_| member_epoch >= 0) else {
            return Ok(());
        };
        let groups = self.groups.borrow();
        match groups.get(group_id).and_then(|e| e.consumer.as_ref()) {
            Some(g) => g.validate_offset_request(&member_id, member_epoch),
            None => Ok(()),
        }
    }

    /// Fences expired members of every consumer group; returns what to write.
    pub(crate) fn tick_consumer_groups(
        groups: &mut HashMap<String, Entry>,
        now: Instant,
    ) -> Vec<(i32, Vec<KeyValue>)> {
        let mut out = Vec::new();
        for entry in groups.values_mut() {
            let Some(g) = entry.consumer.as_mut() else {
                continue;
            };
            let fenced = g.tick(now);
            if !fenced.is_empty() {
                tracing::info!(group = %g.id, members = ?fenced, "consumer group members expired");
                out.push((entry.partition, dirty_records(g)));
            }
        }
        out
    }

    /// Applies one replayed consumer-group record (latest value wins; a
    /// tombstone deletes). Members come back with a fresh session.
    pub(crate) fn apply_consumer_record(
        groups: &mut HashMap<String, Entry>,
        partition: i32,
        key: ConsumerKey,
        value: Option<&[u8]>,
        now: Instant,
        session: Duration,
    ) -> Result<(), CodecError> {
        let group_id = key.group().to_string();
        if value.is_none() && groups.get(&group_id).is_none_or(|e| e.consumer.is_none()) {
            return Ok(());
        }
        let entry = groups
            .entry(group_id.clone())
            .or_insert_with(|| Entry::new(&group_id, partition));
        let g = entry
            .consumer
            .get_or_insert_with(|| ConsumerGroup::new(&group_id));
        match (key, value) {
            (ConsumerKey::GroupMetadata(_), None) => entry.consumer = None,
            (ConsumerKey::GroupMetadata(_), Some(v)) => g.group_epoch = rec::decode_epoch(v)?,
            (ConsumerKey::PartitionMetadata(_), v) => {
                g.subscribed = v
                    .map(rec::decode_partition_metadata)
                    .transpose()?
                    .unwrap_or_default()
            }
            (ConsumerKey::TargetAssignmentMetadata(_), v) => {
                g.assignment_epoch = v.map(rec::decode_epoch).transpose()?.unwrap_or(0)
            }
            (ConsumerKey::MemberMetadata(_, m), None) => {
                g.members.remove(&m);
            }
            (ConsumerKey::MemberMetadata(_, m), Some(v)) => {
                let metadata = rec::MemberMetadataValue::decode(v)?;
                member_or_new(g, &m, now, session).metadata = metadata;
            }
            (ConsumerKey::TargetAssignmentMember(_, m), None) => {
                g.target.remove(&m);
            }
            (ConsumerKey::TargetAssignmentMember(_, m), Some(v)) => {
                g.target.insert(m, rec::decode_target_member(v)?);
            }
            (ConsumerKey::CurrentMemberAssignment(_, _), None) => {}
            (ConsumerKey::CurrentMemberAssignment(_, m), Some(v)) => {
                let current = rec::CurrentAssignmentValue::decode(v)?;
                let member = member_or_new(g, &m, now, session);
                member.apply_current_value(current);
                let rebalance_ms = member.metadata.rebalance_timeout_ms.max(0) as u64;
                member.revocation_deadline = (member.state
                    == super::member::MemberState::UnrevokedPartitions)
                    .then(|| now + Duration::from_millis(rebalance_ms));
            }
        }
        Ok(())
    }
}

/// A replayed member, created (with a fresh session) on its first record.
fn member_or_new<'a>(
    g: &'a mut ConsumerGroup,
    id: &str,
    now: Instant,
    session: Duration,
) -> &'a mut ConsumerMember {
    g.members.entry(id.to_string()).or_insert_with(|| {
        let mut m = ConsumerMember::new(id, now);
        m.session_deadline = now + session;
        m
    })
}
