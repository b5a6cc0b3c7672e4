//! One producer thread of `bench produce|e2e`.
//!
//! Decisions:
//! - One batch is open at a time and batches rotate over the partitions
//!   (round-robin per batch, each thread starting at a different
//!   partition), so every request carries one partition's batch: simple,
//!   and with several producers all partitions are written at once.
//! - A batch is sent when it is full (`--batch-bytes`), when its first
//!   record is `--linger-ms` old, or at the end, and only while its
//!   connection has fewer than `--max-in-flight` requests unanswered;
//!   otherwise records keep accumulating (up to a full batch), as in
//!   Kafka's producer.
//! - Answers are read by one reader thread per connection (requests are
//!   answered in order), which records the latency of every record of the
//!   batch: from the record being added to the batch to the ack, as
//!   kafka-producer-perf-test measures. With acks=0 there is no answer and
//!   the latency ends when the request is written.
//! - A broker error code counts the batch's records in `errors`; a broken
//!   connection counts everything in flight and stops the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::rate::RateLimiter;
use super::stats::{now_ns, Stats};
use super::wire::{split, PipeReader, PipeWriter};
use super::{Acks, ProducerArgs, Target};
use crate::cli::client::{check, ClientError, Conn, REQUEST_TIMEOUT};

/// Highest Produce version this generator fills in.
const PRODUCE_VERSION_MAX: i16 = 9;
/// Highest InitProducerId version this generator fills in.
const INIT_PRODUCER_ID_VERSION_MAX: i16 = 4;
/// Time the broker may take to answer a produce, in ms.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Bytes a record adds to a batch beyond its value (length, attributes,
/// timestamp and offset deltas, key and header counts), roughly: used to
/// cut batches at `--batch-bytes`.
pub const RECORD_OVERHEAD_BYTES: usize = 12;
/// RecordBatch v2 header, in bytes.
const BATCH_HEADER_BYTES: usize = crate::protocol::batch::BATCH_HEADER_LEN;

/// What one producer thread does.
pub struct ProducerPlan {
    /// Topic, partitions and leaders.
    pub target: Arc<Target>,
    /// The producer flags.
    pub args: ProducerArgs,
    /// Value bytes per record.
    pub record_bytes: usize,
    /// This thread's share of `--records` (`None`: until the deadline).
    pub records: Option<u64>,
    /// End of the run (`--duration-s`).
    pub deadline: Option<Instant>,
    /// This thread's share of `--target-rate`, records/s (0: unlimited).
    pub rate: f64,
    /// Index (in `target.partitions`) of the first batch's partition.
    pub first_partition: usize,
    /// Put the creation time ([`now_ns`]) in each value's first 8 bytes.
    pub stamp: bool,
    /// Shared counters (produce side).
    pub stats: Arc<Stats>,
    /// Set to end the run early (by a broken connection or the caller).
    pub stop: Arc<AtomicBool>,
}

/// A request the reader thread expects an answer to.
struct InFlight {
    correlation_id: i32,
    partition: i32,
    started_ns: Vec<u64>,
    value_bytes: u64,
}

/// One connection to one leader.
struct Lane {
    writer: PipeWriter,
    version: i16,
    in_flight: usize,
    to_reader: Option<Sender<InFlight>>,
    reader: Option<JoinHandle<()>>,
}

/// The batch being filled.
struct OpenBatch {
    partition_index: usize,
    records: Vec<Record>,
    started_ns: Vec<u64>,
    value_bytes: u64,
    first_at: Instant,
}

/// The producer's id and epoch with `--idempotent`.
#[derive(Clone, Copy)]
struct Identity {
    producer_id: i64,
    epoch: i16,
}

/// Runs one producer until its records are acked, the deadline, or `stop`.
pub fn run(plan: ProducerPlan) -> Result<(), ClientError> {
    let (ack_tx, ack_rx) = mpsc::channel::<usize>();
    // `ack_tx` stays alive here so the channel never reports disconnected:
    // with acks=0 there are no readers, and waits just time out.
    let (mut lanes, lane_of, identity) = open_lanes(&plan, &ack_tx)?;
    let result = produce_loop(&plan, &mut lanes, &lane_of, identity, &ack_rx);
    let drained = drain(&plan, &mut lanes, &ack_rx);
    for lane in &mut lanes {
        lane.to_reader = None;
        if let Some(r) = lane.reader.take() {
            let _ = r.join();
        }
    }
    result.and(drained)
}

/// What [`open_lanes`] sets up: the lanes, the lane of each partition and
/// the idempotent producer's identity, if any.
type OpenedLanes = (Vec<Lane>, Vec<usize>, Option<Identity>);

fn open_lanes(plan: &ProducerPlan, ack_tx: &Sender<usize>) -> Result<OpenedLanes, ClientError> {
    let mut lanes = Vec::new();
    let mut by_leader: HashMap<i32, usize> = HashMap::new();
    let mut identity = None;
    for &(_, leader) in &plan.target.partitions {
        if by_leader.contains_key(&leader) {
            continue;
        }
        let addr = plan.target.address(leader)?;
        let mut conn = Conn::connect(&addr)?;
        if plan.args.idempotent && identity.is_none() {
            identity = Some(init_producer_id(&mut conn)?);
        }
        let version = conn.version::<ProduceRequest>(PRODUCE_VERSION_MAX)?;
        let (writer, reader) = split(conn)?;
        let (to_reader, reader_thread) = if plan.args.acks == Acks::None {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel();
            let ctx = ReaderCtx {
                lane: lanes.len(),
                version,
                acks: ack_tx.clone(),
                stats: plan.stats.clone(),
                stop: plan.stop.clone(),
                topic: plan.target.topic.clone(),
            };
            let handle = std::thread::spawn(move || read_acks(reader, rx, ctx));
            (Some(tx), Some(handle))
        };
        by_leader.insert(leader, lanes.len());
        lanes.push(Lane {
            writer,
            version,
            in_flight: 0,
            to_reader,
            reader: reader_thread,
        });
    }
    let lane_of = plan
        .target
        .partitions
        .iter()
        .map(|(_, leader)| by_leader[leader])
        .collect();
    Ok((lanes, lane_of, identity))
}

fn init_producer_id(conn: &mut Conn) -> Result<Identity, ClientError> {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = PRODUCE_TIMEOUT_MS;
    let answer = conn.send(&request, INIT_PRODUCER_ID_VERSION_MAX)?;
    check(answer.error_code, || "InitProducerId".to_string())?;
    Ok(Identity {
        producer_id: answer.producer_id.0,
        epoch: answer.producer_epoch,
    })
}

/// Creates, batches and sends records until done; acks arrive on `acks`.
fn produce_loop(
    plan: &ProducerPlan,
    lanes: &mut [Lane],
    lane_of: &[usize],
    identity: Option<Identity>,
    acks: &Receiver<usize>,
) -> Result<(), ClientError> {
    let partitions = plan.target.partitions.len();
    let linger = Duration::from_millis(plan.args.linger_ms);
    let room_records = batch_room_records(plan.args.batch_bytes, plan.record_bytes);
    let mut sequences = vec![0i32; partitions];
    let mut limiter = RateLimiter::new(plan.rate);
    let mut remaining = plan.records.unwrap_or(u64::MAX);
    let mut next_partition = plan.first_partition % partitions;
    let mut batch: Option<OpenBatch> = None;
    let values = ValueSource::new(plan.record_bytes, plan.stamp);
    let started = Instant::now();
    loop {
        while let Ok(lane) = acks.try_recv() {
            lanes[lane].in_flight -= 1;
        }
        let now = Instant::now();
        let mut creating = remaining > 0
            && !plan.stop.load(Ordering::Relaxed)
            && plan.deadline.is_none_or(|d| now < d);
        let b = batch.get_or_insert_with(|| OpenBatch::new(next_partition, room_records));
        if creating {
            let room = (room_records - b.records.len()) as u64;
            let n = limiter.take(now - started, room.min(remaining));
            b.add(n as usize, &values, identity);
            remaining -= n;
            // The last record needs no linger.
            creating = remaining > 0;
        }
        if b.records.is_empty() && !creating {
            return Ok(());
        }
        let full = b.records.len() >= room_records;
        let ready = !b.records.is_empty() && (full || !creating || now >= b.first_at + linger);
        let lane = lane_of[b.partition_index];
        if ready && lanes[lane].in_flight < plan.args.max_in_flight {
            let b = batch.take().expect("batch is open");
            send(plan, &mut lanes[lane], b, &mut sequences, identity)?;
            next_partition = (next_partition + 1) % partitions;
            continue;
        }
        // Nothing to send now: wait for an ack, the next record or linger.
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if creating && !full {
            if let Some(due) = limiter.next_due() {
                at(started + due);
            }
            if let Some(d) = plan.deadline {
                at(d);
            }
        }
        if !b.records.is_empty() && !ready {
            at(b.first_at + linger);
        }
        let timeout = wake.map_or(REQUEST_TIMEOUT, |w| w.saturating_duration_since(now));
        match acks.recv_timeout(timeout) {
            Ok(lane) => lanes[lane].in_flight -= 1,
            Err(RecvTimeoutError::Timeout) if wake.is_some() => {}
            Err(_) => {
                return Err(ClientError::Usage(
                    "no produce answer within the request timeout".into(),
                ))
            }
        }
    }
}

/// Waits for the answers still in flight (errors if they do not come).
fn drain(
    plan: &ProducerPlan,
    lanes: &mut [Lane],
    acks: &Receiver<usize>,
) -> Result<(), ClientError> {
    let deadline = Instant::now() + 2 * REQUEST_TIMEOUT;
    while lanes.iter().any(|l| l.in_flight > 0) {
        let wait = deadline.saturating_duration_since(Instant::now());
        match acks.recv_timeout(wait) {
            Ok(lane) => lanes[lane].in_flight -= 1,
            Err(_) => {
                plan.stop.store(true, Ordering::Relaxed);
                return Err(ClientError::Usage(
                    "produce answers still missing at the end of the run".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Records per batch at `batch_bytes` (at least 1).
pub fn batch_room_records(batch_bytes: usize, record_bytes: usize) -> usize {
    (batch_bytes.saturating_sub(BATCH_HEADER_BYTES) / (record_bytes + RECORD_OVERHEAD_BYTES)).max(1)
}

/// Record values: one shared pattern, or a copy stamped with the time.
struct ValueSource {
    pattern: Bytes,
    stamp: bool,
}

impl ValueSource {
    fn new(record_bytes: usize, stamp: bool) -> ValueSource {
        // Letters from a fixed LCG: compressible like text, not like zeros.
        let mut x: u32 = 0x2545_f491;
        let pattern = (0..record_bytes)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                b'A' + ((x >> 24) % 26) as u8
            })
            .collect::<Vec<u8>>();
        ValueSource {
            pattern: Bytes::from(pattern),
            stamp,
        }
    }

    fn value(&self, created_ns: u64) -> Bytes {
        if !self.stamp {
            return self.pattern.clone();
        }
        let mut v = BytesMut::with_capacity(self.pattern.len());
        v.put_u64(created_ns);
        v.extend_from_slice(&self.pattern[8..]);
        v.freeze()
    }
}

impl OpenBatch {
    fn new(partition_index: usize, room_records: usize) -> OpenBatch {
        OpenBatch {
            partition_index,
            records: Vec::with_capacity(room_records),
            started_ns: Vec::with_capacity(room_records),
            value_bytes: 0,
            first_at: Instant::now(),
        }
    }

    fn add(&mut self, n: usize, values: &ValueSource, identity: Option<Identity>) {
        if n == 0 {
            return;
        }
        if self.records.is_empty() {
            self.first_at = Instant::now();
        }
        let created_ns = now_ns();
        let timestamp = wall_ms();
        for _ in 0..n {
            let value = values.value(created_ns);
            self.value_bytes += value.len() as u64;
            self.records.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: identity.map_or(-1, |i| i.producer_id),
                producer_epoch: identity.map_or(-1, |i| i.epoch),
                timestamp_type: TimestampType::Creation,
                offset: 0,
                sequence: -1,
                timestamp,
                key: None,
                value: Some(value),
                headers: IndexMap::new(),
            });
            self.started_ns.push(created_ns);
        }
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Encodes and writes one batch.
fn send(
    plan: &ProducerPlan,
    lane: &mut Lane,
    mut b: OpenBatch,
    sequences: &mut [i32],
    identity: Option<Identity>,
) -> Result<(), ClientError> {
    let partition = plan.target.partitions[b.partition_index].0;
    // The crate starts a new batch wherever offset - sequence changes, so
    // sequences run with offsets; base sequence -1 when not idempotent.
    let base = match identity {
        Some(_) => sequences[b.partition_index],
        None => -1,
    };
    for (i, r) in b.records.iter_mut().enumerate() {
        r.offset = i as i64;
        r.sequence = base.wrapping_add(i as i32);
    }
    if identity.is_some() {
        sequences[b.partition_index] = base.wrapping_add(b.records.len() as i32);
    }
    let mut buf = BytesMut::with_capacity(plan.args.batch_bytes + BATCH_HEADER_BYTES);
    let options = RecordEncodeOptions {
        version: 2,
        compression: plan.args.compression.codec(),
    };
    RecordBatchEncoder::encode(&mut buf, b.records.iter(), &options)
        .map_err(|e| ClientError::Usage(format!("encoding a record batch: {e}")))?;
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(buf.freeze());
    let mut t = TopicProduceData::default();
    t.name = StrBytes::from_string(plan.target.topic.clone()).into();
    t.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = plan.args.acks.wire();
    request.timeout_ms = PRODUCE_TIMEOUT_MS;
    request.topic_data = vec![t];
    let n = b.records.len() as u64;
    let correlation_id = match lane.writer.send(&request, lane.version) {
        Ok(c) => c,
        Err(e) => {
            plan.stats.record_errors(n);
            plan.stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    match &lane.to_reader {
        None => plan
            .stats
            .record_done(n, b.value_bytes, now_ns(), &b.started_ns),
        Some(tx) => {
            let started_ns = std::mem::take(&mut b.started_ns);
            let f = InFlight {
                correlation_id,
                partition,
                started_ns,
                value_bytes: b.value_bytes,
            };
            if tx.send(f).is_err() {
                plan.stats.record_errors(n);
                return Err(ClientError::Usage("the answer reader stopped".into()));
            }
            lane.in_flight += 1;
        }
    }
    Ok(())
}

struct ReaderCtx {
    lane: usize,
    version: i16,
    acks: Sender<usize>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    topic: String,
}

/// Reads produce answers in order and records their records' latency.
fn read_acks(mut reader: PipeReader, requests: Receiver<InFlight>, ctx: ReaderCtx) {
    let mut broken = false;
    for f in requests {
        let n = f.started_ns.len() as u64;
        if broken {
            ctx.stats.record_errors(n);
        } else {
            match reader.recv::<ProduceRequest>(ctx.version, f.correlation_id) {
                Ok(answer) => {
                    let done = now_ns();
                    let code = answer
                        .responses
                        .iter()
                        .flat_map(|t| &t.partition_responses)
                        .map(|p| p.error_code)
                        .find(|&c| c != 0)
                        .unwrap_or(0);
                    match check(code, || {
                        format!("producing to {}-{}", ctx.topic, f.partition)
                    }) {
                        Ok(()) => ctx.stats.record_done(n, f.value_bytes, done, &f.started_ns),
                        Err(e) => {
                            ctx.stats.record_errors(n);
                            ctx.stats.warn(&e.to_string());
                        }
                    }
                }
                Err(e) => {
                    ctx.stats.record_errors(n);
                    ctx.stats.warn(&e.to_string());
                    ctx.stop.store(true, Ordering::Relaxed);
                    broken = true;
                }
            }
        }
        if ctx.acks.send(ctx.lane).is_err() {
            return;
        }
    }
}

impl super::Compressions {
    /// The crate's codec.
    pub fn codec(self) -> Compression {
        match self {
            super::Compressions::None => Compression::None,
            super::Compressions::Gzip => Compression::Gzip,
            super::Compressions::Snappy => Compression::Snappy,
            super::Compressions::Lz4 => Compression::Lz4,
            super::Compressions::Zstd => Compression::Zstd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_batch_room_for_1k_records_in_64k() {
        assert_eq!(batch_room_records(64 * 1024, 1024), 63);
        assert_eq!(batch_room_records(100, 1024), 1, "at least one record");
    }

    #[test]
    fn bench_stamped_values_carry_the_time() {
        let v = ValueSource::new(32, true).value(0x0102_0304_0506_0708);
        assert_eq!(v.len(), 32);
        assert_eq!(&v[..8], &0x0102_0304_0506_0708u64.to_be_bytes());
        let plain = ValueSource::new(32, false).value(1);
        assert!(plain.iter().all(u8::is_ascii_uppercase));
    }

    #[test]
    fn bench_batch_encodes_as_one_batch_with_sequences() {
        let values = ValueSource::new(16, false);
        let id = Identity {
            producer_id: 7,
            epoch: 0,
        };
        for identity in [None, Some(id)] {
            let mut b = OpenBatch::new(0, 10);
            b.add(10, &values, identity);
            let base = if identity.is_some() { 5 } else { -1 };
            for (i, r) in b.records.iter_mut().enumerate() {
                r.offset = i as i64;
                r.sequence = base + i as i32;
            }
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            };
            RecordBatchEncoder::encode(&mut buf, b.records.iter(), &options).unwrap();
            // One batch: record count at byte 57, base sequence at 53.
            assert_eq!(i32::from_be_bytes(buf[57..61].try_into().unwrap()), 10);
            assert_eq!(i32::from_be_bytes(buf[53..57].try_into().unwrap()), base);
        }
    }
}
