//! Byte-for-byte checks of the hand-written writer against the
//! `kafka-protocol` crate's encoding of the same response (records inlined),
//! for every served version.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::*;
use crate::protocol::batch::build_test_batch;
use crate::protocol::frame::encode_response;

const CORRELATION_ID: i32 = 0x0102_0304;

fn batch(base_offset: i64, values: &[&[u8]]) -> Bytes {
    let records: Vec<_> = values.iter().map(|v| (None, Some(*v))).collect();
    Bytes::from(build_test_batch(base_offset, &records, 1_700_000_000_000))
}

/// The crate's view of our response, records inlined (one copy).
fn to_crate(r: &FetchResponseOut) -> FetchResponse {
    let topics = r.topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| {
            PartitionData::default()
                .with_partition_index(p.partition_index)
                .with_error_code(p.error_code)
                .with_high_watermark(p.high_watermark)
                .with_last_stable_offset(p.last_stable_offset)
                .with_log_start_offset(p.log_start_offset)
                .with_aborted_transactions(p.aborted_transactions.as_ref().map(|txns| {
                    txns.iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect()
                }))
                .with_preferred_read_replica(BrokerId(p.preferred_read_replica))
                .with_records(p.records.as_ref().map(RecordSlices::to_contiguous))
                .with_diverging_epoch(p.diverging_epoch.map_or_else(
                    EpochEndOffset::default,
                    |(epoch, end_offset)| {
                        EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end_offset)
                    },
                ))
                .with_current_leader(p.current_leader.map_or_else(
                    LeaderIdAndEpoch::default,
                    |(leader_id, leader_epoch)| {
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader_id))
                            .with_leader_epoch(leader_epoch)
                    },
                ))
        });
        FetchableTopicResponse::default()
            .with_topic(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partitions(partitions.collect())
    });
    FetchResponse::default()
        .with_throttle_time_ms(r.throttle_time_ms)
        .with_error_code(r.error_code)
        .with_session_id(r.session_id)
        .with_responses(topics.collect())
        .with_node_endpoints(
            r.node_endpoints
                .iter()
                .map(|e| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(e.node_id))
                        .with_host(StrBytes::from_string(e.host.clone()))
                        .with_port(e.port)
                        .with_rack(e.rack.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
}

fn crate_frame(version: i16, r: &FetchResponseOut) -> anyhow::Result<Bytes> {
    let header_version = ApiKey::Fetch.response_header_version(version);
    Ok(encode_response(
        CORRELATION_ID,
        header_version,
        &to_crate(r),
        version,
    )?)
}

fn assert_same(case: &str, r: &FetchResponseOut) {
    for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
        let expected = crate_frame(version, r)
            .unwrap_or_else(|e| panic!("{case} v{version}: crate refused: {e}"));
        let ours = encode_fetch_response(CORRELATION_ID, version, r)
            .unwrap_or_else(|e| panic!("{case} v{version}: writer refused: {e}"));
        assert_eq!(
            ours.total_bytes(),
            expected.len(),
            "{case} v{version}: size"
        );
        assert_eq!(ours.to_contiguous(), expected, "{case} v{version}: bytes");
    }
}

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

fn partition(index: i32, records: Option<RecordSlices>) -> PartitionOut {
    PartitionOut {
        partition_index: index,
        high_watermark: 42,
        last_stable_offset: 42,
        log_start_offset: 3,
        records,
        ..PartitionOut::default()
    }
}

fn slices(parts: &[Bytes]) -> RecordSlices {
    let mut r = RecordSlices::new();
    for p in parts {
        r.push(p.clone());
    }
    r
}

#[test]
fn fetch_response_empty_response() {
    assert_same("no topics", &FetchResponseOut::default());
}

#[test]
fn fetch_response_empty_and_null_records() {
    let r = FetchResponseOut {
        topics: vec![TopicOut {
            name: name("t"),
            topic_id: Uuid::from_u128(7),
            partitions: vec![partition(0, Some(RecordSlices::new())), partition(1, None)],
        }],
        ..Default::default()
    };
    assert_same("empty and null records", &r);
}

#[test]
fn fetch_response_records_in_several_slices() {
    let a = batch(10, &[b"hello", b"world"]);
    let b = batch(12, &[&[9u8; 300]]);
    let c = batch(13, &[b"x"]);
    let r = FetchResponseOut {
        throttle_time_ms: 5,
        topics: vec![TopicOut {
            name: name("orders"),
            topic_id: Uuid::from_u128(0xfeed),
            partitions: vec![partition(3, Some(slices(&[a, b, c])))],
        }],
        ..Default::default()
    };
    assert_same("several slices", &r);
    let parts = encode_fetch_response(1, 16, &r).unwrap();
    // metadata, three record slices, trailing tagged fields
    assert_eq!(parts.parts().len(), 5);
}

#[test]
fn fetch_response_errors_and_aborted_transactions() {
    let records = slices(&[batch(0, &[b"v"])]);
    let mut errored = partition(1, Some(RecordSlices::new()));
    errored.error_code = 1; // OFFSET_OUT_OF_RANGE
    errored.high_watermark = -1;
    errored.last_stable_offset = -1;
    errored.log_start_offset = -1;
    let mut with_empty = partition(0, Some(records.clone()));
    with_empty.aborted_transactions = Some(Vec::new());
    let mut with_txns = partition(2, Some(records));
    with_txns.aborted_transactions = Some(vec![
        AbortedTxn {
            producer_id: 77,
            first_offset: 1,
        },
        AbortedTxn {
            producer_id: 78,
            first_offset: 5,
        },
    ]);
    let r = FetchResponseOut {
        error_code: 0,
        topics: vec![TopicOut {
            name: name("tx"),
            topic_id: Uuid::from_u128(1),
            partitions: vec![with_empty, errored, with_txns],
        }],
        ..Default::default()
    };
    assert_same("errors, aborted null/empty/some", &r);
}

#[test]
fn fetch_response_several_topics_and_partitions() {
    let topic = |n: &'static str, id: u128, count: i32| TopicOut {
        name: name(n),
        topic_id: Uuid::from_u128(id),
        partitions: (0..count)
            .map(|p| {
                let values: Vec<Vec<u8>> = (0..p + 1).map(|i| vec![i as u8; 100]).collect();
                let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                partition(p, Some(slices(&[batch(i64::from(p), &refs)])))
            })
            .collect(),
    };
    let r = FetchResponseOut {
        throttle_time_ms: 0,
        topics: vec![
            topic("a", 1, 3),
            topic("a-much-longer-topic-name", 2, 1),
            topic("c", 3, 6),
        ],
        ..Default::default()
    };
    assert_same("several topics", &r);
}

#[test]
fn fetch_response_session_id_and_top_level_error() {
    // session_id exists from v7: the crate refuses it below, so do we.
    let r = FetchResponseOut {
        error_code: 71,
        session_id: 1234,
        ..Default::default()
    };
    for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
        let ours = encode_fetch_response(CORRELATION_ID, version, &r);
        match crate_frame(version, &r) {
            Ok(expected) => assert_eq!(ours.unwrap().to_contiguous(), expected, "v{version}"),
            Err(_) => assert_eq!(
                ours.unwrap_err(),
                FetchWriteError::FieldNotInVersion {
                    field: "SessionId",
                    version
                }
            ),
        }
    }
    // error_code alone is dropped below v7, as the crate does.
    assert_same(
        "top-level error",
        &FetchResponseOut {
            error_code: 71,
            ..Default::default()
        },
    );
}

#[test]
fn fetch_response_preferred_read_replica_rules() {
    let mut p = partition(0, Some(RecordSlices::new()));
    p.preferred_read_replica = 2;
    let r = FetchResponseOut {
        topics: vec![TopicOut {
            name: name("t"),
            topic_id: Uuid::nil(),
            partitions: vec![p],
        }],
        ..Default::default()
    };
    for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
        let ours = encode_fetch_response(CORRELATION_ID, version, &r);
        match crate_frame(version, &r) {
            Ok(expected) => assert_eq!(ours.unwrap().to_contiguous(), expected, "v{version}"),
            Err(_) => assert!(
                matches!(ours, Err(FetchWriteError::FieldNotInVersion { .. })),
                "v{version}: crate refused, writer did not"
            ),
        }
    }
}

#[test]
fn fetch_response_unsupported_versions_refused() {
    for version in [3, 17, -1] {
        assert_eq!(
            encode_fetch_response(0, version, &FetchResponseOut::default()).unwrap_err(),
            FetchWriteError::UnsupportedVersion { version }
        );
    }
}

#[test]
fn fetch_response_record_slices_are_shared_not_copied() {
    let a = batch(0, &[&[1u8; 1000]]);
    let r = FetchResponseOut {
        topics: vec![TopicOut {
            name: name("t"),
            topic_id: Uuid::nil(),
            partitions: vec![partition(0, Some(RecordSlices::from_bytes(a.clone())))],
        }],
        ..Default::default()
    };
    let parts = encode_fetch_response(0, 12, &r).unwrap();
    assert!(parts.parts().iter().any(|p| p
        .as_bytes()
        .is_some_and(|p| p.as_ptr() == a.as_ptr() && p.len() == a.len())));
}

#[test]
fn record_slices_truncate_at_batch_ends() {
    let a = batch(0, &[b"a"]);
    let b = batch(1, &[b"bb"]);
    let c = batch(2, &[b"ccc"]);
    let joined = Bytes::from([b.to_vec(), c.to_vec()].concat());
    let mut r = slices(&[a.clone(), joined]);
    let ends: Vec<usize> = r.batch_ends().collect();
    assert_eq!(
        ends,
        vec![a.len(), a.len() + b.len(), a.len() + b.len() + c.len()]
    );
    r.truncate(ends[1]);
    assert_eq!(r.len(), ends[1]);
    assert_eq!(r.slices().len(), 2);
    assert_eq!(
        r.to_contiguous(),
        Bytes::from([a.to_vec(), b.to_vec()].concat())
    );
    r.truncate(0);
    assert!(r.is_empty() && r.slices().is_empty());
}

/// DivergingEpoch is tagged field 0 of a partition from v12 (KIP-595);
/// older versions have no place for it and the writer leaves it out.
#[test]
fn fetch_response_v12_diverging_epoch_tagged_field() {
    let diverging = PartitionOut {
        diverging_epoch: Some((3, 1_234_567)),
        records: Some(RecordSlices::new()),
        ..partition(0, None)
    };
    let r = FetchResponseOut {
        topics: vec![TopicOut {
            name: name("t"),
            topic_id: Uuid::from_u128(7),
            partitions: vec![diverging.clone(), partition(1, Some(RecordSlices::new()))],
        }],
        ..FetchResponseOut::default()
    };
    for version in 12..=FETCH_VERSION_MAX {
        let expected = crate_frame(version, &r).expect("crate encodes");
        let ours = encode_fetch_response(CORRELATION_ID, version, &r).expect("writer encodes");
        assert_eq!(ours.to_contiguous(), expected, "v{version}");
    }
    let without = FetchResponseOut {
        topics: vec![TopicOut {
            partitions: vec![
                PartitionOut {
                    diverging_epoch: None,
                    ..diverging
                },
                partition(1, Some(RecordSlices::new())),
            ],
            ..r.topics[0].clone()
        }],
        ..r.clone()
    };
    for version in FETCH_VERSION_MIN..12 {
        let ours = encode_fetch_response(CORRELATION_ID, version, &r).expect("writer encodes");
        let plain = encode_fetch_response(CORRELATION_ID, version, &without).expect("plain");
        assert_eq!(ours.to_contiguous(), plain.to_contiguous(), "v{version}");
    }
}

/// KIP-951: a NOT_LEADER_OR_FOLLOWER partition's CurrentLeader (tag 1,
/// alone and after a DivergingEpoch) and the response's NodeEndpoints
/// (tag 0, v16), byte for byte against the crate at v16.
#[test]
fn fetch_response_v16_current_leader_and_node_endpoints() {
    let not_leader = PartitionOut {
        error_code: 6,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(RecordSlices::new()),
        current_leader: Some((2, 9)),
        ..PartitionOut::default()
    };
    let both = PartitionOut {
        partition_index: 1,
        diverging_epoch: Some((3, 77)),
        current_leader: Some((3, 300)),
        ..not_leader.clone()
    };
    let r = FetchResponseOut {
        topics: vec![TopicOut {
            name: name("t"),
            topic_id: Uuid::from_u128(7),
            partitions: vec![not_leader, both, partition(2, Some(RecordSlices::new()))],
        }],
        node_endpoints: vec![
            NodeEndpointOut {
                node_id: 2,
                host: "broker-2.example".into(),
                port: 19092,
                rack: None,
            },
            NodeEndpointOut {
                node_id: 3,
                host: "b3".into(),
                port: 9092,
                rack: Some("rack-a".into()),
            },
        ],
        ..FetchResponseOut::default()
    };
    let expected = crate_frame(16, &r).expect("crate encodes");
    let ours = encode_fetch_response(CORRELATION_ID, 16, &r).expect("writer encodes");
    assert_eq!(ours.total_bytes(), expected.len(), "size");
    assert_eq!(ours.to_contiguous(), expected, "bytes");
    // Decoded back by the crate: the client sees the hint.
    let mut body = expected.slice(4 + 4 + 1..);
    let decoded = <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 16)
        .expect("decodes");
    let p0 = &decoded.responses[0].partitions[0];
    assert_eq!(
        (
            p0.current_leader.leader_id.0,
            p0.current_leader.leader_epoch
        ),
        (2, 9)
    );
    assert_eq!(decoded.node_endpoints.len(), 2);
    assert_eq!(decoded.node_endpoints[0].host.as_str(), "broker-2.example");
    // v4-15 have no NodeEndpoints (and v4-11 no CurrentLeader): dropped,
    // as the crate drops them.
    for version in FETCH_VERSION_MIN..16 {
        let expected = crate_frame(version, &r).expect("crate encodes");
        let ours = encode_fetch_response(CORRELATION_ID, version, &r).expect("writer encodes");
        assert_eq!(ours.to_contiguous(), expected, "v{version}");
    }
}
