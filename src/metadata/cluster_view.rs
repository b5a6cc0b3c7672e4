//! What a broker of a cluster knows beyond its own topics: the other
//! brokers, the controller, and who leads each partition.
//!
//! A single-node broker has none of it (`Snapshot::cluster` is `None`,
//! `TopicMeta::placement` is `None`): it leads every partition and is the
//! only broker, and its hot paths pay one `Option` check for the cluster.
//! In a cluster, the controller's replicated state is turned into this
//! view by `cluster::view` on every change, for the local node id.
//!
//! Ownership and leadership are kept apart on purpose: a partition whose
//! replica lives here is *owned* by a local shard (its files are open,
//! `Snapshot::owned_by`) even while another broker, or none, leads it, so
//! that losing leadership never closes, let alone deletes, its data. Only
//! leadership decides where requests are served (`Snapshot::shard_for`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// `partition_shards` entry of a partition with no replica on this broker.
pub const REMOTE_SHARD: u16 = u16::MAX;

/// Leader id of a partition that has no leader (Kafka's -1).
pub const NO_LEADER: i32 = -1;

/// One listener of a broker as it registered it (Kafka's
/// BrokerRegistrationRequest Listeners: name, host, port, protocol).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerEndpoint {
    /// Listener name (corestream's listener names are their protocols).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).
    pub security_protocol: String,
}

/// A broker of the cluster as clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `node.id`.
    pub id: i32,
    /// Advertised host of its inter-broker listener (what brokers
    /// registered before per-listener endpoints gave as their one address).
    pub host: String,
    /// Advertised port of the same listener.
    pub port: i32,
    /// Fenced (missed its heartbeats, or shut down): listed nowhere.
    pub fenced: bool,
    /// Every listener it registered; empty for a registration made before
    /// endpoints were recorded.
    pub endpoints: Arc<[BrokerEndpoint]>,
}

impl BrokerInfo {
    /// Its address on listener `name`, as Kafka answers a client that came
    /// in on that listener. A broker registered without endpoints (an
    /// older snapshot) or without that listener answers its one address.
    pub fn address_on(&self, name: &str) -> (&str, i32) {
        self.endpoints
            .iter()
            .find(|e| e.name == name)
            .map_or((self.host.as_str(), self.port), |e| {
                (e.host.as_str(), e.port)
            })
    }
}

/// The cluster around this broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// This broker's `node.id`.
    pub local_node: i32,
    /// The active controller's node id, -1 while there is none.
    pub controller_id: i32,
    /// Every registered broker, fenced or not.
    pub brokers: BTreeMap<i32, BrokerInfo>,
}

impl ClusterView {
    /// The broker with this id, if it is registered and not fenced.
    pub fn live_broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&id).filter(|b| !b.fenced)
    }

    /// Brokers that are registered and not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

/// One partition's leader and replicas (Kafka's PartitionRecord).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// Leading broker, [`NO_LEADER`] when none may lead.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Replica brokers, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Bumped on every leader or ISR change (Kafka's partition epoch).
    pub partition_epoch: i32,
}

/// Leaders and replicas of a topic's partitions, by index.
pub type Placement = Arc<[PartitionState]>;

/// Where a partition is served, as seen from this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionLocation {
    /// Led here, by this shard.
    Local(usize),
    /// Led by another broker (or by none: `leader` is [`NO_LEADER`]).
    Remote {
        /// The leader's node id.
        leader: i32,
        /// Its leader epoch.
        leader_epoch: i32,
    },
    /// No such topic or partition.
    Unknown,
}
