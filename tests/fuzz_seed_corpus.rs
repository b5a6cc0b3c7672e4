//! Seed inputs for the fuzz targets in `fuzz/`: real-format requests encoded
//! with the `kafka-protocol` crate, and record batches from the test builder.
//!
//! `seeds_decode` checks every seed goes through the same path the
//! `request_decode` target takes; `sasl_seeds_are_op_streams` checks the
//! `sasl_exchange` seeds follow that target's input format. To (re)write the corpus files:
//! `cargo test --test fuzz_seed_corpus -- --ignored`.

use bytes::{BufMut, Bytes, BytesMut};
use corestream::protocol::batch::{build_test_batch, validate_produce};
use corestream::protocol::frame::{parse_request_header, FrameDecoder};
use kafka_protocol::messages::{
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    ApiKey, ApiVersionsRequest, FetchRequest, FindCoordinatorRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("orders"))
}

/// A size-prefixed request frame.
fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, key.request_header_version(version))
        .unwrap();
    body.encode(&mut payload, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(payload.len() as i32);
    out.put_slice(&payload);
    out.to_vec()
}

fn produce() -> ProduceRequest {
    let records = build_test_batch(
        0,
        &[(Some(b"k"), Some(b"v")), (None, Some(b"second"))],
        1_700_000_000_000,
    );
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])])
}

fn request_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let api_versions = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("seed"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic())),
    ]));
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let list_offsets = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(topic())
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(-1)])]);
    let find_coordinator =
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("group-1"));
    vec![
        (
            "api_versions_v0",
            frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default()),
        ),
        (
            "api_versions_v3",
            frame(ApiKey::ApiVersions, 3, 2, &api_versions),
        ),
        ("metadata_v1", frame(ApiKey::Metadata, 1, 3, &metadata)),
        ("metadata_v12", frame(ApiKey::Metadata, 12, 4, &metadata)),
        ("produce_v3", frame(ApiKey::Produce, 3, 5, &produce())),
        ("produce_v9", frame(ApiKey::Produce, 9, 6, &produce())),
        ("fetch_v4", frame(ApiKey::Fetch, 4, 7, &fetch)),
        ("fetch_v12", frame(ApiKey::Fetch, 12, 8, &fetch)),
        (
            "list_offsets_v1",
            frame(ApiKey::ListOffsets, 1, 9, &list_offsets),
        ),
        (
            "list_offsets_v7",
            frame(ApiKey::ListOffsets, 7, 10, &list_offsets),
        ),
        (
            "find_coordinator_v1",
            frame(ApiKey::FindCoordinator, 1, 11, &find_coordinator),
        ),
        (
            "find_coordinator_v3",
            frame(ApiKey::FindCoordinator, 3, 12, &find_coordinator),
        ),
    ]
}

fn batch_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let one = build_test_batch(0, &[(Some(b"key"), Some(b"value"))], 1_700_000_000_000);
    let many = build_test_batch(
        10,
        &[
            (None, Some(&[1u8; 200][..])),
            (Some(b"k2"), None),
            (None, None),
        ],
        5,
    );
    vec![
        ("one_batch", one.clone()),
        ("three_records", many.clone()),
        ("two_batches", [one, many].concat()),
    ]
}

/// A request frame's body (after the size prefix), as `sasl_exchange`'s
/// raw-frame op takes it.
fn frame_body(key: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
    frame(key, version, 1, body)[4..].to_vec()
}

/// One `sasl_exchange` op: `[op][len][payload]` (see that target's doc:
/// op & 7 is 0 raw frame, 1 handshake (bit 3: v1), 2 token, 3 honest
/// PLAIN, 4 honest client-first, 5 client-final with a computed proof,
/// 6 client-final with the payload as proof).
fn op(code: u8, payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(payload.len()).expect("payload under 256 bytes");
    [&[code, len][..], payload].concat()
}

const HANDSHAKE_V0: u8 = 1;
const HANDSHAKE_V1: u8 = 1 | 8;
const PICK_PLAIN: u8 = 0;
const PICK_SCRAM_256: u8 = 1;
const PICK_SCRAM_512: u8 = 2;

fn sasl_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let handshake = |version: i16, mechanism: &'static str| {
        let request =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        frame_body(ApiKey::SaslHandshake, version, &request)
    };
    let authenticate = |version: i16, token: &'static [u8]| {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(token));
        frame_body(ApiKey::SaslAuthenticate, version, &request)
    };
    let metadata = frame_body(ApiKey::Metadata, 12, &MetadataRequest::default());
    vec![
        (
            "plain_v1_right_password",
            [vec![0], op(HANDSHAKE_V1, &[PICK_PLAIN]), op(3, &[0, 0, 0])].concat(),
        ),
        (
            "plain_v0_raw_wrong_password",
            [
                vec![1],
                op(HANDSHAKE_V0, &[PICK_PLAIN]),
                op(3, &[2, 1, 1, b'x']),
            ]
            .concat(),
        ),
        (
            "scram512_v1_right_password",
            [
                vec![0],
                op(HANDSHAKE_V1, &[PICK_SCRAM_512]),
                op(4 | 8, &[0, 0, b'a', b'b', b'c']),
                op(5 | 16, &[0]),
            ]
            .concat(),
        ),
        (
            "scram256_v0_raw_bob",
            [
                vec![1],
                op(HANDSHAKE_V0, &[PICK_SCRAM_256]),
                op(4, &[1, 2, b'n']),
                op(5, &[0]),
            ]
            .concat(),
        ),
        (
            "scram512_wrong_password_and_binding",
            [
                vec![0],
                op(HANDSHAKE_V1, &[PICK_SCRAM_512]),
                op(4, &[2, 1, b'z']),
                op(5, &[3, b'n', b'o']),
            ]
            .concat(),
        ),
        (
            "scram512_payload_proof",
            [
                vec![0],
                op(HANDSHAKE_V1, &[PICK_SCRAM_512]),
                op(4, &[0, 0, b'q']),
                op(6, &[7; 64]),
            ]
            .concat(),
        ),
        (
            "raw_frames_scram256",
            [
                vec![0],
                op(0, &handshake(1, "SCRAM-SHA-256")),
                op(0, &authenticate(2, b"n,,n=alice,r=abc")),
                op(5, &[1, b'w']),
            ]
            .concat(),
        ),
        (
            "raw_frames_plain_v0",
            [
                vec![1],
                op(0, &handshake(0, "PLAIN")),
                op(0, b"\0alice\0alice-pw"),
            ]
            .concat(),
        ),
        (
            "metadata_before_authentication",
            [vec![0], op(0, &metadata)].concat(),
        ),
        (
            "unknown_mechanism",
            [vec![0], op(HANDSHAKE_V1, b"\xffGSSAPI")].concat(),
        ),
    ]
}

#[test]
fn sasl_seeds_are_op_streams() {
    for (name, seed) in sasl_seeds() {
        let mut rest = &seed[1..];
        let mut ops = 0;
        while let [code, len, tail @ ..] = rest {
            let len = usize::from(*len);
            assert!(len <= tail.len(), "{name}: op {ops} runs past the end");
            let (payload, next) = tail.split_at(len);
            if *code & 7 == 0 {
                // A raw frame is a whole SASL-gate request (or a raw token).
                let mut body = Bytes::copy_from_slice(payload);
                if let Ok(header) = parse_request_header(&mut body) {
                    let version = header.api_version;
                    let whole = match header.api_key {
                        Some(ApiKey::SaslHandshake) => {
                            SaslHandshakeRequest::decode(&mut body, version).is_ok()
                        }
                        Some(ApiKey::SaslAuthenticate) => {
                            SaslAuthenticateRequest::decode(&mut body, version).is_ok()
                        }
                        Some(ApiKey::Metadata) => {
                            MetadataRequest::decode(&mut body, version).is_ok()
                        }
                        // A raw SASL token after a v0 handshake.
                        _ => true,
                    };
                    let raw_token = !matches!(
                        header.api_key,
                        Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate | ApiKey::Metadata)
                    );
                    assert!(
                        whole && (raw_token || body.is_empty()),
                        "{name}: frame {ops}"
                    );
                }
            }
            rest = next;
            ops += 1;
        }
        assert!(
            rest.is_empty() && ops > 0,
            "{name}: ops do not tile the seed"
        );
    }
}

#[test]
fn seeds_decode() {
    for (name, bytes) in request_seeds() {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut body = FrameDecoder::default()
            .decode(&mut buf)
            .unwrap()
            .expect(name);
        let header = parse_request_header(&mut body).unwrap();
        assert!(header.body_decodable(), "{name}");
        let version = header.api_version;
        let decoded_ok = match header.api_key.unwrap() {
            ApiKey::ApiVersions => ApiVersionsRequest::decode(&mut body, version).is_ok(),
            ApiKey::Metadata => MetadataRequest::decode(&mut body, version).is_ok(),
            ApiKey::Produce => ProduceRequest::decode(&mut body, version).is_ok(),
            ApiKey::Fetch => FetchRequest::decode(&mut body, version).is_ok(),
            ApiKey::ListOffsets => ListOffsetsRequest::decode(&mut body, version).is_ok(),
            ApiKey::FindCoordinator => FindCoordinatorRequest::decode(&mut body, version).is_ok(),
            other => panic!("no seed for {other:?}"),
        };
        assert!(decoded_ok && body.is_empty(), "{name}");
    }
    for (name, bytes) in batch_seeds() {
        validate_produce(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run explicitly to refresh the seeds"]
fn write_fuzz_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (target, seeds) in [
        ("request_decode", request_seeds()),
        ("batch_validate", batch_seeds()),
        ("sasl_exchange", sasl_seeds()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// Decodes a request body of a given key with the crate; `None` for an API
/// this test does not list.
fn decodes_whole(key: ApiKey, body: &mut Bytes, version: i16) -> Option<bool> {
    use kafka_protocol::messages::*;
    fn whole<T: Decodable>(body: &mut Bytes, version: i16) -> bool {
        T::decode(body, version).is_ok() && body.is_empty()
    }
    Some(match key {
        ApiKey::Produce => whole::<ProduceRequest>(body, version),
        ApiKey::Fetch => whole::<FetchRequest>(body, version),
        ApiKey::ListOffsets => whole::<ListOffsetsRequest>(body, version),
        ApiKey::Metadata => whole::<MetadataRequest>(body, version),
        ApiKey::OffsetCommit => whole::<OffsetCommitRequest>(body, version),
        ApiKey::OffsetFetch => whole::<OffsetFetchRequest>(body, version),
        ApiKey::FindCoordinator => whole::<FindCoordinatorRequest>(body, version),
        ApiKey::JoinGroup => whole::<JoinGroupRequest>(body, version),
        ApiKey::Heartbeat => whole::<HeartbeatRequest>(body, version),
        ApiKey::LeaveGroup => whole::<LeaveGroupRequest>(body, version),
        ApiKey::SyncGroup => whole::<SyncGroupRequest>(body, version),
        ApiKey::DescribeGroups => whole::<DescribeGroupsRequest>(body, version),
        ApiKey::ListGroups => whole::<ListGroupsRequest>(body, version),
        ApiKey::ApiVersions => whole::<ApiVersionsRequest>(body, version),
        ApiKey::CreateTopics => whole::<CreateTopicsRequest>(body, version),
        ApiKey::InitProducerId => whole::<InitProducerIdRequest>(body, version),
        ApiKey::CreatePartitions => whole::<CreatePartitionsRequest>(body, version),
        ApiKey::DescribeCluster => whole::<DescribeClusterRequest>(body, version),
        _ => return None,
    })
}

/// The seeds captured from real clients by `scripts/capture-seeds`
/// (librdkafka 2.16 via confluent-kafka, and kafka-python) decode whole: the
/// codec and header parser accept what real clients send.
#[test]
fn captured_client_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/request_decode");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("client-") {
            continue;
        }
        let mut buf = BytesMut::from(&std::fs::read(&path).unwrap()[..]);
        let mut body = FrameDecoder::default()
            .decode(&mut buf)
            .unwrap()
            .expect(&name);
        let header = parse_request_header(&mut body).unwrap();
        assert!(header.body_decodable(), "{name}");
        let key = header.api_key.unwrap();
        let ok = decodes_whole(key, &mut body, header.api_version)
            .unwrap_or_else(|| panic!("{name}: list {key:?} here"));
        assert!(ok, "{name} does not decode whole");
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} captured seeds in {}",
        dir.display()
    );
}
