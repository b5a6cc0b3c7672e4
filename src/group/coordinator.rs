//! [`GroupCoordinator`]: the groups of one shard, i.e. of the
//! `__consumer_offsets` partitions that shard owns.
//!
//! `!Send` on purpose: it lives in its [`Shard`] and is reached through
//! `Shard::run_on` (see `group::on_coordinator`). Every entry point first
//! makes sure the group's offsets partition has been replayed (once per
//! partition and process: at start for the partitions the shard owns then,
//! see `load.rs`, at first use for any created later) and that the session sweeper runs. No
//! `RefCell` borrow is held across an `.await`: a call changes the state
//! machine, drops the borrow, then writes to the log or waits for the
//! group to move on.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::consumer::coordinator::tombstones as consumer_tombstones;
use super::consumer::records::ConsumerKey;
use super::consumer::ConsumerGroup;
use super::member::{JoinResult, SyncResult};
use super::records::{GroupValue, OffsetValue, RecordKey};
use super::state::{Group, GroupState, JoinRequest, Reply};
use super::store::{self, KeyValue};
use crate::shard::Shard;

mod admin;
mod offsets;

pub use admin::{DescribedMember, GroupDescription, ListedGroup};

/// How often sessions, MEMBER_ID_REQUIRED ids and rebalance deadlines are checked.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Kafka's offset.metadata.max.bytes.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Committed offsets of one group by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), OffsetValue>;

/// A group and its committed offsets. A KIP-848 group keeps its state in
/// `consumer` while `group` (classic) stays Empty; see `group::consumer`.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) group: Group,
    pub(crate) offsets: Offsets,
    /// Its `__consumer_offsets` partition.
    pub(crate) partition: i32,
    /// The consumer-protocol group of this id, if it is one.
    pub(crate) consumer: Option<ConsumerGroup>,
}

impl Entry {
    pub(crate) fn new(group_id: &str, partition: i32) -> Entry {
        Entry {
            group: Group::new(group_id),
            offsets: Offsets::new(),
            partition,
            consumer: None,
        }
    }

    /// No members in either protocol (and none joining).
    pub(crate) fn is_empty_group(&self) -> bool {
        self.group.state() == GroupState::Empty
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }
}

/// An OffsetCommit's caller, as the generation check needs it.
#[derive(Debug, Clone)]
pub struct Committer {
    /// Member id ("" for admin/simple commits).
    pub member_id: String,
    /// group.instance.id.
    pub group_instance_id: Option<String>,
    /// Generation (-1 for admin/simple commits).
    pub generation: i32,
}

/// One shard's groups. See the module doc.
#[derive(Default)]
pub struct GroupCoordinator {
    pub(crate) groups: RefCell<HashMap<String, Entry>>,
    /// Transactional offset commits awaiting their marker, by (offsets
    /// partition, producer id) (see `txn_offsets.rs`).
    pub(crate) txn_offsets: RefCell<HashMap<(i32, i64), Vec<store::KeyValue>>>,
    loaded: RefCell<HashSet<i32>>,
    load_lock: futures::lock::Mutex<()>,
    sweeper_started: Cell<bool>,
    /// OffsetCommits of one group run one at a time, in arrival order, from
    /// their check to their apply: what is in memory is then always what
    /// the log's last record says, whatever order the appends' shared
    /// flush woke them in.
    pub(crate) commit_order: crate::shard::fifo_lock::KeyedFifoLocks<String>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("groups", &self.groups.borrow().len())
            .field("loaded_partitions", &self.loaded.borrow().len())
            .finish()
    }
}

impl GroupCoordinator {
    /// An empty coordinator; state is loaded on first use.
    pub fn new() -> GroupCoordinator {
        GroupCoordinator::default()
    }

    /// Forgets the groups of offsets partition `partition` (its leadership
    /// moved to another broker): if it comes back, the groups are replayed
    /// from the log again, with what the other leader wrote meanwhile.
    pub(crate) fn unload(&self, partition: i32) {
        if self.loaded.borrow_mut().remove(&partition) {
            self.groups
                .borrow_mut()
                .retain(|_, g| g.partition != partition);
            self.txn_offsets
                .borrow_mut()
                .retain(|(p, _), _| *p != partition);
            tracing::info!(
                partition,
                "offsets partition led elsewhere: its groups unloaded"
            );
        }
    }

    /// Starts the sweeper and replays `partition` if not done yet.
    pub(crate) async fn ready(&self, shard: &Rc<Shard>, partition: i32) -> Result<(), i16> {
        if !self.sweeper_started.replace(true) {
            let sweeper = shard.clone();
            glommio::spawn_local(async move {
                loop {
                    glommio::timer::sleep(SWEEP_INTERVAL).await;
                    sweeper.groups.sweep(&sweeper).await;
                }
            })
            .detach();
            let expirer = shard.clone();
            glommio::spawn_local(async move {
                let every = Duration::from_millis(expirer.config.offsets_retention_check_ms);
                loop {
                    glommio::timer::sleep(every).await;
                    let retention_ms = expirer.config.offsets_retention_ms;
                    expirer
                        .groups
                        .expire_offsets(&expirer, crate::clock::wall_ms(), retention_ms)
                        .await;
                }
            })
            .detach();
        }
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let _serial = self.load_lock.lock().await;
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let started = Instant::now();
        let now = crate::clock::monotonic();
        let session = Duration::from_millis(shard.config.group_consumer_session_timeout_ms);
        let replayed = store::replay_from(shard, super::OFFSETS_TOPIC, partition, |key, value| {
            self.apply_record(partition, key, value, now, session)
        })
        .await;
        match replayed {
            Ok((records, open_txns)) => {
                let mut pending = self.txn_offsets.borrow_mut();
                for (producer_id, held) in open_txns {
                    pending.insert((partition, producer_id), held);
                }
                if records > 0 {
                    info!(
                        partition,
                        records,
                        "loaded groups from __consumer_offsets in {:?}",
                        started.elapsed()
                    );
                }
                self.loaded.borrow_mut().insert(partition);
                Ok(())
            }
            Err(e) => {
                warn!("cannot load groups: {e}");
                Err(e.error_code())
            }
        }
    }

    /// Applies one replayed record: latest value per key wins.
    pub(crate) fn apply_record(
        &self,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
        now: Instant,
        session: Duration,
    ) {
        let key = match RecordKey::decode(key) {
            Ok(Some(k)) => k,
            Ok(None) => {
                let mut groups = self.groups.borrow_mut();
                if let Ok(Some(key)) = ConsumerKey::decode(key) {
                    let group = key.group().to_string();
                    let applied = Self::apply_consumer_record(
                        &mut groups,
                        partition,
                        key,
                        value,
                        now,
                        session,
                    );
                    if let Err(e) = applied {
                        warn!(%group, "skipping an undecodable consumer group record: {e}");
                    }
                    Self::drop_if_vacant(&mut groups, &group);
                }
                return;
            }
            Err(e) => {
                warn!(
                    partition,
                    "skipping an undecodable __consumer_offsets key: {e}"
                );
                return;
            }
        };
        let mut groups = self.groups.borrow_mut();
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition: p,
            } => match value.map(OffsetValue::decode) {
                Some(Ok(v)) => {
                    let entry = groups
                        .entry(group.clone())
                        .or_insert_with(|| Entry::new(&group, partition));
                    entry.offsets.insert((topic, p), v);
                }
                Some(Err(e)) => warn!(%group, "skipping an undecodable offset value: {e}"),
                None => {
                    if let Some(entry) = groups.get_mut(&group) {
                        entry.offsets.remove(&(topic, p));
                    }
                }
            },
            RecordKey::Group { group } => match value.map(GroupValue::decode) {
                Some(Ok(v)) => {
                    let restored = Group::from_value(&group, v, now);
                    let entry = groups
                        .entry(group.clone())
                        .or_insert_with(|| Entry::new(&group, partition));
                    entry.group = restored;
                }
                Some(Err(e)) => warn!(%group, "skipping an undecodable group value: {e}"),
                None => {
                    if let Some(entry) = groups.get_mut(&group) {
                        entry.group = Group::new(&group);
                    }
                    Self::drop_if_vacant(&mut groups, &group);
                }
            },
        }
    }

    /// Forgets an entry left with nothing (no group record, offsets or
    /// consumer group), so replayed deletions do not list ghosts.
    fn drop_if_vacant(groups: &mut HashMap<String, Entry>, group_id: &str) {
        let vacant = groups.get(group_id).is_some_and(|e| {
            e.group.protocol_type().is_none()
                && e.group.member_count() == 0
                && e.offsets.is_empty()
                && e.consumer.is_none()
        });
        if vacant {
            groups.remove(group_id);
        }
    }

    pub(crate) fn entry_or_new<'a>(
        groups: &'a mut HashMap<String, Entry>,
        group_id: &str,
        partition: i32,
    ) -> &'a mut Entry {
        groups
            .entry(group_id.to_string())
            .or_insert_with(|| Entry::new(group_id, partition))
    }

    /// Writes the group's metadata if the state machine changed it.
    async fn persist_if_dirty(&self, shard: &Rc<Shard>, group_id: &str) {
        let record = {
            let mut groups = self.groups.borrow_mut();
            let Some(entry) = groups.get_mut(group_id) else {
                return;
            };
            if !entry.group.take_dirty() {
                return;
            }
            let key = RecordKey::Group {
                group: group_id.to_string(),
            };
            (
                entry.partition,
                key.encode(),
                entry.group.to_value().encode(),
            )
        };
        let (partition, key, value) = record;
        if let Err(code) = store::append(shard, partition, &[(key, Some(value))]).await {
            warn!(group = group_id, code, "group metadata not persisted");
        }
    }

    /// JoinGroup; waits until the join phase completes.
    pub async fn join(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        req: JoinRequest,
    ) -> JoinResult {
        let member_id = req.member_id.clone();
        if let Err(code) = self.ready(shard, partition).await {
            return JoinResult::error(code, &member_id);
        }
        let (reply, dropped) = {
            let mut groups = self.groups.borrow_mut();
            let entry = Self::entry_or_new(&mut groups, group_id, partition);
            // A consumer-protocol group with members cannot take classic
            // members (Kafka answers the same); an empty one is converted.
            if entry
                .consumer
                .as_ref()
                .is_some_and(|c| !c.members.is_empty())
            {
                let code = ResponseError::InconsistentGroupProtocol.code();
                return JoinResult::error(code, &member_id);
            }
            let dropped = entry.consumer.take().map(|c| consumer_tombstones(&c));
            (entry.group.join(req, crate::clock::monotonic()), dropped)
        };
        if let Some(records) = dropped {
            if let Err(code) = store::append(shard, partition, &records).await {
                warn!(group = group_id, code, "consumer group records not removed");
            }
        }
        self.persist_if_dirty(shard, group_id).await;
        let result = match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
                JoinResult::error(ResponseError::RebalanceInProgress.code(), &member_id)
            }),
        };
        self.persist_if_dirty(shard, group_id).await;
        result
    }

    /// SyncGroup; waits for the leader's assignment. The group's metadata is
    /// written when the leader's sync makes the group Stable.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        member: Committer,
        protocol_type: Option<String>,
        protocol_name: Option<String>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        if let Err(code) = self.ready(shard, partition).await {
            return SyncResult::error(code);
        }
        let reply = {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(group_id) {
                None => Reply::Now(SyncResult::error(ResponseError::UnknownMemberId.code())),
                Some(entry) => entry.group.sync(
                    &member.member_id,
                    member.group_instance_id.as_deref(),
                    member.generation,
                    protocol_type.as_deref(),
                    protocol_name.as_deref(),
                    assignments,
                    crate::clock::monotonic(),
                ),
            }
        };
        self.persist_if_dirty(shard, group_id).await;
        match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ResponseError::RebalanceInProgress.code())),
        }
    }

    /// Heartbeat.
    pub async fn heartbeat(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        member: Committer,
    ) -> i16 {
        if let Err(code) = self.ready(shard, partition).await {
            return code;
        }
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group_id) {
            None => ResponseError::UnknownMemberId.code(),
            Some(entry) => entry.group.heartbeat(
                &member.member_id,
                member.group_instance_id.as_deref(),
                member.generation,
                crate::clock::monotonic(),
            ),
        }
    }

    /// LeaveGroup of several members; one code per member, or a group error.
    pub async fn leave(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<Vec<i16>, i16> {
        self.ready(shard, partition).await?;
        let codes = {
            let mut groups = self.groups.borrow_mut();
            let Some(entry) = groups.get_mut(group_id) else {
                return Ok(vec![ResponseError::UnknownMemberId.code(); members.len()]);
            };
            let now = crate::clock::monotonic();
            members
                .iter()
                .map(|(id, instance)| entry.group.leave(id, instance.as_deref(), now))
                .collect()
        };
        self.persist_if_dirty(shard, group_id).await;
        Ok(codes)
    }

    /// Expires sessions and rebalance deadlines of every loaded group, then
    /// persists the groups that changed.
    async fn sweep(&self, shard: &Rc<Shard>) {
        let now = crate::clock::monotonic();
        let (dirty, consumer_writes) = {
            let mut groups = self.groups.borrow_mut();
            let dirty: Vec<String> = groups
                .values_mut()
                .filter_map(|e| {
                    e.group.tick(now);
                    e.group.is_dirty().then(|| e.group.id.clone())
                })
                .collect();
            (dirty, Self::tick_consumer_groups(&mut groups, now))
        };
        for id in dirty {
            self.persist_if_dirty(shard, &id).await;
        }
        for (partition, records) in consumer_writes {
            if let Err(code) = store::append(shard, partition, &records).await {
                warn!(
                    partition,
                    code, "expired consumer group members not persisted"
                );
            }
        }
    }
}

/// Topics the members subscribe to, from the consumer protocol's
/// subscription (version, then an array of topic names; every version
/// starts this way).
fn subscribed_topics(group: &Group) -> HashSet<String> {
    let mut topics = HashSet::new();
    if group.protocol_type() != Some("consumer") {
        return topics;
    }
    let protocol = group.protocol().unwrap_or_default().to_string();
    for m in group.members() {
        topics.extend(super::consumer_protocol::subscription_topics(
            &m.metadata_for(&protocol),
        ));
    }
    topics
}

/// The per-partition codes of an offset commit (OFFSET_METADATA_TOO_LARGE
/// for oversized metadata, else 0) and the records of the accepted ones.
pub(crate) fn offset_records(
    group_id: &str,
    offsets: &[(String, i32, OffsetValue)],
) -> (Vec<i16>, Vec<KeyValue>) {
    let codes: Vec<i16> = offsets
        .iter()
        .map(
            |(_, _, v)| match v.metadata.len() > OFFSET_METADATA_BYTES_MAX {
                true => ResponseError::OffsetMetadataTooLarge.code(),
                false => 0,
            },
        )
        .collect();
    let records = offsets
        .iter()
        .zip(&codes)
        .filter(|(_, code)| **code == 0)
        .map(|((topic, p, value), _)| {
            let key = RecordKey::Offset {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition: *p,
            };
            (key.encode(), Some(value.encode()))
        })
        .collect();
    (codes, records)
}
