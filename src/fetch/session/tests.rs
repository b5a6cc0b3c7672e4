//! The session state machine, driven as the Fetch handler drives it.

use kafka_protocol::messages::TopicName;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::*;

fn name(s: &str) -> TopicName {
    TopicName(s.to_string().into())
}

fn part(topic: &str, partition: i32, offset: i64) -> SessionPartition {
    SessionPartition::requested(name(topic), Uuid::nil(), partition, offset, 1 << 20)
}

fn full(session_id: i32, partitions: Vec<SessionPartition>) -> SessionRequest {
    SessionRequest {
        session_id,
        session_epoch: INITIAL_EPOCH,
        uses_topic_ids: false,
        partitions,
        forgotten: vec![],
    }
}

fn incremental(session_id: i32, epoch: i32, partitions: Vec<SessionPartition>) -> SessionRequest {
    SessionRequest {
        session_id,
        session_epoch: epoch,
        uses_topic_ids: false,
        partitions,
        forgotten: vec![],
    }
}

fn result(hw: i64, records_bytes: usize) -> PartitionResult {
    PartitionResult {
        records_bytes,
        error_code: 0,
        high_watermark: hw,
        last_stable_offset: hw,
        log_start_offset: 0,
        diverging: false,
    }
}

/// Opens a session over `partitions` as a full fetch that saw `hw` on each.
fn open_with(cache: &mut FetchSessionCache, partitions: Vec<SessionPartition>, hw: i64) -> i32 {
    assert_eq!(
        cache.begin(&full(0, partitions.clone()), 0),
        FetchPlan::Full
    );
    let sent = partitions
        .into_iter()
        .map(|mut p| {
            assert!(must_respond(&mut p, &result(hw, 0)));
            p
        })
        .collect();
    cache.open(sent, false, 0)
}

fn plan_partitions(plan: FetchPlan) -> Vec<(String, i32, i64)> {
    match plan {
        FetchPlan::Incremental { partitions, .. } => partitions
            .iter()
            .map(|p| (p.topic_name.0.to_string(), p.partition, p.fetch_offset))
            .collect(),
        other => panic!("expected an incremental plan, got {other:?}"),
    }
}

#[test]
fn fetch_session_full_then_incremental_keeps_partitions_and_bumps_epoch() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let id = open_with(&mut cache, vec![part("a", 0, 5), part("a", 1, 7)], 10);
    assert_ne!(id, NO_SESSION_ID);
    assert_eq!(cache.len(), 1);
    // Epoch 1 with only partition 1 moved: partition 0 keeps offset 5.
    let plan = cache.begin(&incremental(id, 1, vec![part("a", 1, 9)]), 1);
    assert_eq!(
        plan_partitions(plan),
        vec![("a".into(), 0, 5), ("a".into(), 1, 9)]
    );
    // The next request must carry epoch 2; 1 again is refused.
    assert_eq!(
        cache.begin(&incremental(id, 1, vec![]), 2),
        FetchPlan::Error(ResponseError::InvalidFetchSessionEpoch.code())
    );
    assert!(matches!(
        cache.begin(&incremental(id, 2, vec![]), 3),
        FetchPlan::Incremental { .. }
    ));
}

#[test]
fn fetch_session_unknown_id_is_not_found() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    assert_eq!(
        cache.begin(&incremental(12345, 1, vec![]), 0),
        FetchPlan::Error(ResponseError::FetchSessionIdNotFound.code())
    );
}

#[test]
fn fetch_session_forgotten_partitions_leave_the_session() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let id = open_with(&mut cache, vec![part("a", 0, 0), part("b", 0, 0)], 3);
    let mut request = incremental(id, 1, vec![part("c", 2, 4)]);
    request.forgotten = vec![(TopicKey::Name(name("a")), 0)];
    assert_eq!(
        plan_partitions(cache.begin(&request, 1)),
        vec![("b".into(), 0, 0), ("c".into(), 2, 4)]
    );
}

#[test]
fn fetch_session_final_epoch_closes_and_serves_sessionless() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let id = open_with(&mut cache, vec![part("a", 0, 0)], 0);
    let mut close = incremental(id, FINAL_EPOCH, vec![part("a", 0, 0)]);
    close.session_epoch = FINAL_EPOCH;
    assert_eq!(cache.begin(&close, 1), FetchPlan::Sessionless);
    assert!(cache.is_empty());
    assert_eq!(
        cache.begin(&incremental(id, 1, vec![]), 2),
        FetchPlan::Error(ResponseError::FetchSessionIdNotFound.code())
    );
}

#[test]
fn fetch_session_full_request_naming_a_session_replaces_it() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let old = open_with(&mut cache, vec![part("a", 0, 0)], 0);
    assert_eq!(
        cache.begin(&full(old, vec![part("a", 0, 3)]), 1),
        FetchPlan::Full
    );
    assert!(
        cache.is_empty(),
        "the old session is closed by the full request"
    );
    let new = cache.open(vec![part("a", 0, 3)], false, 1);
    assert_ne!(new, old);
    assert_eq!(cache.len(), 1);
}

#[test]
fn fetch_session_must_respond_only_on_change() {
    let mut p = part("a", 0, 0);
    assert!(must_respond(&mut p, &result(10, 0)), "new partition");
    assert!(!must_respond(&mut p, &result(10, 0)), "nothing changed");
    assert!(must_respond(&mut p, &result(10, 100)), "records");
    assert!(must_respond(&mut p, &result(11, 0)), "high watermark moved");
    let mut lso = result(11, 0);
    lso.last_stable_offset = 5;
    assert!(must_respond(&mut p, &lso), "last stable offset moved");
    let mut start = lso;
    start.log_start_offset = 3;
    assert!(must_respond(&mut p, &start), "log start moved");
    assert!(!must_respond(&mut p, &start));
    let mut error = start;
    error.error_code = ResponseError::NotLeaderOrFollower.code();
    assert!(must_respond(&mut p, &error), "errors are always sent");
    assert!(
        must_respond(&mut p, &start),
        "after an error the partition is sent again"
    );
}

#[test]
fn fetch_session_answered_partitions_rotate_to_the_end() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let id = open_with(
        &mut cache,
        vec![part("a", 0, 0), part("a", 1, 0), part("a", 2, 0)],
        0,
    );
    let FetchPlan::Incremental { partitions, .. } = cache.begin(&incremental(id, 1, vec![]), 1)
    else {
        panic!("expected incremental");
    };
    let mut answered = partitions[0].clone();
    assert!(must_respond(&mut answered, &result(4, 40)));
    cache.finish_incremental(id, vec![answered]);
    let order: Vec<i32> = cache
        .session_partitions(id)
        .unwrap()
        .iter()
        .map(|p| p.partition)
        .collect();
    assert_eq!(order, vec![1, 2, 0]);
    let moved = &cache.session_partitions(id).unwrap()[2];
    assert_eq!(moved.high_watermark, 4, "what was sent is remembered");
}

#[test]
fn fetch_session_topic_id_usage_must_not_change() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let id = open_with(&mut cache, vec![part("a", 0, 0)], 0);
    let mut request = incremental(id, 1, vec![]);
    request.uses_topic_ids = true;
    assert_eq!(
        cache.begin(&request, 1),
        FetchPlan::Error(ResponseError::FetchSessionTopicIdError.code())
    );
}

#[test]
fn fetch_session_v13_keys_by_topic_id() {
    let mut cache = FetchSessionCache::new(10, 0, 1, 0);
    let topic = Uuid::from_u128(7);
    let p = SessionPartition::requested(TopicName::default(), topic, 0, 0, 100);
    let id = cache.open(vec![p.clone()], true, 0);
    let mut request = incremental(id, 1, vec![]);
    request.uses_topic_ids = true;
    request.forgotten = vec![(TopicKey::Id(topic), 0)];
    match cache.begin(&request, 1) {
        FetchPlan::Incremental { partitions, .. } => assert!(partitions.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fetch_session_cache_full_evicts_stale_then_smaller_else_refuses() {
    let mut cache = FetchSessionCache::new(2, 0, 1, 0);
    let small = cache.open(vec![part("a", 0, 0)], false, 0);
    let big = cache.open(vec![part("a", 0, 0), part("a", 1, 0)], false, 0);
    assert_eq!(cache.len(), 2);
    // Not stale yet, and not larger than the smallest: no room.
    assert_eq!(cache.open(vec![part("b", 0, 0)], false, 1), NO_SESSION_ID);
    assert_eq!(cache.evictions_total(), 0);
    // Larger than the smallest: it goes.
    let three = vec![part("c", 0, 0), part("c", 1, 0), part("c", 2, 0)];
    let newer = cache.open(three, false, 2);
    assert_ne!(newer, NO_SESSION_ID);
    assert!(cache.session_partitions(small).is_none());
    assert_eq!(cache.evictions_total(), 1);
    // Once idle past the limit, any session may take the stale one's slot.
    let later = FETCH_SESSION_IDLE_EVICT_MS + 10;
    let mut keep_alive = incremental(newer, 1, vec![]);
    keep_alive.session_epoch = 1;
    assert!(matches!(
        cache.begin(&keep_alive, later),
        FetchPlan::Incremental { .. }
    ));
    let tiny = cache.open(vec![], false, later);
    assert_ne!(tiny, NO_SESSION_ID);
    assert!(cache.session_partitions(big).is_none(), "the idle one went");
    assert!(cache.session_partitions(newer).is_some());
    assert_eq!(cache.evictions_total(), 2);
    assert_eq!(cache.opened_total(), 4);
}

#[test]
fn fetch_session_ids_name_their_shard_and_stay_positive() {
    let mut cache = FetchSessionCache::new(10, 2, 3, u32::MAX);
    for _ in 0..5 {
        let id = cache.open(vec![], false, 0);
        assert!(id > 0);
        assert_eq!((id - 1) % 3, 2);
    }
}

#[test]
fn fetch_session_epoch_wraps_to_one() {
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(0), 1);
    assert_eq!(next_epoch(5), 6);
}
