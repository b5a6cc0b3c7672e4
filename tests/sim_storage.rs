//! Seeded deterministic simulation of one partition log on [`MemDisk`].
//!
//! Each seed drives a small PRNG (SplitMix64, no other randomness) that picks
//! a log configuration (tiny segments so rolls happen all the time) and a
//! sequence of operations: appends of random batches, flushes, flushes that
//! hit EIO/ENOSPC at a chosen I/O, power loss (torn prefix, any subset of
//! blocks, or none), process crashes, clean close and reopen, recovery that
//! itself hits a fault, bytes corrupted at rest, reads from random offsets,
//! timestamp lookups. A model keeps every acknowledged batch (a flush or a
//! close returned `Ok`) and every batch appended since. After each step the
//! invariants of DESIGN.md are checked:
//!
//! - every acknowledged batch is present exactly once at its offset with
//!   identical bytes (only a batch corrupted at rest, and what follows it,
//!   may be cut by recovery); unacknowledged batches survive a crash only as
//!   whole, identical batches, in order;
//! - offsets are dense and increasing; the high watermark equals the
//!   acknowledged end and never passes durable data (a power loss right
//!   after any step keeps everything below it);
//! - a read returns only whole, CRC-valid batches equal to the model, starting
//!   with the one holding the offset; corruption is an error, never served;
//! - a failed flush poisons the log (appends and flushes refused);
//! - nothing panics.
//!
//! Half of the seeds ("housekeeping" seeds) use keyed records with
//! tombstones and also run retention passes (by time, by bytes), DeleteRecords
//! and compaction passes, with a fault at a random I/O of the pass (followed
//! by a crash and recovery) or a crash after it. They do not corrupt bytes at
//! rest or look up timestamps. Extra invariants:
//!
//! - the log start only moves forward, to a batch boundary for retention (to
//!   the asked offset for DeleteRecords), is durable once the pass returned
//!   `Ok`, and after a failed pass recovery finds it between the old and the
//!   asked start; reads below it are `OffsetOutOfRange`, everything at or
//!   after it matches the model; retention by time only removes batches
//!   older than the horizon, retention by bytes keeps at least the bound;
//! - after compaction (finished, failed, or cut by a crash) the log read from
//!   its start is whole, CRC-valid, dense batches; every record is at its
//!   original offset with identical key, value and timestamp; offsets are
//!   strictly increasing; keyless records all stay; for each key the latest
//!   record stays unless it is a tombstone older than a pass's
//!   `delete.retention.ms` horizon.
//!
//! Runs seeds `0..CORESTREAM_SIM_SEEDS` (default [`SEEDS_DEFAULT`]), or one
//! seed with `CORESTREAM_SIM_SEED=<n>`; `CORESTREAM_SIM_SEED_BASE` shifts
//! the range for long exploratory runs. A failing seed prints its replay
//! command and the last operations it ran.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;
use std::time::Instant;

use corestream::protocol::batch::{batches, build_test_batch, check_crc};
use corestream::protocol::records::records;
use corestream::storage::{
    CompactionPolicy, Disk, LogConfig, MemDisk, NoPacing, NoTxns, PartitionLog, RetentionPolicy,
    StorageError,
};
use futures::executor::block_on;

/// Seeds run by default (CI).
const SEEDS_DEFAULT: u64 = 10_000;
/// Operations per seed, at most.
const OPS_PER_SEED_MAX: u64 = 120;
/// Failing seeds reported before the run stops.
const FAILURES_REPORTED_MAX: usize = 5;
/// Operations shown for a failing seed.
const TRACE_SHOWN_MAX: usize = 40;
/// Largest record value, in bytes (a batch may then span pending chunks).
const VALUE_BYTES_MAX: u64 = 300 << 10;
const ERRNOS: [i32; 2] = [libc::EIO, libc::ENOSPC];

/// Housekeeping coverage, printed with the summary: passes that moved the
/// log start, compactions that dropped records, passes that failed on an
/// injected fault (then crashed and recovered).
static STARTS_MOVED: AtomicU64 = AtomicU64::new(0);
static COMPACTIONS_DROPPING: AtomicU64 = AtomicU64::new(0);
static PASSES_FAILED: AtomicU64 = AtomicU64::new(0);

/// SplitMix64: tiny, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo < hi`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

/// One batch as stored (baseOffset rewritten by the log).
#[derive(Clone)]
struct Batch {
    base: i64,
    last: i64,
    max_timestamp: i64,
    bytes: Vec<u8>,
}

struct Sim {
    rng: Rng,
    disk: MemDisk,
    dir: PathBuf,
    config: LogConfig,
    log: Option<PartitionLog<MemDisk>>,
    /// Acknowledged batches (or found durable by recovery), dense from 0.
    acked: Vec<Batch>,
    /// Appended since the last acknowledgement, in order.
    pending: Vec<Batch>,
    /// A flush failed: the log must refuse writes until reopened.
    poisoned: bool,
    /// Base offsets of acknowledged batches whose bytes were corrupted at rest.
    corrupt: BTreeSet<i64>,
    timestamp: i64,
    trace: Vec<String>,
    /// Keyed records, retention, DeleteRecords and compaction (no
    /// corruption at rest, no timestamp lookups).
    housekeeping: bool,
    /// The log start is known to be at least this (durable)...
    start_lo: i64,
    /// ...and at most this (a failed pass may have made it durable).
    start_hi: i64,
    /// Tombstones older than this may have been dropped by compaction.
    tombstone_horizon: i64,
    /// Delete horizons earlier passes may have written (KIP-534: a pass that
    /// keeps a tombstone stamps its batch with `now + delete.retention.ms`,
    /// and a later pass whose `now` is past it drops it): the log end at
    /// the pass (only tombstones below it were cleanable) and the horizon.
    delete_horizons: Vec<(i64, i64)>,
    /// `now` of the compaction pass being verified.
    compact_now: i64,
    /// Makes every record value unique.
    values: u64,
    /// The acknowledged end while `acked` is empty (all below the log start).
    empty_end: i64,
}

/// One record of the model: (key, value, timestamp).
type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// The records of `batches` at or after `from`, by offset; asserts offsets
/// strictly increase.
fn records_from<'a>(batches: impl Iterator<Item = &'a Batch>, from: i64) -> BTreeMap<i64, Rec> {
    let mut out = BTreeMap::new();
    let mut last = i64::MIN;
    for batch in batches {
        let recs = records(&batch.bytes).expect("uncompressed batch parses");
        for r in recs {
            assert!(r.offset > last, "record offsets not strictly increasing");
            assert!(
                batch.base <= r.offset && r.offset <= batch.last,
                "record {} outside its batch {}..={}",
                r.offset,
                batch.base,
                batch.last
            );
            last = r.offset;
            if r.offset >= from {
                out.insert(
                    r.offset,
                    (
                        r.key.map(<[u8]>::to_vec),
                        r.value.map(<[u8]>::to_vec),
                        r.timestamp,
                    ),
                );
            }
        }
    }
    out
}

fn random_config(rng: &mut Rng) -> LogConfig {
    let segment_bytes = match rng.range(0, 4) {
        0 => rng.range(61, 1024),
        1 => rng.range(1024, 16 << 10),
        2 => rng.range(16 << 10, 256 << 10),
        _ => rng.range(256 << 10, 4 << 20),
    };
    LogConfig {
        segment_bytes,
        index_interval_bytes: rng.range(1, 8192) as u32,
        preallocate_bytes: rng.range(0, 64 << 10),
        ..LogConfig::default()
    }
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let config = random_config(&mut rng);
        let housekeeping = rng.chance(50);
        let disk = MemDisk::new();
        let dir = PathBuf::from("/data/sim-0");
        let log = block_on(PartitionLog::open(disk.clone(), dir.clone(), config));
        let log = log.expect("open an empty log");
        Sim {
            rng,
            disk,
            dir,
            config,
            log: Some(log),
            acked: Vec::new(),
            pending: Vec::new(),
            poisoned: false,
            corrupt: BTreeSet::new(),
            timestamp: 1_700_000_000_000,
            trace: vec![format!("config {config:?} housekeeping {housekeeping}")],
            housekeeping,
            start_lo: 0,
            start_hi: 0,
            tombstone_horizon: i64::MIN,
            delete_horizons: Vec::new(),
            compact_now: i64::MIN,
            values: 0,
            empty_end: 0,
        }
    }

    fn log(&self) -> &PartitionLog<MemDisk> {
        self.log.as_ref().expect("log is open")
    }

    fn acked_end(&self) -> i64 {
        self.acked.last().map_or(self.empty_end, |b| b.last + 1)
    }

    fn run(&mut self) {
        let ops = self.rng.range(10, OPS_PER_SEED_MAX);
        for _ in 0..ops {
            self.step();
            self.check_state();
        }
        self.reopen_and_check("final reopen", Crash::Power(PowerLoss::Clean));
    }

    fn step(&mut self) {
        match self.rng.range(0, 100) {
            0..=34 => self.append(),
            35..=49 => self.flush(),
            50..=54 => self.flush_with_fault(),
            55..=60 => {
                let crash = self.random_crash();
                self.reopen_and_check("crash", crash);
            }
            61..=64 => self.close_and_reopen(),
            65..=66 => self.recover_with_fault(),
            67..=68 if self.housekeeping => self.delete_records(),
            67..=68 => self.corrupt_at_rest(),
            69..=89 => self.random_read(),
            90..=94 if self.housekeeping => self.retention(),
            _ if self.housekeeping => self.compaction(),
            _ => self.timestamp_lookup(),
        }
    }

    // ---- operations

    fn append(&mut self) {
        let count = match self.rng.chance(80) {
            true => 1,
            false => self.rng.range(2, 5),
        };
        let mut buf = Vec::new();
        for _ in 0..count {
            buf.extend_from_slice(&self.random_batch());
        }
        let before = self.log().next_offset();
        let result = self.log().append(&mut buf);
        self.trace.push(format!(
            "append {count} batches, {} bytes at {before}",
            buf.len()
        ));
        if self.poisoned {
            assert!(
                matches!(result, Err(StorageError::Failed { .. })),
                "a poisoned log accepted an append: {result:?}"
            );
            return;
        }
        let info = result.expect("append to a healthy log");
        assert_eq!(
            info.base_offset, before,
            "append did not start at the log end"
        );
        let mut next = before;
        for batch in batches(&buf) {
            let batch = batch.expect("append leaves whole batches");
            assert_eq!(batch.header.base_offset(), next, "offsets not dense");
            self.pending.push(Batch {
                base: next,
                last: batch.header.last_offset(),
                max_timestamp: batch.header.max_timestamp(),
                bytes: batch.bytes.to_vec(),
            });
            next = batch.header.last_offset() + 1;
        }
        assert_eq!(info.last_offset + 1, next);
    }

    fn random_batch(&mut self) -> Vec<u8> {
        let records = self.rng.range(1, 11) as usize;
        let value_len = match self.rng.range(0, 100) {
            0..=69 => self.rng.range(0, 200),
            70..=97 => self.rng.range(200, 4000),
            _ => self.rng.range(4000, VALUE_BYTES_MAX / records as u64),
        } as usize;
        let fill = self.rng.next() as u8;
        let value: Vec<u8> = (0..value_len).map(|i| fill.wrapping_add(i as u8)).collect();
        if self.housekeeping {
            return self.keyed_batch(records, value);
        }
        let recs: Vec<_> = (0..records).map(|_| (None, Some(&value[..]))).collect();
        // Mostly increasing, sometimes going back: the time index keeps maxima.
        self.timestamp += self.rng.range(0, 150) as i64 - 40;
        build_test_batch(0, &recs, self.timestamp)
    }

    /// `count` records with keys from a small set (some keyless), unique
    /// values (prefixed by a counter), some tombstones.
    fn keyed_batch(&mut self, count: usize, value: Vec<u8>) -> Vec<u8> {
        let mut owned = Vec::new();
        for _ in 0..count {
            let key = match self.rng.chance(85) {
                true => Some(format!("k{}", self.rng.range(0, 8)).into_bytes()),
                false => None,
            };
            let value = match key.is_some() && self.rng.chance(12) {
                true => None,
                false => {
                    self.values += 1;
                    let mut v = format!("v{}|", self.values).into_bytes();
                    v.extend_from_slice(&value);
                    Some(v)
                }
            };
            owned.push((key, value));
        }
        let recs: Vec<_> = owned
            .iter()
            .map(|(k, v)| (k.as_deref(), v.as_deref()))
            .collect();
        self.timestamp += self.rng.range(0, 150) as i64 - 40;
        build_test_batch(0, &recs, self.timestamp)
    }

    /// Maybe arms a fault at a random mutating I/O of the next operation.
    fn maybe_fault(&mut self) -> Option<u64> {
        if !self.rng.chance(35) {
            return None;
        }
        let ops = self.rng.range(0, 16);
        self.disk
            .fail_after(ops, ERRNOS[self.rng.range(0, 2) as usize]);
        Some(ops)
    }

    /// After a housekeeping pass that returned `Ok`: sometimes crash.
    fn maybe_crash_after(&mut self, what: &str) {
        if self.rng.chance(15) {
            let crash = self.random_crash();
            self.reopen_and_check(what, crash);
        }
    }

    fn retention(&mut self) {
        let (retention_ms, retention_bytes) = match self.rng.range(0, 3) {
            0 => (self.rng.range(0, 3000) as i64, -1),
            1 => (-1, self.rng.range(0, 2 << 20) as i64),
            _ => (
                self.rng.range(0, 3000) as i64,
                self.rng.range(0, 2 << 20) as i64,
            ),
        };
        let policy = RetentionPolicy {
            retention_ms,
            retention_bytes,
        };
        let now = self.timestamp + self.rng.range(0, 3000) as i64 - 500;
        let fault = self.maybe_fault();
        let old_start = self.log().log_start_offset();
        let result = block_on(self.log().enforce_retention(now, policy));
        self.disk.clear_faults();
        self.trace.push(format!(
            "retention {policy:?} now {now} fault {fault:?} -> {result:?}"
        ));
        if self.poisoned {
            assert!(
                matches!(result, Err(StorageError::Failed { .. })),
                "a poisoned log ran retention: {result:?}"
            );
            return;
        }
        let start = self.log().log_start_offset();
        assert!(start >= old_start, "log start moved back");
        if start > old_start {
            STARTS_MOVED.fetch_add(1, Relaxed);
        }
        if result.is_err() {
            PASSES_FAILED.fetch_add(1, Relaxed);
            self.start_lo = start;
            self.start_hi = self.log().next_offset().max(start);
            let crash = self.random_crash();
            self.reopen_and_check("crash after failed retention", crash);
            return;
        }
        // The pass flushed first: everything appended is acknowledged.
        self.acked.append(&mut self.pending);
        assert!(
            start == old_start
                || start == self.acked_end()
                || self.acked.iter().any(|b| b.base == start),
            "retention moved the log start inside a batch: {start}"
        );
        if retention_bytes < 0 {
            let horizon = now.saturating_sub(retention_ms);
            for b in self
                .acked
                .iter()
                .filter(|b| b.base >= old_start && b.last < start)
            {
                assert!(
                    b.max_timestamp < horizon,
                    "retention by time removed batch {} (max timestamp {}, horizon {horizon})",
                    b.base,
                    b.max_timestamp
                );
            }
        }
        if retention_ms < 0 && start > old_start {
            let size = self.log().size_bytes() as i64;
            assert!(
                size >= retention_bytes,
                "retention by bytes left {size} < {retention_bytes}"
            );
        }
        self.start_lo = start;
        self.start_hi = start;
        self.verify_and_adopt("retention");
        self.maybe_crash_after("crash after retention");
    }

    fn delete_records(&mut self) {
        let high_watermark = self.log().high_watermark();
        let old_start = self.log().log_start_offset();
        let target = match self.rng.range(0, 10) {
            0 => -1,
            1 => high_watermark + self.rng.range(1, 3) as i64,
            2 => self.rng.range(0, old_start as u64 + 1) as i64,
            _ => self.rng.range(old_start as u64, high_watermark as u64 + 1) as i64,
        };
        let fault = self.maybe_fault();
        let result = block_on(self.log().delete_records(target));
        self.disk.clear_faults();
        self.trace.push(format!(
            "delete_records {target} (hw {high_watermark}) fault {fault:?} -> {result:?}"
        ));
        if self.poisoned {
            assert!(
                matches!(result, Err(StorageError::Failed { .. })),
                "a poisoned log ran DeleteRecords: {result:?}"
            );
            return;
        }
        if target > high_watermark {
            assert!(
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "DeleteRecords past the high watermark: {result:?}"
            );
            assert_eq!(self.log().log_start_offset(), old_start);
            return;
        }
        let resolved = if target == -1 { high_watermark } else { target };
        let expected = resolved.max(old_start);
        let start = self.log().log_start_offset();
        match result {
            Err(_) => {
                PASSES_FAILED.fetch_add(1, Relaxed);
                assert!(old_start <= start && start <= expected);
                self.start_lo = start;
                self.start_hi = expected;
                let crash = self.random_crash();
                self.reopen_and_check("crash after failed DeleteRecords", crash);
            }
            Ok(new_start) => {
                if new_start > old_start {
                    STARTS_MOVED.fetch_add(1, Relaxed);
                }
                assert_eq!(new_start, expected, "DeleteRecords low watermark");
                assert_eq!(start, expected, "DeleteRecords log start");
                self.start_lo = start;
                self.start_hi = start;
                self.verify_and_adopt("DeleteRecords");
                self.maybe_crash_after("crash after DeleteRecords");
            }
        }
    }

    fn compaction(&mut self) {
        let policy = CompactionPolicy {
            delete_retention_ms: self.rng.range(0, 3000) as i64,
            min_compaction_lag_ms: match self.rng.chance(70) {
                true => 0,
                false => self.rng.range(0, 1000) as i64,
            },
            max_compaction_lag_ms: match self.rng.chance(70) {
                true => i64::MAX,
                false => self.rng.range(0, 2000) as i64,
            },
            min_cleanable_dirty_ratio: self.rng.range(0, 90) as f64 / 100.0,
        };
        let now = self.timestamp + self.rng.range(0, 3000) as i64 - 200;
        if !self.poisoned {
            let horizon = now.saturating_sub(policy.delete_retention_ms);
            self.tombstone_horizon = self.tombstone_horizon.max(horizon);
        }
        self.compact_now = now;
        let end_before = self.log().next_offset();
        let fault = self.maybe_fault();
        let result = block_on(self.log().compact(now, &policy, &NoTxns, &mut NoPacing));
        // Recorded after the pass: its own horizons only count for later
        // passes. A failed pass may still have swapped some segments in.
        self.delete_horizons
            .push((end_before, now.saturating_add(policy.delete_retention_ms)));
        self.disk.clear_faults();
        self.trace.push(format!(
            "compact {policy:?} now {now} fault {fault:?} -> {result:?}"
        ));
        if self.poisoned {
            assert!(
                matches!(result, Err(StorageError::Failed { .. })),
                "a poisoned log compacted: {result:?}"
            );
            return;
        }
        assert_eq!(self.log().log_start_offset(), self.start_lo);
        match result {
            Err(_) => {
                PASSES_FAILED.fetch_add(1, Relaxed);
                let crash = self.random_crash();
                self.reopen_and_check("crash after failed compaction", crash);
            }
            Ok(stats) => {
                if stats.is_some_and(|s| s.records_removed > 0) {
                    COMPACTIONS_DROPPING.fetch_add(1, Relaxed);
                }
                self.verify_and_adopt("compaction");
                self.maybe_crash_after("crash after compaction");
            }
        }
    }

    /// Reads the whole log from its start and checks it against the model
    /// at the record level (what compaction and retention may change), then
    /// makes what was read the model.
    fn verify_and_adopt(&mut self, what: &str) {
        let log_start = self.log().log_start_offset();
        let high_watermark = self.log().high_watermark();
        assert_eq!(high_watermark, self.acked_end(), "{what}: high watermark");
        let before = records_from(self.acked.iter(), log_start);
        let mut read = Vec::new();
        let mut offset = log_start;
        while offset < high_watermark {
            let max_bytes = self.rng.range(1, 256 << 10) as usize;
            let bytes = block_on(self.log().read(offset, max_bytes, true));
            let bytes = bytes.unwrap_or_else(|e| panic!("{what}: read({offset}) failed: {e}"));
            assert!(
                !bytes.is_empty(),
                "{what}: read({offset}) empty below the high watermark"
            );
            let mut total = 0;
            for batch in batches(&bytes) {
                let batch = batch.expect("read returns whole batches");
                check_crc(batch.bytes).expect("read returns CRC-valid batches");
                let (base, last) = (batch.header.base_offset(), batch.header.last_offset());
                match read.is_empty() {
                    true => assert!(base <= offset && offset <= last, "{what}: first batch"),
                    false => assert_eq!(base, offset, "{what}: batches not dense"),
                }
                read.push(Batch {
                    base,
                    last,
                    max_timestamp: batch.header.max_timestamp(),
                    bytes: batch.bytes.to_vec(),
                });
                total += batch.bytes.len();
                offset = last + 1;
            }
            assert_eq!(total, bytes.len(), "{what}: read returned a partial batch");
        }
        assert_eq!(
            offset, high_watermark,
            "{what}: read past the high watermark"
        );
        let after = records_from(read.iter(), log_start);
        for (o, rec) in &after {
            assert!(
                before.get(o) == Some(rec),
                "{what}: record {o} differs from the model or was never written"
            );
        }
        let mut latest: BTreeMap<&[u8], i64> = BTreeMap::new();
        for (o, (key, _, _)) in &before {
            match key {
                Some(k) => {
                    latest.insert(k, *o);
                }
                None => assert!(after.contains_key(o), "{what}: keyless record {o} lost"),
            }
        }
        for (key, o) in latest {
            let (_, value, ts) = &before[&o];
            let stamped_and_past =
                |&(end, horizon): &(i64, i64)| o < end && horizon <= self.compact_now;
            if value.is_none()
                && (*ts < self.tombstone_horizon
                    || self.delete_horizons.iter().any(stamped_and_past))
            {
                continue; // an expired tombstone may go
            }
            assert!(
                after.contains_key(&o),
                "{what}: latest record {o} of key {:?} lost",
                String::from_utf8_lossy(key)
            );
        }
        self.acked = read;
        self.empty_end = high_watermark;
    }

    fn flush(&mut self) {
        let result = block_on(self.log().flush());
        self.trace.push(format!("flush -> {}", ok_or(&result)));
        self.after_flush(result);
    }

    fn after_flush(&mut self, result: Result<(), StorageError>) {
        match (self.poisoned, result) {
            (false, Ok(())) => self.acked.append(&mut self.pending),
            (false, Err(_)) => self.poisoned = true,
            (true, Err(StorageError::Failed { .. })) => {}
            (true, other) => panic!("a poisoned log flushed: {other:?}"),
        }
    }

    fn flush_with_fault(&mut self) {
        let errno = ERRNOS[self.rng.range(0, 2) as usize];
        let kind = self.rng.range(0, 3);
        match kind {
            0 => self.disk.fail_after(self.rng.range(0, 12), errno),
            1 => self.disk.fail_writes(Some(errno)),
            _ => self.disk.fail_syncs(Some(errno)),
        }
        let result = block_on(self.log().flush());
        self.disk.clear_faults();
        self.trace.push(format!(
            "flush with fault kind {kind} errno {errno} -> {}",
            ok_or(&result)
        ));
        if result.is_ok() && kind != 0 && !self.pending.is_empty() {
            panic!("flush of pending data succeeded despite failing writes or syncs");
        }
        self.after_flush(result);
    }

    fn random_crash(&mut self) -> Crash {
        match self.rng.range(0, 5) {
            0 => Crash::Process,
            1 => Crash::Power(PowerLoss::Clean),
            2 => Crash::Power(PowerLoss::Torn(self.rng.range(0, 40_000) as usize)),
            _ => Crash::Power(PowerLoss::Blocks(self.rng.next())),
        }
    }

    fn close_and_reopen(&mut self) {
        let result = block_on(self.log().close());
        self.trace.push(format!("close -> {}", ok_or(&result)));
        match (self.poisoned, result) {
            (false, Ok(())) => self.acked.append(&mut self.pending),
            (false, Err(e)) => panic!("close of a healthy log failed: {e}"),
            (true, Err(_)) => {}
            (true, Ok(())) => panic!("a poisoned log closed cleanly"),
        }
        let mut batch = self.random_batch();
        let later = self.log().append(&mut batch);
        assert!(later.is_err(), "a closed log accepted an append");
        self.reopen_and_check("reopen after close", Crash::Process);
    }

    /// Power loss, then a recovery that hits a fault at some I/O (which may
    /// fail the open), then a power loss again and a clean recovery.
    fn recover_with_fault(&mut self) {
        self.log = None;
        self.disk.crash();
        let ops = self.rng.range(0, 10);
        self.disk
            .fail_after(ops, ERRNOS[self.rng.range(0, 2) as usize]);
        let first = block_on(PartitionLog::open(
            self.disk.clone(),
            self.dir.clone(),
            self.config,
        ));
        self.trace.push(format!(
            "recover with fault after {ops} ops -> {}",
            match &first {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("err {e}"),
            }
        ));
        drop(first);
        self.disk.clear_faults();
        let keep = self.rng.next();
        self.reopen_and_check(
            "recover after faulty recovery",
            Crash::Power(PowerLoss::Blocks(keep)),
        );
    }

    fn corrupt_at_rest(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let target = self.acked[self.rng.range(0, self.acked.len() as u64) as usize].clone();
        let Some((path, position)) = self.locate(target.base) else {
            panic!(
                "acknowledged batch {} not found in any segment file",
                target.base
            );
        };
        // partitionLeaderEpoch (bytes 12..16) is outside the CRC by Kafka's
        // format: nothing can detect a flip there, so it is not a target.
        let mut at = self.rng.range(0, target.bytes.len() as u64 - 4);
        if at >= 12 {
            at += 4;
        }
        let xor = self.rng.range(1, 256) as u8;
        assert!(self.disk.corrupt(&path, position + at, xor));
        self.corrupt.insert(target.base);
        self.trace.push(format!(
            "corrupt batch {} byte {at} ({}:{})",
            target.base,
            path.display(),
            position + at
        ));
    }

    /// Segment file and position of the acknowledged batch with base
    /// `base`: batches lie back to back from their segment's base offset.
    fn locate(&self, base: i64) -> Option<(PathBuf, u64)> {
        let names = block_on(self.disk.list_dir(&self.dir)).expect("list dir");
        let segment_base = names
            .iter()
            .filter_map(|n| n.strip_suffix(".log")?.parse::<i64>().ok())
            .filter(|&b| b <= base)
            .max()?;
        let first = self.acked.partition_point(|b| b.base < segment_base);
        let position: usize = self.acked[first..]
            .iter()
            .take_while(|b| b.base < base)
            .map(|b| b.bytes.len())
            .sum();
        let path = self.dir.join(format!("{segment_base:020}.log"));
        Some((path, position as u64))
    }

    fn random_read(&mut self) {
        let high_watermark = self.log().high_watermark();
        let offset = match self.rng.chance(5) {
            true => high_watermark + self.rng.range(1, 3) as i64,
            false => self.rng.range(0, high_watermark as u64 + 1) as i64,
        };
        let max_bytes = match self.rng.range(0, 3) {
            0 => self.rng.range(0, 200),
            1 => self.rng.range(200, 20_000),
            _ => self.rng.range(20_000, 2 << 20),
        } as usize;
        let min_one = self.rng.chance(70);
        self.trace
            .push(format!("read {offset} max {max_bytes} min_one {min_one}"));
        self.check_read(offset, max_bytes, min_one);
    }

    fn timestamp_lookup(&mut self) {
        let ts = match self.acked.is_empty() || self.rng.chance(10) {
            true => self.timestamp + self.rng.range(0, 500) as i64 - 250,
            false => {
                let b = &self.acked[self.rng.range(0, self.acked.len() as u64) as usize];
                b.max_timestamp + self.rng.range(0, 3) as i64 - 1
            }
        };
        let result = block_on(self.log().offset_for_timestamp(ts));
        self.trace
            .push(format!("offset_for_timestamp {ts} -> {result:?}"));
        let expected = self
            .acked
            .iter()
            .find(|b| b.max_timestamp >= ts)
            .map(|b| (b.base, b.max_timestamp));
        let first_corrupt = self.corrupt.first().copied().unwrap_or(i64::MAX);
        let involves_corruption = expected.is_none_or(|(base, _)| base >= first_corrupt)
            || matches!(result, Ok(Some((base, _))) if base >= first_corrupt);
        if self.corrupt.is_empty() || !involves_corruption {
            let found = result.expect("timestamp lookup without corruption");
            assert_eq!(found, expected, "offset_for_timestamp({ts})");
        }
    }

    // ---- checks

    /// Cheap checks after every step.
    fn check_state(&self) {
        let log = self.log();
        let start = log.log_start_offset();
        assert!(
            self.start_lo <= start && start <= self.start_hi,
            "log start {start} outside {}..={}",
            self.start_lo,
            self.start_hi
        );
        assert_eq!(
            log.high_watermark(),
            self.acked_end(),
            "high watermark is not the acknowledged end"
        );
        if !self.poisoned {
            let pending: i64 = self.pending.iter().map(|b| b.last - b.base + 1).sum();
            assert_eq!(log.next_offset(), self.acked_end() + pending);
        }
    }

    /// One read checked against the model.
    fn check_read(&self, offset: i64, max_bytes: usize, min_one: bool) {
        let log = self.log();
        let high_watermark = log.high_watermark();
        let result = block_on(log.read(offset, max_bytes, min_one));
        if offset > high_watermark || offset < log.log_start_offset() {
            assert!(
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "read past the high watermark: {result:?}"
            );
            return;
        }
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                let explained = self.corrupt.first().is_some_and(|&c| c <= offset);
                assert!(explained, "read({offset}) failed without corruption: {e}");
                return;
            }
        };
        if offset == high_watermark {
            assert!(bytes.is_empty(), "read at the high watermark returned data");
            return;
        }
        let first = self.batch_holding(offset);
        if bytes.is_empty() {
            // Reads hop batch headers (no CRC) from the index entry: a
            // corrupted header before the wanted batch can make the hop
            // stop on it and judge it too big for `max_bytes` (a min_one
            // read of the same offset then reports the corruption).
            let corrupt_on_the_way = !min_one && self.corrupt.range(..=first.base).next().is_some();
            let explained = (!min_one && first.bytes.len() > max_bytes)
                || self.corrupt.contains(&first.base)
                || corrupt_on_the_way;
            assert!(explained, "read({offset}, {max_bytes}, {min_one}) empty");
            return;
        }
        let mut count = 0;
        let mut expected_base = first.base;
        let mut total = 0;
        for batch in batches(&bytes) {
            let batch = batch.expect("read returns whole batches");
            check_crc(batch.bytes).expect("read returns CRC-valid batches");
            let model = self.batch_holding(expected_base);
            assert_eq!(batch.header.base_offset(), expected_base, "read not dense");
            assert!(
                batch.bytes == model.bytes,
                "read batch {expected_base}: bytes differ"
            );
            expected_base = model.last + 1;
            total += batch.bytes.len();
            count += 1;
        }
        assert_eq!(total, bytes.len(), "read returned a partial batch");
        assert!(
            expected_base <= high_watermark,
            "read past the high watermark"
        );
        assert!(
            total <= max_bytes || (count == 1 && min_one),
            "read returned {total} bytes for max {max_bytes}"
        );
    }

    /// The acknowledged batch holding `offset` (< acknowledged end).
    fn batch_holding(&self, offset: i64) -> &Batch {
        let at = self.acked.partition_point(|b| b.last < offset);
        let batch = &self.acked[at];
        assert!(batch.base <= offset && offset <= batch.last);
        batch
    }

    /// Drops the log, applies `crash`, reopens, and checks what recovery
    /// kept against the model; then reads the whole log.
    fn reopen_and_check(&mut self, what: &str, crash: Crash) {
        self.log = None;
        self.disk.clear_faults();
        match crash {
            Crash::Process => {}
            Crash::Power(PowerLoss::Clean) => self.disk.crash(),
            Crash::Power(PowerLoss::Torn(keep)) => self.disk.crash_tearing(keep),
            Crash::Power(PowerLoss::Blocks(bits)) => {
                let mut rng = Rng(bits);
                self.disk.crash_blocks(|_, _| rng.chance(50));
            }
        }
        if self.rng.chance(10) {
            self.config = random_config(&mut self.rng);
        }
        let log = block_on(PartitionLog::open(
            self.disk.clone(),
            self.dir.clone(),
            self.config,
        ));
        let log = log.unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
        let end = log.next_offset();
        self.trace.push(format!(
            "{what} ({crash:?}, config {:?}) -> end {end}",
            self.config
        ));
        assert_eq!(log.high_watermark(), end, "recovered log not all durable");
        self.log = Some(log);
        self.poisoned = false;
        self.adopt_recovered(end);
        self.check_state();
        let start = self.log().log_start_offset();
        self.start_lo = start;
        self.start_hi = start;
        match self.housekeeping {
            true => self.verify_and_adopt(what),
            false => self.check_whole_log(),
        }
    }

    /// Updates the model to what recovery kept, checking it was allowed to.
    fn adopt_recovered(&mut self, end: i64) {
        let acked_end = self.acked_end();
        if end < acked_end {
            let first_corrupt = self.corrupt.first().copied();
            assert!(
                first_corrupt.is_some_and(|c| c <= end),
                "recovery lost acknowledged data: end {end}, acknowledged {acked_end}, \
                 first corrupt batch {first_corrupt:?}"
            );
            let keep = self.acked.partition_point(|b| b.base < end);
            assert_eq!(
                self.acked.get(keep).map(|b| b.base),
                Some(end),
                "cut inside a batch"
            );
            self.acked.truncate(keep);
            self.corrupt.retain(|&c| c < end);
            self.pending.clear();
            return;
        }
        let mut at = acked_end;
        let survivors = self.pending.iter().take_while(|b| b.base < end).count();
        for batch in &self.pending[..survivors] {
            assert_eq!(batch.base, at);
            at = batch.last + 1;
        }
        assert_eq!(
            at, end,
            "recovery kept part of an unacknowledged batch or more"
        );
        let mut survived: Vec<Batch> = self.pending.drain(..).take(survivors).collect();
        // Survivors must be byte-identical: read them back.
        let log_start = self.log().log_start_offset();
        for batch in survived.iter().filter(|b| b.base >= log_start) {
            let bytes = block_on(self.log().read(batch.base, 1, true));
            let bytes = bytes.unwrap_or_else(|e| panic!("surviving batch {}: {e}", batch.base));
            assert!(
                bytes[..] == batch.bytes[..],
                "unacknowledged batch {} survived with different bytes",
                batch.base
            );
        }
        self.acked.append(&mut survived);
    }

    /// Reads every acknowledged batch.
    fn check_whole_log(&mut self) {
        let mut offset = self.log().log_start_offset();
        let high_watermark = self.log().high_watermark();
        while offset < high_watermark {
            let max_bytes = self.rng.range(1, 256 << 10) as usize;
            self.check_read(offset, max_bytes, true);
            offset = self.batch_holding(offset).last + 1;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Crash {
    /// The process dies; the page cache keeps every write.
    Process,
    /// Power loss.
    Power(PowerLoss),
}

#[derive(Debug, Clone, Copy)]
enum PowerLoss {
    /// Only synced data survives.
    Clean,
    /// Plus this many bytes of each file's unsynced changes.
    Torn(usize),
    /// Plus a random subset of the unsynced blocks (PRNG seed).
    Blocks(u64),
}

fn ok_or<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("err {e}"),
    }
}

thread_local! {
    /// Set while a seed runs: its panics are reported with the seed, not by
    /// the default hook. Holds the location of the last panic.
    static QUIET_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records the location of panics on
/// threads running a seed and defers to the default hook elsewhere.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = QUIET_PANIC.with(|q| {
                let mut q = q.borrow_mut();
                let location = info.location().map(|l| l.to_string());
                q.as_mut().map(|slot| *slot = location.unwrap_or_default())
            });
            if quiet.is_none() {
                default(info);
            }
        }));
    });
}

/// Runs one seed; `Err` holds the panic message and the trace.
fn run_seed(seed: u64) -> Result<(), String> {
    install_panic_hook();
    QUIET_PANIC.with(|q| *q.borrow_mut() = Some(String::new()));
    let mut sim = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        sim = Some(Sim::new(seed));
        sim.as_mut().expect("just set").run();
    }));
    let location = QUIET_PANIC
        .with(|q| q.borrow_mut().take())
        .unwrap_or_default();
    let Err(panic) = outcome else { return Ok(()) };
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let message = format!("{message} (at {location})");
    let trace = sim.map(|s| s.trace).unwrap_or_default();
    let shown_max = env_u64("CORESTREAM_SIM_TRACE").map_or(TRACE_SHOWN_MAX, |n| n as usize);
    let shown = &trace[trace.len().saturating_sub(shown_max)..];
    Err(format!(
        "{message}\n  last operations:\n    {}",
        shown.join("\n    ")
    ))
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

#[test]
fn storage_simulation() {
    let seeds: Vec<u64> = match env_u64("CORESTREAM_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let base = env_u64("CORESTREAM_SIM_SEED_BASE").unwrap_or(0);
            let count = env_u64("CORESTREAM_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT);
            (base..base + count).collect()
        }
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    for &seed in &seeds {
        if let Err(report) = run_seed(seed) {
            eprintln!(
                "\nsimulation seed {seed} FAILED: {report}\n  replay: \
                 CORESTREAM_SIM_SEED={seed} cargo test --release --test sim_storage\n"
            );
            failures.push(seed);
            if failures.len() >= FAILURES_REPORTED_MAX {
                break;
            }
        }
    }
    eprintln!(
        "storage simulation: {} seeds in {:.1}s, {} failed; housekeeping: {} log start \
         moves, {} compactions dropping records, {} passes failed on a fault",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        failures.len(),
        STARTS_MOVED.load(Relaxed),
        COMPACTIONS_DROPPING.load(Relaxed),
        PASSES_FAILED.load(Relaxed),
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// The simulation must be able to fail: a log that loses an acknowledged
/// batch is caught (guards against checks that pass vacuously).
#[test]
fn simulation_catches_lost_data() {
    let mut sim = Sim::new(7);
    for _ in 0..5 {
        sim.append();
    }
    sim.flush();
    assert!(!sim.acked.is_empty());
    // Remove the acknowledged data behind the log's back.
    let names = block_on(sim.disk.list_dir(&sim.dir)).unwrap();
    for name in names {
        let path = sim.dir.join(&name);
        if name.ends_with(".log") || name.ends_with("index") {
            block_on(sim.disk.remove_file(&path)).unwrap();
        }
    }
    let caught = catch_unwind(AssertUnwindSafe(|| {
        sim.reopen_and_check("reopen", Crash::Process)
    }));
    assert!(caught.is_err(), "lost data went unnoticed");
}
