//! Hand-written FetchResponse (v4-16) encoder that never copies record
//! bytes.
//!
//! Why by hand: the `kafka-protocol` crate encodes `records` into the one
//! response buffer, i.e. it copies every fetched byte once more. This writer
//! emits the response as [`ResponseParts`]: the encoded frame prefix,
//! response header and per-partition metadata live in one small buffer, and
//! between its pieces sit the record slices exactly as the partition owner
//! returned them (`Bytes` views of the tail cache or of a disk read). The
//! connection sends the parts with one vectored write.
//!
//! The encoding is Kafka's schema for FetchResponse and is tested
//! byte-for-byte against the crate's encoder for every served version
//! (tests below). Version rules mirror the crate's exactly:
//! - `error_code`, `session_id`: v7+; a non-zero `session_id` below v7 is an
//!   error (the crate refuses it), an `error_code` below v7 is dropped;
//! - topic name up to v12 (compact from v12), topic id from v13;
//! - `log_start_offset`: v5+ (dropped below);
//! - `preferred_read_replica`: v11+; anything but -1 below v11 is an error;
//! - flexible (compact lengths, tagged-field sections) from v12. This
//!   writer emits a partition's DivergingEpoch (tag 0, KIP-595) and
//!   CurrentLeader (tag 1) from v12, and the response's NodeEndpoints
//!   (tag 0, KIP-951) from v16; not SnapshotId (tag 2), which only KRaft's
//!   own fetches use. Like the crate, it drops these tagged fields from
//!   versions that have no place for them.
//! - a response header v1 (with an empty tagged-field section) from v12.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use crate::protocol::frame::{FRAME_BYTES_MAX, FRAME_SIZE_PREFIX_BYTES};
pub use crate::protocol::record_slices::{BatchExtent, FileSlice, RecordSlices, Slice};

/// Lowest FetchResponse version this writer encodes.
pub const FETCH_VERSION_MIN: i16 = 4;
/// Highest FetchResponse version this writer encodes.
pub const FETCH_VERSION_MAX: i16 = 16;
/// First flexible (compact, tagged fields) version.
const FLEXIBLE_VERSION_MIN: i16 = 12;
/// First version with the response's NodeEndpoints (KIP-951).
const NODE_ENDPOINTS_VERSION_MIN: i16 = 16;
/// Metadata bytes per partition the writer reserves up front (a guess that
/// avoids regrowth for the common case; growth is still correct).
const PARTITION_METADATA_BYTES_ESTIMATE: usize = 64;

/// Why a response could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchWriteError {
    /// The version is outside [`FETCH_VERSION_MIN`]..=[`FETCH_VERSION_MAX`].
    #[error("FetchResponse v{version} is not served (v{FETCH_VERSION_MIN}-{FETCH_VERSION_MAX})")]
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
    },
    /// A field holds a non-default value the version cannot carry.
    #[error("FetchResponse v{version} cannot carry {field} (set to a non-default value)")]
    FieldNotInVersion {
        /// The field's schema name.
        field: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// The frame would exceed what its i32 size prefix can express.
    #[error("FetchResponse of {size} bytes does not fit a Kafka frame")]
    TooLarge {
        /// Header plus body size, in bytes.
        size: usize,
    },
}

/// One aborted transaction in a partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The transactional producer.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// One partition of a FetchResponse. Defaults match the crate's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOut {
    /// Partition index.
    pub partition_index: i32,
    /// Kafka error code, 0 for none.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (-1 unknown).
    pub last_stable_offset: i64,
    /// Log start offset (-1 unknown; v5+).
    pub log_start_offset: i64,
    /// Aborted transactions; `None` encodes null (read_uncommitted).
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    /// Preferred read replica (-1 none; v11+).
    pub preferred_read_replica: i32,
    /// Record batches; `None` encodes null.
    pub records: Option<RecordSlices>,
    /// v12+: `(epoch, end_offset)` where the fetcher's log diverges from
    /// this one (tagged field 0); `None` is not written.
    pub diverging_epoch: Option<(i32, i64)>,
    /// v12+: `(leader_id, leader_epoch)` of the partition's leader as this
    /// broker knows it (tagged field 1; KIP-951 fills it from v16);
    /// `None` is not written.
    pub current_leader: Option<(i32, i32)>,
}

impl Default for PartitionOut {
    fn default() -> Self {
        Self {
            partition_index: 0,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: None,
            diverging_epoch: None,
            current_leader: None,
        }
    }
}

/// One topic of a FetchResponse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicOut {
    /// Name (written up to v12).
    pub name: TopicName,
    /// Id (written from v13).
    pub topic_id: Uuid,
    /// Partitions in request order.
    pub partitions: Vec<PartitionOut>,
}

/// A whole FetchResponse body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchResponseOut {
    /// Throttle time in ms.
    pub throttle_time_ms: i32,
    /// Top-level error (v7+).
    pub error_code: i16,
    /// Fetch session id (v7+; 0 = no session).
    pub session_id: i32,
    /// Topics in request order.
    pub topics: Vec<TopicOut>,
    /// v16+: addresses of the leaders named by partitions' CurrentLeader
    /// (tagged field 0, KIP-951); empty is not written.
    pub node_endpoints: Vec<NodeEndpointOut>,
}

/// A broker's address in a FetchResponse's NodeEndpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpointOut {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack, `None` encodes null.
    pub rack: Option<String>,
}

/// An encoded response frame as parts to send back to back: the first part
/// starts with the 4-byte size prefix. Record slices (memory or file
/// ranges) are shared, not copied.
#[derive(Debug, Clone, Default)]
pub struct ResponseParts {
    parts: Vec<Slice>,
    frame_bytes: usize,
}

impl ResponseParts {
    /// The parts, in send order.
    pub fn parts(&self) -> &[Slice] {
        &self.parts
    }

    /// Takes the parts.
    pub fn into_parts(self) -> Vec<Slice> {
        self.parts
    }

    /// Bytes of the whole frame, size prefix included.
    pub fn total_bytes(&self) -> usize {
        FRAME_SIZE_PREFIX_BYTES + self.frame_bytes
    }

    /// The frame as one buffer (copies, reads file parts). Compiled for
    /// tests only: a file that cannot be read panics.
    #[cfg(test)]
    pub fn to_contiguous(&self) -> bytes::Bytes {
        let mut out = BytesMut::with_capacity(self.total_bytes());
        for p in &self.parts {
            match p {
                Slice::Mem(b) => out.extend_from_slice(b),
                Slice::File(f) => out.extend_from_slice(&f.read_to_bytes().expect("file part")),
            }
        }
        out.freeze()
    }
}

/// Encodes `response` (with its response header) as a size-prefixed frame
/// of parts. See the module doc for the version rules.
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    response: &FetchResponseOut,
) -> Result<ResponseParts, FetchWriteError> {
    check_version(version, response)?;
    let partitions: usize = response.topics.iter().map(|t| t.partitions.len()).sum();
    let mut w = Writer {
        buf: BytesMut::with_capacity(64 + partitions * PARTITION_METADATA_BYTES_ESTIMATE),
        flexible: version >= FLEXIBLE_VERSION_MIN,
        slots: Vec::new(),
        record_bytes: 0,
    };
    w.buf.put_i32(0); // size prefix, patched below
    w.buf.put_i32(correlation_id);
    if ApiKey::Fetch.response_header_version(version) >= 1 {
        w.uvarint(0); // header tagged fields
    }
    w.body(version, response);
    let frame_bytes = w.buf.len() - FRAME_SIZE_PREFIX_BYTES + w.record_bytes;
    if frame_bytes > FRAME_BYTES_MAX {
        return Err(FetchWriteError::TooLarge { size: frame_bytes });
    }
    w.buf[..FRAME_SIZE_PREFIX_BYTES].copy_from_slice(&(frame_bytes as i32).to_be_bytes());
    Ok(w.into_parts(frame_bytes))
}

fn check_version(version: i16, response: &FetchResponseOut) -> Result<(), FetchWriteError> {
    if !(FETCH_VERSION_MIN..=FETCH_VERSION_MAX).contains(&version) {
        return Err(FetchWriteError::UnsupportedVersion { version });
    }
    let not_in = |field| Err(FetchWriteError::FieldNotInVersion { field, version });
    if version < 7 && response.session_id != 0 {
        return not_in("SessionId");
    }
    let partitions = response.topics.iter().flat_map(|t| &t.partitions);
    if version < 11
        && partitions
            .into_iter()
            .any(|p| p.preferred_read_replica != -1)
    {
        return not_in("PreferredReadReplica");
    }
    Ok(())
}

/// Metadata buffer plus where record slices go between its bytes.
struct Writer<'a> {
    buf: BytesMut,
    flexible: bool,
    /// (metadata position, records to insert there).
    slots: Vec<(usize, &'a RecordSlices)>,
    record_bytes: usize,
}

impl<'a> Writer<'a> {
    fn body(&mut self, version: i16, r: &'a FetchResponseOut) {
        self.buf.put_i32(r.throttle_time_ms);
        if version >= 7 {
            self.buf.put_i16(r.error_code);
            self.buf.put_i32(r.session_id);
        }
        self.array_len(Some(r.topics.len()));
        for topic in &r.topics {
            self.topic(version, topic);
        }
        if version >= NODE_ENDPOINTS_VERSION_MIN && !r.node_endpoints.is_empty() {
            self.node_endpoints(&r.node_endpoints);
        } else {
            self.tagged_fields();
        }
    }

    /// The response's tagged-field section holding NodeEndpoints (tag 0):
    /// a compact array of (node id, host, port, rack, empty tagged fields).
    fn node_endpoints(&mut self, endpoints: &[NodeEndpointOut]) {
        const NODE_ENDPOINTS_TAG: u32 = 0;
        let mut field = Writer {
            buf: BytesMut::new(),
            flexible: true,
            slots: Vec::new(),
            record_bytes: 0,
        };
        field.array_len(Some(endpoints.len()));
        for e in endpoints {
            field.buf.put_i32(e.node_id);
            field.string(&e.host);
            field.buf.put_i32(e.port);
            field.nullable_string(e.rack.as_deref());
            field.uvarint(0);
        }
        self.uvarint(1);
        self.uvarint(NODE_ENDPOINTS_TAG);
        self.uvarint(field.buf.len() as u32);
        self.buf.put_slice(&field.buf);
    }

    fn topic(&mut self, version: i16, t: &'a TopicOut) {
        if version <= 12 {
            self.string(&t.name.0);
        }
        if version >= 13 {
            self.buf.put_slice(t.topic_id.as_bytes());
        }
        self.array_len(Some(t.partitions.len()));
        for p in &t.partitions {
            self.partition(version, p);
        }
        self.tagged_fields();
    }

    fn partition(&mut self, version: i16, p: &'a PartitionOut) {
        self.buf.put_i32(p.partition_index);
        self.buf.put_i16(p.error_code);
        self.buf.put_i64(p.high_watermark);
        self.buf.put_i64(p.last_stable_offset);
        if version >= 5 {
            self.buf.put_i64(p.log_start_offset);
        }
        let aborted = p.aborted_transactions.as_ref();
        self.array_len(aborted.map(Vec::len));
        for txn in aborted.into_iter().flatten() {
            self.buf.put_i64(txn.producer_id);
            self.buf.put_i64(txn.first_offset);
            self.tagged_fields();
        }
        if version >= 11 {
            self.buf.put_i32(p.preferred_read_replica);
        }
        self.bytes_len(p.records.as_ref().map(RecordSlices::len));
        if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
            self.slots.push((self.buf.len(), records));
            self.record_bytes += records.len();
        }
        if self.flexible {
            self.partition_tagged_fields(p);
        }
    }

    /// A partition's tagged-field section, tags in ascending order:
    /// DivergingEpoch (tag 0: epoch, end offset) and CurrentLeader (tag 1:
    /// leader id, leader epoch), each with the struct's own empty tagged
    /// fields.
    fn partition_tagged_fields(&mut self, p: &PartitionOut) {
        const DIVERGING_EPOCH_TAG: u32 = 0;
        const DIVERGING_EPOCH_BYTES: u32 = 4 + 8 + 1;
        const CURRENT_LEADER_TAG: u32 = 1;
        const CURRENT_LEADER_BYTES: u32 = 4 + 4 + 1;
        let count = u32::from(p.diverging_epoch.is_some()) + u32::from(p.current_leader.is_some());
        self.uvarint(count);
        if let Some((epoch, end_offset)) = p.diverging_epoch {
            self.uvarint(DIVERGING_EPOCH_TAG);
            self.uvarint(DIVERGING_EPOCH_BYTES);
            self.buf.put_i32(epoch);
            self.buf.put_i64(end_offset);
            self.uvarint(0);
        }
        if let Some((leader_id, leader_epoch)) = p.current_leader {
            self.uvarint(CURRENT_LEADER_TAG);
            self.uvarint(CURRENT_LEADER_BYTES);
            self.buf.put_i32(leader_id);
            self.buf.put_i32(leader_epoch);
            self.uvarint(0);
        }
    }

    fn uvarint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.buf.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.put_u8(value as u8);
    }

    /// Compact: length + 1 (0 = null); classic: i32 (-1 = null).
    fn array_len(&mut self, len: Option<usize>) {
        match (self.flexible, len) {
            (true, None) => self.uvarint(0),
            (true, Some(n)) => self.uvarint(n as u32 + 1),
            (false, None) => self.buf.put_i32(-1),
            (false, Some(n)) => self.buf.put_i32(n as i32),
        }
    }

    /// Same length rules as arrays (bytes and arrays share them).
    fn bytes_len(&mut self, len: Option<usize>) {
        self.array_len(len);
    }

    /// Non-nullable string: compact (length + 1) or i16 length.
    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u32 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }

    /// Nullable string: compact (length + 1, 0 = null) or i16 (-1 = null).
    fn nullable_string(&mut self, s: Option<&str>) {
        match (self.flexible, s) {
            (_, Some(s)) => self.string(s),
            (true, None) => self.uvarint(0),
            (false, None) => self.buf.put_i16(-1),
        }
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn into_parts(self, frame_bytes: usize) -> ResponseParts {
        let metadata = self.buf.freeze();
        let mut parts = Vec::with_capacity(1 + 2 * self.slots.len());
        let mut from = 0usize;
        for (at, records) in self.slots {
            if at > from {
                parts.push(Slice::Mem(metadata.slice(from..at)));
            }
            parts.extend(records.slices().iter().cloned());
            from = at;
        }
        if metadata.len() > from {
            parts.push(Slice::Mem(metadata.slice(from..)));
        }
        ResponseParts { parts, frame_bytes }
    }
}

#[cfg(test)]
mod tests;
