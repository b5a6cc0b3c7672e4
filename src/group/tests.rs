//! State machine tests: the classic protocol driven with a fake clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;

use super::member::{JoinResult, SyncResult};
use super::state::{Group, GroupState, JoinRequest, Reply};
use super::{java_string_hash, partition_for};

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn req(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: String::new(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
        // The delay has its own tests; the others expect immediate joins.
        initial_rebalance_delay: Duration::ZERO,
    }
}

fn static_req(instance: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.into()),
        ..req("", protocols)
    }
}

fn now_value<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(v) => v,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a parked answer"),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().expect("sender dropped")
}

/// First join of a dynamic member: MEMBER_ID_REQUIRED, then the rejoin.
fn join_new(
    g: &mut Group,
    protocols: &[&str],
    now: Instant,
) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_value(g.join(req("", protocols), now));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    assert!(!first.member_id.is_empty());
    let rx = later(g.join(req(&first.member_id, protocols), now));
    (first.member_id, rx)
}

fn sync(
    g: &mut Group,
    id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now: Instant,
) -> Reply<SyncResult> {
    g.sync(id, None, generation, None, None, assignments, now)
}

/// A Stable group with members a (leader) and b.
fn stable_pair(now: Instant) -> (Group, String, String) {
    let mut g = Group::new("g");
    let (a, mut ra) = join_new(&mut g, &["range"], now);
    let ja = ready(&mut ra).expect("lone member completes the join at once");
    assert_eq!((ja.generation_id, ja.leader.as_str()), (1, a.as_str()));
    assert_eq!(
        now_value(sync(
            &mut g,
            &a,
            1,
            vec![(a.clone(), Bytes::from_static(b"A"))],
            now
        ))
        .error,
        0
    );
    let (b, mut rb) = join_new(&mut g, &["range"], now);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(ready(&mut rb).is_none(), "b waits for a to rejoin");
    assert_eq!(
        g.heartbeat(&a, None, 1, now),
        ResponseError::RebalanceInProgress.code()
    );
    let mut ra = later(g.join(req(&a, &["range"]), now));
    let (ja, jb) = (ready(&mut ra).unwrap(), ready(&mut rb).unwrap());
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.leader, a, "the leader stays the leader");
    assert_eq!(ja.members.len(), 2, "the leader gets every member");
    assert!(jb.members.is_empty());
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let mut sb = later(sync(&mut g, &b, 2, vec![], now));
    let sa = now_value(sync(
        &mut g,
        &a,
        2,
        vec![
            (a.clone(), Bytes::from_static(b"A2")),
            (b.clone(), Bytes::from_static(b"B2")),
        ],
        now,
    ));
    assert_eq!(sa.assignment, Bytes::from_static(b"A2"));
    assert_eq!(
        ready(&mut sb).unwrap().assignment,
        Bytes::from_static(b"B2")
    );
    assert_eq!(g.state(), GroupState::Stable);
    (g, a, b)
}

#[test]
fn join_rounds_generations_leader_and_assignments() {
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    assert_eq!(g.generation(), 2);
    assert_eq!(g.heartbeat(&a, None, 2, now), 0);
    assert_eq!(g.heartbeat(&b, None, 2, now), 0);
    // A follower rejoining unchanged in Stable gets the current generation.
    let j = now_value(g.join(req(&b, &["range"]), now));
    assert_eq!((j.error, j.generation_id), (0, 2));
    assert!(g.take_dirty());
}

#[test]
fn member_id_required_and_unknown_member() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let first = now_value(g.join(req("", &["range"]), now));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    assert_eq!(g.member_count(), 0, "a pending id is not a member yet");
    let unknown = now_value(g.join(req("someone-else", &["range"]), now));
    assert_eq!(unknown.error, ResponseError::UnknownMemberId.code());
    // v0-3 clients are admitted on the first join.
    let old = JoinRequest {
        require_known_member_id: false,
        ..req("", &["range"])
    };
    let mut rx = later(g.join(old, now));
    // The pending id still blocks completion until it rejoins or expires.
    assert!(ready(&mut rx).is_none());
    g.tick(now + Duration::from_millis(SESSION_MS as u64 + 1));
    assert_eq!(ready(&mut rx).unwrap().error, 0);
}

#[test]
fn protocol_selection_and_inconsistent_protocol() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (a, _ra) = join_new(&mut g, &["cooperative-sticky", "range"], now);
    // Second member only shares "range": it must be chosen.
    let first = now_value(g.join(req("", &["roundrobin", "range"]), now));
    let mut rb = later(g.join(req(&first.member_id, &["roundrobin", "range"]), now));
    let mut ra = later(g.join(req(&a, &["cooperative-sticky", "range"]), now));
    assert_eq!(
        ready(&mut ra).unwrap().protocol_name.as_deref(),
        Some("range")
    );
    assert_eq!(
        ready(&mut rb).unwrap().protocol_name.as_deref(),
        Some("range")
    );
    let bad = now_value(g.join(req("", &["sticky"]), now));
    assert_eq!(bad.error, ResponseError::InconsistentGroupProtocol.code());
    let other_type = JoinRequest {
        protocol_type: "connect".into(),
        ..req("", &["range"])
    };
    assert_eq!(
        now_value(g.join(other_type, now)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        now_value(g.join(req("", &[]), now)).error,
        ResponseError::InconsistentGroupProtocol.code(),
        "an empty protocol list is refused"
    );
}

#[test]
fn illegal_generation_and_unknown_member_on_sync_heartbeat_commit() {
    let now = Instant::now();
    let (mut g, a, _b) = stable_pair(now);
    assert_eq!(
        g.heartbeat(&a, None, 1, now),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        g.heartbeat("nobody", None, 2, now),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        now_value(sync(&mut g, &a, 1, vec![], now)).error,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        now_value(sync(&mut g, "nobody", 2, vec![], now)).error,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        g.check_commit(&a, None, 1),
        Err(ResponseError::IllegalGeneration.code())
    );
    assert_eq!(g.check_commit(&a, None, 2), Ok(()));
    assert_eq!(
        g.check_commit("", None, -1),
        Err(ResponseError::UnknownMemberId.code())
    );
    let wrong = g.sync(
        &a,
        None,
        2,
        Some("consumer"),
        Some("roundrobin"),
        vec![],
        now,
    );
    assert_eq!(
        now_value(wrong).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn leave_rebalances_and_last_leave_empties() {
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    assert_eq!(g.leave(&b, None, now), 0);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let mut ra = later(g.join(req(&a, &["range"]), now));
    let ja = ready(&mut ra).unwrap();
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1));
    assert_eq!(
        g.leave(&b, None, now),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(g.leave(&a, None, now), 0);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation(), 4);
    assert_eq!(
        g.check_commit("", None, -1),
        Ok(()),
        "an empty group takes admin commits"
    );
}

#[test]
fn session_expiry_removes_member_and_rebalances() {
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    let later_t = now + Duration::from_millis(SESSION_MS as u64 / 2);
    assert_eq!(g.heartbeat(&a, None, 2, later_t), 0);
    g.tick(now + Duration::from_millis(SESSION_MS as u64 + 1));
    assert_eq!(g.state(), GroupState::PreparingRebalance, "b expired");
    assert_eq!(
        g.heartbeat(&b, None, 2, later_t),
        ResponseError::UnknownMemberId.code()
    );
    let mut ra = later(g.join(req(&a, &["range"]), later_t));
    assert_eq!(ready(&mut ra).unwrap().members.len(), 1);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    let (_c, mut rc) = join_new(&mut g, &["range"], now);
    let mut ra = later(g.join(req(&a, &["range"]), now));
    // b keeps heartbeating but never rejoins (max.poll.interval exceeded).
    let t = now + Duration::from_millis(REBALANCE_MS as u64 / 2);
    assert_eq!(
        g.heartbeat(&b, None, 2, t),
        ResponseError::RebalanceInProgress.code()
    );
    assert!(ready(&mut ra).is_none());
    g.tick(now + Duration::from_millis(REBALANCE_MS as u64 + 1));
    let ja = ready(&mut ra).unwrap();
    assert_eq!((ja.generation_id, ja.members.len()), (3, 2));
    assert!(ready(&mut rc).is_some());
    assert_eq!(
        g.heartbeat(&b, None, 3, t),
        ResponseError::UnknownMemberId.code()
    );
}

#[test]
fn leader_death_during_sync_fails_waiting_followers() {
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    let _ = g.leave(&a, None, now); // rebalance; b rejoins alone
    let mut rb = later(g.join(req(&b, &["range"]), now));
    let jb = ready(&mut rb).unwrap();
    assert_eq!(jb.leader, b, "a new leader is chosen when the old one left");
    let (_c, mut rc) = join_new(&mut g, &["range"], now);
    let mut rb = later(g.join(req(&b, &["range"]), now));
    let jc = ready(&mut rc).unwrap();
    ready(&mut rb).unwrap();
    // c waits in sync; b (leader) dies.
    let mut sc = later(sync(&mut g, &jc.member_id, jc.generation_id, vec![], now));
    g.tick(now + Duration::from_millis(SESSION_MS as u64 + 1));
    assert_eq!(
        ready(&mut sc).unwrap().error,
        ResponseError::RebalanceInProgress.code()
    );
}

#[test]
fn static_member_rejoin_keeps_assignment_without_rebalance() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut r1 = later(g.join(static_req("i-1", &["range"]), now));
    let j1 = ready(&mut r1).unwrap();
    assert_eq!(
        j1.generation_id, 1,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let s = now_value(sync(
        &mut g,
        &j1.member_id,
        1,
        vec![(j1.member_id.clone(), Bytes::from_static(b"P"))],
        now,
    ));
    assert_eq!(s.assignment, Bytes::from_static(b"P"));
    let _ = g.take_dirty();
    // Restart with the same instance id: new member id, same generation.
    let j2 = now_value(g.join(static_req("i-1", &["range"]), now));
    assert_eq!((j2.error, j2.generation_id), (0, 1));
    assert_ne!(j2.member_id, j1.member_id);
    assert_eq!(g.state(), GroupState::Stable);
    assert!(g.take_dirty(), "the new member id is persisted");
    let s2 = now_value(sync(&mut g, &j2.member_id, 1, vec![], now));
    assert_eq!(s2.assignment, Bytes::from_static(b"P"));
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&j1.member_id, Some("i-1"), 1, now),
        ResponseError::FencedInstanceId.code()
    );
}

#[test]
fn group_value_round_trip_restores_stable_members() {
    let now = Instant::now();
    let (g, a, b) = stable_pair(now);
    let restored = Group::from_value("g", g.to_value(), now);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation(), 2);
    assert_eq!(restored.leader(), Some(a.as_str()));
    let mut restored = restored;
    assert_eq!(restored.heartbeat(&b, None, 2, now), 0);
}

#[test]
fn java_hash_matches_kafka() {
    // Values from java.lang.String#hashCode.
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    assert_eq!(
        java_string_hash("console-consumer-12345"),
        "console-consumer-12345"
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
    );
    assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    for id in ["", "g", "a-long-group-name-ÿ-€"] {
        assert!((0..50).contains(&partition_for(id, 50)));
    }
}

fn committed_at(ms: i64) -> super::records::OffsetValue {
    super::records::OffsetValue {
        offset: 7,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: ms,
    }
}

#[test]
fn offsets_expire_only_after_the_group_stays_empty_for_the_retention() {
    use super::coordinator::Offsets;
    use super::retention::expired_offsets;
    const RETENTION_MS: u64 = 60_000;
    let now = Instant::now();
    let (mut g, a, b) = stable_pair(now);
    let mut offsets = Offsets::new();
    // Committed long ago, while the group had members.
    offsets.insert(("t".into(), 0), committed_at(1_000));
    offsets.insert(("t".into(), 1), committed_at(1_000));
    let far = i64::MAX / 2;
    assert!(
        expired_offsets(&g, &offsets, far, RETENTION_MS).is_empty(),
        "a group with members keeps its offsets, however old"
    );
    assert_eq!(g.leave(&b, None, now), 0);
    assert!(
        expired_offsets(&g, &offsets, far, RETENTION_MS).is_empty(),
        "rebalancing"
    );
    let mut ra = later(g.join(req(&a, &["range"]), now));
    ready(&mut ra).unwrap();
    assert_eq!(g.leave(&a, None, now), 0);
    assert_eq!(g.state(), GroupState::Empty);
    let empty_since = g.state_timestamp_ms();
    // A later (admin) commit to the empty group counts from its own time.
    offsets.insert(("t".into(), 2), committed_at(empty_since + 10_000));
    let retention = RETENTION_MS as i64;
    assert!(expired_offsets(&g, &offsets, empty_since + retention - 1, RETENTION_MS).is_empty());
    assert_eq!(
        expired_offsets(&g, &offsets, empty_since + retention, RETENTION_MS),
        vec![("t".to_string(), 0), ("t".to_string(), 1)],
        "the retention counts from when the group became Empty"
    );
    assert_eq!(
        expired_offsets(&g, &offsets, empty_since + 10_000 + retention, RETENTION_MS).len(),
        3
    );
    // A group that never had members (admin / assign() commits): from the commit.
    let simple = Group::new("simple");
    let mut only = Offsets::new();
    only.insert(("t".into(), 0), committed_at(5_000));
    assert!(expired_offsets(&simple, &only, 5_000 + retention - 1, RETENTION_MS).is_empty());
    assert_eq!(
        expired_offsets(&simple, &only, 5_000 + retention, RETENTION_MS).len(),
        1
    );
}

#[test]
fn empty_group_keeps_when_it_became_empty_across_a_restart() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut value = g.to_value();
    value.protocol_type = "consumer".into();
    value.current_state_timestamp_ms = 12_345;
    g = Group::from_value("g", value, now);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.state_timestamp_ms(), 12_345);
}

/// Joins a new dynamic member (MEMBER_ID_REQUIRED, then the rejoin) with
/// the broker's initial rebalance delay.
fn join_new_delayed(g: &mut Group, delay: Duration, now: Instant) -> oneshot::Receiver<JoinResult> {
    let with_delay = |member_id: &str| JoinRequest {
        initial_rebalance_delay: delay,
        ..req(member_id, &["range"])
    };
    let first = now_value(g.join(with_delay(""), now));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    later(g.join(with_delay(&first.member_id), now))
}

#[test]
fn join_group_initial_rebalance_delay_holds_a_lone_member() {
    let delay = Duration::from_millis(3_000);
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut ra = join_new_delayed(&mut g, delay, now);
    assert!(ready(&mut ra).is_none(), "held by the initial delay");
    g.tick(now + delay - Duration::from_millis(1));
    assert!(ready(&mut ra).is_none());
    g.tick(now + delay);
    let ja = ready(&mut ra).expect("the delay ran out");
    assert_eq!((ja.error, ja.generation_id), (0, 1));
}

#[test]
fn join_group_initial_rebalance_delay_gathers_members_in_one_generation() {
    let delay = Duration::from_millis(3_000);
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut ra = join_new_delayed(&mut g, delay, now);
    let second = now + Duration::from_millis(1_000);
    g.tick(second);
    let mut rb = join_new_delayed(&mut g, delay, second);
    // A newcomer during the delay extends it by one more delay from its end.
    g.tick(now + delay);
    assert!(ready(&mut ra).is_none() && ready(&mut rb).is_none());
    g.tick(now + delay * 2 - Duration::from_millis(1));
    assert!(ready(&mut ra).is_none());
    g.tick(now + delay * 2);
    let (ja, jb) = (ready(&mut ra).unwrap(), ready(&mut rb).unwrap());
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    assert_eq!(
        ja.members.len() + jb.members.len(),
        2,
        "the leader sees both"
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn join_group_initial_rebalance_delay_capped_by_rebalance_timeout() {
    // Extensions stop once the rebalance timeout is used up.
    let delay = Duration::from_millis(20_000);
    let now = Instant::now();
    let mut g = Group::new("g");
    let mut ra = join_new_delayed(&mut g, delay, now);
    let mut rb = join_new_delayed(&mut g, delay, now + Duration::from_millis(1));
    g.tick(now + delay); // extended by min(delay, 30 s - 20 s) = 10 s
    assert!(ready(&mut ra).is_none());
    let _rc = join_new_delayed(&mut g, delay, now + delay);
    g.tick(now + delay + Duration::from_millis(REBALANCE_MS as u64 - 20_000));
    assert_eq!(
        ready(&mut ra).unwrap().generation_id,
        1,
        "no time left to extend"
    );
    assert_eq!(ready(&mut rb).unwrap().generation_id, 1);
}

#[test]
fn group_empty_since_is_read_from_the_clock_seam() {
    let clock = crate::clock::install_manual();
    clock.set_wall_ms(1_000_000);
    let now = crate::clock::monotonic();
    let (mut g, a, b) = stable_pair(now);
    clock.advance(Duration::from_secs(90));
    let now = crate::clock::monotonic();
    assert_eq!(g.leave(&b, None, now), 0);
    let mut ra = later(g.join(req(&a, &["range"]), now));
    ready(&mut ra).unwrap();
    assert_eq!(g.leave(&a, None, now), 0);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.state_timestamp_ms(), 1_090_000, "the manual wall clock");
}
