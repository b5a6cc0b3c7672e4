//! [`ClusterState`]: the cluster metadata the controller log builds, and
//! how a [`ClusterCommand`] changes it.
//!
//! Pure data and pure functions, no I/O and no Raft: the Raft state machine
//! (`raft::state_machine`) applies committed commands here, and a snapshot
//! is this value as JSON. Only the two first commands exist yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::raft::types::{ClusterCommand, ClusterResponse, NodeId};

/// Brokers and topics, as of some applied log position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Registered brokers: node id to `host:port` of the Kafka listener.
    pub brokers: BTreeMap<NodeId, String>,
    /// Topics: name to partition count.
    pub topics: BTreeMap<String, u32>,
}

impl ClusterState {
    /// Applies one committed command. Deterministic: every controller
    /// applies the same commands in the same order to the same state.
    pub fn apply(&mut self, command: &ClusterCommand) -> ClusterResponse {
        let applied = match command {
            ClusterCommand::RegisterBroker { id, addr } => {
                self.brokers.insert(*id, addr.clone()).as_ref() != Some(addr)
            }
            ClusterCommand::CreateTopic { name, partitions } => {
                // Creating an existing topic changes nothing (Kafka answers
                // TOPIC_ALREADY_EXISTS from the response).
                let absent = !self.topics.contains_key(name);
                if absent {
                    self.topics.insert(name.clone(), *partitions);
                }
                absent
            }
        };
        ClusterResponse { applied }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_topic_twice_keeps_the_first_partition_count() {
        let mut state = ClusterState::default();
        let create = |partitions| ClusterCommand::CreateTopic {
            name: "orders".into(),
            partitions,
        };
        assert!(state.apply(&create(3)).applied);
        assert!(!state.apply(&create(9)).applied);
        assert_eq!(state.topics.get("orders"), Some(&3));
    }

    #[test]
    fn register_broker_updates_the_address() {
        let mut state = ClusterState::default();
        let register = |addr: &str| ClusterCommand::RegisterBroker {
            id: 7,
            addr: addr.into(),
        };
        assert!(state.apply(&register("a:9092")).applied);
        assert!(!state.apply(&register("a:9092")).applied);
        assert!(state.apply(&register("b:9092")).applied);
        assert_eq!(state.brokers.get(&7).map(String::as_str), Some("b:9092"));
    }
}
