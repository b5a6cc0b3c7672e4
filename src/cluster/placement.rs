//! Where new partitions go: replicas over brokers round-robin, rack
//! unaware, as Kafka's default placement does, and inside each broker the
//! least-loaded shard, as a single node balances its shards.
//!
//! Kafka starts the round-robin at a random broker per topic; we start it
//! at the count of partitions already placed, which spreads leaders as
//! evenly and keeps placement a pure function of the state (so a test can
//! tell where a partition lands).

use kafka_protocol::ResponseError;

use super::state::{ClusterState, PartitionRecord};
use crate::shard::MetaResult;

/// Records for `count` new partitions with `replication_factor` replicas
/// each, over the live brokers of `state`, led by their first replica; or
/// INVALID_REPLICATION_FACTOR when there are fewer live brokers than that.
pub fn place(
    state: &ClusterState,
    count: usize,
    replication_factor: usize,
) -> Result<Vec<PartitionRecord>, MetaResult> {
    let live = state.live_brokers();
    if replication_factor == 0 || replication_factor > live.len() {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            Some(format!(
                "Replication factor: {replication_factor} larger than available brokers: {}.",
                live.len()
            )),
        ));
    }
    let mut load = ShardLoad::of(state);
    let start: usize = state.topics.values().map(|t| t.partitions.len()).sum();
    Ok((0..count)
        .map(|i| {
            let replicas: Vec<i32> = (0..replication_factor)
                .map(|r| live[(start + i + r) % live.len()])
                .collect();
            let shards = replicas.iter().map(|b| load.take(state, *b)).collect();
            PartitionRecord {
                leader: replicas[0],
                leader_epoch: 0,
                isr: replicas.clone(),
                replicas,
                shards,
                partition_epoch: 0,
            }
        })
        .collect())
}

/// Partitions per (broker, shard) placed so far.
struct ShardLoad(std::collections::HashMap<(i32, u16), usize>);

impl ShardLoad {
    fn of(state: &ClusterState) -> ShardLoad {
        let mut load = std::collections::HashMap::new();
        for p in state.topics.values().flat_map(|t| &t.partitions) {
            for (broker, shard) in p.replicas.iter().zip(&p.shards) {
                *load.entry((*broker, *shard)).or_insert(0) += 1;
            }
        }
        ShardLoad(load)
    }

    /// The least-loaded shard of `broker` (lowest index on ties), counted.
    fn take(&mut self, state: &ClusterState, broker: i32) -> u16 {
        let shards = state.brokers.get(&broker).map_or(1, |b| b.shards.max(1));
        let shard = (0..shards)
            .min_by_key(|s| (self.0.get(&(broker, *s)).copied().unwrap_or(0), *s))
            .unwrap_or(0);
        *self.0.entry((broker, shard)).or_insert(0) += 1;
        shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::raft::types::ClusterCommand;
    use crate::cluster::state::TopicRecord;

    fn cluster(brokers: i32, shards: u16) -> ClusterState {
        let mut state = ClusterState::default();
        for id in 1..=brokers {
            state.apply(&ClusterCommand::RegisterBroker {
                id,
                host: "h".into(),
                port: 1,
                shards,
                endpoints: Vec::new(),
            });
        }
        state
    }

    #[test]
    fn place_twelve_partitions_leads_four_on_each_of_three_brokers_over_both_shards() {
        let state = cluster(3, 2);
        let placed = place(&state, 12, 1).expect("placed");
        for broker in 1..=3 {
            let led: Vec<_> = placed.iter().filter(|p| p.leader == broker).collect();
            assert_eq!(led.len(), 4, "broker {broker}");
            assert_eq!(led.iter().filter(|p| p.shards[0] == 0).count(), 2);
        }
    }

    #[test]
    fn place_continues_round_robin_after_existing_topics() {
        let mut state = cluster(3, 1);
        let first = place(&state, 1, 1).expect("placed");
        state.apply(&ClusterCommand::PutTopic {
            name: "a".into(),
            topic: TopicRecord {
                id: uuid::Uuid::new_v4(),
                configs: Default::default(),
                partitions: first.clone(),
            },
        });
        let second = place(&state, 1, 1).expect("placed");
        assert_ne!(first[0].leader, second[0].leader);
    }

    #[test]
    fn place_refuses_more_replicas_than_live_brokers() {
        let mut state = cluster(2, 1);
        state.apply(&ClusterCommand::FenceBroker { id: 2 });
        let (code, message) = place(&state, 1, 2).expect_err("too few brokers");
        assert_eq!(code, ResponseError::InvalidReplicationFactor.code());
        assert!(message.is_some_and(|m| m.contains("available brokers: 1")));
        let placed = place(&state, 2, 1).expect("one replica fits");
        assert!(placed
            .iter()
            .all(|p| p.leader == 1 && p.replicas == vec![1]));
    }
}
