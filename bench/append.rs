//! Append + flush throughput of the partition log on the real disk
//! (glommio `DmaDisk`, O_DIRECT, fdatasync), with 16 KiB batches:
//!
//! - `flush_each`: every batch is flushed before the next is appended (one
//!   acks=all producer with one request in flight: fdatasync bound);
//! - `flush_every_16`: 16 batches (256 KiB) per flush (group commit).
//!
//! The log lives in a tempdir under `$CORESTREAM_BENCH_DIR` (default: the
//! system temp dir; put it on the disk you want to measure, not tmpfs).
//! Each measurement runs in a fresh glommio executor and a fresh log; only
//! the append/flush loop is timed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use corestream::protocol::batch::build_test_batch;
use corestream::storage::{prime_dma_io, DmaDisk, LogConfig, PartitionLog};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH_BYTES_TARGET: usize = 16 << 10;
const RECORD_VALUE_BYTES: usize = 1000;
/// Smaller than the default so long runs also exercise segment rolls.
const BENCH_SEGMENT_BYTES: u64 = 256 << 20;

fn batch_16k() -> Vec<u8> {
    let value = vec![0x5au8; RECORD_VALUE_BYTES];
    let count = BATCH_BYTES_TARGET / (RECORD_VALUE_BYTES + 8);
    let records: Vec<_> = (0..count).map(|_| (None, Some(&value[..]))).collect();
    build_test_batch(0, &records, 1_700_000_000_000)
}

fn bench_root() -> PathBuf {
    std::env::var_os("CORESTREAM_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// Appends `iters` batches, flushing every `batches_per_flush`; returns the
/// time of the loop alone.
fn run(iters: u64, batches_per_flush: u64, batch: &[u8]) -> Duration {
    let tmp = tempfile::tempdir_in(bench_root()).expect("bench tempdir");
    let data_dir = tmp.path().to_path_buf();
    let batch = batch.to_vec();
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    ex.run(async move {
        prime_dma_io(&data_dir).await.expect("prime");
        let config = LogConfig {
            segment_bytes: BENCH_SEGMENT_BYTES,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(DmaDisk, data_dir.join("bench-0"), config)
            .await
            .expect("open log");
        let mut buf = batch.clone();
        let start = Instant::now();
        for i in 1..=iters {
            buf.copy_from_slice(&batch);
            log.append(&mut buf).expect("append");
            if i % batches_per_flush == 0 || i == iters {
                log.flush().await.expect("flush");
            }
        }
        let elapsed = start.elapsed();
        log.delete().await.expect("delete");
        elapsed
    })
}

fn bench_append(c: &mut Criterion) {
    let batch = batch_16k();
    let mut group = c.benchmark_group("append_16KiB");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.sample_size(10);
    for batches_per_flush in [1u64, 16] {
        let name = match batches_per_flush {
            1 => "flush_each".to_string(),
            n => format!("flush_every_{n}"),
        };
        group.bench_function(BenchmarkId::new(name, batch.len()), |b| {
            b.iter_custom(|iters| run(iters, batches_per_flush, &batch))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
