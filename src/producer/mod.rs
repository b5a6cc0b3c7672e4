//! Idempotent producers: producer ids and per-partition sequence state.
//!
//! An idempotent producer (KIP-98) gets a producer id and epoch from
//! InitProducerId and numbers its batches per partition. The partition's
//! owner keeps, for each producer id, its epoch and the sequence ranges and
//! offsets of its last [`state::PRODUCER_BATCHES_KEPT`] batches, so a retried
//! batch that was already written is answered with its original offset and
//! is not written twice, and a gap in the sequence is refused.
//!
//! - [`ids`]: producer ids, allocated by the metadata owner (shard 0) in
//!   blocks whose end is persisted before any id of the block is handed
//!   out, so ids are unique across restarts and crashes.
//! - [`state`]: the per-partition table and the rules Kafka applies.
//! - [`snapshot`]: the table written beside the log at clean close and
//!   rebuilt at open from that snapshot plus the batches after it, so
//!   deduplication holds across a crash.

pub mod aborted;
pub mod ids;
pub mod snapshot;
pub mod state;

pub use ids::ProducerIdAllocator;
pub use state::{ProducerCheck, ProducerStateTable};
