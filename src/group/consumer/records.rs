//! The `__consumer_offsets` records of KIP-848 consumer groups, in Kafka's
//! own formats (key versions 3-8), so a group is rebuilt on start the way
//! classic groups are and Kafka's tools can read the topic:
//!
//! | key version | key fields          | value (version 0, flexible)                 |
//! |-------------|---------------------|---------------------------------------------|
//! | 3           | group               | group epoch                                 |
//! | 4           | group               | subscribed topics: id, name, partitions     |
//! | 5           | group, member       | instance, rack, client, subscription, ...   |
//! | 6           | group               | target assignment epoch                     |
//! | 7           | group, member       | the member's target partitions              |
//! | 8           | group, member       | epochs, state, assigned, pending revocation |
//!
//! Keys are non-flexible (int16 version, int16-length strings); values are
//! flexible: compact strings and arrays, tagged fields (written empty,
//! skipped on read, so fields Kafka added as tags later do not break us).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::member::MemberState;
use super::TopicPartitions;
use crate::group::records::CodecError;

/// Key versions of the consumer-group records.
pub mod key_version {
    /// Group epoch.
    pub const GROUP_METADATA: i16 = 3;
    /// Subscribed topics' metadata.
    pub const PARTITION_METADATA: i16 = 4;
    /// A member's subscription and client.
    pub const MEMBER_METADATA: i16 = 5;
    /// Target assignment epoch.
    pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
    /// A member's target assignment.
    pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
    /// A member's current assignment and epochs.
    pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
}

/// The key of a consumer-group record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsumerKey {
    /// Key 3.
    GroupMetadata(String),
    /// Key 4.
    PartitionMetadata(String),
    /// Key 5: (group, member).
    MemberMetadata(String, String),
    /// Key 6.
    TargetAssignmentMetadata(String),
    /// Key 7: (group, member).
    TargetAssignmentMember(String, String),
    /// Key 8: (group, member).
    CurrentMemberAssignment(String, String),
}

impl ConsumerKey {
    /// The group the key belongs to.
    pub fn group(&self) -> &str {
        match self {
            ConsumerKey::GroupMetadata(g)
            | ConsumerKey::PartitionMetadata(g)
            | ConsumerKey::TargetAssignmentMetadata(g)
            | ConsumerKey::MemberMetadata(g, _)
            | ConsumerKey::TargetAssignmentMember(g, _)
            | ConsumerKey::CurrentMemberAssignment(g, _) => g,
        }
    }

    /// Encodes the key.
    pub fn encode(&self) -> Bytes {
        use key_version::*;
        let mut b = BytesMut::new();
        let (version, group, member) = match self {
            ConsumerKey::GroupMetadata(g) => (GROUP_METADATA, g, None),
            ConsumerKey::PartitionMetadata(g) => (PARTITION_METADATA, g, None),
            ConsumerKey::MemberMetadata(g, m) => (MEMBER_METADATA, g, Some(m)),
            ConsumerKey::TargetAssignmentMetadata(g) => (TARGET_ASSIGNMENT_METADATA, g, None),
            ConsumerKey::TargetAssignmentMember(g, m) => (TARGET_ASSIGNMENT_MEMBER, g, Some(m)),
            ConsumerKey::CurrentMemberAssignment(g, m) => (CURRENT_MEMBER_ASSIGNMENT, g, Some(m)),
        };
        b.put_i16(version);
        put_str(&mut b, group);
        if let Some(m) = member {
            put_str(&mut b, m);
        }
        b.freeze()
    }

    /// Decodes a key; `Ok(None)` for versions that are not consumer-group
    /// records.
    pub fn decode(mut buf: &[u8]) -> Result<Option<ConsumerKey>, CodecError> {
        use key_version::*;
        let version = get_i16(&mut buf, "key version")?;
        let key = match version {
            GROUP_METADATA => ConsumerKey::GroupMetadata(get_str(&mut buf, "group")?),
            PARTITION_METADATA => ConsumerKey::PartitionMetadata(get_str(&mut buf, "group")?),
            TARGET_ASSIGNMENT_METADATA => {
                ConsumerKey::TargetAssignmentMetadata(get_str(&mut buf, "group")?)
            }
            MEMBER_METADATA | TARGET_ASSIGNMENT_MEMBER | CURRENT_MEMBER_ASSIGNMENT => {
                let group = get_str(&mut buf, "group")?;
                let member = get_str(&mut buf, "member")?;
                match version {
                    MEMBER_METADATA => ConsumerKey::MemberMetadata(group, member),
                    TARGET_ASSIGNMENT_MEMBER => ConsumerKey::TargetAssignmentMember(group, member),
                    _ => ConsumerKey::CurrentMemberAssignment(group, member),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(key))
    }
}

/// Value of key 5: what the member told the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    /// group.instance.id.
    pub instance_id: Option<String>,
    /// client.rack.
    pub rack_id: Option<String>,
    /// client.id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: i32,
    /// Requested server assignor.
    pub server_assignor: Option<String>,
}

/// Value of key 8: the member's reconciled state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    /// Member epoch.
    pub member_epoch: i32,
    /// Previous member epoch (a lost epoch bump may be retried with it).
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions the member owns.
    pub assigned: TopicPartitions,
    /// Partitions it must give up.
    pub pending_revocation: TopicPartitions,
}

/// One subscribed topic's metadata (value of key 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// Subscribed topics by name, as last used for an assignment.
pub type SubscribedMetadata = BTreeMap<String, TopicInfo>;

/// Encodes an int32 value (keys 3 and 6).
pub fn encode_epoch(epoch: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(epoch);
    put_no_tags(&mut b);
    b.freeze()
}

/// Decodes keys 3 and 6's value.
pub fn decode_epoch(mut buf: &[u8]) -> Result<i32, CodecError> {
    value_version(&mut buf)?;
    get_i32(&mut buf, "epoch")
}

/// Encodes key 4's value.
pub fn encode_partition_metadata(topics: &SubscribedMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_uvarint(&mut b, topics.len() as u64 + 1);
    for (name, info) in topics {
        b.put_slice(info.id.as_bytes());
        put_compact_str(&mut b, Some(name));
        b.put_i32(info.partitions);
        put_no_tags(&mut b);
    }
    put_no_tags(&mut b);
    b.freeze()
}

/// Decodes key 4's value (per-partition rack metadata, a tagged field in
/// Kafka, is skipped).
pub fn decode_partition_metadata(mut buf: &[u8]) -> Result<SubscribedMetadata, CodecError> {
    value_version(&mut buf)?;
    let count = get_array_len(&mut buf, "topics")?;
    let mut topics = SubscribedMetadata::new();
    for _ in 0..count {
        let id = get_uuid(&mut buf, "topic id")?;
        let name = get_compact_str(&mut buf, "topic name")?.ok_or(CodecError::Bad {
            field: "topic name",
        })?;
        let partitions = get_i32(&mut buf, "partitions")?;
        skip_tags(&mut buf)?;
        topics.insert(name, TopicInfo { id, partitions });
    }
    Ok(topics)
}

impl MemberMetadataValue {
    /// Encodes as version 0.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(0);
        put_compact_str(&mut b, self.instance_id.as_deref());
        put_compact_str(&mut b, self.rack_id.as_deref());
        put_compact_str(&mut b, Some(&self.client_id));
        put_compact_str(&mut b, Some(&self.client_host));
        put_uvarint(&mut b, self.subscribed_topic_names.len() as u64 + 1);
        for t in &self.subscribed_topic_names {
            put_compact_str(&mut b, Some(t));
        }
        put_compact_str(&mut b, self.subscribed_topic_regex.as_deref());
        b.put_i32(self.rebalance_timeout_ms);
        put_compact_str(&mut b, self.server_assignor.as_deref());
        put_no_tags(&mut b);
        b.freeze()
    }

    /// Decodes version 0.
    pub fn decode(mut buf: &[u8]) -> Result<MemberMetadataValue, CodecError> {
        value_version(&mut buf)?;
        let b = &mut buf;
        let instance_id = get_compact_str(b, "instance id")?;
        let rack_id = get_compact_str(b, "rack id")?;
        let client_id = get_compact_str(b, "client id")?.unwrap_or_default();
        let client_host = get_compact_str(b, "client host")?.unwrap_or_default();
        let count = get_array_len(b, "subscribed topics")?;
        let mut subscribed_topic_names = Vec::with_capacity(count.min(b.len()));
        for _ in 0..count {
            subscribed_topic_names.push(get_compact_str(b, "topic")?.unwrap_or_default());
        }
        Ok(MemberMetadataValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex: get_compact_str(b, "regex")?,
            rebalance_timeout_ms: get_i32(b, "rebalance timeout")?,
            server_assignor: get_compact_str(b, "server assignor")?,
        })
    }
}

/// Encodes key 7's value.
pub fn encode_target_member(partitions: &TopicPartitions) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_topic_partitions(&mut b, partitions);
    put_no_tags(&mut b);
    b.freeze()
}

/// Decodes key 7's value.
pub fn decode_target_member(mut buf: &[u8]) -> Result<TopicPartitions, CodecError> {
    value_version(&mut buf)?;
    get_topic_partitions(&mut buf)
}

impl CurrentAssignmentValue {
    /// Encodes as version 0.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(self.member_epoch);
        b.put_i32(self.previous_member_epoch);
        b.put_i8(self.state.code());
        put_topic_partitions(&mut b, &self.assigned);
        put_topic_partitions(&mut b, &self.pending_revocation);
        put_no_tags(&mut b);
        b.freeze()
    }

    /// Decodes version 0.
    pub fn decode(mut buf: &[u8]) -> Result<CurrentAssignmentValue, CodecError> {
        value_version(&mut buf)?;
        let b = &mut buf;
        let member_epoch = get_i32(b, "member epoch")?;
        let previous_member_epoch = get_i32(b, "previous member epoch")?;
        need(b, 1, "state")?;
        let state = MemberState::from_code(b.get_i8());
        Ok(CurrentAssignmentValue {
            member_epoch,
            previous_member_epoch,
            state,
            assigned: get_topic_partitions(b)?,
            pending_revocation: get_topic_partitions(b)?,
        })
    }
}

fn put_topic_partitions(b: &mut BytesMut, tps: &TopicPartitions) {
    put_uvarint(b, tps.len() as u64 + 1);
    for (id, partitions) in tps {
        b.put_slice(id.as_bytes());
        put_uvarint(b, partitions.len() as u64 + 1);
        for p in partitions {
            b.put_i32(*p);
        }
        put_no_tags(b);
    }
}

fn get_topic_partitions(b: &mut &[u8]) -> Result<TopicPartitions, CodecError> {
    let topics = get_array_len(b, "topic partitions")?;
    let mut out = TopicPartitions::new();
    for _ in 0..topics {
        let id = get_uuid(b, "topic id")?;
        let count = get_array_len(b, "partitions")?;
        let mut set = BTreeSet::new();
        for _ in 0..count {
            set.insert(get_i32(b, "partition")?);
        }
        skip_tags(b)?;
        if !set.is_empty() {
            out.insert(id, set);
        }
    }
    Ok(out)
}

fn value_version(buf: &mut &[u8]) -> Result<(), CodecError> {
    match get_i16(buf, "value version")? {
        0 => Ok(()),
        version => Err(CodecError::UnknownVersion {
            what: "consumer group value",
            version,
        }),
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn put_compact_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => put_uvarint(b, 0),
        Some(s) => {
            put_uvarint(b, s.len() as u64 + 1);
            b.put_slice(s.as_bytes());
        }
    }
}

fn put_no_tags(b: &mut BytesMut) {
    put_uvarint(b, 0);
}

fn need(buf: &[u8], n: usize, field: &'static str) -> Result<(), CodecError> {
    match buf.len() < n {
        true => Err(CodecError::Truncated { field }),
        false => Ok(()),
    }
}

fn get_i16(buf: &mut &[u8], field: &'static str) -> Result<i16, CodecError> {
    need(buf, 2, field)?;
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut &[u8], field: &'static str) -> Result<i32, CodecError> {
    need(buf, 4, field)?;
    Ok(buf.get_i32())
}

fn get_uuid(buf: &mut &[u8], field: &'static str) -> Result<Uuid, CodecError> {
    need(buf, 16, field)?;
    let id = Uuid::from_slice(&buf[..16]).map_err(|_| CodecError::Bad { field })?;
    buf.advance(16);
    Ok(id)
}

fn get_uvarint(buf: &mut &[u8], field: &'static str) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for shift in (0..35).step_by(7) {
        need(buf, 1, field)?;
        let byte = buf.get_u8();
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CodecError::Bad { field })
}

fn get_str(buf: &mut &[u8], field: &'static str) -> Result<String, CodecError> {
    let len = get_i16(buf, field)?;
    let len = usize::try_from(len).map_err(|_| CodecError::Bad { field })?;
    take_str(buf, len, field)
}

fn get_compact_str(buf: &mut &[u8], field: &'static str) -> Result<Option<String>, CodecError> {
    match get_uvarint(buf, field)? {
        0 => Ok(None),
        n => take_str(buf, (n - 1) as usize, field).map(Some),
    }
}

/// A compact array's length; a null array counts as empty. The length is
/// checked against the bytes left so garbage cannot ask for huge vectors.
fn get_array_len(buf: &mut &[u8], field: &'static str) -> Result<usize, CodecError> {
    let n = get_uvarint(buf, field)?.saturating_sub(1) as usize;
    need(buf, n, field)?;
    Ok(n)
}

fn take_str(buf: &mut &[u8], len: usize, field: &'static str) -> Result<String, CodecError> {
    need(buf, len, field)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| CodecError::Bad { field })?
        .to_string();
    buf.advance(len);
    Ok(s)
}

fn skip_tags(buf: &mut &[u8]) -> Result<(), CodecError> {
    let count = get_uvarint(buf, "tagged fields")?;
    for _ in 0..count {
        get_uvarint(buf, "tag")?;
        let size = get_uvarint(buf, "tag size")? as usize;
        need(buf, size, "tag value")?;
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(entries: &[(u128, &[i32])]) -> TopicPartitions {
        entries
            .iter()
            .map(|(id, ps)| (Uuid::from_u128(*id), ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn consumer_keys_round_trip_and_classic_keys_are_not_ours() {
        let keys = [
            ConsumerKey::GroupMetadata("g".into()),
            ConsumerKey::PartitionMetadata("g".into()),
            ConsumerKey::MemberMetadata("g".into(), "m".into()),
            ConsumerKey::TargetAssignmentMetadata("g".into()),
            ConsumerKey::TargetAssignmentMember("g".into(), "m".into()),
            ConsumerKey::CurrentMemberAssignment("g".into(), "m".into()),
        ];
        for (i, key) in keys.iter().enumerate() {
            let bytes = key.encode();
            // Kafka's layout: the record type is the key version, 3..=8.
            assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), 3 + i as i16);
            assert_eq!(ConsumerKey::decode(&bytes).unwrap().as_ref(), Some(key));
            for cut in 0..bytes.len() {
                assert!(ConsumerKey::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(ConsumerKey::decode(&[0, 2, 0, 1, b'g']).unwrap(), None);
    }

    #[test]
    fn consumer_values_round_trip_and_truncation_is_an_error() {
        let member = MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
        };
        let current = CurrentAssignmentValue {
            member_epoch: 7,
            previous_member_epoch: 6,
            state: MemberState::UnrevokedPartitions,
            assigned: tps(&[(1, &[0, 2]), (2, &[5])]),
            pending_revocation: tps(&[(1, &[1])]),
        };
        let mut meta = SubscribedMetadata::new();
        meta.insert(
            "a".into(),
            TopicInfo {
                id: Uuid::from_u128(1),
                partitions: 6,
            },
        );
        let encoded = [
            member.encode(),
            current.encode(),
            encode_partition_metadata(&meta),
            encode_target_member(&tps(&[(3, &[1, 4])])),
            encode_epoch(9),
        ];
        assert_eq!(MemberMetadataValue::decode(&encoded[0]).unwrap(), member);
        assert_eq!(
            CurrentAssignmentValue::decode(&encoded[1]).unwrap(),
            current
        );
        assert_eq!(decode_partition_metadata(&encoded[2]).unwrap(), meta);
        assert_eq!(
            decode_target_member(&encoded[3]).unwrap(),
            tps(&[(3, &[1, 4])])
        );
        assert_eq!(decode_epoch(&encoded[4]).unwrap(), 9);
        type Check = fn(&[u8]) -> bool;
        let decoders: [Check; 5] = [
            |b| MemberMetadataValue::decode(b).is_err(),
            |b| CurrentAssignmentValue::decode(b).is_err(),
            |b| decode_partition_metadata(b).is_err(),
            |b| decode_target_member(b).is_err(),
            |b| decode_epoch(b).is_err(),
        ];
        for (bytes, fails) in encoded.iter().zip(decoders) {
            // The last byte is the value's (empty) tagged fields.
            for cut in 0..bytes.len() - 1 {
                assert!(
                    fails(&bytes[..cut]),
                    "a truncated value decoded (cut at {cut})"
                );
            }
        }
    }
}
