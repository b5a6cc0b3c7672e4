//! Test-only crash points: abort the process at a named durable step of
//! compaction or segment deletion (`--fault-abort-at <step>[:<n>]`, env
//! `CORESTREAM_FAULT_ABORT_AT`), or panic there (`--fault-panic-at`, env
//! `CORESTREAM_FAULT_PANIC_AT`).
//!
//! The panic form stands for a bug on a shard thread: it proves the daemon's
//! panic hook (`corestream::ops::fatal`) turns any panic into an abort of
//! the whole process rather than a broker with one dead shard.
//!
//! Why a real abort and not the `MemDisk` seam: the seam tests
//! (`lifecycle_tests.rs`, `tests/sim_storage.rs`) prove the step order on a
//! model of the disk; this hook proves it on the real binary, real files,
//! glommio's O_DIRECT path and the real recovery at the next start. When the
//! named step is reached for the `n`-th time (process-wide, counted over all
//! shards), the hook prints one line on stderr
//! (`corestream fault injection: aborting at step <name> (hit <n>)`) and
//! calls [`std::process::abort`]: no destructors, no flush, no close, so the
//! files are left exactly as a `kill -9` at that instruction would leave
//! them (the page cache survives, as after any process crash; power loss is
//! the simulation's job). The exit is by SIGABRT, so a test can tell the
//! hook's abort from any other death.
//!
//! Cost when off: [`reached`] is one relaxed atomic load and a compare,
//! inlined; the abort path is out of line and `#[cold]`. Armed once at
//! start-up by [`arm`] (the daemon's `main`), never re-armed by a reload.
//!
//! Every step is in [`Step::ALL`] so the integration test
//! (`tests/integration/test_crash_lifecycle.py`) can iterate them; the
//! names are what the flag takes. An unknown name is refused at start-up.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A durable step of compaction or segment deletion where the process may
/// be made to abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Compaction: `<base>.cleaned.tmp` created (and cut to 0).
    CleanedTempCreated,
    /// Compaction: a chunk of the cleaned segment written to the temp file.
    CleanedDataWritten,
    /// Compaction: the temp file cut to its exact length.
    CleanedTempTruncated,
    /// Compaction: the temp file fdatasynced.
    CleanedTempSynced,
    /// Compaction: the segment's `.txnindex` rewritten (or removed) without
    /// the entries of the ABORT markers the cleaned segment drops, before
    /// the swap.
    CleanedTxnIndexWritten,
    /// Compaction: the old segment's `.index` removed.
    OldIndexRemoved,
    /// Compaction: the temp file renamed over `<base>.log`.
    CleanedRenamed,
    /// Compaction: the directory synced after the rename.
    CleanedDirSynced,
    /// Compaction: the new `.timeindex` written.
    CleanedTimeIndexWritten,
    /// Compaction: the new `.index` written.
    CleanedOffsetIndexWritten,
    /// Deletion (retention, DeleteRecords): the new log start written to
    /// `partition.checkpoint`.
    LogStartCheckpointWritten,
    /// Deletion: a segment's `.txnindex` removed (or found absent).
    SegmentTxnIndexRemoved,
    /// Deletion: a segment's `.timeindex` removed.
    SegmentTimeIndexRemoved,
    /// Deletion: a segment's `.index` removed.
    SegmentIndexRemoved,
    /// Deletion: a segment's `.log` removed.
    SegmentLogRemoved,
    /// Deletion: the directory synced after the segments' files went.
    DeletionDirSynced,
}

impl Step {
    /// Every step, in the order a pass reaches them.
    pub const ALL: &'static [Step] = &[
        Step::CleanedTempCreated,
        Step::CleanedDataWritten,
        Step::CleanedTempTruncated,
        Step::CleanedTempSynced,
        Step::CleanedTxnIndexWritten,
        Step::OldIndexRemoved,
        Step::CleanedRenamed,
        Step::CleanedDirSynced,
        Step::CleanedTimeIndexWritten,
        Step::CleanedOffsetIndexWritten,
        Step::LogStartCheckpointWritten,
        Step::SegmentTxnIndexRemoved,
        Step::SegmentTimeIndexRemoved,
        Step::SegmentIndexRemoved,
        Step::SegmentLogRemoved,
        Step::DeletionDirSynced,
    ];

    /// The name the flag takes (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Step::CleanedTempCreated => "cleaned_temp_created",
            Step::CleanedDataWritten => "cleaned_data_written",
            Step::CleanedTempTruncated => "cleaned_temp_truncated",
            Step::CleanedTempSynced => "cleaned_temp_synced",
            Step::CleanedTxnIndexWritten => "cleaned_txnindex_written",
            Step::OldIndexRemoved => "old_index_removed",
            Step::CleanedRenamed => "cleaned_renamed",
            Step::CleanedDirSynced => "cleaned_dir_synced",
            Step::CleanedTimeIndexWritten => "cleaned_time_index_written",
            Step::CleanedOffsetIndexWritten => "cleaned_offset_index_written",
            Step::LogStartCheckpointWritten => "log_start_checkpoint_written",
            Step::SegmentTxnIndexRemoved => "segment_txnindex_removed",
            Step::SegmentTimeIndexRemoved => "segment_timeindex_removed",
            Step::SegmentIndexRemoved => "segment_index_removed",
            Step::SegmentLogRemoved => "segment_log_removed",
            Step::DeletionDirSynced => "deletion_dir_synced",
        }
    }

    /// The step by its name.
    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The deletion step after removing a segment file with `extension`
    /// (one of `SEGMENT_FILES_REMOVAL_ORDER`).
    pub(crate) fn segment_file_removed(extension: &str) -> Step {
        match extension {
            "log" => Step::SegmentLogRemoved,
            "index" => Step::SegmentIndexRemoved,
            "timeindex" => Step::SegmentTimeIndexRemoved,
            _ => Step::SegmentTxnIndexRemoved,
        }
    }

    /// Non-zero code of the step (its position in `ALL` plus one: the
    /// discriminants follow `ALL`, checked by a test).
    #[inline]
    fn code(self) -> u32 {
        self as u32 + 1
    }
}

/// What the armed step does when reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `std::process::abort()` right there (`--fault-abort-at`).
    Abort,
    /// `panic!` on the thread that reached it, as a bug would
    /// (`--fault-panic-at`).
    Panic,
}

/// Where to fail: `step`, the `nth` time it is reached (from 1), with
/// `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortAt {
    /// The step.
    pub step: Step,
    /// Which hit of it aborts (1 = the first).
    pub nth: u64,
    /// Abort or panic.
    pub action: Action,
}

impl AbortAt {
    /// Parses `<step>[:<n>]` for `action`; the error lists the valid step
    /// names.
    pub fn parse(text: &str, action: Action) -> Result<AbortAt, String> {
        let (name, nth) = match text.split_once(':') {
            Some((name, n)) => {
                let nth = n
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("'{n}' is not a hit count (an integer >= 1)"))?;
                (name, nth)
            }
            None => (text, 1),
        };
        let step = Step::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
            format!("unknown step '{name}'; steps: {}", names.join(", "))
        })?;
        Ok(AbortAt { step, nth, action })
    }
}

/// `Step::code()` of the armed step; 0 = off.
static ARMED_STEP: AtomicU32 = AtomicU32::new(0);
/// Which hit of the armed step aborts (for the message).
static ARMED_NTH: AtomicU64 = AtomicU64::new(0);
/// Hits of the armed step so far.
static HITS: AtomicU64 = AtomicU64::new(0);
/// The armed step panics instead of aborting.
static PANICS: AtomicBool = AtomicBool::new(false);

/// Arms the hook for the whole process (`None` leaves it off).
pub fn arm(at: Option<AbortAt>) {
    let Some(at) = at else { return };
    ARMED_NTH.store(at.nth, Ordering::Relaxed);
    PANICS.store(at.action == Action::Panic, Ordering::Relaxed);
    ARMED_STEP.store(at.step.code(), Ordering::Relaxed);
    tracing::warn!(
        step = at.step.name(),
        nth = at.nth,
        action = ?at.action,
        "fault injection armed: the process fails at this step"
    );
}

/// Marks `step` as done; aborts the process if it is the armed step's
/// chosen hit.
#[inline]
pub(crate) fn reached(step: Step) {
    if ARMED_STEP.load(Ordering::Relaxed) == step.code() {
        hit(step);
    }
}

#[cold]
#[inline(never)]
fn hit(step: Step) {
    let nth = ARMED_NTH.load(Ordering::Relaxed);
    let hits = HITS.fetch_add(1, Ordering::Relaxed) + 1;
    if hits != nth {
        return;
    }
    if PANICS.load(Ordering::Relaxed) {
        panic!(
            "corestream fault injection: panicking at step {} (hit {hits})",
            step.name()
        );
    }
    // stderr is unbuffered: the line is out before the abort. (A tracing
    // event could sit in the journald or fmt layer's buffer.)
    eprintln!(
        "corestream fault injection: aborting at step {} (hit {hits})",
        step.name()
    );
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_step_in_order() {
        for (i, step) in Step::ALL.iter().enumerate() {
            assert_eq!(step.code(), i as u32 + 1, "{step:?} is out of order in ALL");
            assert_eq!(Step::from_name(step.name()), Some(*step));
        }
    }

    #[test]
    fn abort_at_parses_step_and_hit_count() {
        let at = AbortAt::parse("cleaned_renamed", Action::Abort).unwrap();
        assert_eq!(
            at,
            AbortAt {
                step: Step::CleanedRenamed,
                nth: 1,
                action: Action::Abort
            }
        );
        let at = AbortAt::parse("segment_log_removed:3", Action::Panic).unwrap();
        assert_eq!(
            at,
            AbortAt {
                step: Step::SegmentLogRemoved,
                nth: 3,
                action: Action::Panic
            }
        );
    }

    #[test]
    fn abort_at_refuses_unknown_steps_and_bad_counts() {
        let err = AbortAt::parse("cleaned_renamd", Action::Abort).unwrap_err();
        assert!(err.contains("unknown step 'cleaned_renamd'"), "{err}");
        assert!(
            err.contains("cleaned_renamed"),
            "lists the valid names: {err}"
        );
        assert!(AbortAt::parse("cleaned_renamed:0", Action::Abort).is_err());
        assert!(AbortAt::parse("cleaned_renamed:x", Action::Panic).is_err());
    }

    #[test]
    fn segment_file_steps_cover_the_removal_order() {
        let steps: Vec<Step> = super::super::segment::SEGMENT_FILES_REMOVAL_ORDER
            .iter()
            .map(|e| Step::segment_file_removed(e))
            .collect();
        assert_eq!(
            steps,
            [
                Step::SegmentTxnIndexRemoved,
                Step::SegmentTimeIndexRemoved,
                Step::SegmentIndexRemoved,
                Step::SegmentLogRemoved
            ]
        );
    }

    #[test]
    fn reached_does_nothing_when_off() {
        for step in Step::ALL {
            reached(*step); // the test process must survive
        }
    }
}
