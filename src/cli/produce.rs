//! `corestream produce`: stdin lines to a topic.
//!
//! Each line is one record. With `--key-separator`, the text before the
//! first separator is the key. Keyed records go to the partition Kafka's
//! default partitioner picks (murmur2 of the key), so keys land where a Java
//! or librdkafka (`murmur2_random`) producer would put them; unkeyed ones
//! rotate over the partitions batch by batch. `--partition` overrides both.

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::{Bytes, BytesMut};
use clap::Args;
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::client::{check, ClientError, Cluster};

/// Highest Produce version this client fills in.
const PRODUCE_VERSION_MAX: i16 = 9;
/// Time the broker may take to answer a produce, in ms.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Largest number of records in one batch.
pub const BATCH_RECORDS_MAX: usize = 100_000;

/// Arguments of `produce`.
#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic.
    pub topic: String,
    /// Split each line at the first SEP into key and value.
    #[arg(short = 'K', long)]
    pub key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// acks: 0, 1 or -1 (all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Records per batch (one request per batch and partition).
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives `key`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
}

/// A record to send.
/// A plain record to send (no producer id, creation time now); the CLI's
/// and the console's produce both build theirs here.
pub fn record(
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: IndexMap<StrBytes, Option<Bytes>>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: crate::clock::wall_ms(),
        key,
        value,
        headers,
    }
}

/// Sends `records` as one batch to `partition` on its leader; returns the
/// base offset (-1 with acks=0).
pub fn produce_batch(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    leader: BrokerId,
    records: &mut [Record],
    acks: i16,
) -> Result<i64, ClientError> {
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
        .map_err(|e| ClientError::Usage(format!("encoding a record batch: {e}")))?;
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(buf.freeze());
    let mut t = TopicProduceData::default();
    t.name = StrBytes::from_string(topic.to_string()).into();
    t.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = PRODUCE_TIMEOUT_MS;
    request.topic_data = vec![t];
    let conn = cluster.node(leader.0)?;
    if acks == 0 {
        let version = conn.version::<ProduceRequest>(PRODUCE_VERSION_MAX)?;
        conn.send_no_response(&request, version)?;
        return Ok(-1);
    }
    let answer = conn.send(&request, PRODUCE_VERSION_MAX)?;
    let mut base = -1;
    for t in &answer.responses {
        for p in &t.partition_responses {
            check(p.error_code, || format!("producing to {topic}-{}", p.index))?;
            base = p.base_offset;
        }
    }
    Ok(base)
}

fn parse_headers(headers: &[String]) -> Result<IndexMap<StrBytes, Option<Bytes>>, ClientError> {
    headers
        .iter()
        .map(|h| {
            let (k, v) = h
                .split_once('=')
                .ok_or_else(|| ClientError::Usage(format!("--header {h:?} is not KEY=VALUE")))?;
            Ok((
                StrBytes::from_string(k.to_string()),
                Some(Bytes::from(v.to_string())),
            ))
        })
        .collect()
}

/// Runs `produce`.
pub fn run(cluster: &mut Cluster, args: &ProduceArgs) -> Result<(), ClientError> {
    if !(1..=BATCH_RECORDS_MAX).contains(&args.batch_records) {
        return Err(ClientError::Usage(format!(
            "--batch-records must be within 1..={BATCH_RECORDS_MAX}"
        )));
    }
    let leaders = cluster.leaders(&args.topic)?;
    if leaders.is_empty() {
        return Err(ClientError::Usage(format!(
            "topic {:?} has no partitions",
            args.topic
        )));
    }
    let leader_of: BTreeMap<i32, BrokerId> = leaders.iter().copied().collect();
    if let Some(p) = args.partition {
        if !leader_of.contains_key(&p) {
            return Err(ClientError::Usage(format!(
                "topic {:?} has no partition {p}",
                args.topic
            )));
        }
    }
    let headers = parse_headers(&args.headers)?;
    let mut pending: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let (mut sent, mut round_robin) = (0u64, 0usize);
    let stdin = std::io::stdin().lock();
    for line in stdin.lines() {
        let line = line.map_err(|e| ClientError::Usage(format!("reading stdin: {e}")))?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                None => (None, line),
            },
            None => (None, line),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, leaders.len()),
            (None, None) => leaders[round_robin % leaders.len()].0,
        };
        let batch = pending.entry(partition).or_default();
        batch.push(record(key, Some(Bytes::from(value)), headers.clone()));
        if batch.len() >= args.batch_records {
            let mut records = pending.remove(&partition).unwrap_or_default();
            produce_batch(
                cluster,
                &args.topic,
                partition,
                leader_of[&partition],
                &mut records,
                args.acks,
            )?;
            sent += records.len() as u64;
            round_robin += 1;
        }
    }
    for (partition, mut records) in pending {
        produce_batch(
            cluster,
            &args.topic,
            partition,
            leader_of[&partition],
            &mut records,
            args.acks,
        )?;
        sent += records.len() as u64;
    }
    eprintln!("produced {sent} records to {}", args.topic);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_murmur2_matches_kafka() {
        // Values from Kafka's own UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
