//! Framing: walking the v2 batches laid back to back in a buffer
//! ([`batches`]) and checking one batch's length and CRC.

use super::*;

/// Checks the CRC32C of one whole batch at the start of `batch`.
///
/// `batch` must hold at least the batch's `total_len` bytes; bytes beyond it
/// are ignored.
pub fn check_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total_len = checked_total_len(header, 0, batch.len())?;
    let computed = crc32c::crc32c(&batch[CRC_START..total_len]);
    if computed != header.crc() {
        return Err(BatchError::CrcMismatch {
            stored: header.crc(),
            computed,
        });
    }
    Ok(())
}

/// `header.total_len()`, checked against the header size and the bytes
/// `available` from `position`.
pub(super) fn checked_total_len(
    header: &BatchHeader,
    position: usize,
    available: usize,
) -> Result<usize, BatchError> {
    let total_len = header.total_len();
    if total_len < BATCH_HEADER_LEN {
        return Err(BatchError::InvalidLength {
            position,
            batch_length: header.batch_length(),
        });
    }
    if total_len > available {
        return Err(BatchError::Truncated {
            position,
            needed: total_len,
            available,
        });
    }
    Ok(total_len)
}

/// One batch found by [`batches`].
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// Byte position of the batch in the buffer iterated.
    pub position: usize,
    /// Its header.
    pub header: &'a BatchHeader,
    /// The whole batch, header included (`header.total_len()` bytes).
    pub bytes: &'a [u8],
}

/// Iterator over v2 batches laid back to back; see [`batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

/// Iterates over the v2 batches laid back to back in `buf`.
///
/// Each item is checked for framing only: enough bytes for the header,
/// magic 2, and a declared length between [`BATCH_HEADER_LEN`] and the bytes
/// left. CRCs are not checked (use [`check_crc`], or [`validate_produce`]).
/// After the first `Err` the iterator yields `None`, so recovery can stop at
/// the first torn batch (its `position` says where to truncate).
pub fn batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        buf,
        position: 0,
        failed: false,
    }
}

impl<'a> Batches<'a> {
    /// Byte position of the next batch: after the last one yielded `Ok`.
    pub fn position(&self) -> usize {
        self.position
    }

    fn next_batch(&self) -> Result<BatchRef<'a>, BatchError> {
        let position = self.position;
        let rest = &self.buf[position..];
        if rest.len() < BATCH_HEADER_LEN {
            // A legacy message can be shorter than a v2 header: name it.
            if let Some(&magic) = rest.get(MAGIC_OFFSET) {
                if magic as i8 != BATCH_MAGIC_V2 {
                    return Err(BatchError::UnsupportedMagic { magic: magic as i8 });
                }
            }
            return Err(BatchError::Truncated {
                position,
                needed: BATCH_HEADER_LEN,
                available: rest.len(),
            });
        }
        let header = BatchHeader::parse(rest)?;
        if header.magic() != BATCH_MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                magic: header.magic(),
            });
        }
        let total_len = checked_total_len(header, position, rest.len())?;
        Ok(BatchRef {
            position,
            header,
            bytes: &rest[..total_len],
        })
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<BatchRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        let item = self.next_batch();
        match &item {
            Ok(batch) => self.position += batch.bytes.len(),
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

impl std::iter::FusedIterator for Batches<'_> {}
