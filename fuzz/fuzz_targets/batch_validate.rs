//! Produce-path batch validation and the batch iterator, with oracles:
//! batches tile the input, and a valid blob stays valid after the broker's
//! header rewrites. Each input is also tried with every framed batch's CRC
//! fixed up, so the fuzzer reaches the checks behind the CRC.
#![no_main]

use corestream_fuzz::protocol::batch::{
    batches, check_crc, set_base_offset, set_max_timestamp_log_append, set_partition_leader_epoch,
    validate_produce, BATCH_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_blob(data);
    let mut fixed = data.to_vec();
    for (position, len) in framed_batches(data) {
        let batch = &mut fixed[position..position + len];
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    check_blob(&fixed);
});

/// (position, length) of each batch `batches` yields before its first error.
fn framed_batches(data: &[u8]) -> Vec<(usize, usize)> {
    batches(data)
        .map_while(Result::ok)
        .map(|b| (b.position, b.bytes.len()))
        .collect()
}

fn check_blob(data: &[u8]) {
    let summary = validate_produce(data);

    let mut tiled = 0usize;
    for item in batches(data) {
        let Ok(batch) = item else { break };
        assert_eq!(batch.position, tiled);
        assert!(batch.bytes.len() >= BATCH_HEADER_LEN);
        assert_eq!(batch.bytes.len(), batch.header.total_len());
        let _ = check_crc(batch.bytes);
        tiled += batch.bytes.len();
    }

    let Ok(summary) = summary else { return };
    let framed = framed_batches(data);
    assert_eq!(tiled, data.len());
    assert_eq!(summary.batch_count, framed.len());
    assert!(summary.record_count >= framed.len() as i64);

    let mut rewritten = data.to_vec();
    for (position, len) in framed {
        let batch = &mut rewritten[position..position + len];
        set_base_offset(batch, 1_000_000);
        set_partition_leader_epoch(batch, 7);
        check_crc(batch).expect("offset and epoch are outside the CRC");
        set_max_timestamp_log_append(batch, 42);
        check_crc(batch).expect("log-append rewrite recomputes the CRC");
    }
    let after = validate_produce(&rewritten).expect("rewritten blob stays valid");
    assert_eq!(after.batch_count, summary.batch_count);
    assert_eq!(after.record_count, summary.record_count);
    assert_eq!(after.max_timestamp, 42);
}
