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
use crate::cluster::state::{BrokerConfigsRecord, TopicRecord};

/// A controller node id (the broker's `node.id`).
pub type NodeId = u64;

/// A change to the cluster metadata, as replicated in the Raft log. Each
/// carries a decided result (see `cluster::state`), so applying it is
/// deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
    /// Names the cluster; only the first one counts.
    InitCluster {
        /// The Kafka cluster id.
        cluster_id: String,
    },
    /// A broker (re)joined: unfenced, its epoch bumped, it leads again
    /// the partitions that waited for it.
    RegisterBroker {
        /// Its `node.id`.
        id: i32,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: i32,
        /// Its shard count.
        shards: u16,
        /// Every listener's advertised endpoint (absent in old log
        /// entries).
        #[serde(default)]
        endpoints: Vec<crate::metadata::BrokerEndpoint>,
    },
    /// A broker missed its heartbeats or shut down: fenced, its
    /// leaderships moved.
    FenceBroker {
        /// Its `node.id`.
        id: i32,
    },
    /// A topic created, grown or reconfigured: its whole new record.
    PutTopic {
        /// Topic name.
        name: String,
        /// The record.
        topic: TopicRecord,
    },
    /// A topic deleted.
    RemoveTopic {
        /// Topic name.
        name: String,
    },
    /// Dynamic broker configs replaced.
    SetBrokerConfigs {
        /// Both layers.
        configs: BrokerConfigsRecord,
    },
    /// SASL users replaced (every credential: a few per user).
    SetUsers {
        /// Users by name.
        users: crate::security::ScramUsers,
    },
    /// ACLs replaced (all of them: a change is rare and the set small).
    SetAcls {
        /// Every ACL.
        acls: Vec<crate::security::acl::AclBinding>,
    },
    /// Client quotas replaced (all of them: a change is rare and the set
    /// small).
    SetClientQuotas {
        /// Every entity's quotas.
        quotas: Vec<crate::quota::PersistedQuota>,
    },
    /// A block of producer ids handed out; the response's value is its
    /// first id.
    AllocateProducerIds {
        /// Ids in the block.
        count: i64,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition), checked by
    /// the controller against the leader epoch and partition epoch it was
    /// based on; the response's value is the new partition epoch.
    AlterPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The leader epoch the change was made under.
        leader_epoch: i32,
        /// The partition epoch the change was based on.
        partition_epoch: i32,
        /// The new ISR.
        isr: Vec<i32>,
    },
    /// A leader chosen by the controller outside a fence: the preferred
    /// replica (ElectLeaders PREFERRED, the automatic rebalance) or, for
    /// an offline partition whose topic allows it, an out-of-sync replica
    /// (unclean election: the ISR becomes that replica alone). Checked
    /// against the partition epoch it was chosen at; the response's value
    /// is the new leader epoch.
    ElectLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The new leader.
        leader: i32,
        /// The partition epoch the choice was made at.
        partition_epoch: i32,
        /// An out-of-sync replica leads: the ISR becomes `[leader]`.
        unclean: bool,
    },
}

impl fmt::Display for ClusterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterCommand::InitCluster { cluster_id } => write!(f, "init cluster {cluster_id}"),
            ClusterCommand::RegisterBroker { id, host, port, .. } => {
                write!(f, "register broker {id} at {host}:{port}")
            }
            ClusterCommand::FenceBroker { id } => write!(f, "fence broker {id}"),
            ClusterCommand::PutTopic { name, topic } => {
                write!(
                    f,
                    "put topic {name} ({} partitions)",
                    topic.partitions.len()
                )
            }
            ClusterCommand::RemoveTopic { name } => write!(f, "remove topic {name}"),
            ClusterCommand::SetBrokerConfigs { .. } => write!(f, "set broker configs"),
            ClusterCommand::SetUsers { users } => write!(f, "set {} SASL users", users.len()),
            ClusterCommand::SetAcls { acls } => write!(f, "set {} ACLs", acls.len()),
            ClusterCommand::SetClientQuotas { quotas } => {
                write!(f, "set client quotas of {} entities", quotas.len())
            }
            ClusterCommand::AllocateProducerIds { count } => {
                write!(f, "allocate {count} producer ids")
            }
            ClusterCommand::AlterPartition {
                topic,
                partition,
                isr,
                ..
            } => write!(f, "alter partition {topic}-{partition} isr {isr:?}"),
            ClusterCommand::ElectLeader {
                topic,
                partition,
                leader,
                unclean,
                ..
            } => {
                let kind = if *unclean { "unclean" } else { "clean" };
                write!(f, "elect {leader} ({kind}) for {topic}-{partition}")
            }
        }
    }
}

/// What applying a [`ClusterCommand`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterResponse {
    /// False if the command changed nothing (e.g. fencing a fenced broker).
    pub applied: bool,
    /// A number the command produced: a broker epoch, a producer-id block.
    pub value: i64,
}

impl ClusterResponse {
    /// Changed something or not, no value.
    pub fn applied(applied: bool) -> ClusterResponse {
        ClusterResponse { applied, value: 0 }
    }

    /// Changed something and produced `value`.
    pub fn with_value(value: i64) -> ClusterResponse {
        ClusterResponse {
            applied: true,
            value,
        }
    }
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
