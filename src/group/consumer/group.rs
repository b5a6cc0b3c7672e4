//! [`ConsumerGroup`]: one KIP-848 group as a state machine without I/O.
//! Time and topic metadata are passed in; what changed is collected as the
//! record keys to write ([`ConsumerGroup::take_dirty`]), encoded from the
//! current state when the coordinator persists them.
//!
//! Epochs: the group epoch bumps on any membership, subscription or
//! subscribed-metadata change; the target assignment is recomputed when the
//! group epoch is ahead of the assignment epoch; each member then moves to
//! the assignment epoch through [`super::reconcile`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use crate::metadata::is_internal_topic;

use super::assignor::{self, MemberSubscription, ASSIGNORS, DEFAULT_ASSIGNOR};
use super::member::{ConsumerMember, MemberState, LEAVE_EPOCH, STATIC_LEAVE_EPOCH};
use super::reconcile::{reconcile, Step};
use super::records::{ConsumerKey, SubscribedMetadata, TopicInfo};
use super::{HeartbeatError, HeartbeatIn, HeartbeatOut, Settings, TopicCatalog, TopicPartitions};

/// A group's state as ListGroups and ConsumerGroupDescribe name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The target assignment is behind the group epoch.
    Assigning,
    /// Some member has not reached the target assignment.
    Reconciling,
    /// Every member owns its target assignment.
    Stable,
}

mod fields;

use fields::{update_metadata, validate};

impl ConsumerGroupState {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// One consumer group. `!Send` in practice: it lives in the coordinator of
/// the shard owning its `__consumer_offsets` partition.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Group epoch (key 3).
    pub group_epoch: i32,
    /// Epoch of the target assignment (key 6).
    pub assignment_epoch: i32,
    /// Members by id (keys 5 and 8).
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member (key 7).
    pub target: BTreeMap<String, TopicPartitions>,
    /// Subscribed topics' metadata at the last epoch bump (key 4).
    pub subscribed: SubscribedMetadata,
    dirty: BTreeSet<ConsumerKey>,
}

fn error(e: ResponseError, message: impl Into<String>) -> HeartbeatError {
    HeartbeatError {
        code: e.code(),
        message: Some(message.into()),
    }
}

/// Compiles a subscription regex (Kafka's RE2 syntax; a full match is
/// required, as Kafka's `Pattern.matcher(topic).matches()`).
pub fn compile_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{re})$"))
}

impl ConsumerGroup {
    /// A new group at epoch 0.
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed: SubscribedMetadata::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// The group's state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the group runs: the one most members ask for (ties to
    /// the lower name), the default when none does.
    pub fn assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.metadata.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
            .map_or(DEFAULT_ASSIGNOR, |(name, _)| name)
            .to_string()
    }

    /// Record keys changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<ConsumerKey> {
        std::mem::take(&mut self.dirty)
    }

    fn mark_member(&mut self, member_id: &str) {
        let (g, m) = (self.id.clone(), member_id.to_string());
        self.dirty
            .insert(ConsumerKey::MemberMetadata(g.clone(), m.clone()));
        self.dirty
            .insert(ConsumerKey::CurrentMemberAssignment(g, m));
    }

    fn bump_group_epoch(&mut self) {
        self.group_epoch += 1;
        self.dirty
            .insert(ConsumerKey::GroupMetadata(self.id.clone()));
    }

    /// Marks every key of the group, e.g. to write its whole state.
    pub fn mark_all_dirty(&mut self) {
        let g = self.id.clone();
        self.dirty.insert(ConsumerKey::GroupMetadata(g.clone()));
        self.dirty.insert(ConsumerKey::PartitionMetadata(g.clone()));
        self.dirty
            .insert(ConsumerKey::TargetAssignmentMetadata(g.clone()));
        let ids: Vec<String> = self
            .members
            .keys()
            .chain(self.target.keys())
            .cloned()
            .collect();
        for m in ids {
            self.mark_member(&m);
            self.dirty
                .insert(ConsumerKey::TargetAssignmentMember(g.clone(), m));
        }
    }

    /// One ConsumerGroupHeartbeat (join, heartbeat or leave; the epoch says
    /// which). The member id is already resolved (v0: generated for a join).
    pub fn heartbeat(
        &mut self,
        req: HeartbeatIn,
        now: Instant,
        catalog: &dyn TopicCatalog,
        settings: &Settings,
    ) -> Result<HeartbeatOut, HeartbeatError> {
        validate(&req)?;
        let epoch_at_start = self.group_epoch;
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&req);
        }
        let before = match req.member_epoch {
            0 => self.join(&req, now, settings)?,
            _ => self.check_member(&req)?,
        };
        let member_id = req.member_id.clone();
        let session = Duration::from_millis(settings.session_timeout_ms);
        let member = self.members.get_mut(&member_id).expect("joined or checked");
        member.session_deadline = now + session;
        let changed = update_metadata(member, &req);
        if changed.subscription {
            self.bump_group_epoch();
        }
        if changed.any {
            self.mark_member(&member_id);
        }
        self.refresh_metadata(catalog);
        // Several changes in one heartbeat are one new epoch.
        self.group_epoch = self.group_epoch.min(epoch_at_start + 1);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(catalog);
        }
        self.reconcile_member(&member_id, req.owned.as_ref(), now);
        let member = &self.members[&member_id];
        let send_assignment =
            req.owned.is_some() || req.member_epoch == 0 || member.assigned != before;
        Ok(HeartbeatOut {
            member_id,
            member_epoch: member.member_epoch,
            assignment: send_assignment.then(|| member.assigned.clone()),
        })
    }

    /// Epoch 0: a new member, a rejoin of a known one (it lost its
    /// partitions: they are released), or a static member replacing its
    /// earlier incarnation. Returns the member's assignment before.
    fn join(
        &mut self,
        req: &HeartbeatIn,
        now: Instant,
        settings: &Settings,
    ) -> Result<TopicPartitions, HeartbeatError> {
        if let Some(instance) = req.instance_id.as_deref() {
            let holder = self
                .members
                .values()
                .find(|m| m.metadata.instance_id.as_deref() == Some(instance))
                .map(|m| (m.member_id.clone(), m.member_epoch));
            match holder {
                Some((id, _)) if id == req.member_id => {}
                Some((id, STATIC_LEAVE_EPOCH)) => {
                    // The new incarnation takes over the old one's
                    // partitions and epoch: no rebalance.
                    let mut old = self.members.remove(&id).expect("found above");
                    self.mark_member(&id);
                    self.dirty.insert(ConsumerKey::TargetAssignmentMember(
                        self.id.clone(),
                        id.clone(),
                    ));
                    let target = self.target.remove(&id).unwrap_or_default();
                    old.member_id = req.member_id.clone();
                    old.member_epoch = old.previous_member_epoch.max(0);
                    self.members.insert(req.member_id.clone(), old);
                    self.target.insert(req.member_id.clone(), target);
                    self.dirty.insert(ConsumerKey::TargetAssignmentMember(
                        self.id.clone(),
                        req.member_id.clone(),
                    ));
                    self.mark_member(&req.member_id);
                    return Ok(TopicPartitions::new());
                }
                Some(_) => {
                    return Err(error(
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member with instance id {instance} is still in use."),
                    ))
                }
                None => {}
            }
        }
        match self.members.get_mut(&req.member_id) {
            Some(m) => {
                // The client rejoins from scratch: what it owned is gone.
                m.member_epoch = 0;
                m.state = MemberState::Stable;
                m.assigned.clear();
                m.pending_revocation.clear();
                m.revocation_deadline = None;
                self.mark_member(&req.member_id);
            }
            None => {
                if self.members.len() >= settings.members_max {
                    return Err(error(
                        ResponseError::GroupMaxSizeReached,
                        format!(
                            "The group has reached its maximum size of {}.",
                            settings.members_max
                        ),
                    ));
                }
                let mut m = ConsumerMember::new(&req.member_id, now);
                m.metadata.client_id = req.client_id.clone();
                m.metadata.client_host = req.client_host.clone();
                self.members.insert(req.member_id.clone(), m);
                self.mark_member(&req.member_id);
                self.bump_group_epoch();
            }
        }
        Ok(TopicPartitions::new())
    }

    /// A heartbeat at epoch > 0: the member must exist and the epoch must
    /// be its current one (or the previous one, when the client missed the
    /// bump and owns nothing it should not).
    fn check_member(&self, req: &HeartbeatIn) -> Result<TopicPartitions, HeartbeatError> {
        let Some(m) = self.members.get(&req.member_id) else {
            return Err(error(
                ResponseError::UnknownMemberId,
                format!(
                    "Member {} is not a member of group {}.",
                    req.member_id, self.id
                ),
            ));
        };
        if let Some(instance) = req.instance_id.as_deref() {
            if m.metadata.instance_id.as_deref() != Some(instance) {
                return Err(error(
                    ResponseError::FencedInstanceId,
                    format!(
                        "Instance id {instance} does not belong to member {}.",
                        m.member_id
                    ),
                ));
            }
        }
        let epoch = req.member_epoch;
        let retry_of_previous = epoch == m.previous_member_epoch
            && req
                .owned
                .as_ref()
                .is_some_and(|owned| is_subset(owned, &m.assigned));
        if epoch != m.member_epoch && !retry_of_previous {
            return Err(error(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The member epoch {epoch} does not match the expected {} (fenced).",
                    m.member_epoch
                ),
            ));
        }
        Ok(m.assigned.clone())
    }

    fn leave(&mut self, req: &HeartbeatIn) -> Result<HeartbeatOut, HeartbeatError> {
        let Some(m) = self.members.get_mut(&req.member_id) else {
            return Err(error(
                ResponseError::UnknownMemberId,
                format!(
                    "Member {} is not a member of group {}.",
                    req.member_id, self.id
                ),
            ));
        };
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // Kept with its partitions until the session ends or the
            // instance rejoins; the group does not rebalance meanwhile.
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = STATIC_LEAVE_EPOCH;
            let id = req.member_id.clone();
            self.mark_member(&id);
        } else {
            self.remove_member(&req.member_id.clone());
        }
        Ok(HeartbeatOut {
            member_id: req.member_id.clone(),
            member_epoch: req.member_epoch,
            assignment: None,
        })
    }

    /// Removes (fences) a member: its partitions are free at once, since a
    /// member that left or was fenced must not use them any more.
    pub fn remove_member(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        self.target.remove(member_id);
        self.mark_member(member_id);
        self.dirty.insert(ConsumerKey::TargetAssignmentMember(
            self.id.clone(),
            member_id.to_string(),
        ));
        self.bump_group_epoch();
    }

    /// Fences members whose session expired or who did not revoke within
    /// their rebalance timeout. Returns the ids fenced.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.member_id.clone())
            .collect();
        let epoch_at_start = self.group_epoch;
        for id in &expired {
            self.remove_member(id);
        }
        self.group_epoch = self.group_epoch.min(epoch_at_start + 1);
        expired
    }

    /// Bumps the group epoch when a subscribed topic appeared, went away or
    /// changed its partition count.
    fn refresh_metadata(&mut self, catalog: &dyn TopicCatalog) {
        let current = self.resolve_metadata(catalog);
        if current != self.subscribed {
            self.subscribed = current;
            self.dirty
                .insert(ConsumerKey::PartitionMetadata(self.id.clone()));
            self.bump_group_epoch();
        }
    }

    fn member_topics(m: &ConsumerMember, catalog: &dyn TopicCatalog) -> BTreeSet<String> {
        let mut topics: BTreeSet<String> =
            m.metadata.subscribed_topic_names.iter().cloned().collect();
        if let Some(re) = m.metadata.subscribed_topic_regex.as_deref() {
            if let Ok(re) = compile_regex(re) {
                topics.extend(
                    catalog
                        .names()
                        .into_iter()
                        .filter(|t| !is_internal_topic(t) && re.is_match(t)),
                );
            }
        }
        topics
    }

    fn resolve_metadata(&self, catalog: &dyn TopicCatalog) -> SubscribedMetadata {
        let mut out = SubscribedMetadata::new();
        for m in self.members.values() {
            for t in Self::member_topics(m, catalog) {
                if let Some(info) = catalog.topic(&t) {
                    out.insert(t, info);
                }
            }
        }
        out
    }

    /// Reruns the assignor at the group epoch.
    fn compute_target(&mut self, catalog: &dyn TopicCatalog) {
        let subs: BTreeMap<String, MemberSubscription<'_>> = self
            .members
            .values()
            .map(|m| {
                let sub = MemberSubscription {
                    topics: Self::member_topics(m, catalog),
                    previous: self.target.get(&m.member_id),
                };
                (m.member_id.clone(), sub)
            })
            .collect();
        let target = assignor::assign(&self.assignor(), &subs, &self.subscribed);
        for (id, tps) in &target {
            if self.target.get(id) != Some(tps) {
                self.dirty.insert(ConsumerKey::TargetAssignmentMember(
                    self.id.clone(),
                    id.clone(),
                ));
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        self.dirty
            .insert(ConsumerKey::TargetAssignmentMetadata(self.id.clone()));
    }

    fn reconcile_member(&mut self, member_id: &str, owned: Option<&TopicPartitions>, now: Instant) {
        let empty = TopicPartitions::new();
        let target = self.target.get(member_id).unwrap_or(&empty).clone();
        let others: Vec<&ConsumerMember> = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .collect();
        let elsewhere = |topic: &uuid::Uuid, p: i32| others.iter().any(|m| m.owns(topic, p));
        let mut member = self.members[member_id].clone();
        let step = Step {
            assignment_epoch: self.assignment_epoch,
            target: &target,
            owned,
            owned_elsewhere: &elsewhere,
        };
        let was_revoking = member.state == MemberState::UnrevokedPartitions;
        if reconcile(&mut member, &step) {
            self.mark_member(member_id);
        }
        member.revocation_deadline = match member.state {
            MemberState::UnrevokedPartitions if was_revoking => member.revocation_deadline,
            MemberState::UnrevokedPartitions => Some(
                now + Duration::from_millis(member.metadata.rebalance_timeout_ms.max(0) as u64),
            ),
            _ => None,
        };
        self.members.insert(member_id.to_string(), member);
    }

    /// What an OffsetCommit (or OffsetFetch) with this member and epoch may
    /// do: an epoch below 0 without members is an admin or assign()
    /// commit; otherwise the member must exist at exactly its epoch
    /// (STALE_MEMBER_EPOCH otherwise, as Kafka answers).
    pub fn validate_offset_request(&self, member_id: &str, member_epoch: i32) -> Result<(), i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        match member_epoch == m.member_epoch {
            true => Ok(()),
            false => Err(ResponseError::StaleMemberEpoch.code()),
        }
    }
}

fn is_subset(a: &TopicPartitions, b: &TopicPartitions) -> bool {
    a.iter()
        .all(|(t, ps)| b.get(t).is_some_and(|bs| ps.is_subset(bs)) || ps.is_empty())
}

/// Topic metadata from a map (tests and callers with a prepared view).
impl TopicCatalog for BTreeMap<String, TopicInfo> {
    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.get(name).copied()
    }
    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}
