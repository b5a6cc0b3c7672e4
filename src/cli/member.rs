//! A consumer-group member for `corestream consume --group`: Kafka's classic
//! protocol (JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup)
//! with the "range" assignor, enough to share a topic with other members
//! (the CLI's own or any Kafka client's that offers "range").
//!
//! Decisions:
//! - Blocking and single-threaded like the rest of the CLI: the consume
//!   loop calls [`Member::heartbeat_if_due`] between fetches, and a fetch
//!   waits at most 500 ms, far inside [`SESSION_TIMEOUT_MS`].
//! - The subscription and assignment bytes are Kafka's
//!   ConsumerProtocolSubscription / ConsumerProtocolAssignment v0, written
//!   by hand (a few fields); every Kafka consumer reads v0.
//! - A rebalance (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
//!   UNKNOWN_MEMBER_ID from a heartbeat or commit) is reported to the
//!   caller, which commits what it can and calls [`Member::rejoin`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{check, ClientError, Cluster};
use super::groups::{commit_offsets, decode_assignment, group_id};

/// Session timeout asked for, in ms (the coordinator evicts a silent member).
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
/// Time the member may take to rejoin during a rebalance, in ms.
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Time between heartbeats (a third of the session, like Kafka's clients).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(SESSION_TIMEOUT_MS as u64 / 3);
/// JoinGroup rounds tried before giving up (MEMBER_ID_REQUIRED, rebalances).
pub const JOIN_ATTEMPTS_MAX: usize = 10;
/// Highest JoinGroup version this client fills in.
const JOIN_GROUP_VERSION_MAX: i16 = 7;
/// Highest SyncGroup version (v5 adds protocol type/name, which we send).
const SYNC_GROUP_VERSION_MAX: i16 = 5;
/// Highest Heartbeat version.
const HEARTBEAT_VERSION_MAX: i16 = 4;
/// Highest LeaveGroup version (v3 batches members).
const LEAVE_GROUP_VERSION_MAX: i16 = 4;
/// The embedded protocol of Kafka consumers.
const PROTOCOL_TYPE: &str = "consumer";
/// The assignor this member offers.
pub const ASSIGNOR: &str = "range";

/// Kafka error codes the member reacts to.
mod code {
    pub(super) const ILLEGAL_GENERATION: i16 = 22;
    pub(super) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(super) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(super) const MEMBER_ID_REQUIRED: i16 = 79;
}

/// Whether a Kafka error means "the group moved on: join again".
pub fn needs_rejoin(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Kafka { code, .. } if matches!(
            *code,
            code::ILLEGAL_GENERATION | code::UNKNOWN_MEMBER_ID | code::REBALANCE_IN_PROGRESS
        )
    )
}

/// One member of one group, subscribed to one topic.
pub struct Member {
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    /// Partitions of the topic assigned to this member, sorted.
    pub partitions: Vec<i32>,
    /// Whether this member led the last join (and so assigned partitions).
    pub leader: bool,
    last_heartbeat: Instant,
}

impl Member {
    /// Joins `group` subscribed to `topic` and waits for an assignment.
    pub fn join(cluster: &mut Cluster, group: &str, topic: &str) -> Result<Member, ClientError> {
        let mut member = Member {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            partitions: Vec::new(),
            leader: false,
            last_heartbeat: Instant::now(),
        };
        member.rejoin(cluster)?;
        Ok(member)
    }

    /// Generation and member id, as commits carry them.
    pub fn identity(&self) -> (i32, &str) {
        (self.generation, &self.member_id)
    }

    /// JoinGroup + SyncGroup until this member has a generation; says on
    /// stderr what it got (stdout carries only records).
    pub fn rejoin(&mut self, cluster: &mut Cluster) -> Result<(), ClientError> {
        for _ in 0..JOIN_ATTEMPTS_MAX {
            match self.join_and_sync(cluster) {
                Ok(()) => {
                    let role = if self.leader { "leader" } else { "member" };
                    eprintln!(
                        "joined group {} as {role} (generation {}): {} partitions {:?}",
                        self.group, self.generation, self.topic, self.partitions
                    );
                    return Ok(());
                }
                Err(ClientError::Kafka { code, .. }) if code == code::UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                }
                Err(e) if needs_rejoin(&e) => {}
                Err(ClientError::Kafka { code, .. }) if code == code::MEMBER_ID_REQUIRED => {}
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Usage(format!(
            "could not join group {:?} in {JOIN_ATTEMPTS_MAX} attempts",
            self.group
        )))
    }

    fn join_and_sync(&mut self, cluster: &mut Cluster) -> Result<(), ClientError> {
        let conn = cluster.coordinator(&self.group)?;
        let version = conn.version::<JoinGroupRequest>(JOIN_GROUP_VERSION_MAX)?;
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str(ASSIGNOR);
        protocol.metadata = encode_subscription(&[self.topic.as_str()]);
        let mut request = JoinGroupRequest::default();
        request.group_id = group_id(&self.group);
        request.session_timeout_ms = SESSION_TIMEOUT_MS;
        if version >= 1 {
            request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        }
        request.member_id = StrBytes::from_string(self.member_id.clone());
        request.protocol_type = StrBytes::from_static_str(PROTOCOL_TYPE);
        request.protocols = vec![protocol];
        let answer = conn.send_at(&request, version)?;
        if !answer.member_id.is_empty() {
            self.member_id = answer.member_id.to_string();
        }
        let group = self.group.clone();
        check(answer.error_code, || format!("joining group {group:?}"))?;
        self.generation = answer.generation_id;
        self.leader = answer.leader == answer.member_id;
        let assignments = if self.leader {
            self.assign(cluster, &answer.members)?
        } else {
            Vec::new()
        };
        self.sync(cluster, assignments)
    }

    /// The leader's job: the range assignment of every member.
    fn assign(
        &self,
        cluster: &mut Cluster,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let subscriptions: Vec<(String, Vec<String>)> = members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    decode_subscription(m.metadata.clone()),
                )
            })
            .collect();
        let mut topics: Vec<&String> = subscriptions.iter().flat_map(|(_, t)| t).collect();
        topics.sort();
        topics.dedup();
        let mut plan: BTreeMap<String, Vec<(String, Vec<i32>)>> = BTreeMap::new();
        for topic in topics {
            let partitions: Vec<i32> = cluster
                .leaders(topic)?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            for (member, parts) in range_assign(&subscriptions, topic, &partitions) {
                plan.entry(member).or_default().push((topic.clone(), parts));
            }
        }
        Ok(subscriptions
            .iter()
            .map(|(member, _)| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(member.clone());
                a.assignment = encode_assignment(plan.get(member).map_or(&[][..], |v| v));
                a
            })
            .collect())
    }

    fn sync(
        &mut self,
        cluster: &mut Cluster,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<(), ClientError> {
        let conn = cluster.coordinator(&self.group)?;
        let version = conn.version::<SyncGroupRequest>(SYNC_GROUP_VERSION_MAX)?;
        let mut request = SyncGroupRequest::default();
        request.group_id = group_id(&self.group);
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        if version >= 5 {
            request.protocol_type = Some(StrBytes::from_static_str(PROTOCOL_TYPE));
            request.protocol_name = Some(StrBytes::from_static_str(ASSIGNOR));
        }
        request.assignments = assignments;
        let answer = conn.send_at(&request, version)?;
        let group = self.group.clone();
        check(answer.error_code, || format!("syncing group {group:?}"))?;
        self.partitions = decode_assignment(answer.assignment)
            .into_iter()
            .filter(|(t, _)| *t == self.topic)
            .flat_map(|(_, ps)| ps)
            .collect();
        self.partitions.sort_unstable();
        self.last_heartbeat = Instant::now();
        Ok(())
    }

    /// Sends a heartbeat when [`HEARTBEAT_INTERVAL`] has passed. `Ok(true)`:
    /// the group is rebalancing; the caller commits and calls [`Member::rejoin`].
    pub fn heartbeat_if_due(&mut self, cluster: &mut Cluster) -> Result<bool, ClientError> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(false);
        }
        let mut request = HeartbeatRequest::default();
        request.group_id = group_id(&self.group);
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        let answer = cluster
            .coordinator(&self.group)?
            .send(&request, HEARTBEAT_VERSION_MAX)?;
        self.last_heartbeat = Instant::now();
        let group = self.group.clone();
        match check(answer.error_code, || {
            format!("heartbeat in group {group:?}")
        }) {
            Ok(()) => Ok(false),
            Err(e) if needs_rejoin(&e) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Commits `offsets` (partition, next offset to read) as this member.
    pub fn commit(&self, cluster: &mut Cluster, offsets: &[(i32, i64)]) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (generation, member) = self.identity();
        commit_offsets(
            cluster,
            &self.group,
            (generation, member),
            &self.topic,
            offsets,
        )
    }

    /// Leaves the group so the others rebalance at once instead of after
    /// the session timeout.
    pub fn leave(&self, cluster: &mut Cluster) -> Result<(), ClientError> {
        let conn = cluster.coordinator(&self.group)?;
        let version = conn.version::<LeaveGroupRequest>(LEAVE_GROUP_VERSION_MAX)?;
        let mut request = LeaveGroupRequest::default();
        request.group_id = group_id(&self.group);
        if version >= 3 {
            let mut me = MemberIdentity::default();
            me.member_id = StrBytes::from_string(self.member_id.clone());
            request.members = vec![me];
        } else {
            request.member_id = StrBytes::from_string(self.member_id.clone());
        }
        let answer = conn.send_at(&request, version)?;
        let group = self.group.clone();
        check(answer.error_code, || format!("leaving group {group:?}"))
    }
}

/// Kafka's RangeAssignor for one topic: members subscribed to it, sorted
/// by id, take consecutive runs of the sorted partitions; the first
/// `partitions % members` take one more.
pub fn range_assign(
    subscriptions: &[(String, Vec<String>)],
    topic: &str,
    partitions: &[i32],
) -> Vec<(String, Vec<i32>)> {
    let mut members: Vec<&String> = subscriptions
        .iter()
        .filter(|(_, topics)| topics.iter().any(|t| t == topic))
        .map(|(m, _)| m)
        .collect();
    members.sort();
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    if members.is_empty() {
        return Vec::new();
    }
    let (each, extra) = (sorted.len() / members.len(), sorted.len() % members.len());
    let mut start = 0;
    members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let n = each + usize::from(i < extra);
            let run = sorted[start..start + n].to_vec();
            start += n;
            (m.clone(), run)
        })
        .collect()
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

/// ConsumerProtocolSubscription v0: topics, no user data.
pub fn encode_subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        put_str(&mut buf, t);
    }
    buf.put_i32(-1); // null user data
    buf.freeze()
}

/// The topics of a ConsumerProtocolSubscription (any version: later ones
/// only append fields). Empty if malformed.
pub fn decode_subscription(mut buf: Bytes) -> Vec<String> {
    let mut read = || -> Option<Vec<String>> {
        if buf.remaining() < 6 {
            return None;
        }
        let _version = buf.get_i16();
        let count = buf.get_i32();
        let mut topics = Vec::new();
        for _ in 0..count.max(0) {
            if buf.remaining() < 2 {
                return None;
            }
            let len = buf.get_i16();
            if len < 0 || buf.remaining() < len as usize {
                return None;
            }
            topics.push(String::from_utf8_lossy(&buf.split_to(len as usize)).into_owned());
        }
        Some(topics)
    };
    read().unwrap_or_default()
}

/// ConsumerProtocolAssignment v0: (topic, partitions) pairs, no user data.
pub fn encode_assignment(assigned: &[(String, Vec<i32>)]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(assigned.len() as i32);
    for (topic, partitions) in assigned {
        put_str(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(*p);
        }
    }
    buf.put_i32(-1); // null user data
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_member_range_assignment_like_kafka() {
        let subs = vec![
            ("b".to_string(), vec!["t".to_string()]),
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("c".to_string(), vec!["u".to_string()]),
        ];
        // 5 partitions over a and b: a (first by id) takes the extra one
        assert_eq!(
            range_assign(&subs, "t", &[4, 3, 2, 1, 0]),
            vec![("a".into(), vec![0, 1, 2]), ("b".into(), vec![3, 4])]
        );
        assert_eq!(
            range_assign(&subs, "u", &[0]),
            vec![("a".into(), vec![0]), ("c".into(), vec![])]
        );
        assert!(range_assign(&subs, "none", &[0, 1]).is_empty());
    }

    #[test]
    fn cli_member_protocol_bytes_roundtrip() {
        let sub = encode_subscription(&["orders", "t"]);
        assert_eq!(decode_subscription(sub), vec!["orders", "t"]);
        assert!(decode_subscription(Bytes::from_static(b"\x00\x00\x00")).is_empty());
        let a = encode_assignment(&[("orders".into(), vec![0, 2])]);
        assert_eq!(
            decode_assignment(a),
            vec![("orders".to_string(), vec![0, 2])]
        );
    }
}
