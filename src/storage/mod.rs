//! The on-disk log of one partition.
//!
//! TODO: filled in below as modules land.

mod disk;
mod dma_disk;
mod error;
mod mem_disk;

pub use disk::{align_down, align_up, is_aligned, Disk, DiskFile, IoBuffer, BLOCK_BYTES};
pub use dma_disk::{prime_dma_io, DmaDisk, DmaDiskFile, DMA_PROBE_FILE_NAME};
pub use error::StorageError;
pub use mem_disk::{MemBuffer, MemDisk, MemFile};
