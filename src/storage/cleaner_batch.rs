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
//! - **Transactions** (`cleaner_txn`): a batch of an aborted transaction
//!   goes whole, a committed one is filtered like any other, and a marker
//!   is kept, given a delete horizon, or removed by [`clean_batch`]. A
//!   batch whose records all go keeps its header if it has a producer
//!   (sequence numbers), with the transactional bit cleared; otherwise it
//!   joins a run written as one empty batch with no producer.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::protocol::batch::{
    rebuild_batch, rebuild_batch_body, BatchHeader, ATTRIBUTES_OFFSET, ATTR_COMPRESSION_MASK,
    ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_TRANSACTIONAL, BASE_SEQUENCE_OFFSET,
    BASE_TIMESTAMP_OFFSET, BATCH_HEADER_LEN, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET,
};
use crate::protocol::compression::Codec;
use crate::protocol::records::{rebase_record, records_in, RecordView};

use super::cleaner_txn::{horizon_of, AbortedLookup, MarkerFate, TxnTracker};

/// Largest decompressed records section the cleaner handles per batch, in
/// bytes. Kafka's batches are at most `max.message.bytes` (1 MiB by
/// default) compressed; 64 MiB allows a ratio of 64 there while bounding
/// what one hostile batch can make the shard allocate.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 << 20;

/// Latest offset per key over the mapped segments.
pub(super) type OffsetMap = HashMap<Vec<u8>, i64>;

/// A batch whose records the cleaner can filter.
pub(super) struct Decoded<'a> {
    pub(super) header: &'a BatchHeader,
    codec: Option<Codec>,
    body: Cow<'a, [u8]>,
}

/// Reads `batch` for filtering. `Ok(None)`: a control batch (markers
/// have their own rules); `Err`: kept whole because it cannot be read (the
/// reason, for the log).
pub(super) fn decode(batch: &[u8]) -> Result<Option<Decoded<'_>>, String> {
    let header = BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    if header.is_control() {
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
        horizon_of(self.header)
    }
}

/// What one pass applies to every batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'m> {
    pub(super) map: &'m OffsetMap,
    pub(super) aborted: &'m AbortedLookup,
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
            head[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .copy_from_slice(&attributes.to_be_bytes());
            head[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
                .copy_from_slice(&horizon.to_be_bytes());
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
        // written uncompressed, as Kafka's cleaner writes empty headers,
        // and is no longer transactional (see `cleaner_txn`).
        _ if count == 0 => {
            clear_attributes(&mut head, ATTR_COMPRESSION_MASK | ATTR_TRANSACTIONAL);
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

/// Turns off attribute `bits` of a batch header (one about to hold no
/// records: codec, transactional, control).
fn clear_attributes(head: &mut [u8], bits: i16) {
    let attributes = i16::from_be_bytes([head[ATTRIBUTES_OFFSET], head[ATTRIBUTES_OFFSET + 1]]);
    head[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
        .copy_from_slice(&(attributes & !bits).to_be_bytes());
}

/// The header of `batch` holding no records and no producer: a removed
/// marker's offsets, or a run of emptied batches, carry no producer state.
fn neutral_header(batch: &[u8]) -> Vec<u8> {
    let mut head = batch[..BATCH_HEADER_LEN].to_vec();
    clear_attributes(
        &mut head,
        ATTR_COMPRESSION_MASK | ATTR_TRANSACTIONAL | ATTR_CONTROL,
    );
    head[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&(-1i64).to_be_bytes());
    head[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2].copy_from_slice(&(-1i16).to_be_bytes());
    head[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
    head
}

/// `batch` with no records, keeping its producer fields (sequence numbers)
/// but not the transactional bit.
fn emptied(batch: &[u8], header: &BatchHeader) -> Vec<u8> {
    let mut head = batch[..BATCH_HEADER_LEN].to_vec();
    clear_attributes(&mut head, ATTR_COMPRESSION_MASK | ATTR_TRANSACTIONAL);
    rebuild_batch(&head, &[], header.last_offset_delta())
}

/// A control batch with its delete horizon set to `horizon` (the record's
/// timestamp is kept). `None` if it cannot be re-encoded.
fn with_horizon(batch: &[u8], header: &BatchHeader, horizon: i64) -> Option<Vec<u8>> {
    let body = batch.get(BATCH_HEADER_LEN..header.total_len())?;
    let decoded = Decoded {
        header,
        codec: None,
        body: Cow::Borrowed(body),
    };
    let records = decoded.records()?;
    let plan = Plan {
        keep: vec![true; records.len()],
        records,
        new_horizon: Some(horizon),
    };
    rewrite(batch, &decoded, &plan)
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
            out.extend_from_slice(&rebuild_batch(&neutral_header(&header), &[], delta));
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

/// Where a rewrite puts its output; absent when a pass only checks
/// whether a segment changes.
pub(super) struct Sink<'s> {
    pub(super) run: &'s mut EmptyRun,
    pub(super) out: &'s mut Vec<u8>,
    /// Logs a batch kept whole because it cannot be read.
    pub(super) warn: &'s dyn Fn(i64, &str),
    /// Markers removed from the segment (their index entries go).
    pub(super) removed_markers: &'s mut Vec<i64>,
}

impl Sink<'_> {
    fn keep(&mut self, batch: &[u8]) {
        self.run.flush(self.out);
        self.out.extend_from_slice(batch);
    }

    fn put(&mut self, bytes: &[u8]) {
        self.run.flush(self.out);
        self.out.extend_from_slice(bytes);
    }
}

/// What [`clean_batch`] did to one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Cleaned {
    /// The output differs from the batch.
    pub(super) changed: bool,
    /// Records dropped (a removed marker counts as one).
    pub(super) dropped: u64,
}

/// Decides the cleaned form of `batch` under `rules`, updating `txns`, and
/// appends it to `sink` if there is one. Checking and rewriting call it
/// with the same tracker state and so decide alike.
pub(super) fn clean_batch(
    batch: &[u8],
    rules: &Rules<'_>,
    txns: &mut TxnTracker,
    sink: Option<&mut Sink<'_>>,
) -> Cleaned {
    let header = BatchHeader::parse(batch).expect("reader yields whole batches");
    let unchanged = Cleaned::default();
    if header.is_control() {
        return clean_marker(batch, header, rules, txns, sink);
    }
    if rules.aborted.holds(header) {
        txns.on_data(header, false);
        if let Some(s) = sink {
            s.put(&emptied(batch, header));
        }
        return Cleaned {
            changed: true,
            dropped: u64::try_from(header.records_count()).unwrap_or(0),
        };
    }
    let decoded = match decode(batch) {
        Ok(Some(d)) => d,
        Ok(None) => unreachable!("control batches are handled above"),
        Err(reason) => {
            txns.on_data(header, header.records_count() > 0);
            if let Some(s) = sink {
                (s.warn)(header.base_offset(), &reason);
                s.keep(batch);
            }
            return unchanged;
        }
    };
    let plan = plan(&decoded, rules);
    let kept = plan.keep.iter().filter(|k| **k).count();
    txns.on_data(header, kept > 0);
    if !plan.changes() {
        if let Some(s) = sink {
            s.keep(batch);
        }
        return unchanged;
    }
    let cleaned = Cleaned {
        changed: true,
        dropped: plan.dropped(),
    };
    let Some(s) = sink else {
        return cleaned;
    };
    if kept == 0 && header.producer_id() < 0 {
        s.run.extend(batch, header, s.out);
        return cleaned;
    }
    match rewrite(batch, &decoded, &plan) {
        Some(rewritten) => {
            s.put(&rewritten);
            cleaned
        }
        None => {
            s.keep(batch);
            unchanged
        }
    }
}

/// [`clean_batch`] for a control batch (see `cleaner_txn`).
fn clean_marker(
    batch: &[u8],
    header: &BatchHeader,
    rules: &Rules<'_>,
    txns: &mut TxnTracker,
    sink: Option<&mut Sink<'_>>,
) -> Cleaned {
    let fate = txns.on_marker(batch, header, rules.now_ms, rules.delete_retention_ms);
    let output = match fate {
        MarkerFate::Keep | MarkerFate::Horizon { set: None } => None,
        MarkerFate::Remove => Some(None),
        MarkerFate::Horizon { set: Some(h) } => with_horizon(batch, header, h).map(Some),
    };
    let Some(output) = output else {
        if let Some(s) = sink {
            s.keep(batch);
        }
        return Cleaned::default();
    };
    let removed = output.is_none();
    if let Some(s) = sink {
        match output {
            Some(marked) => s.put(&marked),
            None => {
                s.run.extend(batch, header, s.out);
                s.removed_markers.push(header.base_offset());
            }
        }
    }
    Cleaned {
        changed: true,
        dropped: u64::from(removed),
    }
}
