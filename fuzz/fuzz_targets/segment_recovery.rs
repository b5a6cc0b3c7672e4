//! Segment recovery from arbitrary file contents: the input is the only
//! segment of a partition (`PartitionLog::open` on a `MemDisk`). Opening
//! must not panic; a log that opens must serve only whole, CRC-valid, dense
//! batches below its high watermark, and must take and keep a new append.
//! Each input is also tried with its framed batches' CRCs and offsets fixed
//! up, so the fuzzer reaches the checks behind them.
#![no_main]

use std::path::PathBuf;

use corestream::protocol::batch::{batches, build_test_batch, check_crc};
use corestream::storage::{Disk, LogConfig, MemDisk, PartitionLog};
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;

/// Small segments and a dense index, so recovery walks many index entries.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 256,
        preallocate_bytes: 16 << 10,
        ..LogConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    recover(data);
    recover(&fixed_up(data));
});

fn dir() -> PathBuf {
    PathBuf::from("/data/fuzz-0")
}

/// `data` with every framed batch's baseOffset made dense and CRC fixed.
fn fixed_up(data: &[u8]) -> Vec<u8> {
    let mut fixed = data.to_vec();
    let framed: Vec<(usize, usize, i64)> = batches(data)
        .map_while(Result::ok)
        .map(|b| (b.position, b.bytes.len(), i64::from(b.header.last_offset_delta().max(0))))
        .collect();
    let mut next = 0i64;
    for (position, len, delta) in framed {
        let batch = &mut fixed[position..position + len];
        batch[..8].copy_from_slice(&next.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        next = next.saturating_add(delta + 1);
    }
    fixed
}

fn recover(segment: &[u8]) {
    let disk = MemDisk::new();
    block_on(disk.create_dir_all(&dir())).expect("mkdir");
    disk.set_contents(&dir().join(format!("{:020}.log", 0)), segment);
    let Ok(log) = block_on(PartitionLog::open(disk.clone(), dir(), config())) else {
        return;
    };
    let end = log.high_watermark();
    assert_eq!(end, log.next_offset(), "recovered log not all durable");
    check_all(&log, end);
    let mut batch = build_test_batch(0, &[(None, Some(b"after"))], 1);
    log.append(&mut batch).expect("append after recovery");
    block_on(log.flush()).expect("flush after recovery");
    drop(log);
    let log = block_on(PartitionLog::open(disk, dir(), config())).expect("reopen");
    assert_eq!(log.next_offset(), end + 1, "the new batch survives a reopen");
    check_all(&log, end + 1);
}

/// Reads every batch below `end`: whole, CRC-valid, dense from 0.
fn check_all(log: &PartitionLog<MemDisk>, end: i64) {
    let mut offset = 0;
    while offset < end {
        let bytes = block_on(log.read(offset, 1 << 20, true)).expect("recovered data reads");
        assert!(!bytes.is_empty(), "no batch at {offset} below {end}");
        for batch in batches(&bytes) {
            let batch = batch.expect("whole batches");
            check_crc(batch.bytes).expect("CRC-valid batches");
            assert_eq!(batch.header.base_offset(), offset, "dense offsets");
            offset = batch.header.last_offset() + 1;
        }
    }
    assert_eq!(offset, end);
}
