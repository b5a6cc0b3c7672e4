//! Produce-path cost of reading a RecordBatch v2: header parse, and the full
//! `validate_produce` (framing + CRC32C over the batch), at 1 KiB, 16 KiB and
//! 1 MiB. Throughput is in batch bytes: the CRC pass dominates at size.

use corestream::protocol::batch::{build_test_batch, validate_produce, BatchHeader};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const RECORD_VALUE_BYTES: usize = 100;

/// One uncompressed batch of about `target_bytes`, 100-byte values.
fn batch_of(target_bytes: usize) -> Vec<u8> {
    let value = [0x5au8; RECORD_VALUE_BYTES];
    let record_count = (target_bytes / (RECORD_VALUE_BYTES + 8)).max(1);
    let records: Vec<_> = (0..record_count)
        .map(|_| (None, Some(&value[..])))
        .collect();
    build_test_batch(0, &records, 1_700_000_000_000)
}

fn bench_batch_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_header");
    for (name, target_bytes) in [("1KiB", 1 << 10), ("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let batch = batch_of(target_bytes);
        // Parsing reads 61 bytes whatever the batch size: count headers.
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("parse", name), &batch, |b, batch| {
            b.iter(|| BatchHeader::parse(black_box(batch)).unwrap().last_offset())
        });
        group.bench_with_input(
            BenchmarkId::new("validate_produce", name),
            &batch,
            |b, batch| b.iter(|| validate_produce(black_box(batch)).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_batch_header);
criterion_main!(benches);
