//! The zero-copy fetch path's pieces that are neither protocol nor disk
//! format: the per-shard hot tail cache and the counters of which path
//! served each fetch.
//!
//! How a partition read is served (owner shard, `Partition::read`):
//! 1. from the [`tail_cache`] when it holds the offset: the reply carries
//!    `Bytes` views of the cached batches (no disk read, no copy);
//! 2. else as a range of the segment file ([`cold_file`]: batch headers
//!    walked on the blocking pool, records never read by the broker), sent
//!    by the connection with io_uring SPLICE (`server::splice`);
//! 3. if that fails (a header that does not check out), an O_DIRECT read
//!    into a DMA buffer, CRC-checked, then one copy into `Bytes` (the copy
//!    fallback, counted; expected 0).
//!
//! The response itself is written by `protocol::fetch_writer` as parts, so
//! the record slices go to the socket as they are (vectored send, splice).

pub mod cache_arena;
pub mod cold_file;
pub mod metrics;
pub mod session;
pub mod tail_cache;

pub use metrics::{FetchMetrics, FetchPath, SendPath};
pub use session::FetchSessionCache;
pub use tail_cache::{PartitionTail, TailCache, TAIL_CACHE_SHARD_BYTES_DEFAULT};
