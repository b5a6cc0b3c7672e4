//! The classic group protocol as a state machine, without I/O: Kafka's
//! GroupCoordinator rules for JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! session and rebalance timeouts. The caller passes the time in, so tests
//! drive it with a fake clock, and persists [`Group::to_value`] when
//! [`Group::take_dirty`] says the stored form changed.
//!
//! States (as DescribeGroups reports them): Empty (no members, offsets may
//! remain), PreparingRebalance (members are (re)joining; JoinGroup answers
//! wait until every known member joined or the rebalance timeout passed),
//! CompletingRebalance (joined; waiting for the leader's SyncGroup),
//! Stable, Dead (deleted).
//!
//! Joins are answered as soon as every known member has rejoined, except
//! the first rebalance of an Empty group: it waits
//! `group.initial.rebalance.delay.ms` (carried by the join that starts it),
//! extended by the same delay while new members keep arriving, up to the
//! rebalance timeout (Kafka's InitialDelayedJoin). Consumers started
//! together then share one generation instead of a lone first member
//! getting one of its own and a second round revoking it.
//!
//! This file holds the types, the rebalance (prepare, complete, drop a
//! member) and the timeouts; one file per request beside it: [`join`]
//! (JoinGroup), [`sync`] (SyncGroup), [`membership`] (Heartbeat, LeaveGroup,
//! the OffsetCommit check), and [`stored`] (the `__consumer_offsets` form).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;

use super::member::{JoinMember, JoinResult, Member, SyncResult};
use super::records::{GroupValue, MemberValue};

/// Kafka's group.min.session.timeout.ms.
pub const SESSION_TIMEOUT_MS_MIN: i32 = 6_000;
/// Kafka's group.max.session.timeout.ms.
pub const SESSION_TIMEOUT_MS_MAX: i32 = 1_800_000;
/// Members one group may hold (Kafka's group.max.size is unbounded by
/// default; a bound keeps a join storm from growing memory without end).
pub const GROUP_MEMBERS_MAX: usize = 10_000;

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned and running.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Empty for a first join.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// client.id from the request header.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// session.timeout.ms.
    pub session_timeout_ms: i32,
    /// rebalance timeout (v1+; v0 uses the session timeout).
    pub rebalance_timeout_ms: i32,
    /// "consumer" for consumers.
    pub protocol_type: String,
    /// Protocols in preference order, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join gets MEMBER_ID_REQUIRED and must rejoin with its id.
    pub require_known_member_id: bool,
    /// The broker's group.initial.rebalance.delay.ms, applied when this
    /// join starts the first rebalance of an Empty group.
    pub initial_rebalance_delay: Duration,
}

/// The initial delay of an Empty group's first rebalance (Kafka's
/// InitialDelayedJoin): the join phase lasts at least until `until`.
#[derive(Debug, Clone, Copy)]
struct InitialJoin {
    until: Instant,
    /// The configured delay, one extension's length.
    delay: Duration,
    /// Rebalance time left for extensions.
    remaining: Duration,
    /// A member joined since the delay (or its last extension) started.
    new_member_added: bool,
}

/// Either an answer now or one to wait for.
#[derive(Debug)]
pub enum Reply<T> {
    /// Answered at once.
    Now(T),
    /// Answered when the group moves on.
    Later(oneshot::Receiver<T>),
}

/// One classic group. `!Send` in practice: it lives in the coordinator of
/// the shard that owns its `__consumer_offsets` partition.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// Members in join order (the first one leads when the leader is gone).
    members: IndexMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until they rejoin or expire.
    pending: IndexMap<String, Instant>,
    /// group.instance.id -> member id.
    static_members: IndexMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// Set while an Empty group's first rebalance is held back.
    initial_join: Option<InitialJoin>,
    /// Set when the stored form changed; see [`Group::take_dirty`].
    dirty: bool,
    /// Wall-clock ms of the last state change.
    state_timestamp_ms: i64,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

mod join;
mod membership;
mod stored;
mod sync;

impl Group {
    /// A new, empty group.
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: IndexMap::new(),
            static_members: IndexMap::new(),
            rebalance_deadline: None,
            initial_join: None,
            dirty: false,
            state_timestamp_ms: crate::clock::wall_ms(),
        }
    }

    /// Wall-clock ms of the last state change (when an Empty group became
    /// Empty).
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    /// Whether ids handed out with MEMBER_ID_REQUIRED await their rejoin.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// Current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Protocol type, once a member joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Selected protocol of the current generation.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Leader member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Members in join order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Marks the group deleted (DeleteGroups on an empty group).
    pub fn mark_dead(&mut self) {
        self.set_state(GroupState::Dead);
    }

    /// Whether the stored form changed since the last [`Group::take_dirty`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the stored form changed since the last call; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_timestamp_ms = crate::clock::wall_ms();
    }

    /// `initial_delay` holds the join phase back when the group was Empty.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            let rebalancing = SyncResult::error(code(ResponseError::RebalanceInProgress));
            for m in self.members.values_mut() {
                m.answer_sync(rebalancing.clone(), now);
            }
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + timeout);
        self.initial_join =
            (self.state == GroupState::Empty && !initial_delay.is_zero()).then(|| InitialJoin {
                until: now + initial_delay,
                delay: initial_delay,
                remaining: timeout.saturating_sub(initial_delay),
                new_member_added: false,
            });
        self.set_state(GroupState::PreparingRebalance);
    }

    /// Whether the initial delay still holds the join phase back at `now`;
    /// extends it once more when members arrived during it and rebalance
    /// time is left.
    fn initial_delay_holds(&mut self, now: Instant) -> bool {
        let Some(mut initial) = self.initial_join else {
            return false;
        };
        if now < initial.until {
            return true;
        }
        if initial.new_member_added && !initial.remaining.is_zero() {
            let extension = initial.delay.min(initial.remaining);
            initial.until = now + extension;
            initial.remaining -= extension;
            initial.new_member_added = false;
            self.initial_join = Some(initial);
            return true;
        }
        self.initial_join = None;
        false
    }

    /// Completes the join phase once every member joined and no
    /// MEMBER_ID_REQUIRED member is still expected, or at the deadline
    /// (members that did not rejoin are dropped).
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_holds(now) {
            return;
        }
        let all_joined =
            self.members.values().all(Member::awaiting_join) && self.pending.is_empty();
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        if !all_joined && !timed_out {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.drop_member(&id, now);
        }
        self.pending.clear();
        self.complete_join(now);
    }

    fn complete_join(&mut self, now: Instant) {
        self.generation += 1;
        self.rebalance_deadline = None;
        self.initial_join = None;
        self.dirty = true;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.answer_join(result, now);
            }
        }
    }

    /// Removes a member, answering what it has pending.
    fn drop_member(&mut self, id: &str, now: Instant) {
        if let Some(mut m) = self.members.shift_remove(id) {
            let unknown = code(ResponseError::UnknownMemberId);
            m.answer_join(JoinResult::error(unknown, id), now);
            m.answer_sync(SyncResult::error(unknown), now);
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.shift_remove(instance);
                }
            }
        }
    }

    /// Removes a member (left or expired) and rebalances the rest.
    fn remove_member_and_rebalance(&mut self, id: &str, now: Instant) {
        self.drop_member(id, now);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, Duration::ZERO)
            }
            _ => {}
        }
        self.maybe_complete_join(now);
    }

    /// Expires sessions, MEMBER_ID_REQUIRED ids and rebalance deadlines.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expired(now))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member_and_rebalance(&id, now);
        }
        self.maybe_complete_join(now);
    }
}
