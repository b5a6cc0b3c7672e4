//! Leader elections the active controller makes outside a fence: unclean
//! elections of offline partitions, preferred-leader elections (asked by
//! ElectLeaders, or the automatic rebalance), and ElectLeaders UNCLEAN.
//!
//! Pure functions over [`ClusterState`]: each answers the
//! [`ClusterCommand::ElectLeader`] to write, or the Kafka error
//! ElectLeaders answers for the partition. The controller writes the
//! command; its application checks the partition epoch again, so an
//! election decided on a state that moved meanwhile changes nothing.
//!
//! Kafka's rules, kept:
//! - The **preferred leader** is the first replica of the assignment. It
//!   may lead only when it is live and in the ISR
//!   (PREFERRED_LEADER_NOT_AVAILABLE otherwise); already leading is
//!   ELECTION_NOT_NEEDED.
//! - An **unclean election** happens only for a partition with no leader
//!   (every ISR member is fenced) and only when
//!   `unclean.leader.election.enable` is true for its topic. It picks the
//!   first live replica in assignment order, which then is the whole ISR:
//!   records the old ISR acknowledged and this replica lacks are lost, and
//!   the replicas that had them truncate when they return.
//! - The **automatic rebalance** (`auto.leader.rebalance.enable`) moves a
//!   broker's partitions back to it when more than
//!   `leader.imbalance.per.broker.percentage` (default 10) of the
//!   partitions it prefers are led elsewhere: Kafka's ratio, compared the
//!   same way (strictly above), so 0 moves back any partition led away
//!   and 100 never moves any.

use kafka_protocol::ResponseError;

use super::raft::types::ClusterCommand;
use super::state::{ClusterState, PartitionRecord};
use crate::metadata::NO_LEADER;

/// ElectLeaders' election types (KIP-460).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership to the preferred replica.
    Preferred,
    /// Give an offline partition a leader, out of sync if need be.
    Unclean,
}

impl ElectionType {
    /// The type from its wire code (0 PREFERRED, 1 UNCLEAN).
    pub fn from_code(code: i8) -> Option<ElectionType> {
        match code {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

fn is_live(state: &ClusterState, broker: i32) -> bool {
    state.brokers.get(&broker).is_some_and(|b| !b.fenced)
}

fn elect(
    topic: &str,
    partition: i32,
    p: &PartitionRecord,
    leader: i32,
    unclean: bool,
) -> ClusterCommand {
    ClusterCommand::ElectLeader {
        topic: topic.to_string(),
        partition,
        leader,
        partition_epoch: p.partition_epoch,
        unclean,
    }
}

/// The election ElectLeaders asks for one partition.
pub fn elect_leader(
    state: &ClusterState,
    kind: ElectionType,
    topic: &str,
    partition: i32,
) -> Result<ClusterCommand, ResponseError> {
    let p = state
        .partition(topic, partition)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    match kind {
        ElectionType::Preferred => preferred(state, topic, partition, p),
        ElectionType::Unclean => unclean(state, topic, partition, p),
    }
}

fn preferred(
    state: &ClusterState,
    topic: &str,
    partition: i32,
    p: &PartitionRecord,
) -> Result<ClusterCommand, ResponseError> {
    let Some(&first) = p.replicas.first() else {
        return Err(ResponseError::PreferredLeaderNotAvailable);
    };
    if p.leader == first {
        return Err(ResponseError::ElectionNotNeeded);
    }
    if !is_live(state, first) || !p.isr.contains(&first) {
        return Err(ResponseError::PreferredLeaderNotAvailable);
    }
    Ok(elect(topic, partition, p, first, false))
}

fn unclean(
    state: &ClusterState,
    topic: &str,
    partition: i32,
    p: &PartitionRecord,
) -> Result<ClusterCommand, ResponseError> {
    if p.leader != NO_LEADER && is_live(state, p.leader) {
        return Err(ResponseError::ElectionNotNeeded);
    }
    // A live ISR member is a clean choice (the fence that left the
    // partition offline may not have been followed by its return yet).
    if let Some(&r) = p.isr.iter().find(|r| is_live(state, **r)) {
        return Ok(elect(topic, partition, p, r, false));
    }
    match p.replicas.iter().find(|r| is_live(state, **r)) {
        Some(&r) => Ok(elect(topic, partition, p, r, true)),
        None => Err(ResponseError::EligibleLeadersNotAvailable),
    }
}

/// Unclean elections for every offline partition of a topic `allows`
/// (its `unclean.leader.election.enable`) that has a live replica.
pub fn offline_unclean_elections(
    state: &ClusterState,
    allows: impl Fn(&str) -> bool,
) -> Vec<ClusterCommand> {
    let mut commands = Vec::new();
    for (name, topic) in &state.topics {
        let offline = topic.partitions.iter().any(|p| p.leader == NO_LEADER);
        if !offline || !allows(name) {
            continue;
        }
        for (i, p) in topic.partitions.iter().enumerate() {
            if p.leader != NO_LEADER {
                continue;
            }
            if let Ok(command) = unclean(state, name, i as i32, p) {
                commands.push(command);
            }
        }
    }
    commands
}

/// The automatic rebalance's preferred-leader elections: for each broker
/// with more than `imbalance_percent` of its preferred partitions led
/// elsewhere, every one of them it may lead now.
pub fn rebalance_elections(state: &ClusterState, imbalance_percent: u32) -> Vec<ClusterCommand> {
    let imbalance_percent = imbalance_percent as usize;
    // Per preferred broker: (partitions it prefers, led elsewhere).
    let mut counts: std::collections::BTreeMap<i32, (usize, usize)> = Default::default();
    for topic in state.topics.values() {
        for p in &topic.partitions {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            let entry = counts.entry(first).or_default();
            entry.0 += 1;
            entry.1 += usize::from(p.leader != first);
        }
    }
    let imbalanced = |broker: i32| {
        counts
            .get(&broker)
            .is_some_and(|(total, elsewhere)| *elsewhere * 100 > *total * imbalance_percent)
    };
    let mut commands = Vec::new();
    for (name, topic) in &state.topics {
        for (i, p) in topic.partitions.iter().enumerate() {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            if !imbalanced(first) {
                continue;
            }
            if let Ok(command) = preferred(state, name, i as i32, p) {
                commands.push(command);
            }
        }
    }
    commands
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::cluster::state::TopicRecord;

    fn state_with(leader: i32, isr: &[i32], live: &[i32]) -> ClusterState {
        let mut state = ClusterState::default();
        for id in 1..=3 {
            state.apply(&ClusterCommand::RegisterBroker {
                id,
                host: "localhost".into(),
                port: 9092 + id,
                shards: 1,
                endpoints: Vec::new(),
            });
        }
        for id in (1..=3).filter(|id| !live.contains(id)) {
            state.brokers.get_mut(&id).expect("registered").fenced = true;
        }
        let topic = TopicRecord {
            id: Uuid::new_v4(),
            configs: BTreeMap::new(),
            partitions: vec![PartitionRecord {
                replicas: vec![1, 2, 3],
                shards: vec![0, 0, 0],
                leader,
                leader_epoch: 5,
                isr: isr.to_vec(),
                partition_epoch: 9,
            }],
        };
        state.topics.insert("t".into(), topic);
        state
    }

    fn leader_and_isr(state: &ClusterState) -> (i32, i32, Vec<i32>) {
        let p = &state.topics["t"].partitions[0];
        (p.leader, p.leader_epoch, p.isr.clone())
    }

    #[test]
    fn elect_leader_preferred_moves_to_the_first_replica_only_when_live_and_in_sync() {
        let state = state_with(2, &[1, 2, 3], &[1, 2, 3]);
        let mut moved = state.clone();
        let command = elect_leader(&state, ElectionType::Preferred, "t", 0).expect("electable");
        assert!(moved.apply(&command).applied);
        assert_eq!(leader_and_isr(&moved), (1, 6, vec![1, 2, 3]));
        assert_eq!(
            elect_leader(&moved, ElectionType::Preferred, "t", 0).err(),
            Some(ResponseError::ElectionNotNeeded)
        );
        let out_of_sync = state_with(2, &[2, 3], &[1, 2, 3]);
        let fenced = state_with(2, &[1, 2, 3], &[2, 3]);
        for s in [&out_of_sync, &fenced] {
            assert_eq!(
                elect_leader(s, ElectionType::Preferred, "t", 0).err(),
                Some(ResponseError::PreferredLeaderNotAvailable)
            );
        }
        assert_eq!(
            elect_leader(&state, ElectionType::Preferred, "t", 7).err(),
            Some(ResponseError::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn elect_leader_command_based_on_an_old_partition_epoch_changes_nothing() {
        let state = state_with(2, &[1, 2, 3], &[1, 2, 3]);
        let command = elect_leader(&state, ElectionType::Preferred, "t", 0).expect("electable");
        let mut moved = state.clone();
        moved.topics.get_mut("t").expect("topic").partitions[0].partition_epoch += 1;
        assert!(!moved.apply(&command).applied);
        assert_eq!(leader_and_isr(&moved).0, 2);
    }

    #[test]
    fn unclean_election_takes_a_live_out_of_sync_replica_as_the_whole_isr() {
        // Broker 1, the last ISR member, is fenced; 2 and 3 are live.
        let state = state_with(NO_LEADER, &[1], &[2, 3]);
        assert!(
            offline_unclean_elections(&state, |_| false).is_empty(),
            "not allowed"
        );
        let commands = offline_unclean_elections(&state, |t| t == "t");
        assert_eq!(commands.len(), 1);
        let mut elected = state.clone();
        elected.apply(&commands[0]);
        assert_eq!(leader_and_isr(&elected), (2, 6, vec![2]));
        // The old ISR member returning does not lead: it is out of sync now.
        elected.apply(&ClusterCommand::RegisterBroker {
            id: 1,
            host: "localhost".into(),
            port: 9093,
            shards: 1,
            endpoints: Vec::new(),
        });
        assert_eq!(leader_and_isr(&elected).0, 2);
        // No live replica at all: nothing to elect.
        let dead = state_with(NO_LEADER, &[1], &[]);
        assert!(offline_unclean_elections(&dead, |_| true).is_empty());
        assert_eq!(
            elect_leader(&dead, ElectionType::Unclean, "t", 0).err(),
            Some(ResponseError::EligibleLeadersNotAvailable)
        );
    }

    #[test]
    fn elect_leader_unclean_prefers_a_live_isr_member_and_skips_a_led_partition() {
        let led = state_with(2, &[1, 2, 3], &[1, 2, 3]);
        assert_eq!(
            elect_leader(&led, ElectionType::Unclean, "t", 0).err(),
            Some(ResponseError::ElectionNotNeeded)
        );
        let offline = state_with(NO_LEADER, &[1, 3], &[2, 3]);
        let command = elect_leader(&offline, ElectionType::Unclean, "t", 0).expect("electable");
        assert!(matches!(
            command,
            ClusterCommand::ElectLeader {
                leader: 3,
                unclean: false,
                ..
            }
        ));
    }

    /// Ten partitions preferring broker 1, the first `led_away` led by 2.
    fn ten_preferring_broker_1(led_away: usize) -> ClusterState {
        let mut state = state_with(1, &[1, 2, 3], &[1, 2, 3]);
        let one = state.topics["t"].partitions[0].clone();
        let topic = state.topics.get_mut("t").expect("created");
        topic.partitions = (0..10)
            .map(|i| PartitionRecord {
                leader: if i < led_away { 2 } else { 1 },
                ..one.clone()
            })
            .collect();
        state
    }

    #[test]
    fn rebalance_elections_leader_imbalance_per_broker_percentage_is_a_strict_threshold() {
        // Kafka's rule: rebalance when led elsewhere / preferred > percent.
        let moved = |led_away, percent| {
            rebalance_elections(&ten_preferring_broker_1(led_away), percent).len()
        };
        // The default, 10%: one of ten led away is 10%, not above it.
        assert_eq!(moved(1, 10), 0);
        assert_eq!(moved(2, 10), 2, "20% > 10%: every one led away moves back");
        // 0%: any partition led away moves back.
        assert_eq!(moved(1, 0), 1);
        assert_eq!(moved(0, 0), 0, "nothing led away, nothing to move");
        // 25%: three of ten (30%) move, two (20%) do not.
        assert_eq!(moved(2, 25), 0);
        assert_eq!(moved(3, 25), 3);
        // 100%: never, even with all ten led away.
        assert_eq!(moved(10, 100), 0);
        assert_eq!(moved(10, 99), 10);
    }

    #[test]
    fn rebalance_elections_move_leadership_back_to_an_imbalanced_preferred_broker() {
        let state = state_with(2, &[1, 2, 3], &[1, 2, 3]);
        let commands = rebalance_elections(&state, 10);
        assert_eq!(commands.len(), 1);
        let balanced = state_with(1, &[1, 2, 3], &[1, 2, 3]);
        assert!(rebalance_elections(&balanced, 10).is_empty());
        let not_in_sync = state_with(2, &[2, 3], &[1, 2, 3]);
        assert!(rebalance_elections(&not_in_sync, 10).is_empty());
    }
}
