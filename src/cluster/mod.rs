//! A cluster of corestreamd nodes: the controller quorum (metadata on a
//! Raft log) and each broker's membership in it. A node takes part when
//! `controller_quorum_voters` is set; without it nothing here runs and the
//! node is the single-node broker (see docs/ARCHITECTURE.md, "Cluster").
//!
//! - [`raft`]: the pieces openraft needs from us — a glommio
//!   `AsyncRuntime` adapter, a Raft log store on the project's
//!   [`Disk`](crate::storage::Disk) seam, and a state machine whose
//!   snapshots are saved there too.
//! - [`state`]: [`ClusterState`](state::ClusterState), the metadata the
//!   log builds (brokers, topics, partitions, broker configs, producer-id
//!   blocks), and how a command changes it.
//! - [`transport`]: controller RPCs (Raft's and the brokers' `App`
//!   requests) over TCP on the controller listener.
//! - [`controller`] (a voter's shard 0): answers brokers when it leads,
//!   fences brokers whose heartbeats stop, and makes the elections
//!   [`election`] decides (unclean, preferred, ElectLeaders); [`plan`] and [`placement`] turn
//!   a CreateTopics or AlterConfigs into commands; [`rpc`] is the
//!   broker-to-controller protocol.
//! - [`member`] (every node's shard 0): registers, heartbeats, publishes
//!   the state to the shards as snapshots ([`view`]), forwards metadata
//!   changes; [`start`] brings it all up; [`identity`] keeps a data dir
//!   to one node id and one cluster.
//! - [`quorum`]: the quorum's status (leader, term, indexes, voter lag)
//!   from openraft's metrics, for `/metrics` and DescribeQuorum.
//!
//! Why openraft and not our own consensus: the issue asks for an
//! established library; openraft's 0.10 line has a `single-threaded`
//! feature that drops the `Send` bounds, which is what a thread-per-core
//! broker needs (the controller's state lives on shard 0 and is `!Send` on
//! purpose). The 0.10 API is still alpha, hence the exact version pin in
//! Cargo.toml: an upgrade is a deliberate change, re-run against
//! `raft::runtime`'s and `raft::log_store`'s tests.

pub mod controller;
mod controller_elections;
pub mod election;
pub mod identity;
pub mod member;
pub mod metrics;
pub mod placement;
pub mod plan;
pub mod quorum;
pub mod raft;
pub mod rpc;
pub mod start;
pub mod state;
pub mod transport;
pub mod view;
