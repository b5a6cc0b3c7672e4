//! The Raft type configuration of the controller quorum.
//!
//! One home for the concrete types openraft is instantiated with: node ids
//! are `u64` (the broker's `node.id`), terms `u64`, the leader id is
//! openraft's "advanced" one (several candidates per term, one winner), and
//! the log payload is a [`ClusterCommand`]. Entries and votes are stored as
//! JSON (openraft's `serde` feature), see `log_store`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::runtime::GlommioRuntime;

/// A controller node id (the broker's `node.id`).
pub type NodeId = u64;

/// A change to the cluster metadata, as replicated in the Raft log.
/// (Applied by the state machine, which is not written yet.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
    /// A broker joined (or came back with a new address).
    RegisterBroker {
        /// The broker's `node.id`.
        id: NodeId,
        /// `host:port` of its Kafka listener.
        addr: String,
    },
    /// A topic was created.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Number of partitions.
        partitions: u32,
    },
}

impl fmt::Display for ClusterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterCommand::RegisterBroker { id, addr } => {
                write!(f, "register broker {id} at {addr}")
            }
            ClusterCommand::CreateTopic { name, partitions } => {
                write!(f, "create topic {name} with {partitions} partitions")
            }
        }
    }
}

/// What applying a [`ClusterCommand`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterResponse {
    /// False if the command changed nothing (e.g. the topic existed).
    pub applied: bool,
}

openraft::declare_raft_types!(
    /// The controller quorum's openraft type configuration.
    pub ControllerRaft:
        D = ClusterCommand,
        R = ClusterResponse,
        NodeId = NodeId,
        Node = openraft::impls::BasicNode,
        AsyncRuntime = GlommioRuntime,
);

/// A Raft log entry of the controller log.
pub type Entry = openraft::type_config::alias::EntryOf<ControllerRaft>;
/// A Raft log id (committed leader id + index).
pub type LogId = openraft::type_config::alias::LogIdOf<ControllerRaft>;
/// A Raft vote.
pub type Vote = openraft::type_config::alias::VoteOf<ControllerRaft>;
