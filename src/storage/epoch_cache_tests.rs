//! Unit tests of [`LeaderEpochCache`]: the file format, and the answers of
//! Kafka's `LeaderEpochFileCache` (endOffsetFor, truncateFromEnd,
//! truncateFromStart) case by case.

use super::*;

fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
    let entries = entries
        .iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect();
    LeaderEpochCache::from_entries(entries).expect("valid entries")
}

fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
    cache
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn leader_epoch_file_round_trips_in_kafka_text_format() {
    let c = cache(&[(0, 0), (3, 150), (7, 900)]);
    let bytes = c.encode();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        "0\n3\n0 0\n3 150\n7 900\n"
    );
    assert_eq!(LeaderEpochCache::decode(&bytes), Some(c));
    let empty = LeaderEpochCache::default();
    assert_eq!(empty.encode(), b"0\n0\n");
    assert_eq!(LeaderEpochCache::decode(b"0\n0\n"), Some(empty));
}

#[test]
fn leader_epoch_file_refuses_bad_shapes() {
    for bad in [
        &b""[..],
        b"1\n0\n",             // unknown version
        b"0\n2\n0 0\n",        // fewer entries than counted
        b"0\n1\n0 0\n1 5\n",   // more entries than counted
        b"0\n1\n0\n",          // missing offset
        b"0\n1\n0 0 9\n",      // extra field
        b"0\n2\n3 10\n2 20\n", // epochs not increasing
        b"0\n2\n2 10\n3 10\n", // offsets not increasing
        b"0\n1\n-1 0\n",       // negative epoch
        b"0\n1\nx 0\n",
        b"\xff\xfe",
    ] {
        assert_eq!(LeaderEpochCache::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn observe_adds_only_higher_epochs() {
    let mut c = LeaderEpochCache::default();
    assert!(!c.observe(-1, 0), "unstamped client batches are ignored");
    assert!(c.observe(0, 0));
    assert!(!c.observe(0, 10), "same epoch: no entry");
    assert!(c.observe(2, 20));
    assert!(!c.observe(1, 30), "a lower epoch is stale");
    assert_eq!(pairs(&c), [(0, 0), (2, 20)]);
    assert_eq!(c.latest_epoch(), Some(2));
    // An epoch assigned at the log end and then overtaken at that offset.
    assert!(c.observe(3, 40));
    assert!(c.observe(4, 40));
    assert_eq!(pairs(&c), [(0, 0), (2, 20), (4, 40)]);
}

/// Kafka's endOffsetFor cases (LeaderEpochFileCacheTest).
#[test]
fn end_offset_for_follows_kafka() {
    let c = cache(&[(1, 10), (3, 20), (5, 30)]);
    let log_end = 42;
    assert_eq!(c.end_offset_for(5, log_end), (5, 42), "latest: log end");
    assert_eq!(
        c.end_offset_for(3, log_end),
        (3, 30),
        "ends at the next start"
    );
    assert_eq!(
        c.end_offset_for(4, log_end),
        (3, 30),
        "unknown in between: floor"
    );
    assert_eq!(c.end_offset_for(2, log_end), (1, 20));
    assert_eq!(c.end_offset_for(0, log_end), (0, 10), "below the first");
    assert_eq!(c.end_offset_for(6, log_end), (-1, -1), "above the latest");
    assert_eq!(c.end_offset_for(-1, log_end), (-1, -1), "undefined");
    let empty = LeaderEpochCache::default();
    assert_eq!(empty.end_offset_for(0, log_end), (-1, -1));
}

#[test]
fn diverging_matches_kafka_leader_check() {
    let c = cache(&[(1, 10), (3, 20), (5, 30)]);
    let end = 42;
    assert_eq!(c.diverging(5, 42, end), Divergence::Consistent);
    assert_eq!(c.diverging(5, 31, end), Divergence::Consistent);
    assert_eq!(c.diverging(3, 30, end), Divergence::Consistent);
    // The follower has epoch 3 data past where epoch 3 ended here.
    assert_eq!(
        c.diverging(3, 35, end),
        Divergence::Diverging {
            epoch: 3,
            end_offset: 30
        }
    );
    // An epoch this log never had: truncate to the end of the one before.
    assert_eq!(
        c.diverging(4, 25, end),
        Divergence::Diverging {
            epoch: 3,
            end_offset: 30
        }
    );
    // Beyond the leader's log end in the latest epoch.
    assert_eq!(
        c.diverging(5, 50, end),
        Divergence::Diverging {
            epoch: 5,
            end_offset: 42
        }
    );
    assert_eq!(c.diverging(9, 50, end), Divergence::Unknown);
    assert_eq!(
        LeaderEpochCache::default().diverging(0, 0, 0),
        Divergence::Unknown
    );
}

#[test]
fn truncate_from_end_drops_entries_at_or_after_the_offset() {
    let mut c = cache(&[(1, 10), (3, 20), (5, 30)]);
    assert!(!c.truncate_from_end(31));
    assert!(c.truncate_from_end(30));
    assert_eq!(pairs(&c), [(1, 10), (3, 20)]);
    assert!(c.truncate_from_end(11));
    assert_eq!(pairs(&c), [(1, 10)]);
    assert!(c.truncate_from_end(0));
    assert!(c.entries().is_empty());
}

#[test]
fn truncate_from_start_keeps_the_covering_entry() {
    let mut c = cache(&[(1, 10), (3, 20), (5, 30)]);
    assert!(!c.truncate_from_start(10), "already at the start");
    assert!(!c.truncate_from_start(5), "below the first");
    assert!(c.truncate_from_start(25));
    assert_eq!(pairs(&c), [(3, 25), (5, 30)]);
    assert!(c.truncate_from_start(30));
    assert_eq!(pairs(&c), [(5, 30)]);
    assert!(c.truncate_from_start(100));
    assert_eq!(pairs(&c), [(5, 100)]);
}
