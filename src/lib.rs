//! corestream: a thread-per-core, Kafka-compatible storage node.
//!
//! The crate is laid out by subsystem, the way a reader looks for things:
//!
//! - [`protocol`]: the wire codec that does no I/O — framing, the
//!   RecordBatch v2 header, the table of supported API versions.
//! - [`storage`]: the on-disk log of one partition — segments, sparse
//!   indexes, the appender, recovery — behind a small disk seam so faults can
//!   be injected in tests.
//! - [`metadata`]: topics, partitions and their owner shards, held as an
//!   immutable snapshot per shard.
//! - [`shard`]: the per-core runtime — executors, the cross-shard mesh, the
//!   partitions a shard owns and its group-commit flusher.
//! - [`server`]: the Kafka listener and the connection loop.
//! - [`handlers`]: one file per Kafka API, each declaring its version range.
//! - [`group`]: consumer groups and committed offsets, coordinated on the
//!   shard that owns the group's `__consumer_offsets` partition.
//! - [`config`]: broker settings from flags, environment and a TOML file.
//! - [`ops`]: systemd notify, logging, signals, metrics, the admin HTTP port.
//! - [`cli`]: the `corestream` admin CLI (a Kafka client over std TCP).

pub mod alloc;
pub mod cli;
pub mod config;
pub mod fetch;
pub mod group;
pub mod handlers;
pub mod malloc_tune;
pub mod metadata;
pub mod ops;
pub mod producer;
pub mod protocol;
pub mod server;
pub mod shard;
pub mod storage;
pub mod txn;
