//! The shards' [`Snapshot`] of a broker in a cluster, made from the
//! controller's [`ClusterState`] for this node.
//!
//! A partition with a replica here gets that replica's shard as its owner
//! (its files are opened by that shard), every other one
//! [`REMOTE_SHARD`]; leaders, replicas and brokers go into the
//! snapshot's cluster view (see `metadata::cluster_view`). The effective
//! log defaults are the static ones under the replicated dynamic broker
//! configs, exactly as on a single node.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::state::ClusterState;
use crate::metadata::topic_config::DynamicBrokerConfigs;
use crate::metadata::{
    BrokerInfo, ClusterView, LogDefaults, PartitionState, Snapshot, TopicMeta, REMOTE_SHARD,
};

/// The snapshot node `local_node` (with `local_shards` shards) serves
/// from `state`, numbered `version`, naming `controller_id` as the
/// active controller.
pub fn snapshot_of(
    state: &ClusterState,
    local_node: i32,
    local_shards: usize,
    controller_id: i32,
    static_defaults: &LogDefaults,
    version: u64,
) -> Snapshot {
    let mut snapshot = Snapshot {
        version,
        cluster_id: state.cluster_id.clone(),
        users: Arc::new(state.users.clone()),
        acls: Arc::new(crate::security::acl::AclIndex::new(
            state.acls.iter().cloned(),
        )),
        // Checked when altered; a bad record (from a newer broker) is
        // skipped rather than stopping the broker.
        client_quotas: Arc::new(
            crate::quota::ClientQuotas::from_persisted(&state.client_quotas).unwrap_or_else(|e| {
                tracing::warn!("cluster metadata: client quotas ignored: {e}");
                crate::quota::ClientQuotas::default()
            }),
        ),
        ..Default::default()
    };
    for (name, record) in &state.topics {
        let name: Arc<str> = name.as_str().into();
        let partition_shards = record
            .partitions
            .iter()
            .map(|p| local_shard(&p.replicas, &p.shards, local_node, local_shards))
            .collect();
        let placement: Vec<PartitionState> = record
            .partitions
            .iter()
            .map(|p| PartitionState {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                partition_epoch: p.partition_epoch,
            })
            .collect();
        let topic = TopicMeta::new(
            name.clone(),
            record.id,
            partition_shards,
            record.configs.clone(),
        )
        .with_placement(placement.into());
        snapshot.topic_ids.insert(record.id, name.clone());
        snapshot.topics.insert(name, Arc::new(topic));
    }
    let brokers: BTreeMap<i32, BrokerInfo> = state
        .brokers
        .iter()
        .map(|(id, b)| {
            let info = BrokerInfo {
                id: *id,
                host: b.host.clone(),
                port: b.port,
                fenced: b.fenced,
                endpoints: b.endpoints.clone().into(),
            };
            (*id, info)
        })
        .collect();
    snapshot.cluster = Some(Arc::new(ClusterView {
        local_node,
        controller_id,
        brokers,
    }));
    let dynamic = DynamicBrokerConfigs {
        broker: state.broker_configs.broker.clone(),
        cluster_default: state.broker_configs.cluster_default.clone(),
    };
    snapshot.with_broker_configs(static_defaults, dynamic)
}

/// The shard of this node's replica, or [`REMOTE_SHARD`]. A shard index
/// beyond this node's shard count (it restarted with fewer) wraps, as a
/// single node's metadata load does.
fn local_shard(replicas: &[i32], shards: &[u16], local_node: i32, local_shards: usize) -> u16 {
    replicas
        .iter()
        .position(|r| *r == local_node)
        .and_then(|i| shards.get(i))
        .map_or(REMOTE_SHARD, |s| (*s as usize % local_shards.max(1)) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::raft::types::ClusterCommand;
    use crate::cluster::state::{PartitionRecord, TopicRecord};
    use crate::metadata::{PartitionLocation, NO_LEADER};

    #[test]
    fn snapshot_of_locates_local_remote_and_leaderless_partitions() {
        let mut state = ClusterState::default();
        for id in [1, 2] {
            state.apply(&ClusterCommand::RegisterBroker {
                id,
                host: format!("b{id}"),
                port: 9092,
                shards: 2,
                endpoints: Vec::new(),
            });
        }
        let partition = |broker: i32, shard: u16| PartitionRecord {
            replicas: vec![broker],
            shards: vec![shard],
            leader: broker,
            leader_epoch: 3,
            isr: vec![broker],
            partition_epoch: 0,
        };
        state.apply(&ClusterCommand::PutTopic {
            name: "t".into(),
            topic: TopicRecord {
                id: uuid::Uuid::new_v4(),
                configs: Default::default(),
                partitions: vec![partition(1, 1), partition(2, 0)],
            },
        });
        let defaults = LogDefaults::default();
        let on_1 = snapshot_of(&state, 1, 2, 2, &defaults, 7);
        assert_eq!(
            on_1.version, 8,
            "with_broker_configs bumps the version once"
        );
        assert_eq!(on_1.locate("t", 0), PartitionLocation::Local(1));
        assert_eq!(
            on_1.locate("t", 1),
            PartitionLocation::Remote {
                leader: 2,
                leader_epoch: 3
            }
        );
        assert_eq!(on_1.owned_by(1).count(), 1);
        assert_eq!(on_1.owned_by(0).count(), 0);

        state.apply(&ClusterCommand::FenceBroker { id: 1 });
        let fenced = snapshot_of(&state, 1, 2, 2, &defaults, 9);
        // Still owned (files stay open), no longer served.
        assert_eq!(fenced.owned_by(1).count(), 1);
        assert_eq!(
            fenced.locate("t", 0),
            PartitionLocation::Remote {
                leader: NO_LEADER,
                leader_epoch: 4
            }
        );
        let cluster = fenced.cluster.as_ref().expect("cluster view");
        assert_eq!(cluster.live_brokers().count(), 1);
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;
    use crate::cluster::raft::types::ClusterCommand;
    use crate::metadata::BrokerEndpoint;

    fn endpoint(name: &str, port: i32) -> BrokerEndpoint {
        BrokerEndpoint {
            name: name.into(),
            host: "10.0.0.1".into(),
            port,
            security_protocol: name.into(),
        }
    }

    #[test]
    fn register_broker_endpoints_answer_per_listener_with_the_old_address_as_fallback() {
        let mut state = ClusterState::default();
        state.apply(&ClusterCommand::RegisterBroker {
            id: 1,
            host: "10.0.0.1".into(),
            port: 9094,
            shards: 1,
            endpoints: vec![endpoint("PLAINTEXT", 9092), endpoint("SASL_SSL", 9094)],
        });
        let snapshot = snapshot_of(&state, 2, 1, 1, &LogDefaults::default(), 1);
        let b = &snapshot.cluster.as_ref().unwrap().brokers[&1];
        assert_eq!(b.address_on("PLAINTEXT"), ("10.0.0.1", 9092));
        assert_eq!(b.address_on("SASL_SSL"), ("10.0.0.1", 9094));
        assert_eq!(
            b.address_on("SSL"),
            ("10.0.0.1", 9094),
            "unknown: its one address"
        );
    }

    #[test]
    fn register_broker_record_and_command_without_endpoints_still_load() {
        // A snapshot and a log entry written before endpoints existed.
        let record: crate::cluster::state::BrokerRecord =
            serde_json::from_str(r#"{"host":"h","port":9092,"shards":2,"epoch":3,"fenced":false}"#)
                .unwrap();
        assert!(record.endpoints.is_empty());
        let command: ClusterCommand = serde_json::from_str(
            r#"{"RegisterBroker":{"id":1,"host":"h","port":9092,"shards":2}}"#,
        )
        .unwrap();
        let ClusterCommand::RegisterBroker { endpoints, .. } = command else {
            panic!("not a registration: {command:?}");
        };
        assert!(endpoints.is_empty());
    }
}
