//! Request/response codec cost through the `kafka-protocol` crate, as the
//! broker uses it: decode a Produce request (v9, one partition, one 16 KiB
//! batch: the records stay a `Bytes` slice, so this is header and framing
//! work) and encode a Metadata response (v12, 1 and 100 topics of 6
//! partitions).

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, MetadataResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use corestream::protocol::batch::build_test_batch;

const PRODUCE_VERSION: i16 = 9;
const METADATA_VERSION: i16 = 12;
const PARTITIONS_PER_TOPIC: i32 = 6;

fn produce_request_bytes(batch_bytes: usize) -> Bytes {
    let value = [0x5au8; 100];
    let records: Vec<_> = (0..batch_bytes / 108)
        .map(|_| (None, Some(&value[..])))
        .collect();
    let mut data = PartitionProduceData::default();
    data.index = 0;
    data.records = Some(Bytes::from(build_test_batch(
        0,
        &records,
        1_700_000_000_000,
    )));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("bench"));
    topic.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    let mut buf = BytesMut::new();
    request.encode(&mut buf, PRODUCE_VERSION).unwrap();
    buf.freeze()
}

fn metadata_response(topics: usize) -> MetadataResponse {
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(0);
    broker.host = StrBytes::from_static_str("127.0.0.1");
    broker.port = 9092;
    let mut response = MetadataResponse::default();
    response.brokers = vec![broker];
    response.cluster_id = Some(StrBytes::from_static_str("corestream-bench"));
    response.topics = (0..topics)
        .map(|t| {
            let mut topic = MetadataResponseTopic::default();
            topic.name = Some(TopicName(StrBytes::from_string(format!("topic-{t}"))));
            topic.partitions = (0..PARTITIONS_PER_TOPIC)
                .map(|p| {
                    let mut part = MetadataResponsePartition::default();
                    part.partition_index = p;
                    part.leader_id = BrokerId(0);
                    part.replica_nodes = vec![BrokerId(0)];
                    part.isr_nodes = vec![BrokerId(0)];
                    part
                })
                .collect();
            topic
        })
        .collect();
    response
}

fn bench_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let request = produce_request_bytes(16 << 10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("produce_request_v9_decode_16KiB", |b| {
        b.iter(|| ProduceRequest::decode(&mut black_box(request.clone()), PRODUCE_VERSION).unwrap())
    });
    for topics in [1usize, 100] {
        let response = metadata_response(topics);
        let mut buf = BytesMut::with_capacity(64 << 10);
        group.bench_with_input(
            BenchmarkId::new("metadata_response_v12_encode_topics", topics),
            &response,
            |b, response| {
                b.iter(|| {
                    buf.clear();
                    black_box(response)
                        .encode(&mut buf, METADATA_VERSION)
                        .unwrap();
                    buf.len()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
