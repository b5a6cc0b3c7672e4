//! [`ClusterState`]: the cluster metadata the controller log builds, and
//! how a [`ClusterCommand`] changes it.
//!
//! Pure data and pure functions, no I/O and no Raft: the Raft state machine
//! (`raft::state_machine`) applies committed commands here, and a snapshot
//! is this value as JSON.
//!
//! Commands carry results, not intents: the active controller validates a
//! change against the current state and decides placement, ids and the
//! like (`cluster::plan`), then replicates a command whose application is
//! deterministic and cannot fail. Every controller applies the same
//! commands in the same order and gets the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::raft::types::{ClusterCommand, ClusterResponse};
use crate::metadata::NO_LEADER;

/// A registered broker (Kafka's RegisterBrokerRecord / fencing records).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    /// Advertised host of its Kafka listener.
    pub host: String,
    /// Advertised port of its Kafka listener.
    pub port: i32,
    /// Its shard count: placement spreads partitions over them.
    pub shards: u16,
    /// Bumped on every registration: a heartbeat names the epoch it has.
    pub epoch: i64,
    /// Fenced: missed heartbeats or shut down; leads nothing.
    pub fenced: bool,
    /// Every listener's advertised endpoint; absent in records written
    /// before they were registered.
    #[serde(default)]
    pub endpoints: Vec<crate::metadata::BrokerEndpoint>,
}

/// One partition (Kafka's PartitionRecord).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Replica brokers, preferred leader first.
    pub replicas: Vec<i32>,
    /// The owner shard of each replica on its broker (same order).
    pub shards: Vec<u16>,
    /// The leading broker, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Bumped on every change of leader or ISR (Kafka's partition epoch):
    /// an ISR change based on an older one is refused.
    #[serde(default)]
    pub partition_epoch: i32,
}

/// A topic (Kafka's TopicRecord plus its configs and partitions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Config overrides, Kafka names, validated.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index.
    pub partitions: Vec<PartitionRecord>,
}

/// Dynamic broker configs (AlterConfigs on the BROKER resource).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigsRecord {
    /// Set on a broker's own resource.
    pub broker: BTreeMap<String, String>,
    /// Set on the cluster-wide default resource ("").
    pub cluster_default: BTreeMap<String, String>,
}

/// The cluster metadata as of some applied log position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Kafka cluster id, set once by the first active controller.
    pub cluster_id: String,
    /// Registered brokers by node id.
    pub brokers: BTreeMap<i32, BrokerRecord>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
    /// Dynamic broker configs.
    pub broker_configs: BrokerConfigsRecord,
    /// The first producer id not handed out yet (Kafka's
    /// ProducerIdsRecord): blocks are taken from here.
    pub next_producer_id: i64,
    /// SASL users and their SCRAM credentials (Kafka's
    /// UserScramCredentialRecord), as AlterUserScramCredentials left them.
    #[serde(default)]
    pub users: crate::security::ScramUsers,
    /// ACLs (Kafka's AccessControlEntryRecord), as CreateAcls and
    /// DeleteAcls left them.
    #[serde(default)]
    pub acls: Vec<crate::security::acl::AclBinding>,
    /// Client quotas (Kafka's ClientQuotaRecord), as AlterClientQuotas
    /// left them.
    #[serde(default)]
    pub client_quotas: Vec<crate::quota::PersistedQuota>,
}

impl ClusterState {
    /// Applies one committed command. Deterministic, and never fails: the
    /// controller checked the command before it proposed it.
    pub fn apply(&mut self, command: &ClusterCommand) -> ClusterResponse {
        match command {
            ClusterCommand::InitCluster { cluster_id } => {
                let fresh = self.cluster_id.is_empty();
                if fresh {
                    self.cluster_id = cluster_id.clone();
                }
                ClusterResponse::applied(fresh)
            }
            ClusterCommand::RegisterBroker {
                id,
                host,
                port,
                shards,
                endpoints,
            } => {
                let epoch = self.brokers.get(id).map_or(1, |b| b.epoch + 1);
                let record = BrokerRecord {
                    host: host.clone(),
                    port: *port,
                    shards: *shards,
                    epoch,
                    fenced: false,
                    endpoints: endpoints.clone(),
                };
                self.brokers.insert(*id, record);
                self.lead_orphans(*id);
                ClusterResponse::with_value(epoch)
            }
            ClusterCommand::FenceBroker { id } => {
                let Some(broker) = self.brokers.get_mut(id).filter(|b| !b.fenced) else {
                    return ClusterResponse::applied(false);
                };
                broker.fenced = true;
                self.move_leaderships_from(*id);
                ClusterResponse::applied(true)
            }
            ClusterCommand::PutTopic { name, topic } => {
                self.topics.insert(name.clone(), topic.clone());
                ClusterResponse::applied(true)
            }
            ClusterCommand::RemoveTopic { name } => {
                ClusterResponse::applied(self.topics.remove(name).is_some())
            }
            ClusterCommand::SetBrokerConfigs { configs } => {
                self.broker_configs = configs.clone();
                ClusterResponse::applied(true)
            }
            ClusterCommand::SetUsers { users } => {
                self.users = users.clone();
                ClusterResponse::applied(true)
            }
            ClusterCommand::SetAcls { acls } => {
                self.acls = acls.clone();
                ClusterResponse::applied(true)
            }
            ClusterCommand::SetClientQuotas { quotas } => {
                self.client_quotas = quotas.clone();
                ClusterResponse::applied(true)
            }
            ClusterCommand::AllocateProducerIds { count } => {
                let start = self.next_producer_id;
                self.next_producer_id = start.saturating_add(*count);
                ClusterResponse::with_value(start)
            }
            ClusterCommand::AlterPartition {
                topic,
                partition,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let Some(p) = self.partition_mut(topic, *partition) else {
                    return ClusterResponse::applied(false);
                };
                if p.leader_epoch != *leader_epoch || p.partition_epoch != *partition_epoch {
                    return ClusterResponse::applied(false);
                }
                p.isr = isr.clone();
                p.partition_epoch += 1;
                ClusterResponse::with_value(i64::from(p.partition_epoch))
            }
            ClusterCommand::ElectLeader {
                topic,
                partition,
                leader,
                partition_epoch,
                unclean,
            } => {
                let Some(p) = self.partition_mut(topic, *partition) else {
                    return ClusterResponse::applied(false);
                };
                if p.partition_epoch != *partition_epoch || !p.replicas.contains(leader) {
                    return ClusterResponse::applied(false);
                }
                p.leader = *leader;
                if *unclean {
                    p.isr = vec![*leader];
                }
                p.leader_epoch += 1;
                p.partition_epoch += 1;
                ClusterResponse::with_value(i64::from(p.leader_epoch))
            }
        }
    }

    /// Partition `index` of `topic`.
    pub fn partition(&self, topic: &str, index: i32) -> Option<&PartitionRecord> {
        let index = usize::try_from(index).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    fn partition_mut(&mut self, topic: &str, index: i32) -> Option<&mut PartitionRecord> {
        let index = usize::try_from(index).ok()?;
        self.topics.get_mut(topic)?.partitions.get_mut(index)
    }

    /// Why an ISR change from broker `from` would be refused, as the Kafka
    /// error AlterPartition answers, or `None` when it may be written:
    /// only the current leader, at the current leader and partition
    /// epochs, may change the ISR, to a non-empty subset of the replicas
    /// that holds the leader and adds no fenced broker (KIP-841).
    pub fn check_alter_partition(
        &self,
        from: i32,
        topic: &str,
        index: i32,
        (leader_epoch, partition_epoch): (i32, i32),
        isr: &[i32],
    ) -> Option<kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError as E;
        let Some(p) = self.partition(topic, index) else {
            return Some(E::UnknownTopicOrPartition);
        };
        if p.leader != from || leader_epoch < p.leader_epoch {
            return Some(E::FencedLeaderEpoch);
        }
        if leader_epoch > p.leader_epoch || partition_epoch != p.partition_epoch {
            return Some(E::InvalidUpdateVersion);
        }
        let fenced = |r: &i32| self.brokers.get(r).is_none_or(|b| b.fenced);
        let added_fenced = isr.iter().any(|r| !p.isr.contains(r) && fenced(r));
        if !isr.contains(&from) || isr.iter().any(|r| !p.replicas.contains(r)) || added_fenced {
            return Some(E::IneligibleReplica);
        }
        None
    }

    /// Live (registered, unfenced) broker ids, ascending.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A broker that registers again leads the partitions that have no
    /// leader and keep it in their ISR (clean election: the last ISR
    /// member of an offline partition has every acknowledged record; one
    /// out of the ISR may not lead, as unclean.leader.election.enable=false
    /// says).
    fn lead_orphans(&mut self, id: i32) {
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                if p.leader == NO_LEADER && p.isr.contains(&id) {
                    p.leader = id;
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// A fenced broker leaves every ISR it is in (but the last member stays,
    /// as Kafka keeps it, so it may lead again), and its leaderships go to
    /// another live in-sync replica, or to none (leader -1) when there is
    /// no other: then the partition is offline until an ISR member returns.
    fn move_leaderships_from(&mut self, id: i32) {
        let live = self.live_brokers();
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                let in_isr = p.isr.contains(&id);
                if p.leader != id && !in_isr {
                    continue;
                }
                if in_isr && p.isr.len() > 1 {
                    p.isr.retain(|r| *r != id);
                }
                p.partition_epoch += 1;
                if p.leader != id {
                    continue;
                }
                p.leader = p
                    .isr
                    .iter()
                    .copied()
                    .find(|r| *r != id && live.contains(r))
                    .unwrap_or(NO_LEADER);
                p.leader_epoch += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: i32) -> ClusterCommand {
        ClusterCommand::RegisterBroker {
            id,
            host: "localhost".into(),
            port: 9092 + id,
            shards: 2,
            endpoints: Vec::new(),
        }
    }

    fn one_partition_on(broker: i32) -> TopicRecord {
        TopicRecord {
            id: Uuid::new_v4(),
            configs: BTreeMap::new(),
            partitions: vec![PartitionRecord {
                replicas: vec![broker],
                shards: vec![1],
                leader: broker,
                leader_epoch: 0,
                isr: vec![broker],
                partition_epoch: 0,
            }],
        }
    }

    #[test]
    fn register_broker_bumps_the_epoch_and_unfences() {
        let mut state = ClusterState::default();
        assert_eq!(state.apply(&register(1)).value, 1);
        state.apply(&ClusterCommand::FenceBroker { id: 1 });
        assert!(state.brokers[&1].fenced);
        assert_eq!(state.apply(&register(1)).value, 2);
        assert!(!state.brokers[&1].fenced);
    }

    #[test]
    fn fence_broker_with_one_replica_leaves_the_partition_offline_until_it_returns() {
        let mut state = ClusterState::default();
        state.apply(&register(1));
        state.apply(&register(2));
        state.apply(&ClusterCommand::PutTopic {
            name: "t".into(),
            topic: one_partition_on(2),
        });
        assert!(state.apply(&ClusterCommand::FenceBroker { id: 2 }).applied);
        let p = &state.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (NO_LEADER, 1, vec![2])
        );
        // Fencing twice changes nothing.
        assert!(!state.apply(&ClusterCommand::FenceBroker { id: 2 }).applied);
        state.apply(&register(2));
        let p = &state.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (2, 2));
    }

    #[test]
    fn fence_broker_hands_leadership_to_another_live_isr_member() {
        let mut state = ClusterState::default();
        three_replicas(&mut state);
        state.apply(&ClusterCommand::FenceBroker { id: 1 });
        let p = &state.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 3]));
    }

    #[test]
    fn init_cluster_keeps_the_first_id_and_producer_ids_come_in_disjoint_blocks() {
        let mut state = ClusterState::default();
        let init = |id: &str| ClusterCommand::InitCluster {
            cluster_id: id.into(),
        };
        assert!(state.apply(&init("a")).applied);
        assert!(!state.apply(&init("b")).applied);
        assert_eq!(state.cluster_id, "a");
        let take = ClusterCommand::AllocateProducerIds { count: 1000 };
        assert_eq!(state.apply(&take).value, 0);
        assert_eq!(state.apply(&take).value, 1000);
    }

    fn three_replicas(state: &mut ClusterState) {
        for id in 1..=3 {
            state.apply(&register(id));
        }
        let mut topic = one_partition_on(1);
        topic.partitions[0].replicas = vec![1, 2, 3];
        topic.partitions[0].isr = vec![1, 2, 3];
        state.apply(&ClusterCommand::PutTopic {
            name: "t".into(),
            topic,
        });
    }

    #[test]
    fn alter_partition_checks_leader_epochs_and_eligibility_then_bumps_the_partition_epoch() {
        use kafka_protocol::ResponseError as E;
        let mut state = ClusterState::default();
        three_replicas(&mut state);
        let check = |s: &ClusterState, from, epochs, isr: &[i32]| {
            s.check_alter_partition(from, "t", 0, epochs, isr)
        };
        assert_eq!(
            check(&state, 2, (0, 0), &[1, 2]),
            Some(E::FencedLeaderEpoch),
            "not the leader"
        );
        assert_eq!(
            check(&state, 1, (0, 5), &[1, 2]),
            Some(E::InvalidUpdateVersion)
        );
        assert_eq!(
            check(&state, 1, (0, 0), &[2, 3]),
            Some(E::IneligibleReplica),
            "leader left out"
        );
        assert_eq!(
            check(&state, 1, (0, 0), &[1, 9]),
            Some(E::IneligibleReplica),
            "not a replica"
        );
        assert_eq!(check(&state, 1, (0, 0), &[1, 2]), None);
        let shrink = ClusterCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1, 2],
        };
        assert_eq!(state.apply(&shrink).value, 1);
        assert_eq!(state.topics["t"].partitions[0].isr, vec![1, 2]);
        // The same change again is based on an old partition epoch.
        assert!(!state.apply(&shrink).applied);
        // Adding a fenced broker back is refused.
        state.apply(&ClusterCommand::FenceBroker { id: 3 });
        let epochs = (0, state.topics["t"].partitions[0].partition_epoch);
        assert_eq!(
            check(&state, 1, epochs, &[1, 2, 3]),
            Some(E::IneligibleReplica)
        );
    }

    #[test]
    fn fence_broker_removes_a_follower_from_the_isr_and_reelects_only_isr_members() {
        let mut state = ClusterState::default();
        three_replicas(&mut state);
        state.apply(&ClusterCommand::FenceBroker { id: 3 });
        let p = &state.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.isr.clone()),
            (1, vec![1, 2]),
            "follower out, leader stays"
        );
        state.apply(&ClusterCommand::FenceBroker { id: 1 });
        state.apply(&ClusterCommand::FenceBroker { id: 2 });
        let p = &state.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.isr.clone()),
            (NO_LEADER, vec![2]),
            "the last member stays"
        );
        // 3 is not in the ISR: it may not lead (no unclean election).
        state.apply(&register(3));
        assert_eq!(state.topics["t"].partitions[0].leader, NO_LEADER);
        state.apply(&register(2));
        assert_eq!(state.topics["t"].partitions[0].leader, 2);
    }
}
