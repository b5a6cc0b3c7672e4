//! Producer id allocation on the metadata owner (shard 0).
//!
//! Ids are handed out from blocks of [`PRODUCER_ID_BLOCK_SIZE`]. Before the
//! first id of a block is given out, the block's end is written durably to
//! `<data_dir>/meta/producer_ids.json`; after a restart, allocation resumes
//! at that end. A crash can skip the rest of a block, never reuse an id.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metadata::{write_json_atomically, MetadataError, META_DIR_NAME};

/// Ids reserved per durable write.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1_000;
/// The file holding the end of the last reserved block.
pub const PRODUCER_IDS_FILE_NAME: &str = "producer_ids.json";

#[derive(Serialize, Deserialize)]
struct Persisted {
    /// The first id of the next block: no id at or above it was handed out.
    next_block_start: i64,
}

/// Hands out producer ids. `!Send`: lives on shard 0.
pub struct ProducerIdAllocator {
    dir: PathBuf,
    /// Next id to give; `end` is the first id not reserved yet. Both start
    /// unknown (`-1`) until the file is read on first use.
    next: Cell<i64>,
    end: Cell<i64>,
    lock: futures::lock::Mutex<()>,
}

impl ProducerIdAllocator {
    /// An allocator persisting under `<data_dir>/meta`.
    pub fn new(data_dir: &Path) -> ProducerIdAllocator {
        ProducerIdAllocator {
            dir: data_dir.join(META_DIR_NAME),
            next: Cell::new(-1),
            end: Cell::new(-1),
            lock: futures::lock::Mutex::new(()),
        }
    }

    /// A fresh producer id, never handed out before by this broker.
    pub async fn allocate(&self) -> Result<i64, MetadataError> {
        let dir = self.dir.clone();
        self.allocate_with(|known_start| async move {
            glommio::executor()
                .spawn_blocking(move || reserve_block(&dir, known_start))
                .await
        })
        .await
    }

    /// A fresh producer id, a new block taken from `reserve` (given the
    /// end of the last block, -1 when unknown) when this one is used up.
    /// In a cluster the controller hands out the blocks.
    pub async fn allocate_with<E, F, Fut>(&self, reserve: F) -> Result<i64, E>
    where
        F: FnOnce(i64) -> Fut,
        Fut: std::future::Future<Output = Result<(i64, i64), E>>,
    {
        let _serial = self.lock.lock().await;
        if self.next.get() < 0 || self.next.get() >= self.end.get() {
            let (start, end) = reserve(self.end.get()).await?;
            self.next.set(start);
            self.end.set(end);
        }
        let id = self.next.get();
        self.next.set(id + 1);
        Ok(id)
    }
}

/// Reserves the next block durably and returns it. `known_start` < 0 means
/// "read where the last run stopped".
fn reserve_block(dir: &Path, known_start: i64) -> Result<(i64, i64), MetadataError> {
    let start = if known_start >= 0 {
        known_start
    } else {
        let path = dir.join(PRODUCER_IDS_FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<Persisted>(&bytes)
                    .map_err(|e| MetadataError::Invalid {
                        path: path.clone(),
                        message: e.to_string(),
                    })?
                    .next_block_start
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(MetadataError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        }
    };
    let end = start + PRODUCER_ID_BLOCK_SIZE;
    write_json_atomically(
        dir,
        PRODUCER_IDS_FILE_NAME,
        &Persisted {
            next_block_start: end,
        },
    )?;
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        let first: Vec<i64> = ex.run(async {
            let a = ProducerIdAllocator::new(dir.path());
            let mut ids = vec![];
            for _ in 0..(PRODUCER_ID_BLOCK_SIZE + 3) {
                ids.push(a.allocate().await.unwrap());
            }
            ids
        });
        assert_eq!(first[0], 0);
        assert_eq!(*first.last().unwrap(), PRODUCER_ID_BLOCK_SIZE + 2);
        // A restart (new allocator) never reuses an id, even mid-block.
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        let again = ex.run(async {
            ProducerIdAllocator::new(dir.path())
                .allocate()
                .await
                .unwrap()
        });
        assert!(again > *first.last().unwrap(), "{again}");
    }
}
