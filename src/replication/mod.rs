//! Partition replication (issue 21), the shard's side: roles from the
//! controller's snapshots, the leader's answers to replica fetches and its
//! ISR changes, and the followers' fetchers.
//!
//! How it fits the shard model:
//! - A partition's replica state (leader or follower, high watermark,
//!   followers' progress, acks=all waits) lives in the partition on its
//!   owner shard (`shard::partition::replica`); nothing here shares it.
//! - Followers fetch from the leader with Kafka's Fetch (v12, ReplicaId set,
//!   LastFetchedEpoch), over the leader's Kafka listener: one connection
//!   and one fetcher task per (follower shard, leader broker), carrying
//!   every partition that shard follows from that broker ([`fetcher`]).
//!   The fetcher runs on the owner shard of its partitions, so a fetched
//!   batch is appended where it lives with no hop.
//! - The leader serves replica fetches through the ordinary Fetch handler
//!   and the owner's read path (tail cache, file range, O_DIRECT), up to
//!   its durable end instead of the high watermark; the fetch offset is the
//!   follower's durable end, which moves the high watermark
//!   ([`Shard::replica_fetch`]).
//! - ISR changes go to the controller (AlterPartition with the partition
//!   epoch) through the node's membership on shard 0; the new ISR comes
//!   back in a snapshot like every metadata change ([`Shard::apply_roles`]).
//!
//! A single node, and a partition with one replica, run none of this.

pub mod client;
pub mod denials;
pub mod fetcher;
pub mod hw_checkpoint;
pub mod login;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::metadata::Snapshot;
use crate::shard::{Partition, PartitionReply, RoleChange, Shard};
use fetcher::Fetcher;

/// How often a leader looks for followers to drop from the ISR (Kafka
/// checks every replica.lag.time.max.ms / 2; a fixed short period here
/// keeps the check cheap and the reaction prompt).
pub const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// A shard's followers' fetchers, by leader broker.
#[derive(Default)]
pub struct ShardReplication {
    fetchers: RefCell<HashMap<i32, Rc<Fetcher>>>,
    /// The high-watermark checkpoint ([`hw_checkpoint`]).
    hw: hw_checkpoint::HwCheckpoints,
}

impl ShardReplication {
    /// Stops every fetcher (shutdown).
    pub fn stop_all(&self) {
        for (_, f) in self.fetchers.borrow_mut().drain() {
            f.stop();
        }
    }
}

impl Shard {
    /// Applies the snapshot's leaders and ISRs to this shard's partitions
    /// and hands each followed partition to the fetcher for its leader.
    /// A replica that starts leading (after following or being offline)
    /// rebuilds its producer state first
    /// (awaited here, before the snapshot routes produces to it).
    pub(crate) async fn apply_roles(self: &Rc<Self>, snapshot: &Snapshot) {
        let Some(cluster) = snapshot.cluster.clone() else {
            return;
        };
        let local = cluster.local_node;
        let mut follows: BTreeMap<i32, Vec<Rc<Partition>>> = BTreeMap::new();
        for p in self.local_partitions() {
            let Some(topic) = snapshot.topic(&p.id.topic) else {
                continue;
            };
            let Some(state) = topic
                .placement
                .as_ref()
                .and_then(|pl| pl.get(p.id.partition as usize))
            else {
                continue;
            };
            let min_insync = topic.config(&snapshot.log_defaults).min_insync_replicas;
            let led_before = p.leads();
            let change = p.set_role(local, state, usize::try_from(min_insync).unwrap_or(1));
            if !p.leads() && *p.id.topic == *crate::group::OFFSETS_TOPIC {
                self.groups.unload(p.id.partition);
            }
            if !p.leads() && *p.id.topic == *crate::txn::TXN_TOPIC {
                self.txns.unload(p.id.partition);
            }
            match change {
                RoleChange::Follow(leader) => follows.entry(leader).or_default().push(p),
                // Leading again after following or being offline: what
                // this replica's producer table knew is stale.
                RoleChange::StopFollowing if !led_before && p.leads() => {
                    p.rebuild_as_leader().await
                }
                _ => {}
            }
        }
        let mut fetchers = self.replication.fetchers.borrow_mut();
        fetchers.retain(|leader, f| {
            let keep = follows.contains_key(leader);
            if !keep {
                f.stop();
            }
            keep
        });
        for (leader, partitions) in follows {
            let fetcher = fetchers.entry(leader).or_insert_with(|| {
                let f = Fetcher::new(local, leader);
                Fetcher::spawn(f.clone(), self.clone());
                f
            });
            fetcher.set_partitions(partitions);
        }
    }

    /// A follower's fetch of a partition this shard leads: the
    /// DivergingEpoch check (a follower whose tail differs truncates
    /// before its offset counts), its progress (which may move the high
    /// watermark and ask for an ISR expansion), then the read up to the
    /// durable end. `fetch` is (offset, last fetched epoch, max bytes).
    pub(crate) async fn replica_fetch(
        self: &Rc<Self>,
        p: &Rc<Partition>,
        replica_id: i32,
        (offset, last_fetched_epoch, max_bytes): (i64, i32, usize),
    ) -> PartitionReply {
        if let Some(reply) = p.diverging_reply(offset, last_fetched_epoch, false) {
            return reply;
        }
        match p.on_replica_fetch(replica_id, offset, crate::clock::monotonic_ms()) {
            Err(code) => return PartitionReply::Error(code),
            Ok(Some(proposal)) => self.propose_isr(p.clone(), proposal),
            Ok(None) => {}
        }
        p.read_for_replica(offset, max_bytes).await
    }

    /// Asks the controller, through shard 0's membership, for `proposal`;
    /// on a refusal the partition may ask again later.
    fn propose_isr(self: &Rc<Self>, p: Rc<Partition>, proposal: crate::shard::IsrProposal) {
        let me = self.clone();
        glommio::spawn_local(async move {
            let (leader_epoch, partition_epoch, isr) = proposal;
            let topic = p.id.topic.to_string();
            let partition = p.id.partition;
            let asked = isr.clone();
            let answer = me
                .run_on(
                    crate::shard::METADATA_OWNER_SHARD,
                    move |shard| async move {
                        let Some(member) = shard.cluster_member() else {
                            return Err("no cluster membership".to_string());
                        };
                        member
                            .alter_partition(
                                topic,
                                partition,
                                (leader_epoch, partition_epoch),
                                asked,
                            )
                            .await
                    },
                )
                .await;
            match answer {
                Some(Ok(())) => debug!(partition = %p.id, ?isr, "ISR change committed"),
                Some(Err(e)) => {
                    warn!(partition = %p.id, ?isr, "ISR change not made: {e}");
                    p.isr_change_failed();
                }
                None => p.isr_change_failed(),
            }
        })
        .detach();
    }

    /// Runs for the life of a cluster shard: drops lagging followers from
    /// the ISRs this shard's partitions lead.
    pub(crate) async fn run_isr_checks(self: Rc<Self>) {
        let lag_max_ms = self.config.cluster.replica_lag_time_max_ms;
        loop {
            glommio::timer::sleep(ISR_CHECK_INTERVAL).await;
            let now = crate::clock::monotonic_ms();
            for p in self.local_partitions() {
                if let Some(proposal) = p.isr_shrink(now, lag_max_ms) {
                    self.propose_isr(p, proposal);
                }
            }
        }
    }
}
