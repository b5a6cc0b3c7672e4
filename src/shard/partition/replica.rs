//! A partition's part in its replica set (issue 21): leader or follower,
//! the high watermark, the followers' progress, acks=all waits and the ISR
//! changes the leader asks the controller for.
//!
//! Kafka's rules, kept on the owner shard like everything else about the
//! partition (invariant 3):
//! - The **leader** tracks each follower's log end offset: the fetch
//!   offset of its last replica fetch (a follower fetches from its durable
//!   end, so that offset is on its disk: it fdatasyncs before it asks
//!   again). The high watermark is the minimum over the ISR of those and
//!   of the leader's own durable end, and never moves backwards.
//!   Consumers read below it only (`read.rs` cuts there); followers read
//!   up to the durable end.
//! - A follower is **caught up** when it fetched from at least the
//!   leader's end as it was at its previous fetch (Kafka's
//!   lastCaughtUpTime rule, `follower_progress`); one not caught up for
//!   `replica.lag.time.max.ms` and lacking part of the leader's log
//!   leaves the ISR, and one whose end reaches
//!   the high watermark rejoins. Both go through the controller with the
//!   partition epoch (AlterPartition); the ISR here changes only when the
//!   controller's answer arrives in a snapshot. While an addition is in
//!   flight the follower already counts for the high watermark (Kafka's
//!   "maximal ISR"), so the ISR the controller commits never holds a
//!   replica the high watermark did not wait for.
//! - **acks=all** needs `min.insync.replicas` ISR members before the
//!   append (NOT_ENOUGH_REPLICAS) and is answered when the high watermark
//!   passes the batch; an ISR shrunk below the minimum meanwhile answers
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND, a leadership lost
//!   NOT_LEADER_OR_FOLLOWER, and the request's timeout REQUEST_TIMED_OUT.
//! - A **new leader** starts from the high watermark it knew as a
//!   follower (after a restart: the checkpointed one, `min(checkpoint, log
//!   end)`, see `storage::hw_checkpoint`; without a checkpoint its log
//!   start until the followers report), so no consumer reads a record the
//!   ISR may not hold, and a restarted cluster serves what it served.
//!
//! A partition with one replica keeps the single-node path: no state
//! here, the high watermark is the log's durable end.

use std::collections::HashMap;
use std::time::Duration;

use futures::channel::oneshot;
use kafka_protocol::ResponseError;

use super::follower_progress::FollowerProgress;
use super::Partition;
use crate::metadata::PartitionState;

/// An acks=all produce waiting for the high watermark.
struct AckWaiter {
    end: i64,
    reply: oneshot::Sender<i16>,
}

/// The leader's view of its replica set.
pub(crate) struct LeaderState {
    /// This node (the leader).
    local: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    /// The ISR as the controller committed it.
    isr: Vec<i32>,
    /// An ISR change asked of the controller and not answered in a
    /// snapshot yet (the ISR it asked for).
    pending_isr: Option<Vec<i32>>,
    /// No ISR change is asked before this (monotonic ms) after a refusal.
    isr_retry_at_ms: u64,
    min_insync: usize,
    followers: HashMap<i32, FollowerProgress>,
    acks: Vec<AckWaiter>,
}

/// The partition's role.
pub(crate) enum Role {
    /// The only replica, or a single node: nothing to track.
    Sole,
    /// Leading other replicas.
    Leader(LeaderState),
    /// Following another broker (the snapshot names it; the shard's
    /// fetcher for it fetches this partition).
    Follower,
    /// No leader (all ISR members down) or not a replica any more.
    Offline,
}

/// What a snapshot changed for the shard to act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RoleChange {
    /// Nothing the shard must do.
    Same,
    /// Now follows `leader`: the shard's fetcher for it takes it.
    Follow(i32),
    /// Now leads (or went offline): no fetcher takes it any more.
    StopFollowing,
}

/// Wait after a refused or failed ISR change before asking another, ms.
pub(super) const ISR_RETRY_BACKOFF_MS: u64 = 1_000;

/// An ISR change for the controller: (leader epoch, partition epoch, ISR).
pub(crate) type IsrProposal = (i32, i32, Vec<i32>);

impl Partition {
    /// The high watermark: what consumers may read up to.
    #[inline]
    pub fn high_watermark(&self) -> i64 {
        match self.replicated.get() {
            true => self.hw.get(),
            false => self.log.high_watermark(),
        }
    }

    /// Whether this partition shares its log with other replicas.
    pub fn is_replicated(&self) -> bool {
        self.replicated.get()
    }

    /// Whether this replica leads (or is the only one).
    pub fn leads(&self) -> bool {
        matches!(*self.role.borrow(), Role::Sole | Role::Leader(_))
    }

    /// Whether this replica follows another broker.
    pub fn is_follower(&self) -> bool {
        matches!(*self.role.borrow(), Role::Follower)
    }

    /// Applies the controller's view of this partition (`state`, seen from
    /// node `local`) and the topic's `min.insync.replicas`.
    pub(crate) fn set_role(
        &self,
        local: i32,
        state: &PartitionState,
        min_insync: usize,
    ) -> RoleChange {
        let now_ms = crate::clock::monotonic_ms();
        let mut role = self.role.borrow_mut();
        if state.leader == local && state.replicas.len() <= 1 {
            let was_sole = matches!(*role, Role::Sole);
            *role = Role::Sole;
            self.replicated.set(false);
            return if was_sole {
                RoleChange::Same
            } else {
                RoleChange::StopFollowing
            };
        }
        if state.leader == local {
            if let Role::Leader(leader) = &mut *role {
                if leader.leader_epoch == state.leader_epoch {
                    leader.update(state, min_insync, now_ms);
                    drop(role);
                    self.advance_hw();
                    self.fail_acks_if_isr_too_small();
                    return RoleChange::Same;
                }
            }
            // A new leadership: the high watermark known so far stays (a
            // follower's, the checkpointed one after a restart, else the
            // log start), so it never moves back and never covers a
            // record the ISR may not hold.
            self.hw.set(self.hw.get().min(self.log.high_watermark()));
            self.replicated.set(true);
            // The new epoch starts at this log's end (Kafka's makeLeader),
            // so a follower's DivergingEpoch check sees it before a write.
            self.log.assign_leader_epoch(state.leader_epoch);
            *role = Role::Leader(LeaderState::new(state, local, min_insync, now_ms));
            drop(role);
            self.advance_hw();
            return RoleChange::StopFollowing;
        }
        let next = match state.leader {
            crate::metadata::NO_LEADER => Role::Offline,
            _ => Role::Follower,
        };
        let previous = std::mem::replace(&mut *role, next);
        // Just opened, `hw` is the checkpointed high watermark or the log
        // start (`restore_hw`): what the leader says moves it on.
        self.replicated.set(true);
        drop(role);
        if let Role::Leader(mut leader) = previous {
            leader.fail_acks(ResponseError::NotLeaderOrFollower.code());
        }
        match state.leader {
            crate::metadata::NO_LEADER => RoleChange::StopFollowing,
            leader => RoleChange::Follow(leader),
        }
    }

    /// The ISR check made before an acks=all append.
    pub(super) fn check_min_insync(&self) -> Result<(), i16> {
        match &*self.role.borrow() {
            Role::Leader(l) if l.isr.len() < l.min_insync => {
                Err(ResponseError::NotEnoughReplicas.code())
            }
            Role::Follower | Role::Offline => Err(ResponseError::NotLeaderOrFollower.code()),
            _ => Ok(()),
        }
    }

    /// Waits until the high watermark reaches `end` (acks=all); 0 or the
    /// Kafka error (module doc).
    pub(super) async fn wait_replicated(&self, end: i64, timeout: Duration) -> i16 {
        if !self.replicated.get() {
            return 0;
        }
        let started = std::time::Instant::now();
        let code = self.wait_for_hw(end, timeout).await;
        crate::ops::metrics::record_acks_all_wait(started.elapsed());
        code
    }

    async fn wait_for_hw(&self, end: i64, timeout: Duration) -> i16 {
        if self.hw.get() >= end {
            return 0;
        }
        let (reply, answer) = oneshot::channel();
        match &mut *self.role.borrow_mut() {
            Role::Leader(l) => l.acks.push(AckWaiter { end, reply }),
            _ => return ResponseError::NotLeaderOrFollower.code(),
        }
        let timer = glommio::timer::sleep(timeout);
        futures::pin_mut!(timer);
        match futures::future::select(answer, timer).await {
            futures::future::Either::Left((Ok(code), _)) => code,
            futures::future::Either::Left((Err(_), _)) => ResponseError::NotLeaderOrFollower.code(),
            futures::future::Either::Right(_) => ResponseError::RequestTimedOut.code(),
        }
    }

    /// A replica fetch from `replica` at `fetch_offset`: records its
    /// progress, moves the high watermark, and returns an ISR expansion to
    /// ask the controller for when the follower caught up.
    pub(crate) fn on_replica_fetch(
        &self,
        replica: i32,
        fetch_offset: i64,
        now_ms: u64,
    ) -> Result<Option<IsrProposal>, i16> {
        let leader_end = self.log.high_watermark();
        let proposal = {
            let mut role = self.role.borrow_mut();
            let Role::Leader(l) = &mut *role else {
                return Err(ResponseError::NotLeaderOrFollower.code());
            };
            let Some(progress) = l.followers.get_mut(&replica) else {
                return Err(ResponseError::NotLeaderOrFollower.code());
            };
            if fetch_offset > leader_end {
                // A tail this leader does not have: the follower must
                // truncate first (DivergingEpoch); its progress does not
                // count until then.
                return Err(ResponseError::OffsetOutOfRange.code());
            }
            let end = fetch_offset;
            progress.on_fetch(end, leader_end, now_ms);
            let joins = !l.isr.contains(&replica)
                && l.pending_isr.is_none()
                && now_ms >= l.isr_retry_at_ms
                && end >= self.hw.get();
            joins.then(|| {
                let mut isr = l.isr.clone();
                isr.push(replica);
                l.pending_isr = Some(isr.clone());
                (l.leader_epoch, l.partition_epoch, isr)
            })
        };
        self.advance_hw();
        Ok(proposal)
    }

    /// The ISR without the followers not caught up for `lag_max_ms`, when
    /// there are any (and no other change is in flight).
    pub(crate) fn isr_shrink(&self, now_ms: u64, lag_max_ms: u64) -> Option<IsrProposal> {
        let mut role = self.role.borrow_mut();
        let Role::Leader(l) = &mut *role else {
            return None;
        };
        if l.pending_isr.is_some() || now_ms < l.isr_retry_at_ms {
            return None;
        }
        let leader_end = self.log.high_watermark();
        let lagging = |r: &i32| {
            l.followers
                .get(r)
                .is_none_or(|f| f.out_of_sync(leader_end, now_ms, lag_max_ms))
        };
        let kept: Vec<i32> = l
            .isr
            .iter()
            .copied()
            .filter(|r| *r == l.local || !lagging(r))
            .collect();
        if kept.len() == l.isr.len() {
            return None;
        }
        l.pending_isr = Some(kept.clone());
        Some((l.leader_epoch, l.partition_epoch, kept))
    }

    /// The controller refused or failed an ISR change: another may be
    /// asked after [`ISR_RETRY_BACKOFF_MS`] (a refused expansion, e.g. of a
    /// fenced broker, is not asked again at every fetch).
    pub(crate) fn isr_change_failed(&self) {
        if let Role::Leader(l) = &mut *self.role.borrow_mut() {
            l.pending_isr = None;
            l.isr_retry_at_ms = crate::clock::monotonic_ms() + ISR_RETRY_BACKOFF_MS;
        }
    }

    /// Recomputes the high watermark and answers what it now covers:
    /// acks=all waits and consumers' long polls.
    pub(super) fn advance_hw(&self) {
        let next = {
            let role = self.role.borrow();
            let Role::Leader(l) = &*role else {
                return;
            };
            l.high_watermark(self.log.high_watermark())
        };
        if next <= self.hw.get() {
            return;
        }
        self.hw.set(next);
        if let Role::Leader(l) = &mut *self.role.borrow_mut() {
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut l.acks)
                .into_iter()
                .partition(|w| w.end <= next);
            l.acks = waiting;
            for w in done {
                let _ = w.reply.send(0);
            }
        }
        self.wake_consumers();
    }

    /// Sets the high watermark a just-opened replica starts from: the
    /// checkpointed one (`storage::hw_checkpoint`) cut to this log, or the
    /// log start when there is none (nothing is known committed then).
    pub(crate) fn restore_hw(&self, checkpointed: Option<i64>) {
        let start = self.log.log_start_offset();
        let hw = checkpointed.map_or(start, |hw| hw.min(self.log.high_watermark()).max(start));
        self.hw.set(hw);
    }

    /// The high watermark to checkpoint: `Some` for a replicated partition.
    pub(crate) fn hw_to_checkpoint(&self) -> Option<i64> {
        self.replicated.get().then(|| self.hw.get())
    }

    /// A follower's high watermark after a fetch: the leader's, but never
    /// past what this replica holds durably.
    pub(super) fn follow_hw(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.log.high_watermark());
        if hw > self.hw.get() {
            self.hw.set(hw);
        }
    }

    fn fail_acks_if_isr_too_small(&self) {
        if let Role::Leader(l) = &mut *self.role.borrow_mut() {
            if l.isr.len() < l.min_insync {
                l.fail_acks(ResponseError::NotEnoughReplicasAfterAppend.code());
            }
        }
    }

    /// What /metrics shows of a partition this replica leads: ISR and
    /// replica counts, each follower's lag in offsets behind the leader's
    /// durable end and the longest lag in time (`follower_progress`);
    /// `None` unless it leads other replicas.
    pub fn replication_stats(&self) -> Option<crate::ops::metrics::ReplicationStats> {
        let Role::Leader(l) = &*self.role.borrow() else {
            return None;
        };
        let end = self.log.high_watermark();
        let mut follower_lag: Vec<(i32, i64)> = l
            .followers
            .iter()
            .map(|(id, f)| (*id, (end - f.end.max(0)).max(0)))
            .collect();
        follower_lag.sort_unstable();
        let now_ms = crate::clock::monotonic_ms();
        let lag_ms_max = l.followers.values().map(|f| f.lag_ms(end, now_ms)).max();
        Some(crate::ops::metrics::ReplicationStats {
            isr: l.isr.len(),
            replicas: l.replicas.len(),
            follower_lag,
            lag_ms_max: lag_ms_max.unwrap_or(0),
        })
    }
}

impl LeaderState {
    /// A new leadership: every follower starts caught up now (Kafka's
    /// rule), with no known end.
    fn new(state: &PartitionState, local: i32, min_insync: usize, now_ms: u64) -> LeaderState {
        let mut leader = LeaderState {
            local,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            replicas: Vec::new(),
            isr: state.isr.clone(),
            pending_isr: None,
            isr_retry_at_ms: 0,
            min_insync,
            followers: HashMap::new(),
            acks: Vec::new(),
        };
        leader.set_replicas(&state.replicas, now_ms);
        leader
    }

    fn update(&mut self, state: &PartitionState, min_insync: usize, now_ms: u64) {
        if state.partition_epoch != self.partition_epoch {
            self.pending_isr = None;
        }
        self.partition_epoch = state.partition_epoch;
        // Counted as the leader sees them, whoever made them: its own
        // AlterPartition or the controller's fence of a follower's broker.
        if state.isr.len() != self.isr.len() {
            crate::ops::metrics::record_isr_change(state.isr.len() < self.isr.len());
        }
        self.isr = state.isr.clone();
        self.min_insync = min_insync;
        self.set_replicas(&state.replicas, now_ms);
    }

    fn set_replicas(&mut self, replicas: &[i32], now_ms: u64) {
        self.replicas = replicas.to_vec();
        self.followers.retain(|id, _| replicas.contains(id));
        for &r in replicas.iter().filter(|r| **r != self.local) {
            self.followers
                .entry(r)
                .or_insert_with(|| FollowerProgress::new(now_ms));
        }
    }

    /// The minimum over the ISR (and an addition in flight) of the
    /// followers' ends and the leader's own durable end.
    fn high_watermark(&self, leader_end: i64) -> i64 {
        let members = self.isr.iter().chain(self.pending_isr.iter().flatten());
        members
            .filter(|r| **r != self.local)
            // A member that has not fetched under this leader holds
            // nothing we know of yet (-1).
            .map(|r| self.followers.get(r).map_or(-1, |f| f.end))
            .fold(leader_end, i64::min)
    }

    fn fail_acks(&mut self, code: i16) {
        for w in self.acks.drain(..) {
            let _ = w.reply.send(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(isr: &[i32]) -> PartitionState {
        PartitionState {
            leader: 1,
            leader_epoch: 4,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            partition_epoch: 7,
        }
    }

    fn fetched(l: &mut LeaderState, replica: i32, end: i64) {
        l.followers.get_mut(&replica).expect("a replica").end = end;
    }

    #[test]
    fn high_watermark_is_the_minimum_over_the_isr_and_waits_for_unfetched_members() {
        let mut l = LeaderState::new(&state(&[1, 2, 3]), 1, 2, 0);
        // Nobody fetched yet under this leader: nothing is known committed.
        assert_eq!(l.high_watermark(100), -1);
        fetched(&mut l, 2, 80);
        fetched(&mut l, 3, 60);
        assert_eq!(l.high_watermark(100), 60);
        // A member out of the ISR does not hold the high watermark back...
        l.isr = vec![1, 2];
        assert_eq!(l.high_watermark(100), 80);
        // ...but one being added already counts (maximal ISR).
        l.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(l.high_watermark(100), 60);
        // The leader's own durable end bounds it.
        l.pending_isr = None;
        fetched(&mut l, 2, 120);
        assert_eq!(l.high_watermark(100), 100);
    }

    #[test]
    fn leader_state_update_keeps_progress_of_remaining_replicas_and_clears_a_pending_change() {
        let mut l = LeaderState::new(&state(&[1, 2, 3]), 1, 2, 0);
        fetched(&mut l, 2, 50);
        l.pending_isr = Some(vec![1, 2]);
        let mut next = state(&[1, 2]);
        next.partition_epoch = 8;
        next.replicas = vec![1, 2];
        l.update(&next, 2, 10);
        assert!(l.pending_isr.is_none(), "the controller answered");
        assert_eq!(l.followers.get(&2).map(|f| f.end), Some(50));
        assert!(!l.followers.contains_key(&3), "no longer a replica");
        assert!(
            !l.followers.contains_key(&1),
            "the leader tracks no progress of its own"
        );
    }

    #[test]
    fn fail_acks_answers_every_waiter_with_the_code() {
        let mut l = LeaderState::new(&state(&[1, 2]), 1, 2, 0);
        let (tx, mut rx) = oneshot::channel();
        l.acks.push(AckWaiter { end: 10, reply: tx });
        l.fail_acks(ResponseError::NotEnoughReplicasAfterAppend.code());
        assert_eq!(
            rx.try_recv().expect("answered"),
            Some(ResponseError::NotEnoughReplicasAfterAppend.code())
        );
    }
}
