//! Seeded deterministic simulation of the Raft log store on [`MemDisk`],
//! the Raft log's counterpart of `tests/sim_storage.rs` (the partition
//! log's).
//!
//! Each seed drives a SplitMix64 PRNG (no other randomness) through a
//! sequence of what openraft asks of a log store, in Raft's order: appends
//! of a few entries, truncations of an uncommitted tail (followed by
//! entries of a newer term), purges of a prefix, votes; some with an I/O
//! fault (EIO/ENOSPC at a chosen write or fdatasync). Between them, crashes
//! of every kind: process crash (unsynced bytes lost), power loss keeping a
//! torn prefix of the unsynced bytes, power loss keeping any subset of
//! blocks, and garbage appended to the log's tail (a half-written frame of
//! someone else's bytes). A model keeps every acknowledged entry and vote
//! (the call returned `Ok`, i.e. after fdatasync). After each crash the
//! store is reopened and checked:
//!
//! - it opens (a torn or garbage tail is cut, never an error, no panic);
//! - the log is the acknowledged one, or that plus the one operation that
//!   failed (which may have reached the disk before its error), minus the
//!   purged prefix: every acknowledged entry survives, nothing torn does;
//! - indexes are consecutive and terms never go back;
//! - the vote is the acknowledged one (or the failed save's);
//! - the reopened store takes appends again, and they survive a crash.
//!
//! Runs seeds `0..CORESTREAM_RAFT_SIM_SEEDS` (default [`SEEDS_DEFAULT`]),
//! or one seed with `CORESTREAM_RAFT_SIM_SEED=<n>`; a failing seed names
//! itself and its last operations.

use std::path::PathBuf;

use futures::executor::block_on;
use openraft::entry::RaftEntry;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::RaftLogReader;

use super::log_store::{RaftLogStore, LOG_FILE_NAME};
use super::types::{ClusterCommand, Entry, LogId, Vote};
use crate::storage::MemDisk;

/// Seeds run by default (each is a few milliseconds).
const SEEDS_DEFAULT: u64 = 300;
/// Operations per seed.
const STEPS_PER_SEED: usize = 60;
/// Entries per append, at most.
const APPEND_ENTRIES_MAX: u64 = 5;
/// Garbage appended to the log's tail at a crash, at most, in bytes
/// (more than one 4 KiB block, so it may straddle a block boundary).
const GARBAGE_BYTES_MAX: usize = 6000;
/// I/O operations before an injected fault, at most (an append is a
/// write and a sync; a purge rewrites and renames).
const FAULT_AFTER_OPS_MAX: u64 = 6;
/// Operation names kept for a failing seed's report.
const TRAIL_LEN: usize = 12;

/// SplitMix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn dir() -> PathBuf {
    PathBuf::from("/data/controller")
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId { term, node_id: 1 }, index)
}

fn entry(term: u64, index: u64) -> Entry {
    let command = ClusterCommand::RemoveTopic {
        name: format!("topic-{index}"),
    };
    Entry::new_normal(log_id(term, index), command)
}

/// What the model expects on disk: entries as (term, index), the last
/// purged index and the vote.
#[derive(Clone, Debug, Default)]
struct Model {
    entries: Vec<(u64, u64)>,
    purged: Option<u64>,
    vote: Option<Vote>,
}

impl Model {
    /// The entries a reader returns: those after the purged prefix.
    fn unpurged(&self, purged: Option<u64>) -> Vec<(u64, u64)> {
        let kept = self
            .entries
            .iter()
            .filter(|(_, i)| purged.is_none_or(|p| *i > p));
        kept.copied().collect()
    }

    fn next_index(&self) -> u64 {
        match (self.entries.last(), self.purged) {
            (Some((_, i)), _) => i + 1,
            (None, Some(p)) => p + 1,
            (None, None) => 0,
        }
    }
}

/// One seed's run.
struct Sim {
    seed: u64,
    rng: Rng,
    disk: MemDisk,
    store: RaftLogStore<MemDisk>,
    acked: Model,
    term: u64,
    trail: Vec<String>,
    seen: Seen,
}

/// What a run went through, so the test can show it is not vacuous.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Operations that failed on an injected fault.
    failed_ops: u64,
    /// Recoveries that kept part of a failed append (a torn tail cut at a
    /// whole entry).
    partial_appends: u64,
    /// Recoveries with garbage after the log's tail.
    garbage_tails: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let disk = MemDisk::new();
        let store = open(&disk, seed, &[]);
        Sim {
            seed,
            rng: Rng(seed),
            disk,
            store,
            acked: Model::default(),
            term: 1,
            trail: Vec::new(),
            seen: Seen::default(),
        }
    }

    fn note(&mut self, op: String) {
        if self.trail.len() == TRAIL_LEN {
            self.trail.remove(0);
        }
        self.trail.push(op);
    }

    /// Runs one operation; with `faulty`, an I/O fault is armed first.
    /// Returns the model had the operation succeeded, and whether it did.
    fn operate(&mut self, faulty: bool) -> (Model, bool) {
        let mut next = self.acked.clone();
        if faulty {
            let errno = if self.rng.chance(50) {
                libc::EIO
            } else {
                libc::ENOSPC
            };
            self.disk
                .fail_after(self.rng.below(FAULT_AFTER_OPS_MAX), errno);
        }
        let pick = self.rng.below(100);
        let unpurged = self.acked.unpurged(self.acked.purged);
        let result = if pick < 55 || unpurged.is_empty() {
            let from = next.next_index();
            let count = 1 + self.rng.below(APPEND_ENTRIES_MAX);
            self.note(format!(
                "append {from}..{} term {}",
                from + count,
                self.term
            ));
            let batch: Vec<_> = (from..from + count).map(|i| entry(self.term, i)).collect();
            next.entries
                .extend((from..from + count).map(|i| (self.term, i)));
            block_on(self.store.append_durably(batch))
        } else if pick < 70 {
            // Raft truncates only an uncommitted tail, to make room for a
            // newer leader's entries: the term moves on.
            let (term, index) = unpurged[self.rng.below(unpurged.len() as u64) as usize];
            self.note(format!("truncate after {index}"));
            next.entries.retain(|(_, i)| *i <= index);
            self.term += 1;
            block_on(
                self.store
                    .truncate_after_durably(Some(&log_id(term, index))),
            )
        } else if pick < 85 {
            let (term, index) = unpurged[self.rng.below(unpurged.len() as u64) as usize];
            self.note(format!("purge up to {index}"));
            next.purged = Some(index);
            block_on(self.store.purge_durably(&log_id(term, index)))
        } else {
            self.term += 1;
            let vote = Vote::new(self.term, 1 + self.rng.below(3));
            self.note(format!("vote {vote:?}"));
            let saved = block_on(self.store.save_vote_durably(&vote));
            next.vote = Some(vote);
            saved
        };
        self.disk.clear_faults();
        if let Err(e) = &result {
            assert!(
                faulty,
                "seed {}: {e} with no fault armed; last ops {:?}",
                self.seed, self.trail
            );
        }
        (next, result.is_ok())
    }

    /// Loses power (or the process) in one of several ways, maybe with
    /// garbage appended to the log's tail, then reopens and checks.
    fn crash_and_check(&mut self, in_flight: &Model) {
        match self.rng.below(3) {
            0 => {
                self.note("crash".into());
                self.disk.crash();
            }
            1 => {
                let keep = self.rng.below(2 * GARBAGE_BYTES_MAX as u64) as usize;
                self.note(format!("power loss keeping {keep} unsynced bytes"));
                self.disk.crash_tearing(keep);
            }
            _ => {
                let mut rng = Rng(self.rng.next());
                self.note("power loss keeping random blocks".into());
                self.disk.crash_blocks(|_, _| rng.chance(50));
            }
        }
        let log_path = dir().join(LOG_FILE_NAME);
        if self.rng.chance(40) {
            let len = 1 + self.rng.below(GARBAGE_BYTES_MAX as u64) as usize;
            let mut bytes = self.disk.contents(&log_path).unwrap_or_default();
            let before = bytes.len();
            bytes.extend((0..len).map(|_| self.rng.next() as u8));
            self.note(format!("{len} garbage bytes after {before}"));
            self.seen.garbage_tails += 1;
            self.disk.set_contents(&log_path, &bytes);
        }
        self.store = open(&self.disk, self.seed, &self.trail);
        let got = ids(&self.store);
        let purged = self
            .store
            .log_state()
            .last_purged_log_id
            .map(|id| id.index());
        let context = || format!("seed {}: last ops {:?}", self.seed, self.trail);
        for pair in got.windows(2) {
            assert_eq!(pair[1].1, pair[0].1 + 1, "hole in {got:?}; {}", context());
            assert!(
                pair[1].0 >= pair[0].0,
                "term goes back in {got:?}; {}",
                context()
            );
        }
        let acked = self.acked.unpurged(purged);
        let maybe = in_flight.unpurged(purged);
        assert!(
            purged == self.acked.purged || purged == in_flight.purged,
            "purged up to {purged:?}, acknowledged {:?}, in flight {:?}; {}",
            self.acked.purged,
            in_flight.purged,
            context()
        );
        // A failed append may have left any whole prefix of its entries
        // (and a failed truncation none or all of its cut): the log lies
        // between the acknowledged one and the in-flight one.
        let (short, long) = match acked.len() <= maybe.len() {
            true => (&acked, &maybe),
            false => (&maybe, &acked),
        };
        assert!(
            got.starts_with(short) && long.starts_with(&got),
            "got {got:?}, acknowledged {acked:?}, in flight {maybe:?}; {}",
            context()
        );
        if got.len() > short.len() && got.len() < long.len() {
            self.seen.partial_appends += 1;
        }
        let vote = block_on(self.store.reader().read_vote()).expect("read vote");
        assert!(
            vote == self.acked.vote || vote == in_flight.vote,
            "vote {vote:?}, acknowledged {:?}; {}",
            self.acked.vote,
            context()
        );
        // What recovery kept is now the acknowledged state.
        self.acked = Model {
            entries: got.clone(),
            purged,
            vote,
        };
        if let Some(&(term, _)) = got.last() {
            self.term = self.term.max(term);
        }
    }

    fn run(&mut self) -> Seen {
        for _ in 0..STEPS_PER_SEED {
            let faulty = self.rng.chance(15);
            let (next, ok) = self.operate(faulty);
            self.seen.failed_ops += u64::from(!ok);
            if ok {
                self.acked = next.clone();
            }
            // A failed operation poisons the store: only a restart helps.
            if !ok || self.rng.chance(15) {
                self.crash_and_check(&next);
            }
        }
        // The survivor takes appends, and they survive a crash.
        let from = self.acked.next_index();
        let batch = vec![entry(self.term, from), entry(self.term, from + 1)];
        block_on(self.store.append_durably(batch)).expect("append after recovery");
        self.acked
            .entries
            .extend([(self.term, from), (self.term, from + 1)]);
        let acked = self.acked.clone();
        self.crash_and_check(&acked);
        self.seen
    }
}

fn open(disk: &MemDisk, seed: u64, trail: &[String]) -> RaftLogStore<MemDisk> {
    block_on(RaftLogStore::open(disk.clone(), &dir()))
        .unwrap_or_else(|e| panic!("seed {seed}: open after recovery: {e}; last ops {trail:?}"))
}

fn ids(store: &RaftLogStore<MemDisk>) -> Vec<(u64, u64)> {
    let mut reader = store.reader();
    let all = block_on(reader.try_get_log_entries(..)).expect("read");
    all.iter()
        .map(|e| (e.log_id().committed_leader_id().term, e.index()))
        .collect()
}

fn seeds() -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match var("CORESTREAM_RAFT_SIM_SEED") {
        Some(seed) => seed..seed + 1,
        None => 0..var("CORESTREAM_RAFT_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT),
    }
}

#[test]
fn raft_log_sim_keeps_every_acknowledged_entry_through_faults_and_crashes() {
    let mut total = Seen::default();
    for seed in seeds() {
        let seen = Sim::new(seed).run();
        total.failed_ops += seen.failed_ops;
        total.partial_appends += seen.partial_appends;
        total.garbage_tails += seen.garbage_tails;
    }
    // The default seeds reach every kind of damage (a single replayed seed
    // need not).
    if seeds().count() as u64 >= SEEDS_DEFAULT {
        assert!(
            total.failed_ops > 0 && total.partial_appends > 0 && total.garbage_tails > 0,
            "{total:?}"
        );
    }
}

/// Garbage after the last whole entry (someone else's bytes, a frame
/// half-written by a crashed process) is cut at open; every entry before
/// it stays, and appends go on after them.
#[test]
fn raft_log_garbage_appended_after_entries_is_cut_and_entries_kept() {
    for (seed, len) in [(1u64, 1usize), (2, 7), (3, 100), (4, 4096), (5, 5000)] {
        let disk = MemDisk::new();
        let mut store = open(&disk, seed, &[]);
        block_on(store.append_durably((0..6).map(|i| entry(1, i)).collect::<Vec<_>>()))
            .expect("append");
        drop(store);
        let log_path = dir().join(LOG_FILE_NAME);
        let mut bytes = disk.contents(&log_path).expect("log file");
        let mut rng = Rng(seed);
        bytes.extend((0..len).map(|_| rng.next() as u8));
        disk.set_contents(&log_path, &bytes);
        let mut store = open(&disk, seed, &[]);
        let want: Vec<_> = (0..6).map(|i| (1, i)).collect();
        assert_eq!(ids(&store), want, "{len} garbage bytes");
        block_on(store.append_durably(vec![entry(2, 6)])).expect("append after the cut");
        drop(store);
        disk.crash();
        let store = open(&disk, seed, &[]);
        assert_eq!(ids(&store).last(), Some(&(2, 6)), "{len} garbage bytes");
    }
}
