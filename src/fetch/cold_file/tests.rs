//! Choosing file ranges over a real segment file of test batches.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::*;
use crate::protocol::batch::build_test_batch;

/// A segment of batches at offsets 10.., batch `i` holding `i % 3 + 1`
/// records of 100 bytes; removed on drop.
struct Segment {
    path: PathBuf,
    bytes: Vec<u8>,
    /// (base offset, position, length) per batch.
    batches: Vec<(i64, u64, usize)>,
}

impl Segment {
    fn new(count: usize) -> Segment {
        let name = format!(
            "corestream-cold-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4()
        );
        let path = std::env::temp_dir().join(name);
        let (mut bytes, mut batches, mut offset) = (Vec::new(), Vec::new(), 10i64);
        for i in 0..count {
            let value = [i as u8; 100];
            let records: Vec<_> = (0..i % 3 + 1).map(|_| (None, Some(&value[..]))).collect();
            let batch = build_test_batch(offset, &records, 0);
            batches.push((offset, bytes.len() as u64, batch.len()));
            offset += records.len() as i64;
            bytes.extend_from_slice(&batch);
        }
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        Segment {
            path,
            bytes,
            batches,
        }
    }

    fn start(&self, high_watermark: i64) -> FileRangeStart {
        FileRangeStart {
            path: self.path.clone(),
            position: 0,
            offset: 10,
            limit: self.bytes.len() as u64,
            high_watermark,
        }
    }

    /// The bytes of batches `from..to`.
    fn span(&self, from: usize, to: usize) -> &[u8] {
        let start = self.batches[from].1 as usize;
        let end = self.batches[to - 1].1 as usize + self.batches[to - 1].2;
        &self.bytes[start..end]
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn cold_file_range_from_the_batch_holding_the_offset_to_the_budget() {
    let seg = Segment::new(20);
    let hw = 10 + 40;
    // Offset 11 is inside batch 1 (offsets 11..=12): the range starts there.
    let two = seg.batches[1].2 + seg.batches[2].2;
    let got = find_file_range(&seg.start(hw), 11, two + 5, true).unwrap();
    assert_eq!(got.to_contiguous(), seg.span(1, 3));
    let ends: Vec<usize> = got.batch_ends().collect();
    assert_eq!(ends, vec![seg.batches[1].2, two]);
    let extents: Vec<_> = got.batch_extents().collect();
    assert_eq!((extents[0].base_offset, extents[0].last_offset), (11, 12));
}

#[test]
fn cold_file_range_first_batch_whole_only_with_min_one() {
    let seg = Segment::new(5);
    let start = seg.start(100);
    let got = find_file_range(&start, 10, 1, true).unwrap();
    assert_eq!(
        got.to_contiguous(),
        seg.span(0, 1),
        "KIP-74: first batch whole"
    );
    assert!(find_file_range(&start, 10, 1, false).unwrap().is_empty());
}

#[test]
fn cold_file_range_stops_at_the_high_watermark_and_the_durable_end() {
    let seg = Segment::new(10);
    // High watermark at batch 4's base offset: batches 0..4 only.
    let hw = seg.batches[4].0;
    let got = find_file_range(&seg.start(hw), 10, 1 << 20, true).unwrap();
    assert_eq!(got.to_contiguous(), seg.span(0, 4));
    // Durable end at batch 6's position.
    let mut start = seg.start(1000);
    start.limit = seg.batches[6].1;
    let got = find_file_range(&start, 10, 1 << 20, true).unwrap();
    assert_eq!(got.to_contiguous(), seg.span(0, 6));
}

#[test]
fn cold_file_range_truncates_at_batch_ends_and_keeps_extents() {
    let seg = Segment::new(6);
    let mut got = find_file_range(&seg.start(1000), 10, 1 << 20, true).unwrap();
    let end2 = got.batch_ends().nth(1).unwrap();
    got.truncate(end2);
    assert_eq!(got.len(), end2);
    assert_eq!(got.batch_ends().collect::<Vec<_>>().len(), 2);
    assert_eq!(got.to_contiguous(), seg.span(0, 2));
}

#[test]
fn cold_file_range_refuses_headers_that_do_not_check_out() {
    let seg = Segment::new(4);
    // An index floor that claims the wrong base offset.
    let mut start = seg.start(1000);
    start.offset = 11;
    assert!(find_file_range(&start, 12, 1 << 20, true).is_err());
    // A durable end inside a batch.
    let mut start = seg.start(1000);
    start.limit = seg.batches[1].1 + 10;
    assert!(find_file_range(&start, 11, 1 << 20, true).is_err());
    // A file that is not there.
    let mut start = seg.start(1000);
    start.path = seg.path.with_extension("missing");
    assert!(find_file_range(&start, 10, 1 << 20, true).is_err());
    // The second batch's header damaged on disk: a magic other than 2, a
    // negative length. The first batch alone still reads.
    let second = seg.batches[1].1;
    for (at, byte) in [(16, 1u8), (8, 0xff)] {
        let bad = Segment::new(4);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&bad.path)
            .unwrap();
        file.write_all_at(&[byte], second + at).unwrap();
        let err = find_file_range(&bad.start(1000), 10, 1 << 20, true).unwrap_err();
        assert!(err.to_string().contains("bad header"), "{err}");
        let first = find_file_range(&bad.start(1000), 10, 1, true).unwrap();
        assert_eq!(
            first.to_contiguous(),
            bad.span(0, 1),
            "the first batch, whole"
        );
    }
}
