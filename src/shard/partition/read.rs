//! Fetch reads of one partition: the tail cache, then the segment file as a
//! file range, then an O_DIRECT copy.
//!
//! **Runs of emptied batches.** The cleaner turns a run of batches whose
//! records all went into one empty batch (record count 0) that keeps the
//! offsets dense, and a segment whose records all went becomes exactly one
//! such batch. A fetch never spans segments, so a read landing on it would
//! answer nothing but that empty batch. Clients step over it, but librdkafka
//! counts a response with no message as "too small" and doubles its fetch
//! size; after ten of those in a consumer's life it reports
//! MSG_SIZE_TOO_LARGE, an error the application sees (Kafka avoids this by
//! merging small cleaned segments). So when everything read so far is empty
//! batches and more durable data follows, the read goes on at the next
//! offset, up to [`EMPTY_RUN_READS_MAX`] more reads and within `max_bytes`
//! (the first batch with records whole, as KIP-74 allows for a first batch).

use kafka_protocol::ResponseError;
use tracing::warn;

use super::{Partition, PartitionReply};
use crate::fetch::metrics::{record_read, FetchPath};
use crate::protocol::fetch_writer::RecordSlices;
use crate::storage::StorageError;

/// Further reads one fetch may make past segments holding only emptied
/// batches (each such segment costs one 61-byte batch of the response).
pub(super) const EMPTY_RUN_READS_MAX: usize = 64;

impl Partition {
    /// Whole batches from `offset`, `max_bytes` at most (the first batch
    /// whole when `min_one`), going on past emptied batches (module doc).
    pub(super) async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        committed: bool,
    ) -> PartitionReply {
        let mut records = match self.read_batches(offset, max_bytes, min_one).await {
            Ok(records) => records,
            Err(StorageError::OffsetOutOfRange { .. }) => {
                return PartitionReply::Error(ResponseError::OffsetOutOfRange.code())
            }
            Err(e) => return self.storage_failure("read", e),
        };
        let end = match committed {
            true => self.last_stable_offset(),
            false => self.high_watermark(),
        };
        for _ in 0..EMPTY_RUN_READS_MAX {
            let Some(next) = after_emptied_batches(&records) else {
                break;
            };
            if next >= end || records.len() >= max_bytes {
                break;
            }
            match self
                .read_batches(next, max_bytes - records.len(), min_one)
                .await
            {
                Ok(more) if !more.is_empty() => records.append(more),
                Ok(_) => break,
                Err(e) => {
                    // What was read is valid; the next fetch reports this.
                    tracing::debug!(partition = %self.id, "read past emptied batches at {next}: {e}");
                    break;
                }
            }
        }
        if self.is_replicated() {
            // Consumers read below the high watermark only.
            super::txn::cut_at_offset(&mut records, self.high_watermark());
        }
        self.read_reply(offset, records, committed)
    }

    /// A follower's read: whole batches up to the durable end.
    pub(crate) async fn read_for_replica(&self, offset: i64, max_bytes: usize) -> PartitionReply {
        match self.read_batches(offset, max_bytes, true).await {
            Ok(records) => PartitionReply::Read {
                records,
                high_watermark: self.high_watermark(),
                log_start_offset: self.log.log_start_offset(),
                last_stable_offset: self.last_stable_offset(),
                aborted: None,
                diverging_epoch: None,
            },
            Err(StorageError::OffsetOutOfRange { .. }) => {
                PartitionReply::Error(ResponseError::OffsetOutOfRange.code())
            }
            Err(e) => self.storage_failure("replica read", e),
        }
    }

    /// One read: from the tail cache when it holds the offset (within the
    /// log's range), else from the segment file.
    async fn read_batches(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<RecordSlices, StorageError> {
        let in_range = (self.log.log_start_offset()..self.log.high_watermark()).contains(&offset);
        if let Some(records) = in_range
            .then(|| self.tail.read(offset, max_bytes, min_one))
            .flatten()
        {
            record_read(FetchPath::TailCache, records.len());
            return Ok(records);
        }
        if let Some(read) = self.read_file_range(offset, max_bytes, min_one).await {
            return read;
        }
        let bytes = self.log.read(offset, max_bytes, min_one).await?;
        record_read(FetchPath::DiskCopy, bytes.len());
        Ok(RecordSlices::from_bytes(bytes))
    }

    /// A cold read answered as a segment file range (`fetch::cold_file`, on
    /// the blocking pool). `None` when the range could not be chosen: the
    /// caller reads with O_DIRECT and copies (and that read reports any
    /// corruption).
    async fn read_file_range(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Option<Result<RecordSlices, StorageError>> {
        let start = match self.log.file_range_start(offset) {
            Ok(Some(start)) => start,
            Ok(None) => return Some(Ok(RecordSlices::new())),
            Err(e) => return Some(Err(e)),
        };
        let found = glommio::executor()
            .spawn_blocking(move || {
                crate::fetch::cold_file::find_file_range(&start, offset, max_bytes, min_one)
            })
            .await;
        match found {
            Ok(records) => {
                record_read(FetchPath::FileRange, records.len());
                Some(Ok(records))
            }
            Err(e @ crate::fetch::cold_file::ColdFileError::FdLimit(_)) => {
                // Expected under a burst of cold reads; the copy counter shows it.
                tracing::debug!(partition = %self.id, "cold read at {offset} copied: {e}");
                None
            }
            Err(e) => {
                warn!(partition = %self.id, "cold read at {offset} as a file range failed, reading with a copy: {e}");
                None
            }
        }
    }
}

/// The offset after `records` when they are all emptied batches (no
/// records, not control), else `None` (nothing read, or something to
/// deliver).
fn after_emptied_batches(records: &RecordSlices) -> Option<i64> {
    let mut next = None;
    for batch in records.batch_extents() {
        if batch.records != 0 {
            return None;
        }
        next = Some(batch.last_offset + 1);
    }
    next
}
