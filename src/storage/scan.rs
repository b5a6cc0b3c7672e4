//! Reading batches back from a segment file: an aligned read window, and a
//! scanner that walks batch headers checking framing, density and
//! (optionally) CRC32C. Used by recovery, by `read` to find the batch holding
//! an offset, and by the timestamp lookup.
//!
//! Nothing here trusts the file: every length and offset is checked before
//! use, arithmetic is checked, and a bad batch ends the scan with a reason
//! instead of a panic.

use std::ops::ControlFlow;
use std::path::Path;

use crate::protocol::batch::{check_crc, BatchHeader, BATCH_HEADER_LEN, BATCH_MAGIC_V2};

use super::disk::{align_down, align_up, DiskFile};
use super::error::StorageError;
use super::segment::BatchInfo;

/// Bytes read at a time when hopping over batch headers (fetch, timestamp
/// lookup): a few index intervals.
pub const READ_CHUNK_BYTES: usize = 64 << 10;
/// Bytes read at a time by recovery, which reads every byte it checks.
pub const RECOVERY_READ_BYTES: usize = 1 << 20;

/// A block-aligned read buffer over a file, refilled on demand.
pub(crate) struct FileWindow<'a, F: DiskFile> {
    file: &'a F,
    path: &'a Path,
    /// File position of the first byte of `bytes` (aligned).
    start: u64,
    bytes: Option<F::ReadBuffer>,
}

impl<'a, F: DiskFile> FileWindow<'a, F> {
    /// An empty window over `file`.
    pub(crate) fn new(file: &'a F, path: &'a Path) -> Self {
        Self {
            file,
            path,
            start: 0,
            bytes: None,
        }
    }

    /// Bytes `[pos, pos + len)`, reading (with `read_ahead` bytes of
    /// lookahead) unless already buffered. `None` if the file is shorter.
    pub(crate) async fn get(
        &mut self,
        pos: u64,
        len: usize,
        read_ahead: usize,
    ) -> Result<Option<&[u8]>, StorageError> {
        let end = pos + len as u64;
        if !self.covers(pos, end) {
            let start = align_down(pos);
            let want = align_up(pos + len.max(read_ahead) as u64) - start;
            let read = self.file.read_at(start, want as usize).await;
            self.bytes = Some(read.map_err(StorageError::io_at("read", self.path, Some(start)))?);
            self.start = start;
        }
        if !self.covers(pos, end) {
            return Ok(None);
        }
        let bytes = self.bytes.as_deref().expect("window filled above");
        let from = (pos - self.start) as usize;
        Ok(Some(&bytes[from..from + len]))
    }

    fn covers(&self, pos: u64, end: u64) -> bool {
        match &self.bytes {
            Some(b) => pos >= self.start && end <= self.start + b.len() as u64,
            None => false,
        }
    }
}

/// Checks a header's framing and copies out what the log needs.
pub(crate) fn batch_info(header_bytes: &[u8]) -> Result<BatchInfo, String> {
    let header = BatchHeader::parse(header_bytes).map_err(|e| e.to_string())?;
    if header.magic() != BATCH_MAGIC_V2 {
        return Err(format!("bad magic {}", header.magic()));
    }
    if header.batch_length() < (BATCH_HEADER_LEN - 12) as i32 {
        return Err(format!("bad batch length {}", header.batch_length()));
    }
    let delta = header.last_offset_delta();
    let last_offset = match delta >= 0 {
        true => header.base_offset().checked_add(i64::from(delta)),
        false => None,
    };
    let Some(last_offset) = last_offset.filter(|_| header.base_offset() >= 0) else {
        return Err(format!(
            "bad offsets: base {} delta {delta}",
            header.base_offset()
        ));
    };
    Ok(BatchInfo {
        base_offset: header.base_offset(),
        last_offset,
        total_len: header.total_len() as u64,
        max_timestamp: header.max_timestamp(),
        leader_epoch: header.partition_leader_epoch(),
    })
}

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanStop {
    /// Reached the scan limit exactly at a batch boundary.
    End,
    /// Found zero bytes where a header would be: preallocated space, the
    /// normal end of an active segment.
    Zeros,
    /// Found something that is not the next valid batch.
    Bad(String),
    /// The visitor asked to stop (at `ScanEnd::position`).
    Visitor,
}

/// Where and why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Position after the last batch accepted (or of the batch the visitor
    /// stopped at).
    pub(crate) position: u64,
    /// The reason.
    pub(crate) stop: ScanStop,
}

/// What a scan checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanRule {
    /// Stop before this file position (logical end known, or file size).
    pub(crate) limit: u64,
    /// Base offset the first batch must have (then each next one must be
    /// the previous last offset + 1); `None` skips the density check.
    pub(crate) expected_offset: Option<i64>,
    /// Verify CRC32C of every batch (reads every byte).
    pub(crate) verify_crc: bool,
    /// Read-ahead per refill of the window.
    pub(crate) read_ahead: usize,
}

/// Walks batches from `from`, calling `visit(position, batch)` for each
/// valid one until the visitor breaks, the limit is reached, or a batch is
/// bad. Never panics on file content.
pub(crate) async fn scan_batches<F: DiskFile>(
    window: &mut FileWindow<'_, F>,
    from: u64,
    rule: ScanRule,
    mut visit: impl FnMut(u64, &BatchInfo) -> ControlFlow<()>,
) -> Result<ScanEnd, StorageError> {
    let mut position = from;
    let mut expected = rule.expected_offset;
    loop {
        let info = match next_batch(window, position, expected, rule).await? {
            Ok(info) => info,
            Err(stop) => return Ok(ScanEnd { position, stop }),
        };
        if visit(position, &info).is_break() {
            let stop = ScanStop::Visitor;
            return Ok(ScanEnd { position, stop });
        }
        position += info.total_len;
        expected = Some(info.last_offset + 1);
    }
}

/// Reads and checks the batch at `position`; `Err(stop)` ends the scan.
async fn next_batch<F: DiskFile>(
    window: &mut FileWindow<'_, F>,
    position: u64,
    expected: Option<i64>,
    rule: ScanRule,
) -> Result<Result<BatchInfo, ScanStop>, StorageError> {
    if position >= rule.limit {
        return Ok(Err(ScanStop::End));
    }
    let header_len = (rule.limit - position).min(BATCH_HEADER_LEN as u64) as usize;
    let Some(header) = window.get(position, header_len, rule.read_ahead).await? else {
        return Ok(Err(ScanStop::Bad("file shorter than expected".into())));
    };
    if header.iter().all(|&b| b == 0) {
        return Ok(Err(ScanStop::Zeros));
    }
    if header_len < BATCH_HEADER_LEN {
        return Ok(Err(ScanStop::Bad(format!(
            "{header_len} bytes of a torn header"
        ))));
    }
    let info = match batch_info(header) {
        Ok(info) => info,
        Err(reason) => return Ok(Err(ScanStop::Bad(reason))),
    };
    if let Some(expected) = expected.filter(|&e| e != info.base_offset) {
        let reason = format!(
            "non-contiguous: expected offset {expected}, found {}",
            info.base_offset
        );
        return Ok(Err(ScanStop::Bad(reason)));
    }
    if info.total_len > rule.limit - position {
        let reason = format!(
            "torn batch: {} bytes, {} left",
            info.total_len,
            rule.limit - position
        );
        return Ok(Err(ScanStop::Bad(reason)));
    }
    if rule.verify_crc {
        let len = info.total_len as usize;
        let Some(bytes) = window.get(position, len, rule.read_ahead).await? else {
            return Ok(Err(ScanStop::Bad("file shorter than batch".into())));
        };
        if let Err(e) = check_crc(bytes) {
            return Ok(Err(ScanStop::Bad(e.to_string())));
        }
    }
    Ok(Ok(info))
}
