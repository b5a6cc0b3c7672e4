//! `corestream consume`: a topic's records to stdout.
//!
//! Without `--group` it fetches from each partition's leader and moves no
//! group's offsets. With `--group` it joins the group as a member
//! (`cli::member`: classic protocol, range assignor), reads the partitions
//! assigned to it from the group's committed offsets (`--from-beginning`
//! or latest where none) and commits after every fetch round that printed
//! something, and once more before it leaves. Only whole batches of a fetch answer
//! are decoded; a trailing partial batch (Kafka may cut one at the byte
//! limit) is fetched again next round. Compressed batches are not decoded
//! (the crate's codecs are not built in) and stop the command with an error.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use clap::Args;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use super::client::{check, ClientError, Cluster};
use super::output::Output;
use super::topics::{list_offsets, OFFSET_EARLIEST, OFFSET_LATEST};
use crate::protocol::batch::{BATCH_LENGTH_OVERHEAD, LAST_OFFSET_DELTA_OFFSET};

/// Highest Fetch version this client fills in (v13 names topics by id).
const FETCH_VERSION_MAX: i16 = 12;
/// Long-poll wait of one fetch, in ms.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes asked per partition per fetch.
const FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Bytes asked per fetch.
const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
/// RecordBatch v2: the bytes up to and including batchLength.
const BATCH_LENGTH_END: usize = BATCH_LENGTH_OVERHEAD;

/// Arguments of `consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic.
    pub topic: String,
    /// Start from the earliest offset (same as --offset earliest); with
    /// --group, where the group has no committed offset.
    #[arg(long)]
    pub from_beginning: bool,
    /// Consume as a member of this consumer group, committing offsets.
    #[arg(short, long, conflicts_with_all = ["offset", "partition"])]
    pub group: Option<String>,
    /// Start offset: earliest, latest or a number (default latest).
    #[arg(short, long)]
    pub offset: Option<String>,
    /// Read only this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Exit after printing N records.
    #[arg(short = 'n', long)]
    pub max: Option<u64>,
    /// Exit when no record arrived for this many ms.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value.
    #[arg(long)]
    pub print_key: bool,
    /// Print the partition first.
    #[arg(long)]
    pub print_partition: bool,
    /// Print the offset.
    #[arg(long)]
    pub print_offset: bool,
    /// Print the timestamp (ms).
    #[arg(long)]
    pub print_timestamp: bool,
    /// Between printed fields.
    #[arg(long, default_value = "\t")]
    pub separator: String,
}

/// Splits fetched bytes into whole batches, skipping a trailing partial one.
pub fn whole_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while records.len() >= BATCH_LENGTH_END {
        let length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
        let total = BATCH_LENGTH_END + length.max(0) as usize;
        if length <= 0 || records.len() < total {
            break;
        }
        out.push(records.split_to(total));
    }
    out
}

/// The offset after a batch (from its header, so control batches count).
pub fn next_offset_after(batch: &Bytes) -> Option<i64> {
    if batch.len() < LAST_OFFSET_DELTA_OFFSET + 4 {
        return None;
    }
    let base = (&batch[..8]).get_i64();
    let delta = (&batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]).get_i32();
    Some(base + delta as i64 + 1)
}

/// One fetch round from one leader: records per partition, and the next
/// offset of each. Updates `offsets`.
pub fn fetch_round(
    cluster: &mut Cluster,
    topic: &str,
    leader: BrokerId,
    offsets: &mut BTreeMap<i32, i64>,
    partitions: &[i32],
) -> Result<Vec<(i32, Record)>, ClientError> {
    let mut t = FetchTopic::default();
    t.topic = StrBytes::from_string(topic.to_string()).into();
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = offsets[&p];
            fp.partition_max_bytes = FETCH_PARTITION_BYTES_MAX;
            fp.log_start_offset = -1;
            fp.current_leader_epoch = -1;
            fp
        })
        .collect();
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = FETCH_WAIT_MS;
    request.min_bytes = 1;
    request.max_bytes = FETCH_BYTES_MAX;
    request.session_epoch = -1;
    request.topics = vec![t];
    let answer = cluster.node(leader.0)?.send(&request, FETCH_VERSION_MAX)?;
    check(answer.error_code, || format!("fetching {topic}"))?;
    let mut out = Vec::new();
    for t in answer.responses {
        for p in t.partitions {
            check(p.error_code, || {
                format!("fetching {topic}-{}", p.partition_index)
            })?;
            let Some(records) = p.records else { continue };
            for batch in whole_batches(records) {
                let next = next_offset_after(&batch);
                let mut bytes = batch;
                let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
                    ClientError::Usage(format!(
                        "decoding a batch of {topic}-{}: {e}",
                        p.partition_index
                    ))
                })?;
                let want = offsets[&p.partition_index];
                out.extend(
                    set.records
                        .into_iter()
                        .filter(|r| r.offset >= want && !r.control)
                        .map(|r| (p.partition_index, r)),
                );
                if let Some(next) = next {
                    offsets.insert(p.partition_index, next.max(want));
                }
            }
        }
    }
    Ok(out)
}

fn start_offsets(
    cluster: &mut Cluster,
    args: &ConsumeArgs,
    leaders: &[(i32, BrokerId)],
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let spec = match (&args.offset, args.from_beginning) {
        (Some(o), _) => o.clone(),
        (None, true) => "earliest".into(),
        (None, false) => "latest".into(),
    };
    match spec.as_str() {
        "earliest" => list_offsets(cluster, &args.topic, leaders, OFFSET_EARLIEST),
        "latest" => list_offsets(cluster, &args.topic, leaders, OFFSET_LATEST),
        n => {
            let offset: i64 = n.parse().map_err(|_| {
                ClientError::Usage(format!("--offset {n:?}: earliest, latest or a number"))
            })?;
            Ok(leaders.iter().map(|(p, _)| (*p, offset)).collect())
        }
    }
}

pub(super) fn print_record(
    out: &mut impl Write,
    json: bool,
    args: &ConsumeArgs,
    partition: i32,
    r: &Record,
) {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    if json {
        let line = serde_json::json!({
            "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
            "key": text(&r.key), "value": text(&r.value),
        });
        let _ = writeln!(out, "{line}");
        return;
    }
    let mut fields = Vec::new();
    if args.print_partition {
        fields.push(partition.to_string());
    }
    if args.print_offset {
        fields.push(r.offset.to_string());
    }
    if args.print_timestamp {
        fields.push(r.timestamp.to_string());
    }
    if args.print_key {
        fields.push(text(&r.key).unwrap_or_else(|| "null".into()));
    }
    fields.push(text(&r.value).unwrap_or_else(|| "null".into()));
    let _ = writeln!(out, "{}", fields.join(&args.separator));
}

/// Runs `consume`.
pub fn run(cluster: &mut Cluster, output: &Output, args: &ConsumeArgs) -> Result<(), ClientError> {
    if let Some(group) = &args.group {
        return super::group_consume::run(cluster, output, args, group);
    }
    let mut leaders = cluster.leaders(&args.topic)?;
    if let Some(p) = args.partition {
        leaders.retain(|(i, _)| *i == p);
        if leaders.is_empty() {
            return Err(ClientError::Usage(format!(
                "topic {:?} has no partition {p}",
                args.topic
            )));
        }
    }
    let mut offsets = start_offsets(cluster, args, &leaders)?;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, l) in &leaders {
        by_leader.entry(l.0).or_default().push(*p);
    }
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let mut stdout = std::io::stdout().lock();
    loop {
        for (leader, parts) in &by_leader {
            let records =
                fetch_round(cluster, &args.topic, BrokerId(*leader), &mut offsets, parts)?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            for (p, r) in records {
                print_record(&mut stdout, output.json, args, p, &r);
                printed += 1;
                if args.max.is_some_and(|m| printed >= m) {
                    let _ = stdout.flush();
                    return Ok(());
                }
            }
        }
        let _ = stdout.flush();
        if let Some(t) = args.timeout_ms {
            if last_record.elapsed() >= Duration::from_millis(t) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_whole_batches_skips_partial_tail() {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(&4i32.to_be_bytes());
        b.extend_from_slice(&[1, 2, 3, 4]);
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&100i32.to_be_bytes());
        b.extend_from_slice(&[0u8; 10]);
        let batches = whole_batches(Bytes::from(b));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 16);
    }
}
