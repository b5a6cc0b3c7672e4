//! corestream: a thread-per-core, Kafka-compatible storage node.
//!
//! The crate is laid out by subsystem, the way a reader looks for things
//! (docs/ARCHITECTURE.md opens with a "where is what" table):
//!
//! - [`protocol`]: the wire codec that does no I/O — framing, the
//!   RecordBatch v2 header (its one layout home), record walking,
//!   compression, control records, the hand-written fetch response writer.
//! - [`storage`]: the on-disk log of one partition — segments, sparse
//!   indexes, the appender and group-commit flusher, recovery, retention
//!   and compaction — behind a small disk seam so faults can be injected
//!   in tests.
//! - [`fetch`]: the zero-copy read path's caches — the per-shard tail
//!   cache and its arena, cold segment ranges for splice, fetch sessions.
//! - [`metadata`]: topics, partitions and their owner shards, held as an
//!   immutable snapshot per shard; topic configs; the internal topics.
//! - [`shard`]: the per-core runtime — executors, the cross-shard mesh and
//!   its messages, the partitions a shard owns, the metadata owner.
//! - [`server`]: the Kafka listener, the connection loop, per-IP and
//!   total connection limits, vectored and spliced sends.
//! - [`handlers`]: one file per Kafka API, each declaring its version
//!   range; the list of served APIs.
//! - [`group`]: consumer groups (classic and KIP-848) and committed
//!   offsets, coordinated on the shard that owns the group's
//!   `__consumer_offsets` partition.
//! - [`producer`]: idempotent producers — producer ids and per-partition
//!   sequence state.
//! - [`txn`]: transactions — the coordinator, its `__transaction_state`
//!   records and the COMMIT/ABORT markers.
//! - [`quota`]: client quotas — entities, Kafka's precedence, windowed
//!   rates and throttling by muting the connection (KIP-219).
//! - [`clock`]: the clock seam — wall and monotonic time for decisions a
//!   client can see, driven by hand in tests.
//! - [`config`]: broker settings from flags, environment and a TOML file.
//! - [`console`]: the web console on the admin port — `/ui/` assets and
//!   JSON endpoints that act through the Kafka handlers.
//! - [`ops`]: systemd notify, logging, signals, metrics, the admin HTTP port.
//! - [`cli`]: the `corestream` admin CLI (a Kafka client over std TCP) and
//!   its load generator.
//! - [`cluster`]: the foundation of Raft-replicated cluster metadata
//!   (openraft on glommio, the Raft log on the disk seam); not wired in yet.
//! - [`alloc`], [`malloc_tune`]: the global allocator guard against
//!   hostile array lengths, and glibc malloc settings for large blocks.

pub mod alloc;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod fetch;
pub mod group;
pub mod handlers;
pub mod malloc_tune;
pub mod metadata;
pub mod ops;
pub mod producer;
pub mod protocol;
pub mod quota;
pub mod replication;
pub mod security;
pub mod server;
pub mod shard;
pub mod storage;
pub mod txn;
