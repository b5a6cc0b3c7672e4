//! Consumer-group state machine tests: simulated clients heartbeating with a
//! fake clock, checking after every step that no partition is owned by two
//! members, and that the records written rebuild the same group.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::coordinator::dirty_records;
use super::*;
use crate::group::coordinator::{Entry, GroupCoordinator};

const SESSION_MS: u64 = 10_000;
const TOPIC: u128 = 7;

fn settings() -> Settings {
    Settings {
        session_timeout_ms: SESSION_MS,
        members_max: 4,
    }
}

fn catalog(partitions: i32) -> BTreeMap<String, TopicInfo> {
    [(
        "t".to_string(),
        TopicInfo {
            id: Uuid::from_u128(TOPIC),
            partitions,
        },
    )]
    .into()
}

/// A client as librdkafka behaves: joins, revokes at once, acks what it owns.
struct Client {
    id: String,
    epoch: i32,
    owned: TopicPartitions,
}

fn join_req(id: &str) -> HeartbeatIn {
    HeartbeatIn {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(TopicPartitions::new()),
        ..HeartbeatIn::default()
    }
}

impl Client {
    fn join(
        g: &mut ConsumerGroup,
        id: &str,
        now: Instant,
        cat: &BTreeMap<String, TopicInfo>,
    ) -> Client {
        let out = g.heartbeat(join_req(id), now, cat, &settings()).unwrap();
        let mut c = Client {
            id: id.into(),
            epoch: out.member_epoch,
            owned: TopicPartitions::new(),
        };
        c.absorb(out);
        c
    }

    fn absorb(&mut self, out: HeartbeatOut) {
        self.epoch = out.member_epoch;
        if let Some(a) = out.assignment {
            self.owned = a;
        }
    }

    fn beat(&mut self, g: &mut ConsumerGroup, now: Instant, cat: &BTreeMap<String, TopicInfo>) {
        let req = HeartbeatIn {
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: -1,
            owned: Some(self.owned.clone()),
            ..HeartbeatIn::default()
        };
        let out = g.heartbeat(req, now, cat, &settings()).unwrap();
        self.absorb(out);
    }
}

fn count(tps: &TopicPartitions) -> usize {
    tps.values().map(|s| s.len()).sum()
}

/// No partition in two clients' hands, nor in two members' ownership.
fn assert_exclusive(g: &ConsumerGroup, clients: &[Client]) {
    let mut seen = HashMap::new();
    for c in clients {
        for (t, ps) in &c.owned {
            for p in ps {
                if let Some(other) = seen.insert((*t, *p), c.id.clone()) {
                    panic!("partition {p} owned by {other} and {}", c.id);
                }
            }
        }
    }
    let mut owned = HashMap::new();
    for m in g.members.values() {
        for tps in [&m.assigned, &m.pending_revocation] {
            for (t, ps) in tps {
                for p in ps {
                    assert!(owned.insert((*t, *p), &m.member_id).is_none(), "{p} twice");
                }
            }
        }
    }
}

fn converge(
    g: &mut ConsumerGroup,
    clients: &mut [Client],
    now: Instant,
    cat: &BTreeMap<String, TopicInfo>,
) {
    for _ in 0..10 {
        for i in 0..clients.len() {
            clients[i].beat(g, now, cat);
            assert_exclusive(g, clients);
        }
        if g.state() == ConsumerGroupState::Stable {
            return;
        }
    }
    panic!("group did not become Stable: {:?}", g.state());
}

#[test]
fn consumer_heartbeat_three_members_converge_without_double_ownership() {
    let (now, cat) = (Instant::now(), catalog(6));
    let mut g = ConsumerGroup::new("g");
    let mut clients = vec![Client::join(&mut g, "a", now, &cat)];
    assert_eq!(count(&clients[0].owned), 6, "a lone member gets everything");
    clients.push(Client::join(&mut g, "b", now, &cat));
    assert_exclusive(&g, &clients);
    clients.push(Client::join(&mut g, "c", now, &cat));
    converge(&mut g, &mut clients, now, &cat);
    assert!(clients.iter().all(|c| count(&c.owned) == 2));
    assert!(clients.iter().all(|c| c.epoch == g.group_epoch));
    // b leaves: a and c take its partitions.
    let leave = HeartbeatIn {
        member_epoch: -1,
        ..join_req("b")
    };
    let out = g.heartbeat(leave, now, &cat, &settings()).unwrap();
    assert_eq!(out.member_epoch, -1);
    clients.remove(1);
    converge(&mut g, &mut clients, now, &cat);
    assert!(clients.iter().all(|c| count(&c.owned) == 3));
}

#[test]
fn consumer_heartbeat_errors_match_kafka() {
    let (now, cat) = (Instant::now(), catalog(2));
    let mut g = ConsumerGroup::new("g");
    let s = settings();
    let code = |r: Result<HeartbeatOut, HeartbeatError>| r.unwrap_err().code;
    let mut c = Client::join(&mut g, "a", now, &cat);
    let unknown = HeartbeatIn {
        member_epoch: 1,
        ..join_req("nobody")
    };
    assert_eq!(
        code(g.heartbeat(unknown, now, &cat, &s)),
        ResponseError::UnknownMemberId.code()
    );
    let ahead = HeartbeatIn {
        member_epoch: c.epoch + 5,
        ..join_req("a")
    };
    assert_eq!(
        code(g.heartbeat(ahead, now, &cat, &s)),
        ResponseError::FencedMemberEpoch.code()
    );
    let assignor = HeartbeatIn {
        server_assignor: Some("sticky-ish".into()),
        ..join_req("b")
    };
    assert_eq!(
        code(g.heartbeat(assignor, now, &cat, &s)),
        ResponseError::UnsupportedAssignor.code()
    );
    let no_subscription = HeartbeatIn {
        subscribed_topic_names: None,
        ..join_req("b")
    };
    assert_eq!(
        code(g.heartbeat(no_subscription, now, &cat, &s)),
        ResponseError::InvalidRequest.code()
    );
    let bad_regex = HeartbeatIn {
        subscribed_topic_regex: Some("(".into()),
        ..join_req("b")
    };
    assert_eq!(
        code(g.heartbeat(bad_regex, now, &cat, &s)),
        ResponseError::InvalidRegularExpression.code()
    );
    // Static members: a second live holder of the instance id is refused.
    let static_a = HeartbeatIn {
        instance_id: Some("i".into()),
        ..join_req("s1")
    };
    g.heartbeat(static_a.clone(), now, &cat, &s).unwrap();
    let usurper = HeartbeatIn {
        member_id: "s2".into(),
        ..static_a
    };
    assert_eq!(
        code(g.heartbeat(usurper, now, &cat, &s)),
        ResponseError::UnreleasedInstanceId.code()
    );
    for id in ["x", "y"] {
        g.heartbeat(join_req(id), now, &cat, &s).unwrap();
    }
    assert_eq!(
        code(g.heartbeat(join_req("z"), now, &cat, &s)),
        ResponseError::GroupMaxSizeReached.code()
    );
    c.beat(&mut g, now, &cat);
}

#[test]
fn consumer_static_member_leaves_and_returns_without_rebalance() {
    let (now, cat) = (Instant::now(), catalog(4));
    let mut g = ConsumerGroup::new("g");
    let s = settings();
    let join = HeartbeatIn {
        instance_id: Some("i".into()),
        ..join_req("s1")
    };
    let out = g.heartbeat(join.clone(), now, &cat, &s).unwrap();
    let epoch = g.group_epoch;
    let leave = HeartbeatIn {
        member_epoch: -2,
        ..join.clone()
    };
    assert_eq!(g.heartbeat(leave, now, &cat, &s).unwrap().member_epoch, -2);
    let back = HeartbeatIn {
        member_id: "s2".into(),
        ..join
    };
    let again = g.heartbeat(back, now, &cat, &s).unwrap();
    assert_eq!(
        g.group_epoch, epoch,
        "no rebalance for a returning static member"
    );
    assert_eq!(again.assignment, out.assignment);
    assert!(g.members.contains_key("s2") && !g.members.contains_key("s1"));
}

#[test]
fn consumer_session_expiry_and_partition_growth_bump_the_epoch() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut a = Client::join(&mut g, "a", now, &catalog(2));
    let _b = Client::join(&mut g, "b", now, &catalog(2));
    let epoch = g.group_epoch;
    a.beat(&mut g, now, &catalog(4));
    assert!(g.group_epoch > epoch, "more partitions: new epoch");
    let later = now + Duration::from_millis(SESSION_MS - 1);
    a.beat(&mut g, later, &catalog(4));
    let expired = g.tick(now + Duration::from_millis(SESSION_MS + 1));
    assert_eq!(expired, vec!["b".to_string()]);
    assert_eq!(g.state(), ConsumerGroupState::Assigning);
    let mut clients = vec![a];
    converge(&mut g, &mut clients, later, &catalog(4));
    assert_eq!(count(&clients[0].owned), 4);
}

#[test]
fn consumer_group_records_rebuild_the_same_group() {
    let (now, cat) = (Instant::now(), catalog(6));
    let mut g = ConsumerGroup::new("g");
    let mut log = Vec::new();
    let mut clients = vec![Client::join(&mut g, "a", now, &cat)];
    log.extend(dirty_records(&mut g));
    clients.push(Client::join(&mut g, "b", now, &cat));
    clients.push(Client::join(&mut g, "c", now, &cat));
    clients[0].beat(&mut g, now, &cat); // mid-reconciliation on purpose
    log.extend(dirty_records(&mut g));
    g.remove_member("c");
    log.extend(dirty_records(&mut g));
    let mut groups: HashMap<String, Entry> = HashMap::new();
    for (key, value) in &log {
        let key = records::ConsumerKey::decode(key).unwrap().unwrap();
        GroupCoordinator::apply_consumer_record(
            &mut groups,
            3,
            key,
            value.as_deref(),
            now,
            Duration::from_millis(SESSION_MS),
        )
        .unwrap();
    }
    let rebuilt = groups["g"].consumer.as_ref().unwrap();
    assert_eq!(rebuilt.group_epoch, g.group_epoch);
    assert_eq!(rebuilt.assignment_epoch, g.assignment_epoch);
    assert_eq!(rebuilt.target, g.target);
    assert_eq!(rebuilt.subscribed, g.subscribed);
    let ids = |g: &ConsumerGroup| g.members.keys().cloned().collect::<Vec<_>>();
    assert_eq!(ids(rebuilt), vec!["a".to_string(), "b".to_string()]);
    for (id, m) in &g.members {
        let r = &rebuilt.members[id];
        assert_eq!(r.current_value(), m.current_value());
        assert_eq!(r.metadata, m.metadata);
    }
    // Deleting writes tombstones that remove it all.
    for (key, value) in coordinator::tombstones(&g) {
        assert!(value.is_none());
        let key = records::ConsumerKey::decode(&key).unwrap().unwrap();
        GroupCoordinator::apply_consumer_record(&mut groups, 3, key, None, now, Duration::ZERO)
            .unwrap();
    }
    assert!(groups.get("g").is_none_or(|e| e.consumer.is_none()));
}
