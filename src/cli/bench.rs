//! `corestream bench`: produce N records, then consume them back, and print
//! the throughput of each phase. One connection per broker, one request at
//! a time (acks=-1): a floor for what a client sees, not a load generator.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use indexmap::IndexMap;
use kafka_protocol::messages::BrokerId;
use serde_json::json;

use super::client::{ClientError, Cluster};
use super::consume::fetch_round;
use super::output::Output;
use super::produce::{produce_batch, record, BATCH_RECORDS_MAX};
use super::topics::{list_offsets, OFFSET_LATEST};

/// Largest record value a bench run may ask for, in bytes.
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Topic (must exist; create it with `topics create`).
    #[arg(long, default_value = "corestream-bench")]
    pub topic: String,
    /// Records to produce.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Value bytes per record.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Records per produce batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
}

/// Runs `bench`.
pub fn run(cluster: &mut Cluster, out: &Output, args: &BenchArgs) -> Result<(), ClientError> {
    if args.record_bytes > RECORD_BYTES_MAX
        || !(1..=BATCH_RECORDS_MAX).contains(&args.batch_records)
    {
        return Err(ClientError::Usage(format!(
            "--record-bytes at most {RECORD_BYTES_MAX}, --batch-records within 1..={BATCH_RECORDS_MAX}"
        )));
    }
    let leaders = cluster.leaders(&args.topic)?;
    if leaders.is_empty() {
        return Err(ClientError::Usage(format!(
            "topic {:?} has no partitions",
            args.topic
        )));
    }
    let start = list_offsets(cluster, &args.topic, &leaders, OFFSET_LATEST)?;
    let value = Bytes::from(vec![b'x'; args.record_bytes]);
    let headers = IndexMap::new();
    let began = Instant::now();
    let (mut sent, mut turn) = (0u64, 0usize);
    while sent < args.records {
        let n = (args.records - sent).min(args.batch_records as u64) as usize;
        let (partition, leader) = leaders[turn % leaders.len()];
        let mut batch: Vec<_> = (0..n)
            .map(|_| record(None, value.clone(), &headers))
            .collect();
        produce_batch(cluster, &args.topic, partition, leader, &mut batch, -1)?;
        sent += n as u64;
        turn += 1;
    }
    let produce_s = began.elapsed().as_secs_f64();
    let began = Instant::now();
    let mut offsets: BTreeMap<i32, i64> = start;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, l) in &leaders {
        by_leader.entry(l.0).or_default().push(*p);
    }
    let mut read = 0u64;
    while read < args.records {
        let before = read;
        for (leader, parts) in &by_leader {
            read += fetch_round(cluster, &args.topic, BrokerId(*leader), &mut offsets, parts)?.len()
                as u64;
        }
        if read == before && began.elapsed().as_secs() > 60 {
            return Err(ClientError::Usage(format!(
                "read only {read} of {} records back",
                args.records
            )));
        }
    }
    let consume_s = began.elapsed().as_secs_f64();
    let mb = (args.records as f64 * args.record_bytes as f64) / 1e6;
    let row = |phase: &str, s: f64| {
        vec![
            phase.to_string(),
            args.records.to_string(),
            format!("{mb:.1}"),
            format!("{s:.3}"),
            format!("{:.0}", args.records as f64 / s.max(1e-9)),
            format!("{:.1}", mb / s.max(1e-9)),
        ]
    };
    let rows = vec![row("produce", produce_s), row("consume", consume_s)];
    let json = json!({
        "records": args.records, "record_bytes": args.record_bytes,
        "produce_seconds": produce_s, "consume_seconds": consume_s,
    });
    out.table(
        &["PHASE", "RECORDS", "MB", "SECONDS", "RECORDS/S", "MB/S"],
        &rows,
        json,
    );
    Ok(())
}
