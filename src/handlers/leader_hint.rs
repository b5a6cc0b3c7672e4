//! KIP-951 current-leader hints for Produce (v10+) and Fetch (v16+).
//!
//! A partition answered NOT_LEADER_OR_FOLLOWER (and, for Fetch,
//! FENCED_LEADER_EPOCH) carries the leader this broker knows of
//! (`CurrentLeader`: leader id and epoch), and the response carries that
//! leader's address (`NodeEndpoints`), so a client such as librdkafka 2.4+
//! can go straight to the new leader without a Metadata round trip.
//!
//! Decisions:
//! - The hint comes from the shard's snapshot read *after* the partition
//!   answered, so a leadership that moved while the request ran is seen.
//! - A leader that is unknown (-1, offline partition) or fenced gets no
//!   hint (the tagged fields are left at their defaults, i.e. not written),
//!   as Kafka's broker does: a client then refreshes its metadata.
//! - The address is the broker's registered advertised address, the one
//!   Metadata lists (brokers register one address each; there is no
//!   per-listener address for other brokers yet, ARCHITECTURE.md
//!   "Cluster"). No rack: brokers have none.
//! - A single node (`Snapshot::cluster` is `None`) leads everything and
//!   never answers NOT_LEADER_OR_FOLLOWER from routing; the handlers skip
//!   this module entirely there, so the hot path pays one `Option` check.

use std::collections::BTreeSet;

use crate::metadata::{BrokerInfo, Snapshot};

/// First Produce version with CurrentLeader and NodeEndpoints (KIP-951).
pub(super) const PRODUCE_HINT_VERSION_MIN: i16 = 10;
/// First Fetch version with NodeEndpoints (KIP-951); CurrentLeader exists
/// from v12 (KIP-595) but Kafka fills it for clients only from v16.
pub(super) const FETCH_HINT_VERSION_MIN: i16 = 16;

/// A partition's leader as this broker knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LeaderHint {
    /// The leader's node id.
    pub(super) leader_id: i32,
    /// Its leader epoch.
    pub(super) leader_epoch: i32,
}

/// The leader of `topic`/`partition` when it is another live broker of the
/// cluster; `None` on a single node, for an unknown partition, or when the
/// partition has no live leader.
pub(super) fn leader_of(snapshot: &Snapshot, topic: &str, partition: i32) -> Option<LeaderHint> {
    let cluster = snapshot.cluster.as_ref()?;
    let placement = snapshot.topic(topic)?.placement.as_ref()?;
    let state = placement.get(usize::try_from(partition).ok()?)?;
    cluster.live_broker(state.leader)?;
    Some(LeaderHint {
        leader_id: state.leader,
        leader_epoch: state.leader_epoch,
    })
}

/// The live brokers among `leaders`, by id, each once (a response's
/// NodeEndpoints).
pub(super) fn endpoints(snapshot: &Snapshot, leaders: BTreeSet<i32>) -> Vec<BrokerInfo> {
    let Some(cluster) = snapshot.cluster.as_ref() else {
        return Vec::new();
    };
    leaders
        .into_iter()
        .filter_map(|id| cluster.live_broker(id).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::metadata::{ClusterView, PartitionState, TopicMeta, REMOTE_SHARD};

    fn broker(id: i32, fenced: bool) -> BrokerInfo {
        BrokerInfo {
            id,
            host: format!("b{id}.example"),
            port: 9000 + id,
            fenced,
            endpoints: Default::default(),
        }
    }

    fn state(leader: i32, leader_epoch: i32) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch,
            replicas: vec![leader],
            isr: vec![leader],
            partition_epoch: leader_epoch,
        }
    }

    /// Node 1's view: partition 0 led by 2 (epoch 4), 1 by fenced 3,
    /// 2 by nobody.
    fn cluster_snapshot() -> Snapshot {
        let placement: Vec<_> = vec![state(2, 4), state(3, 1), state(-1, 7)];
        let topic = TopicMeta::new(
            Arc::from("t"),
            Uuid::from_u128(1),
            vec![REMOTE_SHARD; 3],
            BTreeMap::new(),
        )
        .with_placement(placement.into());
        let mut snapshot = Snapshot::default().with_topic(topic);
        snapshot.cluster = Some(Arc::new(ClusterView {
            local_node: 1,
            controller_id: 1,
            brokers: [broker(1, false), broker(2, false), broker(3, true)]
                .into_iter()
                .map(|b| (b.id, b))
                .collect(),
        }));
        snapshot
    }

    #[test]
    fn leader_hint_names_a_live_leader_only() {
        let s = cluster_snapshot();
        let hint = leader_of(&s, "t", 0);
        assert_eq!(
            hint,
            Some(LeaderHint {
                leader_id: 2,
                leader_epoch: 4
            })
        );
        assert_eq!(leader_of(&s, "t", 1), None, "fenced leader");
        assert_eq!(leader_of(&s, "t", 2), None, "no leader");
        assert_eq!(leader_of(&s, "t", 3), None, "no such partition");
        assert_eq!(leader_of(&s, "t", -1), None, "negative partition");
        assert_eq!(leader_of(&s, "u", 0), None, "no such topic");
    }

    #[test]
    fn leader_hint_none_on_a_single_node() {
        let topic = TopicMeta::new(Arc::from("t"), Uuid::from_u128(1), vec![0], BTreeMap::new());
        let s = Snapshot::default().with_topic(topic);
        assert_eq!(leader_of(&s, "t", 0), None);
        assert!(endpoints(&s, BTreeSet::from([1])).is_empty());
    }

    #[test]
    fn leader_hint_endpoints_are_live_and_unique() {
        let s = cluster_snapshot();
        let got = endpoints(&s, BTreeSet::from([2, 3, 9]));
        assert_eq!(got, vec![broker(2, false)]);
    }
}
