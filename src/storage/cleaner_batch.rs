//! One batch through the cleaner: reading its records (decompressing if
//! needed), deciding which survive, and writing its cleaned form.
//!
//! - **Compressed batches** are decompressed (at most
//!   [`DECOMPRESSED_BATCH_BYTES_MAX`]) to read keys, and a rewritten batch
//!   is compressed again with the codec and framing it came in
//!   (`protocol::compression`). A batch that is over the limit or does
//!   not decode is kept whole, with a log line: keeping data is always safe
//!   (its records merely stay), dropping it never is.
//! - **Header**: a rewrite keeps base offset, last offset delta (so the
//!   log stays dense and offsets never change), producer id, epoch, base
//!   sequence, max timestamp and attributes; count, length and CRC are
//!   recomputed.
//! - **Tombstones age from cleaning time** (Kafka's KIP-534): the first
//!   time a batch holding a surviving tombstone is cleaned, its base
//!   timestamp becomes the delete horizon, `now + delete.retention.ms`, and
//!   attribute bit 6 is set; records are re-encoded with timestamp deltas
//!   against the new base so their timestamps do not change. A later pass
//!   after the horizon drops the batch's tombstones. So a consumer that
//!   read up to a tombstone's offset within `delete.retention.ms` of it
//!   being cleaned sees it, whatever the producer's clock said.
//! - Transactional and control batches are kept whole (aborted data is
//!   not removed; see ARCHITECTURE.md).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::protocol::batch::{rebuild_batch, rebuild_batch_body, BatchHeader, BATCH_HEADER_LEN};
use crate::protocol::compression::Codec;
use crate::protocol::records::{rebase_record, records_in, RecordView};

/// Largest decompressed records section the cleaner handles per batch, in
/// bytes. Kafka's batches are at most `max.message.bytes` (1 MiB by
/// default) compressed; 64 MiB allows a ratio of 64 there while bounding
/// what one hostile batch can make the shard allocate.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 << 20;

/// Attributes bit 6: the base timestamp holds the delete horizon.
const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;

/// Latest offset per key over the mapped segments.
pub(super) type OffsetMap = HashMap<Vec<u8>, i64>;

/// A batch whose records the cleaner can filter.
pub(super) struct Decoded<'a> {
    pub(super) header: &'a BatchHeader,
    codec: Option<Codec>,
    body: Cow<'a, [u8]>,
}

/// Reads `batch` for filtering. `Ok(None)`: kept whole by rule
/// (transactional or control); `Err`: kept whole because it cannot be
/// read (the reason, for the log).
pub(super) fn decode(batch: &[u8]) -> Result<Option<Decoded<'_>>, String> {
    let header = BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    if header.is_control() || header.is_transactional() {
        return Ok(None);
    }
    let raw = batch
        .get(BATCH_HEADER_LEN..header.total_len())
        .ok_or("short batch")?;
    let codec = Codec::detect(header.compression(), raw).map_err(|e| e.to_string())?;
    let body = match codec {
        None => Cow::Borrowed(raw),
        Some(c) => Cow::Owned(
            c.decompress(raw, DECOMPRESSED_BATCH_BYTES_MAX)
                .map_err(|e| e.to_string())?,
        ),
    };
    let decoded = Decoded {
        header,
        codec,
        body,
    };
    match decoded.records() {
        Some(_) => Ok(Some(decoded)),
        None => Err("records do not parse".into()),
    }
}

impl Decoded<'_> {
    pub(super) fn records(&self) -> Option<Vec<RecordView<'_>>> {
        records_in(self.header, &self.body)
    }

    /// The delete horizon set on this batch by an earlier cleaning.
    pub(super) fn delete_horizon(&self) -> Option<i64> {
        (self.header.attributes() & ATTR_DELETE_HORIZON != 0).then(|| self.header.base_timestamp())
    }
}

/// What one pass applies to every batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'m> {
    pub(super) map: &'m OffsetMap,
    pub(super) now_ms: i64,
    pub(super) delete_retention_ms: i64,
}

/// The cleaning plan of one decoded batch.
pub(super) struct Plan<'r> {
    pub(super) records: Vec<RecordView<'r>>,
    pub(super) keep: Vec<bool>,
    /// Set when surviving tombstones have no delete horizon yet.
    pub(super) new_horizon: Option<i64>,
}

impl Plan<'_> {
    /// Whether the rewrite differs from the batch.
    pub(super) fn changes(&self) -> bool {
        self.new_horizon.is_some() || self.keep.iter().any(|k| !k)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.keep.iter().filter(|k| !**k).count() as u64
    }
}

/// Decides which records of `decoded` survive under `rules`.
pub(super) fn plan<'r>(decoded: &'r Decoded<'_>, rules: &Rules<'_>) -> Plan<'r> {
    let records = decoded.records().unwrap_or_default();
    let horizon = decoded.delete_horizon();
    let expired = horizon.is_some_and(|h| h <= rules.now_ms);
    let keep: Vec<bool> = records
        .iter()
        .map(|r| keep_record(rules.map, r, expired))
        .collect();
    let tombstone_kept = records
        .iter()
        .zip(&keep)
        .any(|(r, k)| *k && r.value.is_none());
    let new_horizon = (tombstone_kept && horizon.is_none())
        .then(|| rules.now_ms.saturating_add(rules.delete_retention_ms));
    Plan {
        records,
        keep,
        new_horizon,
    }
}

/// Whether a record survives: the latest of its key, and not a tombstone
/// whose batch's delete horizon has passed. Keyless records (written
/// before the topic was compacted) stay.
fn keep_record(map: &OffsetMap, record: &RecordView<'_>, tombstones_expired: bool) -> bool {
    let Some(key) = record.key else {
        return true;
    };
    match map.get(key) {
        Some(&latest) if latest > record.offset => false,
        Some(&latest) if latest == record.offset => !(record.value.is_none() && tombstones_expired),
        _ => true,
    }
}

/// The rewritten batch for `plan` (some records kept, or a horizon to
/// set). `None` if it cannot be encoded (then the batch is kept whole).
pub(super) fn rewrite(batch: &[u8], decoded: &Decoded<'_>, plan: &Plan<'_>) -> Option<Vec<u8>> {
    let header = decoded.header;
    let mut head = batch[..BATCH_HEADER_LEN].to_vec();
    let kept = plan
        .records
        .iter()
        .zip(&plan.keep)
        .filter(|(_, k)| **k)
        .map(|(r, _)| r.raw);
    let body: Vec<u8> = match plan.new_horizon {
        Some(horizon) => {
            let attributes = header.attributes() | ATTR_DELETE_HORIZON;
            head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
            head[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&horizon.to_be_bytes());
            let shift = header.base_timestamp().checked_sub(horizon)?;
            let mut body = Vec::new();
            for raw in kept {
                body.extend_from_slice(&rebase_record(raw, shift)?);
            }
            body
        }
        None => kept.flatten().copied().collect(),
    };
    let count = plan.keep.iter().filter(|k| **k).count() as i32;
    let body = match decoded.codec {
        // An emptied batch (kept for its producer's sequence numbers) is
        // written uncompressed, as Kafka's cleaner writes empty headers.
        Some(_) if count == 0 => {
            clear_codec(&mut head);
            body
        }
        Some(codec) => match codec.compress(&body) {
            Ok(compressed) => compressed,
            Err(e) => {
                tracing::warn!(base_offset = header.base_offset(), error = %e,
                    "cleaner could not recompress a batch; kept whole");
                return None;
            }
        },
        None => body,
    };
    Some(rebuild_batch_body(
        &head,
        &[&body],
        count,
        header.last_offset_delta(),
    ))
}

/// Turns off the codec bits of a batch header about to hold no records.
fn clear_codec(head: &mut [u8]) {
    let attributes = i16::from_be_bytes([head[ATTRIBUTES_AT], head[ATTRIBUTES_AT + 1]]);
    head[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&(attributes & !0x07).to_be_bytes());
}

/// A run of batches whose records all went, to be written as one empty
/// batch covering their offsets.
#[derive(Default)]
pub(super) struct EmptyRun {
    /// Header of the run's first batch, and the run's last offset.
    first: Option<(Vec<u8>, i64)>,
}

impl EmptyRun {
    pub(super) fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some((header, last_offset)) = self.first.take() {
            let base = BatchHeader::parse(&header)
                .expect("header kept whole")
                .base_offset();
            let delta = i32::try_from(last_offset - base).expect("run limited to i32 offsets");
            let mut head = header;
            clear_codec(&mut head);
            out.extend_from_slice(&rebuild_batch(&head, &[], delta));
        }
    }

    pub(super) fn extend(&mut self, batch: &[u8], header: &BatchHeader, out: &mut Vec<u8>) {
        let last = header.last_offset();
        if let Some((first, _)) = &self.first {
            let base = BatchHeader::parse(first)
                .expect("header kept whole")
                .base_offset();
            if last - base > i64::from(i32::MAX) {
                self.flush(out);
            }
        }
        match &mut self.first {
            Some((_, run_last)) => *run_last = last,
            None => self.first = Some((batch[..BATCH_HEADER_LEN].to_vec(), last)),
        }
    }
}

/// Appends the cleaned form of `batch` to `out`; returns records dropped.
/// `warn` names the segment in the log line for a batch kept because it
/// cannot be read.
pub(super) fn rewrite_batch(
    batch: &[u8],
    rules: &Rules<'_>,
    run: &mut EmptyRun,
    out: &mut Vec<u8>,
    warn: &dyn Fn(i64, &str),
) -> u64 {
    let header = BatchHeader::parse(batch).expect("reader yields whole batches");
    let decoded = match decode(batch) {
        Ok(Some(d)) => d,
        Ok(None) => {
            run.flush(out);
            out.extend_from_slice(batch);
            return 0;
        }
        Err(reason) => {
            warn(header.base_offset(), &reason);
            run.flush(out);
            out.extend_from_slice(batch);
            return 0;
        }
    };
    let plan = plan(&decoded, rules);
    if !plan.changes() {
        run.flush(out);
        out.extend_from_slice(batch);
        return 0;
    }
    let kept = plan.keep.iter().filter(|k| **k).count();
    if kept == 0 && header.producer_id() < 0 {
        run.extend(batch, header, out);
        return plan.dropped();
    }
    run.flush(out);
    match rewrite(batch, &decoded, &plan) {
        Some(rewritten) => {
            out.extend_from_slice(&rewritten);
            plan.dropped()
        }
        None => {
            out.extend_from_slice(batch);
            0
        }
    }
}
