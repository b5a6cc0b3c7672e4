//! Reading durable data: `PartitionLog::read`,
//! `PartitionLog::offset_for_timestamp` and
//! `PartitionLog::offset_for_max_timestamp`.
//!
//! A read finds the segment holding the offset, asks the sparse offset index
//! for the closest preceding batch, hops batch headers from there (reading
//! [`READ_CHUNK_BYTES`] at a time, so about one read when the index interval
//! is 4 KiB) to the batch containing the offset, and returns whole batches
//! up to `max_bytes` from that one segment (a fetch never spans segments,
//! as in Kafka). Only data below the high watermark is returned, and every
//! returned batch's CRC is checked again (pairs with the produce-side
//! check): corruption at rest is an error, never served. The bytes are
//! copied once into `Bytes`: cold fetches normally skip this read and go
//! out as a file range with splice (`fetch::cold_file`, starting from
//! [`PartitionLog::file_range_start`]); this read is their fallback.
//!
//! Timestamp lookup finds the first batch whose max timestamp is `>= ts`,
//! then, when that batch is uncompressed, the first record in it at or after
//! `ts` (Kafka's answer). For a compressed batch it answers the batch's base
//! offset and max timestamp: records before `ts` in that batch are then
//! delivered too, and consumers skip them by time if they care.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;

use crate::protocol::batch::{batches, check_crc};

use super::disk::Disk;
use super::error::StorageError;
use super::log::PartitionLog;
use super::scan::{scan_batches, FileWindow, ScanRule, READ_CHUNK_BYTES};
use super::segment::{BatchInfo, Segment};

/// Where a read served as a file range starts (`fetch::cold_file` walks
/// the segment's batch headers from here on glommio's blocking pool).
#[derive(Debug, Clone)]
pub struct FileRangeStart {
    /// The segment file.
    pub path: PathBuf,
    /// Position of a batch at or before the wanted offset (index floor).
    pub position: u64,
    /// That batch's base offset.
    pub offset: i64,
    /// Durable bytes of the segment: nothing at or past it is served.
    pub limit: u64,
    /// The high watermark: no batch at or past it is served.
    pub high_watermark: i64,
}

/// Where to start looking in one segment.
struct ReadStart<F> {
    file: Rc<F>,
    path: PathBuf,
    /// Position and base offset of a batch at or before the target.
    position: u64,
    offset: i64,
    /// Durable bytes of the segment: the scan limit.
    limit: u64,
}

impl<D: Disk> PartitionLog<D> {
    /// Whole batches starting with the one containing `offset`, up to
    /// `max_bytes`, never past the high watermark, from one segment. If the
    /// first batch alone exceeds `max_bytes` it is returned whole when
    /// `min_one` (KIP-74), else nothing. Empty at the high watermark.
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Bytes, StorageError> {
        let high_watermark = self.high_watermark.get();
        self.check_range(offset, high_watermark)?;
        if offset == high_watermark {
            return Ok(Bytes::new());
        }
        let start = self.read_start(offset);
        let mut window = FileWindow::new(&*start.file, &start.path);
        let first = find_batch(&mut window, &start, |b| b.last_offset >= offset).await?;
        let Some((position, first)) = first else {
            return Err(self.missing(&start, offset));
        };
        let available = start.limit - position;
        let want = match first.total_len as usize > max_bytes {
            true if !min_one => return Ok(Bytes::new()),
            true => first.total_len,
            false => max_bytes as u64,
        };
        let len = want.min(available) as usize;
        let Some(bytes) = window.get(position, len, 0).await? else {
            return Err(self.missing(&start, offset));
        };
        let keep = whole_batches(
            bytes,
            first.base_offset,
            high_watermark,
            &start.path,
            position,
        )?;
        Ok(Bytes::copy_from_slice(&bytes[..keep]))
    }

    /// Where a file-range read of `offset` starts (the same segment and
    /// index floor as [`read`](Self::read)); `None` at the high watermark
    /// (nothing to read).
    pub fn file_range_start(&self, offset: i64) -> Result<Option<FileRangeStart>, StorageError> {
        let high_watermark = self.high_watermark.get();
        self.check_range(offset, high_watermark)?;
        if offset == high_watermark {
            return Ok(None);
        }
        let start = self.read_start(offset);
        Ok(Some(FileRangeStart {
            path: start.path,
            position: start.position,
            offset: start.offset,
            limit: start.limit,
            high_watermark,
        }))
    }

    /// ListOffsets by timestamp: `(base offset, max timestamp)` of the first
    /// durable batch whose max timestamp is `>= timestamp`, or `None`.
    /// Batch-granular (see module doc); uses the time index.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let high_watermark = self.high_watermark.get();
        let log_start = self.log_start_offset.get();
        let mut next_segment = 0;
        while let Some((at, start)) = self.timestamp_start(next_segment, timestamp, high_watermark)
        {
            let mut window = FileWindow::new(&*start.file, &start.path);
            let found = find_batch(&mut window, &start, |b| {
                b.base_offset >= high_watermark
                    || (b.max_timestamp >= timestamp && b.last_offset >= log_start)
            })
            .await?;
            match found {
                Some((_, b)) if b.base_offset >= high_watermark => return Ok(None),
                Some((_, b)) => {
                    return Ok(Some(
                        self.refine_to_record(
                            b.base_offset.max(log_start),
                            b.max_timestamp,
                            timestamp,
                        )
                        .await,
                    ))
                }
                None => next_segment = at + 1,
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the offset and timestamp of the
    /// first record holding the log's largest timestamp (Kafka 3.8+, record
    /// granular inside uncompressed batches), or `None` for a log with no
    /// durable data. The largest timestamp comes from the segments' maxima,
    /// then the ordinary timestamp lookup finds its first batch.
    pub async fn offset_for_max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let high_watermark = self.high_watermark.get();
        let log_start = self.log_start_offset.get();
        let max = self
            .segments
            .borrow()
            .iter()
            .filter(|s| s.file.is_some() && s.base_offset < high_watermark)
            .filter(|s| s.end_offset > log_start && s.max_timestamp != i64::MIN)
            .map(|s| s.max_timestamp)
            .max();
        match max {
            Some(max) => self.offset_for_timestamp(max).await,
            None => Ok(None),
        }
    }

    /// Kafka answers the first *record* at or after `timestamp`; inside an
    /// uncompressed batch that is found by walking its records. Compressed
    /// batches keep the batch-level answer (base offset, max timestamp).
    async fn refine_to_record(
        &self,
        base_offset: i64,
        max_timestamp: i64,
        timestamp: i64,
    ) -> (i64, i64) {
        let batch_level = (base_offset, max_timestamp);
        let Ok(bytes) = self.read(base_offset, 1, true).await else {
            return batch_level;
        };
        let Some(Ok(first)) = batches(&bytes).next() else {
            return batch_level;
        };
        match crate::protocol::records::first_record_at_or_after(first.bytes, timestamp) {
            Some((offset, ts)) if offset >= base_offset => (offset, ts),
            _ => batch_level,
        }
    }

    fn check_range(&self, offset: i64, high_watermark: i64) -> Result<(), StorageError> {
        let log_start = self.log_start_offset.get();
        if offset < log_start || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start,
                high_watermark,
            });
        }
        Ok(())
    }

    /// The segment holding `offset` (durable) and its index hint.
    fn read_start(&self, offset: i64) -> ReadStart<D::File> {
        let segments = self.segments.borrow();
        let at = segments.partition_point(|s| s.base_offset <= offset) - 1;
        let segment = &segments[at];
        let hint = segment.index.floor(segment.relative(offset));
        start_at(segment, hint)
    }

    /// From segment `from` on, the first whose max timestamp reaches
    /// `timestamp`, with a start position from its time index.
    fn timestamp_start(
        &self,
        from: usize,
        timestamp: i64,
        high_watermark: i64,
    ) -> Option<(usize, ReadStart<D::File>)> {
        let segments = self.segments.borrow();
        let found = segments.iter().enumerate().skip(from).find(|(_, s)| {
            s.max_timestamp >= timestamp && s.base_offset < high_watermark && s.file.is_some()
        });
        let (at, segment) = found?;
        let hint = match segment.time_index.last_before(timestamp) {
            Some(relative) => segment.index.floor(relative),
            None => None,
        };
        Some((at, start_at(segment, hint)))
    }

    fn missing(&self, start: &ReadStart<D::File>, offset: i64) -> StorageError {
        StorageError::Corrupt {
            path: start.path.clone(),
            position: start.position,
            reason: format!("no valid batch holds durable offset {offset}"),
        }
    }
}

fn start_at<D: Disk>(segment: &Segment<D>, hint: Option<(u32, u32)>) -> ReadStart<D::File> {
    let (offset, position) = match hint {
        Some((relative, position)) => (
            segment.base_offset + i64::from(relative),
            u64::from(position),
        ),
        None => (segment.base_offset, 0),
    };
    ReadStart {
        file: segment
            .file
            .clone()
            .expect("a segment with durable data has a file"),
        path: segment.path.clone(),
        position,
        offset,
        limit: segment.durable_bytes,
    }
}

/// Hops headers from `start` to the first batch satisfying `wanted`.
async fn find_batch<F: super::disk::DiskFile>(
    window: &mut FileWindow<'_, F>,
    start: &ReadStart<F>,
    mut wanted: impl FnMut(&BatchInfo) -> bool,
) -> Result<Option<(u64, BatchInfo)>, StorageError> {
    let rule = ScanRule {
        limit: start.limit,
        expected_offset: Some(start.offset),
        verify_crc: false,
        read_ahead: READ_CHUNK_BYTES,
    };
    let mut found = None;
    scan_batches(
        window,
        start.position,
        rule,
        |position, batch| match wanted(batch) {
            true => {
                found = Some((position, *batch));
                ControlFlow::Break(())
            }
            false => ControlFlow::Continue(()),
        },
    )
    .await?;
    Ok(found)
}

/// Length of the prefix of `bytes` made of whole batches below
/// `high_watermark`, each CRC-checked and each starting at the offset after
/// the previous one (the first at `first_offset`): baseOffset is outside the
/// CRC, so density is what catches a flipped offset. A bad first batch is an
/// error.
fn whole_batches(
    bytes: &[u8],
    first_offset: i64,
    high_watermark: i64,
    path: &std::path::Path,
    position: u64,
) -> Result<usize, StorageError> {
    let mut keep = 0;
    let mut expected = first_offset;
    for batch in batches(bytes) {
        let Ok(batch) = batch else { break };
        if batch.header.base_offset() >= high_watermark && batch.header.base_offset() == expected {
            break;
        }
        let checked = match batch.header.base_offset() == expected {
            true => check_crc(batch.bytes).map_err(|e| e.to_string()),
            false => Err(format!(
                "non-contiguous: expected offset {expected}, found {}",
                batch.header.base_offset()
            )),
        };
        if let Err(reason) = checked {
            if keep == 0 {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    position,
                    reason,
                });
            }
            break;
        }
        expected = batch.header.last_offset().saturating_add(1);
        keep += batch.bytes.len();
    }
    Ok(keep)
}
