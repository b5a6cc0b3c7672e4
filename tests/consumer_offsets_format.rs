//! What the broker stores in `__consumer_offsets` is what Kafka 3.x stores,
//! so tools that read the topic itself (Burrow, kafka-consumer-groups'
//! formatter, Kafka's own coordinator) decode it. Each record is decoded
//! here by a reader written from Kafka's schemas (group-coordinator's
//! OffsetCommitKey/Value and GroupMetadataKey/Value JSON), independent of
//! `group::records`, which must consume every byte.
//!
//! Kafka 3.x writes offset key v1, offset value v3 (v1 only when the commit
//! carried a retention time, OffsetCommit v2-4), group key v2 and group
//! value v3. Burrow 1.2.1 (Debian 12) decodes offset keys 0-1 and offset
//! values 0, 1 and 3 (its binary has decodeOffsetValueV0 and V3), so lag
//! works; it decodes group values 0-1 only and logs and skips v2+ (owner
//! columns), as it does against any Kafka since 2.1.

use bytes::{Buf, Bytes};
use corestream::group::records::{GroupValue, MemberValue, OffsetValue, RecordKey};

/// Key versions Burrow 1.2.1 reads as offset commits.
const BURROW_OFFSET_KEY_VERSIONS: [i16; 2] = [0, 1];
/// Value versions Burrow 1.2.1 reads as offset commits.
const BURROW_OFFSET_VALUE_VERSIONS: [i16; 3] = [0, 1, 3];
/// Key version Burrow 1.2.1 reads as group metadata.
const BURROW_GROUP_KEY_VERSION: i16 = 2;

/// Kafka 3.x's versions for classic groups.
const KAFKA_3_OFFSET_KEY_VERSION: i16 = 1;
const KAFKA_3_OFFSET_VALUE_VERSION: i16 = 3;
const KAFKA_3_GROUP_KEY_VERSION: i16 = 2;
const KAFKA_3_GROUP_VALUE_VERSION: i16 = 3;

fn string(buf: &mut &[u8]) -> Option<String> {
    let len = buf.get_i16();
    if len < 0 {
        return None;
    }
    let (s, rest) = buf.split_at(len as usize);
    *buf = rest;
    Some(String::from_utf8(s.to_vec()).expect("utf-8"))
}

fn bytes(buf: &mut &[u8]) -> Vec<u8> {
    let len = buf.get_i32();
    let (b, rest) = buf.split_at(len.max(0) as usize);
    *buf = rest;
    b.to_vec()
}

#[test]
fn consumer_offsets_offset_commit_is_kafka_3_key_v1_value_v3() {
    let key = RecordKey::Offset {
        group: "lag-group".into(),
        topic: "orders".into(),
        partition: 4,
    }
    .encode();
    let mut k = &key[..];
    let version = k.get_i16();
    assert_eq!(version, KAFKA_3_OFFSET_KEY_VERSION);
    assert!(BURROW_OFFSET_KEY_VERSIONS.contains(&version));
    assert_eq!(string(&mut k).as_deref(), Some("lag-group"));
    assert_eq!(string(&mut k).as_deref(), Some("orders"));
    assert_eq!(k.get_i32(), 4);
    assert!(k.is_empty(), "key has {} bytes more than Kafka's", k.len());

    let value = OffsetValue {
        offset: 1234,
        leader_epoch: 7,
        metadata: "m".into(),
        commit_timestamp_ms: 1_700_000_000_123,
    }
    .encode();
    let mut v = &value[..];
    let version = v.get_i16();
    assert_eq!(version, KAFKA_3_OFFSET_VALUE_VERSION);
    assert!(BURROW_OFFSET_VALUE_VERSIONS.contains(&version));
    // Burrow's decodeOffsetValueV3 and Kafka's OffsetCommitValue v3.
    assert_eq!(v.get_i64(), 1234);
    assert_eq!(v.get_i32(), 7);
    assert_eq!(string(&mut v).as_deref(), Some("m"));
    assert_eq!(v.get_i64(), 1_700_000_000_123);
    assert!(
        v.is_empty(),
        "value has {} bytes more than Kafka's",
        v.len()
    );
}

#[test]
fn consumer_offsets_group_metadata_is_kafka_3_key_v2_value_v3() {
    let key = RecordKey::Group {
        group: "lag-group".into(),
    }
    .encode();
    let mut k = &key[..];
    let version = k.get_i16();
    assert_eq!(version, KAFKA_3_GROUP_KEY_VERSION);
    assert_eq!(version, BURROW_GROUP_KEY_VERSION);
    assert_eq!(string(&mut k).as_deref(), Some("lag-group"));
    assert!(k.is_empty());

    let value = GroupValue {
        protocol_type: "consumer".into(),
        generation: 3,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp_ms: 99,
        members: vec![MemberValue {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "burrow-test".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"sub"),
            assignment: Bytes::from_static(b"asg"),
        }],
    }
    .encode();
    let mut v = &value[..];
    assert_eq!(v.get_i16(), KAFKA_3_GROUP_VALUE_VERSION);
    assert_eq!(string(&mut v).as_deref(), Some("consumer"));
    assert_eq!(v.get_i32(), 3);
    assert_eq!(string(&mut v).as_deref(), Some("range"));
    assert_eq!(string(&mut v).as_deref(), Some("m-1"));
    assert_eq!(v.get_i64(), 99); // currentStateTimestamp (v2+)
    assert_eq!(v.get_i32(), 1);
    assert_eq!(string(&mut v).as_deref(), Some("m-1"));
    assert_eq!(string(&mut v), None); // groupInstanceId (v3+)
    assert_eq!(string(&mut v).as_deref(), Some("burrow-test"));
    assert_eq!(string(&mut v).as_deref(), Some("/10.0.0.1"));
    assert_eq!(v.get_i32(), 300_000); // rebalanceTimeout (v1+)
    assert_eq!(v.get_i32(), 45_000);
    assert_eq!(bytes(&mut v), b"sub");
    assert_eq!(bytes(&mut v), b"asg");
    assert!(
        v.is_empty(),
        "value has {} bytes more than Kafka's",
        v.len()
    );
}
