//! What openraft needs from corestream to run on a shard:
//!
//! - [`runtime`]: [`GlommioRuntime`], openraft's `AsyncRuntime` on the
//!   shard's glommio executor (timers, spawn, `!Send` channels).
//! - [`log_store`]: [`RaftLogStore`], the Raft log, vote and committed log
//!   id on a [`Disk`](crate::storage::Disk): O_DIRECT in production,
//!   `MemDisk` with fault injection in tests (its byte layer, frames and
//!   recovery's scan, is the private `log_file`).
//! - [`state_machine`]: [`ClusterStateMachine`], committed commands applied
//!   to the in-memory [`ClusterState`](crate::cluster::state::ClusterState),
//!   snapshots as JSON, saved by [`snapshot_file`] before openraft may
//!   purge the log behind them.
//! - [`types`]: the type configuration ([`ControllerRaft`]) tying them
//!   together: node ids, the command payload, the runtime.
//!
//! The network openraft uses between controllers is
//! [`transport`](crate::cluster::transport) (TCP on the controller
//! listener). Not here yet: wiring into `corestreamd`.

mod log_file;
pub mod log_store;
pub mod runtime;
pub mod snapshot_file;
pub mod state_machine;
pub mod types;

pub use log_store::{LogStoreError, RaftLogReaderHandle, RaftLogStore};
pub use runtime::GlommioRuntime;
pub use state_machine::ClusterStateMachine;
pub use types::{ClusterCommand, ControllerRaft, NodeId};

#[cfg(test)]
pub(crate) mod cluster_tests;
#[cfg(test)]
mod log_sim_tests;
#[cfg(test)]
mod log_store_tests;
#[cfg(test)]
mod snapshot_tests;
