use bytes::Bytes;

use super::*;
use crate::protocol::batch::build_test_batch;

fn batch(base_offset: i64, records: usize, value_len: usize) -> Bytes {
    let value = vec![base_offset as u8; value_len];
    let recs: Vec<_> = (0..records)
        .map(|_| (None, Some(value.as_slice())))
        .collect();
    Bytes::from(build_test_batch(base_offset, &recs, 1_000))
}

fn concat(parts: &[Bytes]) -> Bytes {
    Bytes::from(parts.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>())
}

#[test]
fn serves_only_published_batches() {
    let tail = PartitionTail::new(TailCache::new(1 << 20));
    tail.stage(batch(0, 2, 10));
    assert_eq!(tail.read(0, 1 << 20, true), None, "not durable yet");
    tail.publish(2);
    let got = tail.read(1, 1 << 20, true).expect("cached");
    assert_eq!(
        got.to_contiguous(),
        batch(0, 2, 10),
        "batch holding offset 1"
    );
    assert_eq!(tail.read(2, 1 << 20, true), None, "at the high watermark");
}

#[test]
fn served_bytes_are_the_staged_buffer_not_a_copy() {
    let tail = PartitionTail::new(TailCache::new(1 << 20));
    let a = batch(0, 1, 100);
    let b = batch(1, 1, 100);
    let staged = concat(&[a.clone(), b.clone()]);
    tail.stage(staged.clone());
    tail.publish(2);
    let got = tail.read(0, 1 << 20, true).unwrap();
    assert_eq!(got.to_contiguous(), staged);
    assert_eq!(
        got.slices()[0].as_bytes().unwrap().as_ptr(),
        staged.as_ptr()
    );
    assert_eq!(
        got.slices()[1].as_bytes().unwrap().as_ptr(),
        staged[a.len()..].as_ptr()
    );
}

#[test]
fn max_bytes_and_min_one() {
    let tail = PartitionTail::new(TailCache::new(1 << 20));
    let batches: Vec<Bytes> = (0..4).map(|i| batch(i, 1, 200)).collect();
    for b in &batches {
        tail.stage(b.clone());
    }
    tail.publish(4);
    let one = batches[0].len();
    let got = tail.read(0, 2 * one + 10, true).unwrap();
    assert_eq!(got.len(), 2 * one, "whole batches within max_bytes");
    let got = tail.read(0, 10, true).unwrap();
    assert_eq!(
        got.len(),
        one,
        "first batch whole when it alone is larger (KIP-74)"
    );
    let got = tail.read(0, 10, false).unwrap();
    assert!(got.is_empty(), "nothing without min_one");
}

#[test]
fn bounded_by_shard_budget_with_fifo_eviction_across_partitions() {
    let one = batch(0, 1, 1000).len();
    let shard = TailCache::new(3 * one);
    let p1 = PartitionTail::new(shard.clone());
    let p2 = PartitionTail::new(shard.clone());
    for i in 0..2 {
        p1.stage(batch(i, 1, 1000));
    }
    p1.publish(2);
    p2.stage(batch(0, 1, 1000));
    p2.stage(batch(1, 1, 1000));
    p2.publish(2);
    assert!(shard.used_bytes() <= shard.budget_bytes());
    assert_eq!(shard.used_bytes(), 3 * one);
    // p1's oldest batch (offset 0) went first.
    assert_eq!(p1.cached_range(), Some((1, 2)));
    assert_eq!(
        p1.read(0, 1 << 20, true),
        None,
        "evicted: caller reads disk"
    );
    assert_eq!(p2.cached_range(), Some((0, 2)));
    for i in 2..50 {
        p2.stage(batch(i, 1, 1000));
        assert!(shard.used_bytes() <= shard.budget_bytes());
    }
    assert_eq!(p1.cached_range(), None);
    assert_eq!(p2.cached_range(), Some((47, 50)));
    assert!(shard.order.borrow().len() <= 3 * (STALE_ENTRIES_PER_LIVE_MAX + 1) + 3);
}

#[test]
fn gap_restarts_the_run_and_drop_releases_budget() {
    let shard = TailCache::new(1 << 20);
    let tail = PartitionTail::new(shard.clone());
    tail.stage(batch(0, 1, 10));
    tail.stage(batch(5, 1, 10)); // not dense: the cache restarts at 5
    tail.publish(6);
    assert_eq!(tail.cached_range(), Some((5, 6)));
    assert_eq!(tail.read(0, 100, true), None);
    drop(tail);
    assert_eq!(shard.used_bytes(), 0);
    // The queue entry of a dropped partition is skipped, not a crash.
    let other = PartitionTail::new(shard.clone());
    other.stage(batch(0, 1, 10));
    assert!(shard.used_bytes() > 0);
}

#[test]
fn oversized_batch_is_not_cached() {
    let small = batch(0, 1, 10);
    let shard = TailCache::new(small.len() * 2);
    let tail = PartitionTail::new(shard.clone());
    tail.stage(small);
    tail.stage(batch(1, 1, 1000));
    tail.publish(2);
    assert_eq!(tail.cached_range(), None);
    assert_eq!(tail.read(1, 1 << 20, true), None);
    assert_eq!(shard.used_bytes(), 0);
}

/// The contract `Partition::read` relies on: for any offset and budget the
/// cache covers, it answers exactly the bytes a disk read answers.
#[test]
fn served_bytes_identical_to_disk() {
    use crate::storage::{LogConfig, MemDisk, PartitionLog};
    use futures::executor::block_on;

    let config = LogConfig {
        segment_bytes: 8 << 10,
        index_interval_bytes: 512,
        preallocate_bytes: 16 << 10,
        ..LogConfig::default()
    };
    let disk = MemDisk::new();
    let log = block_on(PartitionLog::open(disk, "/tail-vs-disk".into(), config)).unwrap();
    let tail = PartitionTail::new(TailCache::new(1 << 20));
    for i in 0..40usize {
        // varied sizes, several batches per append, crossing segment rolls
        let mut owned: Vec<u8> = (0..1 + i % 3)
            .flat_map(|j| {
                let value = vec![(i * 7 + j) as u8; 50 + (i * 37) % 700];
                let recs: Vec<_> = (0..1 + j).map(|_| (None, Some(value.as_slice()))).collect();
                build_test_batch(0, &recs, 1_000 + i as i64)
            })
            .collect();
        log.append(&mut owned).unwrap();
        tail.stage(Bytes::from(owned));
        if i % 5 == 4 {
            block_on(log.flush()).unwrap();
            tail.publish(log.high_watermark());
        }
    }
    block_on(log.flush()).unwrap();
    tail.publish(log.high_watermark());
    let end = log.high_watermark();
    let mut compared = 0;
    for offset in 0..end {
        for max_bytes in [1usize, 300, 2_000, 9_000] {
            let from_disk = block_on(log.read(offset, max_bytes, true)).unwrap();
            let from_cache = tail
                .read(offset, max_bytes, true)
                .expect("whole log cached");
            // A disk read stops at a segment end; the cache does not. The
            // cache's answer starts with the disk's and holds whole batches.
            let cached = from_cache.to_contiguous();
            assert!(
                cached.starts_with(&from_disk),
                "offset {offset} max {max_bytes}: cache differs from disk"
            );
            assert!(!cached.is_empty());
            compared += 1;
        }
    }
    assert!(compared > 100);
}
