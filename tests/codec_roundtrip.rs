//! Property tests of the Kafka codec the broker relies on: for every API in
//! `handlers::SUPPORTED_APIS` and every served version, requests (which the
//! broker decodes) and responses (which it encodes) survive encode → decode
//! unchanged, and so does whatever the decoder accepts from mutated bytes:
//! `decode(encode(decode(bytes))) == decode(bytes)`. The table below must
//! name every served API (checked), so a new handler needs a row here.
//! Versions the crate no longer carries (KIP-896's removals that the broker
//! still serves) are checked with `protocol::legacy`'s types, which must
//! cover every served version the crate does not (checked).

use bytes::{Bytes, BytesMut};
use corestream::handlers::{ApiSpec, SUPPORTED_APIS};
use kafka_protocol::messages::*;
use std::ops::RangeInclusive;

use corestream::protocol::legacy::{self, LEGACY_VERSIONS};
use kafka_protocol::protocol::{Decodable, Encodable, Message};
use proptest::prelude::*;

// As in the broker: a mutated array length may ask for a huge allocation,
// which must come back as a decode error, not an abort.
#[global_allocator]
static ALLOCATOR: corestream::alloc::BrokerAllocator = corestream::alloc::BrokerAllocator;

/// Mutations applied to an encoded message per case, at most.
const MUTATIONS_MAX: usize = 8;

/// Encode → decode → equal; returns the encoding.
fn round_trip<T>(message: &T, version: i16) -> Bytes
where
    T: Encodable + Decodable + PartialEq + std::fmt::Debug,
{
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).expect("encodes");
    let size = message.compute_size(version).expect("sizes");
    assert_eq!(
        size,
        buf.len(),
        "compute_size disagrees with encode at v{version}"
    );
    let bytes = buf.freeze();
    let decoded = T::decode(&mut bytes.clone(), version).expect("decodes its own encoding");
    assert_eq!(&decoded, message, "round trip at v{version}");
    bytes
}

/// Whatever decodes from `bytes` re-encodes to something that decodes equal.
fn accepted_round_trips<T>(bytes: &[u8], version: i16)
where
    T: Encodable + Decodable + PartialEq + std::fmt::Debug,
{
    let Ok(decoded) = T::decode(&mut Bytes::copy_from_slice(bytes), version) else {
        return;
    };
    // A decoded value the encoder refuses (e.g. a field this version
    // cannot carry) is not a round trip to check.
    let mut buf = BytesMut::new();
    if decoded.encode(&mut buf, version).is_ok() {
        round_trip(&decoded, version);
    }
}

/// Checks `T` at the served versions the crate's `T` carries; the older
/// ones are `protocol::legacy`'s (see `check_legacy`).
fn check_message<T>(spec: &ApiSpec, mutations: &[(usize, u8)])
where
    T: Encodable + Decodable + Message + PartialEq + std::fmt::Debug + Default,
{
    check_versions::<T>(spec.min.max(T::VERSIONS.min)..=spec.max, mutations);
}

/// Flips `mutations` (position, xor) in `bytes` and checks what decodes.
fn check_versions<T>(versions: RangeInclusive<i16>, mutations: &[(usize, u8)])
where
    T: Encodable + Decodable + PartialEq + std::fmt::Debug + Default,
{
    for version in versions {
        let bytes = round_trip(&T::default(), version);
        let mut mutated = bytes.to_vec();
        for &(at, xor) in mutations {
            if !mutated.is_empty() {
                let at = at % mutated.len();
                mutated[at] ^= xor;
            }
        }
        accepted_round_trips::<T>(&mutated, version);
    }
}

macro_rules! served_apis {
    ($( $key:ident => $request:ty, $response:ty; )*) => {
        /// Keys of the APIs this table covers.
        const COVERED: &[ApiKey] = &[$(ApiKey::$key),*];

        fn check_all(mutations: &[(usize, u8)]) {
            for spec in SUPPORTED_APIS {
                match spec.key {
                    $(ApiKey::$key => {
                        check_message::<$request>(spec, mutations);
                        check_message::<$response>(spec, mutations);
                    })*
                    other => panic!("served API {other:?} has no codec round-trip row"),
                }
            }
        }
    };
}

served_apis! {
    Produce => ProduceRequest, ProduceResponse;
    Fetch => FetchRequest, FetchResponse;
    ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    Metadata => MetadataRequest, MetadataResponse;
    ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
    CreatePartitions => CreatePartitionsRequest, CreatePartitionsResponse;
    DescribeCluster => DescribeClusterRequest, DescribeClusterResponse;
    DescribeQuorum => DescribeQuorumRequest, DescribeQuorumResponse;
    ElectLeaders => ElectLeadersRequest, ElectLeadersResponse;
    SaslHandshake => SaslHandshakeRequest, SaslHandshakeResponse;
    SaslAuthenticate => SaslAuthenticateRequest, SaslAuthenticateResponse;
    DescribeUserScramCredentials => DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse;
    AlterUserScramCredentials => AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse;
    DescribeAcls => DescribeAclsRequest, DescribeAclsResponse;
    CreateAcls => CreateAclsRequest, CreateAclsResponse;
    DeleteAcls => DeleteAclsRequest, DeleteAclsResponse;
    DescribeClientQuotas => DescribeClientQuotasRequest, DescribeClientQuotasResponse;
    AlterClientQuotas => AlterClientQuotasRequest, AlterClientQuotasResponse;
    DescribeConfigs => DescribeConfigsRequest, DescribeConfigsResponse;
    AlterConfigs => AlterConfigsRequest, AlterConfigsResponse;
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
    DeleteRecords => DeleteRecordsRequest, DeleteRecordsResponse;
    InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
    FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup => JoinGroupRequest, JoinGroupResponse;
    SyncGroup => SyncGroupRequest, SyncGroupResponse;
    Heartbeat => HeartbeatRequest, HeartbeatResponse;
    LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
    OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
    ListGroups => ListGroupsRequest, ListGroupsResponse;
    DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
    DeleteGroups => DeleteGroupsRequest, DeleteGroupsResponse;
    OffsetDelete => OffsetDeleteRequest, OffsetDeleteResponse;
    AddPartitionsToTxn => AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
    AddOffsetsToTxn => AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
    EndTxn => EndTxnRequest, EndTxnResponse;
    WriteTxnMarkers => WriteTxnMarkersRequest, WriteTxnMarkersResponse;
    TxnOffsetCommit => TxnOffsetCommitRequest, TxnOffsetCommitResponse;
    DescribeTransactions => DescribeTransactionsRequest, DescribeTransactionsResponse;
    ListTransactions => ListTransactionsRequest, ListTransactionsResponse;
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
    ConsumerGroupDescribe => ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse;
}

macro_rules! legacy_apis {
    ($( $key:ident => $request:ty, $response:ty; )*) => {
        fn check_legacy(mutations: &[(usize, u8)]) {
            for (key, versions) in LEGACY_VERSIONS {
                match key {
                    $(ApiKey::$key => {
                        check_versions::<$request>(versions.clone(), mutations);
                        check_versions::<$response>(versions.clone(), mutations);
                    })*
                    other => panic!("legacy versions of {other:?} have no codec round-trip row"),
                }
            }
        }
    };
}

legacy_apis! {
    ListOffsets => legacy::list_offsets::ListOffsetsRequestV0, legacy::list_offsets::ListOffsetsResponseV0;
    OffsetCommit => legacy::offset_commit::OffsetCommitRequestV0V1, legacy::offset_commit::OffsetCommitResponseV0V1;
    OffsetFetch => legacy::offset_fetch::OffsetFetchRequestV0, legacy::offset_fetch::OffsetFetchResponseV0;
    CreateTopics => legacy::create_topics::CreateTopicsRequestV0V1, legacy::create_topics::CreateTopicsResponseV0V1;
    DeleteTopics => legacy::delete_topics::DeleteTopicsRequestV0, legacy::delete_topics::DeleteTopicsResponseV0;
    DescribeConfigs => legacy::describe_configs::DescribeConfigsRequestV0, legacy::describe_configs::DescribeConfigsResponseV0;
}

/// Every served version is coded by the crate or by `protocol::legacy`,
/// and the legacy codec covers only served versions below the crate's.
#[test]
fn every_served_version_has_a_codec() {
    for spec in SUPPORTED_APIS {
        let crate_versions = spec.key.valid_versions();
        for version in spec.min..=spec.max {
            let by_crate = crate_versions.min <= version && version <= crate_versions.max;
            assert!(
                by_crate || legacy::is_legacy(spec.key, version),
                "{:?} v{version} is served but has no codec",
                spec.key
            );
        }
    }
    for (key, versions) in LEGACY_VERSIONS {
        let spec = corestream::handlers::supported(*key).expect("legacy API is served");
        assert!(spec.min <= *versions.start() && *versions.end() < key.valid_versions().min);
    }
    check_legacy(&[]);
}

#[test]
fn every_served_api_has_a_row() {
    for spec in SUPPORTED_APIS {
        assert!(
            COVERED.contains(&spec.key),
            "{:?} missing from the table",
            spec.key
        );
    }
    check_all(&[]);
}

/// Populated messages, not only defaults: a produce request with topics and
/// records, and a fetch response with partitions, at every served version.
#[test]
fn populated_produce_and_fetch_round_trip() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let produce = corestream::handlers::supported(ApiKey::Produce).expect("served");
    for version in produce.min..=produce.max {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("t"),
                ))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(Bytes::from(
                        corestream::protocol::batch::build_test_batch(0, &[(None, Some(b"v"))], 5),
                    )))])]);
        round_trip(&request, version);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn decoded_messages_round_trip(
        mutations in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..=MUTATIONS_MAX)
    ) {
        check_all(&mutations);
        check_legacy(&mutations);
    }
}

/// Client quota messages with entries (a `<default>` entity is a null
/// name, values are doubles) survive a round trip at every served version.
#[test]
fn populated_client_quotas_round_trip() {
    use kafka_protocol::messages::alter_client_quotas_request as alter;
    use kafka_protocol::messages::describe_client_quotas_response as describe;
    use kafka_protocol::protocol::StrBytes;
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let spec = corestream::handlers::supported(ApiKey::AlterClientQuotas).expect("served");
    for version in spec.min..=spec.max {
        let request = AlterClientQuotasRequest::default()
            .with_validate_only(true)
            .with_entries(vec![alter::EntryData::default()
                .with_entity(vec![
                    alter::EntityData::default()
                        .with_entity_type(s("user"))
                        .with_entity_name(Some(s("alice"))),
                    alter::EntityData::default()
                        .with_entity_type(s("client-id"))
                        .with_entity_name(None),
                ])
                .with_ops(vec![alter::OpData::default()
                    .with_key(s("producer_byte_rate"))
                    .with_value(1_048_576.0)
                    .with_remove(false)])]);
        round_trip(&request, version);
    }
    let spec = corestream::handlers::supported(ApiKey::DescribeClientQuotas).expect("served");
    for version in spec.min..=spec.max {
        let response = DescribeClientQuotasResponse::default()
            .with_throttle_time_ms(5)
            .with_entries(Some(vec![describe::EntryData::default()
                .with_entity(vec![describe::EntityData::default()
                    .with_entity_type(s("user"))
                    .with_entity_name(None)])
                .with_values(vec![describe::ValueData::default()
                    .with_key(s("request_percentage"))
                    .with_value(12.5)])]));
        round_trip(&response, version);
    }
}
