//! Keys and values of the records in `__consumer_offsets`, in Kafka's own
//! formats so Kafka's tools (and a Kafka broker) can read them:
//!
//! - offset commit: key version 1 = (group, topic, partition), value
//!   version 3 = (offset, leader epoch, metadata, commit timestamp);
//! - group metadata: key version 2 = (group), value version 3 = (protocol
//!   type, generation, protocol, leader, state timestamp, members).
//!
//! A record with a null value is a tombstone: the key is deleted. Decoding
//! accepts every older value version Kafka wrote (offset 0-3, group 0-3) and
//! the flexible v4 of each (its tagged fields are ignored). Strings are
//! int16-length, bytes int32-length, as in the non-flexible Kafka protocol.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Key version Kafka uses for offset commits (v0 has the same layout).
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Key version Kafka uses for group metadata.
pub const GROUP_KEY_VERSION: i16 = 2;
/// Offset commit value version written (has the leader epoch, no expiry).
pub const OFFSET_VALUE_VERSION: i16 = 3;
/// Group metadata value version written (has group.instance.id).
pub const GROUP_VALUE_VERSION: i16 = 3;

/// A record that does not decode; the message says which field.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The record ended inside a field.
    #[error("record ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A version this broker does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Key or value kind.
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// A string that is not UTF-8, or a negative length where null is not allowed.
    #[error("bad {field}")]
    Bad {
        /// The field.
        field: &'static str,
    },
}

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset of one partition for one group.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A group's membership and generation.
    Group {
        /// Group id.
        group: String,
    },
}

/// A committed offset (offset commit value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed, ms since the epoch.
    pub commit_timestamp_ms: i64,
}

/// A member as stored in the group metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// The client's client.id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// Rebalance timeout, ms.
    pub rebalance_timeout_ms: i32,
    /// Session timeout, ms.
    pub session_timeout_ms: i32,
    /// Metadata of the selected protocol (the subscription).
    pub subscription: Bytes,
    /// The assignment the leader gave it.
    pub assignment: Bytes,
}

/// A group's state as stored (group metadata value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type ("consumer" for consumers).
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol (assignor), none when empty.
    pub protocol: Option<String>,
    /// Leader member id, none when empty.
    pub leader: Option<String>,
    /// When the group entered its current state, ms since the epoch.
    pub current_state_timestamp_ms: i64,
    /// Members with their assignments.
    pub members: Vec<MemberValue>,
}

impl RecordKey {
    /// Encodes the key.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                b.put_i16(OFFSET_KEY_VERSION);
                put_str(&mut b, group);
                put_str(&mut b, topic);
                b.put_i32(*partition);
            }
            RecordKey::Group { group } => {
                b.put_i16(GROUP_KEY_VERSION);
                put_str(&mut b, group);
            }
        }
        b.freeze()
    }

    /// Decodes a key; `Ok(None)` for the key versions of other coordinators
    /// (transactions, share groups, KIP-848 records), which are skipped.
    pub fn decode(mut buf: &[u8]) -> Result<Option<RecordKey>, CodecError> {
        let version = get_i16(&mut buf, "key version")?;
        match version {
            0 | 1 => Ok(Some(RecordKey::Offset {
                group: get_str(&mut buf, "group")?,
                topic: get_str(&mut buf, "topic")?,
                partition: get_i32(&mut buf, "partition")?,
            })),
            2 => Ok(Some(RecordKey::Group {
                group: get_str(&mut buf, "group")?,
            })),
            _ => Ok(None),
        }
    }
}

impl OffsetValue {
    /// Encodes as value version 3.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(OFFSET_VALUE_VERSION);
        b.put_i64(self.offset);
        b.put_i32(self.leader_epoch);
        put_str(&mut b, &self.metadata);
        b.put_i64(self.commit_timestamp_ms);
        b.freeze()
    }

    /// Decodes value versions 0-4.
    pub fn decode(mut buf: &[u8]) -> Result<OffsetValue, CodecError> {
        let version = get_i16(&mut buf, "offset value version")?;
        if !(0..=4).contains(&version) {
            return Err(CodecError::UnknownVersion {
                what: "offset value",
                version,
            });
        }
        let offset = get_i64(&mut buf, "offset")?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut buf, "leader epoch")?
        } else {
            -1
        };
        let metadata = if version >= 4 {
            get_compact_str(&mut buf, "metadata")?
        } else {
            get_str(&mut buf, "metadata")?
        };
        let commit_timestamp_ms = get_i64(&mut buf, "commit timestamp")?;
        // v1's expire timestamp and v4's tagged fields are not needed.
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        })
    }
}

impl GroupValue {
    /// Encodes as value version 3.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(GROUP_VALUE_VERSION);
        put_str(&mut b, &self.protocol_type);
        b.put_i32(self.generation);
        put_nullable_str(&mut b, self.protocol.as_deref());
        put_nullable_str(&mut b, self.leader.as_deref());
        b.put_i64(self.current_state_timestamp_ms);
        b.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_str(&mut b, &m.member_id);
            put_nullable_str(&mut b, m.group_instance_id.as_deref());
            put_str(&mut b, &m.client_id);
            put_str(&mut b, &m.client_host);
            b.put_i32(m.rebalance_timeout_ms);
            b.put_i32(m.session_timeout_ms);
            put_bytes(&mut b, &m.subscription);
            put_bytes(&mut b, &m.assignment);
        }
        b.freeze()
    }

    /// Decodes value versions 0-3 (v4 is flexible and not written by this
    /// broker; it is refused rather than misread).
    pub fn decode(mut buf: &[u8]) -> Result<GroupValue, CodecError> {
        let version = get_i16(&mut buf, "group value version")?;
        if !(0..=3).contains(&version) {
            return Err(CodecError::UnknownVersion {
                what: "group value",
                version,
            });
        }
        let protocol_type = get_str(&mut buf, "protocol type")?;
        let generation = get_i32(&mut buf, "generation")?;
        let protocol = get_nullable_str(&mut buf, "protocol")?;
        let leader = get_nullable_str(&mut buf, "leader")?;
        let current_state_timestamp_ms = if version >= 2 {
            get_i64(&mut buf, "state timestamp")?
        } else {
            -1
        };
        let count = get_i32(&mut buf, "member count")?;
        let count = usize::try_from(count).map_err(|_| CodecError::Bad {
            field: "member count",
        })?;
        let mut members = Vec::with_capacity(count.min(buf.len()));
        for _ in 0..count {
            let member_id = get_str(&mut buf, "member id")?;
            let group_instance_id = if version >= 3 {
                get_nullable_str(&mut buf, "group instance id")?
            } else {
                None
            };
            let client_id = get_str(&mut buf, "client id")?;
            let client_host = get_str(&mut buf, "client host")?;
            let rebalance_timeout_ms = if version >= 1 {
                get_i32(&mut buf, "rebalance timeout")?
            } else {
                -1
            };
            let session_timeout_ms = get_i32(&mut buf, "session timeout")?;
            let subscription = get_bytes(&mut buf, "subscription")?;
            let assignment = get_bytes(&mut buf, "assignment")?;
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

pub(crate) fn put_str(b: &mut BytesMut, s: &str) {
    // Group ids, topics and metadata are bounded by the request's own int16
    // string lengths, so they fit.
    b.put_i16(s.len().min(i16::MAX as usize) as i16);
    b.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, bytes: &[u8]) {
    b.put_i32(bytes.len() as i32);
    b.put_slice(bytes);
}

pub(crate) fn need(buf: &[u8], n: usize, field: &'static str) -> Result<(), CodecError> {
    if buf.len() < n {
        return Err(CodecError::Truncated { field });
    }
    Ok(())
}

pub(crate) fn get_i16(buf: &mut &[u8], field: &'static str) -> Result<i16, CodecError> {
    need(buf, 2, field)?;
    Ok(buf.get_i16())
}

pub(crate) fn get_i32(buf: &mut &[u8], field: &'static str) -> Result<i32, CodecError> {
    need(buf, 4, field)?;
    Ok(buf.get_i32())
}

pub(crate) fn get_i64(buf: &mut &[u8], field: &'static str) -> Result<i64, CodecError> {
    need(buf, 8, field)?;
    Ok(buf.get_i64())
}

fn get_nullable_str(buf: &mut &[u8], field: &'static str) -> Result<Option<String>, CodecError> {
    let len = get_i16(buf, field)?;
    if len < 0 {
        return Ok(None);
    }
    take_str(buf, len as usize, field).map(Some)
}

pub(crate) fn get_str(buf: &mut &[u8], field: &'static str) -> Result<String, CodecError> {
    get_nullable_str(buf, field)?.ok_or(CodecError::Bad { field })
}

fn get_compact_str(buf: &mut &[u8], field: &'static str) -> Result<String, CodecError> {
    let mut len: u64 = 0;
    for shift in (0..35).step_by(7) {
        need(buf, 1, field)?;
        let byte = buf.get_u8();
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = len.checked_sub(1).ok_or(CodecError::Bad { field })?;
    take_str(buf, len as usize, field)
}

fn take_str(buf: &mut &[u8], len: usize, field: &'static str) -> Result<String, CodecError> {
    need(buf, len, field)?;
    let s = std::str::from_utf8(&buf[..len]).map_err(|_| CodecError::Bad { field })?;
    let s = s.to_string();
    buf.advance(len);
    Ok(s)
}

fn get_bytes(buf: &mut &[u8], field: &'static str) -> Result<Bytes, CodecError> {
    let len = get_i32(buf, field)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(buf, len as usize, field)?;
    let b = Bytes::copy_from_slice(&buf[..len as usize]);
    buf.advance(len as usize);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_and_value_round_trip() {
        let key = RecordKey::Offset {
            group: "g1".into(),
            topic: "orders".into(),
            partition: 7,
        };
        let bytes = key.encode();
        // Kafka's layout: version 1, int16 strings, int32 partition.
        assert_eq!(&bytes[..4], &[0, 1, 0, 2]);
        assert_eq!(RecordKey::decode(&bytes).unwrap(), Some(key));
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(OffsetValue::decode(&value.encode()).unwrap(), value);
    }

    #[test]
    fn group_key_and_value_round_trip() {
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), Some(key));
        let value = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp_ms: 9,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupValue::decode(&value.encode()).unwrap(), value);
        let empty = GroupValue {
            protocol: None,
            leader: None,
            members: vec![],
            ..value
        };
        assert_eq!(GroupValue::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn offset_value_v1_decodes() {
        // v1: offset, metadata, commit timestamp, expire timestamp.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(10);
        put_str(&mut b, "");
        b.put_i64(100);
        b.put_i64(200);
        let v = OffsetValue::decode(&b).unwrap();
        assert_eq!(
            (v.offset, v.leader_epoch, v.commit_timestamp_ms),
            (10, -1, 100)
        );
    }

    #[test]
    fn truncated_and_unknown_records_are_errors_not_panics() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        }
        .encode();
        for cut in 0..key.len() {
            assert!(RecordKey::decode(&key[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(RecordKey::decode(&[0, 9, 0, 0]).unwrap(), None);
        let value = OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        }
        .encode();
        for cut in 0..value.len() {
            assert!(OffsetValue::decode(&value[..cut]).is_err(), "cut at {cut}");
        }
        assert!(GroupValue::decode(&[0, 3, 0xff, 0xff]).is_err());
    }
}
