//! What the active controller replicates for a metadata change.
//!
//! A broker's CreateTopics, DeleteTopics, CreatePartitions and
//! AlterConfigs arrive here as the same [`MetaChange`] a single node's
//! metadata owner handles. The checks are the single node's own
//! (`shard::meta_owner::next_snapshot`, run on a snapshot of the cluster
//! state), so a cluster refuses exactly what one node refuses, with the
//! same codes and messages; what is cluster-specific is only placement
//! over brokers (`cluster::placement`) and turning the result into
//! [`ClusterCommand`]s.

use kafka_protocol::ResponseError;

use super::placement::place;
use super::raft::types::ClusterCommand;
use super::state::{BrokerConfigsRecord, ClusterState, TopicRecord};
use super::view::snapshot_of;
use crate::metadata::{is_internal_topic, LogDefaults, Snapshot};
use crate::shard::{next_snapshot, MetaChange, MetaResult};

/// Replicas of an internal topic's partitions at most (Kafka's
/// offsets.topic.replication.factor and
/// transaction.state.log.replication.factor), fewer when fewer brokers
/// are live: group and transaction state survive a broker.
pub const INTERNAL_REPLICATION_FACTOR_MAX: usize = 3;

/// No broker: the node id the controller's own check snapshot is made for.
const NO_NODE: i32 = -1;

/// The commands that make `change` on `state`, or the Kafka error that
/// refuses it. A `validate_only` change that passes gives no commands.
pub fn plan(
    state: &ClusterState,
    change: &MetaChange,
    static_defaults: &LogDefaults,
) -> Result<Vec<ClusterCommand>, MetaResult> {
    let current = snapshot_of(state, NO_NODE, 1, NO_NODE, static_defaults, 0);
    let next = next_snapshot(&current, change, 1, static_defaults)?;
    let topic_record = |name: &str, next: &Snapshot| -> Result<TopicRecord, MetaResult> {
        let meta = next.topic(name).ok_or_else(unknown_topic)?;
        let existing = state.topics.get(name);
        Ok(TopicRecord {
            id: meta.id,
            configs: meta.configs.clone(),
            partitions: existing.map(|t| t.partitions.clone()).unwrap_or_default(),
        })
    };
    let commands = match change {
        MetaChange::AlterTopicConfig {
            validate_only: true,
            ..
        }
        | MetaChange::AlterBrokerConfig {
            validate_only: true,
            ..
        } => Vec::new(),
        MetaChange::CreateTopic {
            name,
            partitions,
            replication_factor,
            ..
        } => {
            let mut topic = topic_record(name, &next)?;
            let factor = replicas_for(state, name, *replication_factor);
            topic.partitions = place(state, *partitions as usize, factor)?;
            vec![put(name, topic)]
        }
        MetaChange::CreatePartitions { name, total } => {
            let mut topic = topic_record(name, &next)?;
            let have = topic.partitions.len();
            let added = (*total as usize).saturating_sub(have);
            // New partitions get as many replicas as the topic's first.
            let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
            topic.partitions.extend(place(state, added, factor)?);
            vec![put(name, topic)]
        }
        MetaChange::AlterTopicConfig { name, .. } => vec![put(name, topic_record(name, &next)?)],
        MetaChange::DeleteTopic { name } => {
            vec![ClusterCommand::RemoveTopic { name: name.clone() }]
        }
        MetaChange::AlterScramCredentials { .. } => vec![ClusterCommand::SetUsers {
            users: (*next.users).clone(),
        }],
        MetaChange::AlterAcls { .. } => vec![ClusterCommand::SetAcls {
            acls: next.acls.bindings().cloned().collect(),
        }],
        MetaChange::AlterClientQuotas { .. } => vec![ClusterCommand::SetClientQuotas {
            quotas: next.client_quotas.to_persisted(),
        }],
        MetaChange::AlterBrokerConfig { .. } => vec![ClusterCommand::SetBrokerConfigs {
            configs: BrokerConfigsRecord {
                broker: next.broker_configs.broker.clone(),
                cluster_default: next.broker_configs.cluster_default.clone(),
            },
        }],
    };
    Ok(commands)
}

/// The replicas a new topic's partitions get: the request's factor, or for
/// [`crate::shard::DEFAULT_REPLICATION`] min(3, live brokers) for an
/// internal topic and one for any other (the broker resolved
/// default.replication.factor before asking).
fn replicas_for(state: &ClusterState, name: &str, requested: i16) -> usize {
    match usize::try_from(requested) {
        Ok(n) => n,
        Err(_) if is_internal_topic(name) => state
            .live_brokers()
            .len()
            .clamp(1, INTERNAL_REPLICATION_FACTOR_MAX),
        Err(_) => 1,
    }
}

fn put(name: &str, topic: TopicRecord) -> ClusterCommand {
    ClusterCommand::PutTopic {
        name: name.to_string(),
        topic,
    }
}

fn unknown_topic() -> MetaResult {
    (ResponseError::UnknownTopicOrPartition.code(), None)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::topic_config::ConfigEdit;

    fn cluster() -> ClusterState {
        let mut state = ClusterState::default();
        for id in 1..=3 {
            state.apply(&ClusterCommand::RegisterBroker {
                id,
                host: "h".into(),
                port: 1,
                shards: 1,
                endpoints: Vec::new(),
            });
        }
        state
    }

    fn apply_all(state: &mut ClusterState, change: &MetaChange) -> Result<(), MetaResult> {
        for command in plan(state, change, &LogDefaults::default())? {
            state.apply(&command);
        }
        Ok(())
    }

    #[test]
    fn plan_create_grow_alter_delete_topic() {
        let mut state = cluster();
        let create = MetaChange::CreateTopic {
            name: "t".into(),
            partitions: 3,
            configs: BTreeMap::new(),
            replication_factor: 2,
        };
        apply_all(&mut state, &create).expect("created");
        let leaders: Vec<i32> = state.topics["t"]
            .partitions
            .iter()
            .map(|p| p.leader)
            .collect();
        assert_eq!(leaders, vec![1, 2, 3]);
        let replicas: Vec<usize> = state.topics["t"]
            .partitions
            .iter()
            .map(|p| p.replicas.len())
            .collect();
        assert_eq!(replicas, vec![2, 2, 2]);
        let (code, _) = apply_all(&mut state, &create).expect_err("exists");
        assert_eq!(code, ResponseError::TopicAlreadyExists.code());

        let grow = MetaChange::CreatePartitions {
            name: "t".into(),
            total: 5,
        };
        apply_all(&mut state, &grow).expect("grown");
        assert_eq!(state.topics["t"].partitions.len(), 5);
        assert_eq!(state.topics["t"].partitions[4].replicas.len(), 2);
        let id = state.topics["t"].id;

        let alter = MetaChange::AlterTopicConfig {
            name: "t".into(),
            edit: ConfigEdit::Replace([("retention.ms".into(), "1000".into())].into()),
            validate_only: false,
        };
        apply_all(&mut state, &alter).expect("altered");
        assert_eq!(state.topics["t"].configs["retention.ms"], "1000");
        assert_eq!(state.topics["t"].id, id, "the id stays");
        assert_eq!(state.topics["t"].partitions.len(), 5, "partitions stay");

        let bad = MetaChange::AlterTopicConfig {
            name: "t".into(),
            edit: ConfigEdit::Replace([("retention.ms".into(), "soon".into())].into()),
            validate_only: false,
        };
        let (code, _) = apply_all(&mut state, &bad).expect_err("bad value");
        assert_eq!(code, ResponseError::InvalidConfig.code());

        apply_all(&mut state, &MetaChange::DeleteTopic { name: "t".into() }).expect("deleted");
        assert!(state.topics.is_empty());
    }
}
