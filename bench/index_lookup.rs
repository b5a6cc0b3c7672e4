//! Sparse index lookups of one segment (`storage::index`), as a fetch or
//! ListOffsets uses them, on a full index at the default settings: a 1 GiB
//! segment with an entry every 4 KiB is 262,144 offset-index entries (2 MiB
//! `.index` file) and as many time-index entries when every batch raises
//! the max timestamp. A small index (1,024 entries, a 4 MiB segment) shows
//! what the size costs.
//!
//! - `offset_floor`: the entry at or below an offset (fetch start);
//! - `time_then_offset`: time index then offset index (ListOffsets by
//!   timestamp, the read path's `timestamp_start`);
//! - `decode_offset_index`: parsing and checking a whole `.index` file, as
//!   opening a segment does.
//!
//! Probes are 4,096 pseudo-random targets cycled through, so successive
//! lookups do not hit the same cache lines.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use corestream::storage::index::{OffsetIndex, TimeIndex};
use corestream::storage::{INDEX_INTERVAL_BYTES_DEFAULT, SEGMENT_BYTES_DEFAULT};

/// Entries of a full index at the default segment size and interval.
const FULL_INDEX_ENTRIES: u32 =
    (SEGMENT_BYTES_DEFAULT / INDEX_INTERVAL_BYTES_DEFAULT as u64) as u32;
/// Entries of a small index (a 4 MiB segment).
const SMALL_INDEX_ENTRIES: u32 = 1_024;
/// Offsets between two entries (records per indexed batch).
const OFFSETS_PER_ENTRY: u32 = 4;
/// Lookup targets cycled through.
const PROBES: usize = 4_096;
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn indexes(entries: u32) -> (OffsetIndex, TimeIndex) {
    let mut offsets = OffsetIndex::default();
    let mut times = TimeIndex::default();
    for i in 0..entries {
        offsets.push(i * OFFSETS_PER_ENTRY, i * INDEX_INTERVAL_BYTES_DEFAULT);
        times.push_if_larger(BASE_TIMESTAMP_MS + i64::from(i), i * OFFSETS_PER_ENTRY);
    }
    (offsets, times)
}

/// Pseudo-random values below `bound` (xorshift; fixed seed).
fn probes(bound: u32) -> Vec<u32> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..PROBES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % u64::from(bound)) as u32
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_lookup");
    for entries in [SMALL_INDEX_ENTRIES, FULL_INDEX_ENTRIES] {
        group.throughput(Throughput::Elements(1));
        let (offsets, times) = indexes(entries);
        let targets = probes(entries * OFFSETS_PER_ENTRY);
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("offset_floor", entries),
            &offsets,
            |b, index| {
                b.iter(|| {
                    i = (i + 1) % PROBES;
                    black_box(index.floor(black_box(targets[i])))
                })
            },
        );
        let stamps: Vec<i64> = probes(entries)
            .into_iter()
            .map(|p| BASE_TIMESTAMP_MS + i64::from(p))
            .collect();
        group.bench_function(BenchmarkId::new("time_then_offset", entries), |b| {
            b.iter(|| {
                i = (i + 1) % PROBES;
                let relative = times.last_before(black_box(stamps[i]));
                black_box(relative.and_then(|r| offsets.floor(r)))
            })
        });
        let file = offsets.encode();
        group.throughput(Throughput::Bytes(file.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("decode_offset_index", entries),
            &file,
            |b, file| {
                b.iter(|| black_box(OffsetIndex::decode(black_box(file), SEGMENT_BYTES_DEFAULT)))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
