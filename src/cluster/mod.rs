//! Cluster metadata: the foundation of a Raft-replicated controller log.
//!
//! Not wired into `corestreamd` yet: nothing here runs in the broker, no
//! flag reaches it. What exists (see docs/ARCHITECTURE.md, "Cluster"):
//!
//! - [`raft`]: the pieces openraft needs from us — a glommio
//!   `AsyncRuntime` adapter and a Raft log store on the project's
//!   [`Disk`](crate::storage::Disk) seam, and a state machine whose
//!   snapshots are saved there too.
//! - [`state`]: [`ClusterState`](state::ClusterState), the metadata the
//!   log builds (brokers, topics, partitions, broker configs, producer-id
//!   blocks), and how a command changes it.
//! - [`transport`]: controller RPCs (Raft's and the brokers' `App`
//!   requests) over TCP on the controller listener.
//!
//! Why openraft and not our own consensus: the issue asks for an
//! established library; openraft's 0.10 line has a `single-threaded`
//! feature that drops the `Send` bounds, which is what a thread-per-core
//! broker needs (the controller's state lives on shard 0 and is `!Send` on
//! purpose). The 0.10 API is still alpha, hence the exact version pin in
//! Cargo.toml: an upgrade is a deliberate change, re-run against
//! `raft::runtime`'s and `raft::log_store`'s tests.

pub mod raft;
pub mod state;
pub mod transport;
