//! The zero-copy fetch path's pieces that are neither protocol nor disk
//! format: the per-shard hot tail cache and the counters of which path
//! served each fetch.
//!
//! How a partition read is served (owner shard, `Partition::read`):
//! 1. from the [`tail_cache`] when it holds the offset: the reply carries
//!    `Bytes` views of the cached batches (no disk read, no copy);
//! 2. else from the segment file: an O_DIRECT read into a DMA buffer, then
//!    one copy into `Bytes` (counted as the copy fallback; the sendfile /
//!    splice path that removes it is not built yet, see ARCHITECTURE.md).
//!
//! The response itself is written by `protocol::fetch_writer` as parts, so
//! the record slices go to the socket as they are (vectored send).

pub mod metrics;
pub mod session;
pub mod tail_cache;

pub use metrics::{FetchMetrics, FetchPath};
pub use session::FetchSessionCache;
pub use tail_cache::{PartitionTail, TailCache, TAIL_CACHE_SHARD_BYTES_DEFAULT};
