//! Fetch response assembly: the hand-written parts writer
//! (`protocol::fetch_writer`, record slices shared) against the
//! `kafka-protocol` crate's encoder (records copied into one buffer), for
//! the same response.
//!
//! - `6x256KiB`: 6 partitions with 256 KiB of records each (a consumer at
//!   the tail of a busy topic);
//! - `100x1KiB`: 100 partitions with 1 KiB each (many small partitions).
//!
//! Throughput is record bytes per second of response assembly.

use bytes::Bytes;
use corestream::protocol::batch::build_test_batch;
use corestream::protocol::fetch_writer::{
    encode_fetch_response, FetchResponseOut, PartitionOut, RecordSlices, TopicOut,
};
use corestream::protocol::frame::encode_response;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

const VERSION: i16 = 12;

fn records(bytes: usize) -> Bytes {
    let value = vec![0x5au8; 1000];
    let count = (bytes / 1008).max(1);
    let recs: Vec<_> = (0..count).map(|_| (None, Some(&value[..]))).collect();
    Bytes::from(build_test_batch(0, &recs, 1_700_000_000_000))
}

fn ours(partitions: usize, bytes: usize) -> FetchResponseOut {
    let recs = records(bytes);
    FetchResponseOut {
        topics: vec![TopicOut {
            name: TopicName(StrBytes::from_static_str("bench")),
            topic_id: Uuid::from_u128(1),
            partitions: (0..partitions as i32)
                .map(|p| PartitionOut {
                    partition_index: p,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    records: Some(RecordSlices::from_bytes(recs.clone())),
                    ..PartitionOut::default()
                })
                .collect(),
        }],
        ..FetchResponseOut::default()
    }
}

fn theirs(partitions: usize, bytes: usize) -> FetchResponse {
    let recs = records(bytes);
    let parts = (0..partitions as i32)
        .map(|p| {
            PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(1_000_000)
                .with_last_stable_offset(1_000_000)
                .with_log_start_offset(0)
                .with_records(Some(recs.clone()))
        })
        .collect();
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench")))
        .with_partitions(parts)])
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_response");
    for (name, partitions, bytes) in [("6x256KiB", 6, 256 << 10), ("100x1KiB", 100, 1 << 10)] {
        let record_bytes = records(bytes).len() * partitions;
        group.throughput(Throughput::Bytes(record_bytes as u64));
        let response = ours(partitions, bytes);
        group.bench_with_input(BenchmarkId::new("parts_writer", name), &response, |b, r| {
            b.iter(|| black_box(encode_fetch_response(7, VERSION, r).unwrap()))
        });
        let response = theirs(partitions, bytes);
        let header_version = ApiKey::Fetch.response_header_version(VERSION);
        group.bench_with_input(
            BenchmarkId::new("kafka_protocol", name),
            &response,
            |b, r| b.iter(|| black_box(encode_response(7, header_version, r, VERSION).unwrap())),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
