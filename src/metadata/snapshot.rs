//! The immutable metadata snapshot each shard reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use super::cluster_view::{ClusterView, PartitionLocation, Placement, REMOTE_SHARD};
use super::topic_config::{DynamicBrokerConfigs, LogDefaults, TopicConfig};

/// Leader epoch of every partition of a single node (Metadata answers it).
pub const SINGLE_NODE_LEADER_EPOCH: i32 = 0;

/// One partition of one topic, by name. Names are `Arc<str>` so routing a
/// request does not allocate per partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic: its id, the owner shard of each partition (index =
/// partition) and its config overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: Arc<str>,
    /// Kafka topic id (KIP-516), random at creation.
    pub id: Uuid,
    /// Owner shard of each partition ([`REMOTE_SHARD`] when no replica
    /// is on this broker).
    pub partition_shards: Vec<u16>,
    /// In a cluster: each partition's leader and replicas. `None` on a
    /// single node, which leads everything.
    pub placement: Option<Placement>,
    /// Topic config overrides (Kafka names, validated text); everything
    /// else comes from the broker defaults (see `topic_config`).
    pub configs: BTreeMap<String, String>,
    /// The effective config, resolved on first use.
    pub resolved: ResolvedConfig,
}

/// Cache of a topic's effective [`TopicConfig`]. A topic config change
/// makes a new `TopicMeta`, and so does a dynamic broker config change for
/// every topic (`Snapshot::with_broker_configs`), so the first resolution
/// stays right.
#[derive(Clone, Debug, Default)]
pub struct ResolvedConfig(OnceLock<Arc<TopicConfig>>);

impl PartialEq for ResolvedConfig {
    fn eq(&self, _: &Self) -> bool {
        true // a cache: derived from the fields that are compared
    }
}
impl Eq for ResolvedConfig {}

impl TopicMeta {
    /// A topic with these overrides.
    pub fn new(
        name: Arc<str>,
        id: Uuid,
        partition_shards: Vec<u16>,
        configs: BTreeMap<String, String>,
    ) -> TopicMeta {
        TopicMeta {
            name,
            id,
            partition_shards,
            placement: None,
            configs,
            resolved: ResolvedConfig::default(),
        }
    }

    /// The same topic with cluster `placement` (one entry per partition).
    pub fn with_placement(mut self, placement: Placement) -> TopicMeta {
        self.placement = Some(placement);
        self
    }

    /// The topic's effective config under the broker's `defaults`.
    pub fn config(&self, defaults: &LogDefaults) -> Arc<TopicConfig> {
        self.resolved
            .0
            .get_or_init(|| Arc::new(TopicConfig::resolve(defaults, &self.configs)))
            .clone()
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partition_shards.len() as i32
    }
}

/// Everything a shard needs to route requests, immutable once built.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Bumped on every change; shards ignore older snapshots.
    pub version: u64,
    /// Kafka cluster id, made at first start.
    pub cluster_id: String,
    /// Topics by name.
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    /// Topic names by id.
    pub topic_ids: HashMap<Uuid, Arc<str>>,
    /// Dynamic broker configs (persisted with the topics).
    pub broker_configs: DynamicBrokerConfigs,
    /// The broker's effective log defaults: the static ones (TOML) under
    /// `broker_configs`. Topic configs resolve against these.
    pub log_defaults: Arc<LogDefaults>,
    /// The other brokers and the controller; `None` on a single node.
    pub cluster: Option<Arc<ClusterView>>,
    /// SASL users and their SCRAM credentials (persisted with the topics).
    pub users: Arc<crate::security::ScramUsers>,
    /// ACLs, indexed for the per-request check (persisted with the
    /// topics; see `security::acl`).
    pub acls: Arc<crate::security::acl::AclIndex>,
    /// Client quotas (persisted with the topics; see `quota`).
    pub client_quotas: Arc<crate::quota::ClientQuotas>,
}

impl Snapshot {
    /// The topic with this name.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    /// The topic with this id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicMeta>> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// The shard that serves a partition: it exists, has its replica here
    /// and (in a cluster) is led by this broker.
    pub fn shard_for(&self, topic: &str, partition: i32) -> Option<usize> {
        match self.locate(topic, partition) {
            PartitionLocation::Local(shard) => Some(shard),
            _ => None,
        }
    }

    /// [`Snapshot::shard_for`], or the Kafka error a request for the
    /// partition gets: NOT_LEADER_OR_FOLLOWER when another broker leads it.
    pub fn serving_shard(&self, topic: &str, partition: i32) -> Result<usize, i16> {
        match self.locate(topic, partition) {
            PartitionLocation::Local(shard) => Ok(shard),
            PartitionLocation::Remote { .. } => {
                Err(kafka_protocol::ResponseError::NotLeaderOrFollower.code())
            }
            PartitionLocation::Unknown => {
                Err(kafka_protocol::ResponseError::UnknownTopicOrPartition.code())
            }
        }
    }

    /// Where a partition is served from this broker's point of view.
    pub fn locate(&self, topic: &str, partition: i32) -> PartitionLocation {
        let Some(t) = self.topics.get(topic) else {
            return PartitionLocation::Unknown;
        };
        let Some(index) = usize::try_from(partition).ok() else {
            return PartitionLocation::Unknown;
        };
        let Some(&shard) = t.partition_shards.get(index) else {
            return PartitionLocation::Unknown;
        };
        let (Some(placement), Some(cluster)) = (&t.placement, &self.cluster) else {
            return PartitionLocation::Local(shard as usize);
        };
        match placement.get(index) {
            Some(p) if p.leader == cluster.local_node && shard != REMOTE_SHARD => {
                PartitionLocation::Local(shard as usize)
            }
            Some(p) => PartitionLocation::Remote {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
            },
            None => PartitionLocation::Unknown,
        }
    }

    /// A partition's current leader epoch: the PartitionRecord's in a
    /// cluster; [`SINGLE_NODE_LEADER_EPOCH`] on a single node, which has led
    /// every partition since it was created (and for unknown partitions).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        let placement = self.topics.get(topic).and_then(|t| t.placement.as_ref());
        let index = usize::try_from(partition).ok();
        let state = placement.zip(index).and_then(|(p, i)| p.get(i));
        state.map_or(SINGLE_NODE_LEADER_EPOCH, |s| s.leader_epoch)
    }

    /// The id of partition `partition` of topic `topic`, if both exist.
    pub fn partition_id(&self, topic: &str, partition: i32) -> Option<PartitionId> {
        let t = self.topics.get(topic)?;
        (0..t.partition_count())
            .contains(&partition)
            .then(|| PartitionId {
                topic: t.name.clone(),
                partition,
            })
    }

    /// Partitions owned per shard, for balancing new partitions.
    fn load_per_shard(&self, shards: usize) -> Vec<usize> {
        let mut load = vec![0usize; shards];
        for t in self.topics.values() {
            for &s in &t.partition_shards {
                if let Some(n) = load.get_mut(s as usize) {
                    *n += 1;
                }
            }
        }
        load
    }

    /// Picks owner shards for `count` new partitions: each goes to the
    /// least-loaded shard (lowest index on ties), so partitions spread evenly
    /// over shards across all topics.
    pub fn assign_shards(&self, shards: usize, count: usize) -> Vec<u16> {
        let mut load = self.load_per_shard(shards.max(1));
        (0..count)
            .map(|_| {
                let (shard, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, n)| (**n, *i))
                    .unwrap_or((0, &0));
                load[shard] += 1;
                shard as u16
            })
            .collect()
    }

    /// A copy with one topic added or replaced.
    pub fn with_topic(&self, topic: TopicMeta) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        next.topic_ids.insert(topic.id, topic.name.clone());
        next.topics.insert(topic.name.clone(), Arc::new(topic));
        next
    }

    /// A copy with these dynamic broker configs over the `static_defaults`;
    /// every topic gets a fresh config cache, since defaults may change.
    pub fn with_broker_configs(
        &self,
        static_defaults: &LogDefaults,
        broker_configs: DynamicBrokerConfigs,
    ) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        next.log_defaults = Arc::new(static_defaults.with_dynamic(&broker_configs));
        next.broker_configs = broker_configs;
        for topic in next.topics.values_mut() {
            let mut fresh = TopicMeta::new(
                topic.name.clone(),
                topic.id,
                topic.partition_shards.clone(),
                topic.configs.clone(),
            );
            fresh.placement = topic.placement.clone();
            *topic = Arc::new(fresh);
        }
        next
    }

    /// A copy with these SASL users.
    pub fn with_users(&self, users: crate::security::ScramUsers) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        next.users = Arc::new(users);
        next
    }

    /// A copy with these ACLs.
    pub fn with_acls(&self, acls: crate::security::acl::AclIndex) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        next.acls = Arc::new(acls);
        next
    }

    /// A copy with these client quotas.
    pub fn with_client_quotas(&self, quotas: crate::quota::ClientQuotas) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        next.client_quotas = Arc::new(quotas);
        next
    }

    /// A copy without the named topic.
    pub fn without_topic(&self, name: &str) -> Snapshot {
        let mut next = self.clone();
        next.version += 1;
        if let Some(t) = next.topics.remove(name) {
            next.topic_ids.remove(&t.id);
        }
        next
    }

    /// The partitions a shard owns, with their topic id.
    pub fn owned_by(&self, shard: usize) -> impl Iterator<Item = (PartitionId, Uuid)> + '_ {
        self.topics.values().flat_map(move |t| {
            t.partition_shards
                .iter()
                .enumerate()
                .filter(move |(_, s)| **s as usize == shard)
                .map(move |(p, _)| {
                    (
                        PartitionId {
                            topic: t.name.clone(),
                            partition: p as i32,
                        },
                        t.id,
                    )
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, shards: Vec<u16>) -> TopicMeta {
        TopicMeta::new(name.into(), Uuid::new_v4(), shards, BTreeMap::new())
    }

    #[test]
    fn assign_shards_balances_across_topics() {
        let s = Snapshot::default().with_topic(topic("a", vec![0, 0, 1]));
        assert_eq!(s.assign_shards(2, 3), vec![1, 0, 1]);
        assert_eq!(s.assign_shards(3, 2), vec![2, 1]);
    }

    #[test]
    fn shard_for_and_owned_by() {
        let s = Snapshot::default().with_topic(topic("a", vec![0, 1]));
        assert_eq!(s.shard_for("a", 1), Some(1));
        assert_eq!(s.shard_for("a", 2), None);
        assert_eq!(s.shard_for("a", -1), None);
        assert_eq!(
            s.partition_id("a", 1).map(|p| p.to_string()).as_deref(),
            Some("a-1")
        );
        assert!(s.partition_id("a", 2).is_none() && s.partition_id("b", 0).is_none());
        assert_eq!(
            s.owned_by(1).map(|(p, _)| p.partition).collect::<Vec<_>>(),
            vec![1]
        );
        let s2 = s.without_topic("a");
        assert!(s2.topic("a").is_none() && s2.topic_ids.is_empty() && s2.version == 2);
    }
}
