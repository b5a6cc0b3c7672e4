//! Consumer lag: per partition, the group's committed offset, the log end
//! offset (high watermark) and their difference. Used by the admin CLI and
//! metrics; callable from any shard.

use std::rc::Rc;

use super::on_coordinator;
use crate::metadata::PartitionId;
use crate::shard::{PartitionOp, PartitionReply, Shard};

/// Lag of one partition for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed_offset: i64,
    /// High watermark; -1 if the partition is gone or offline.
    pub log_end_offset: i64,
    /// `log_end_offset - committed_offset`, at least 0; -1 if unknown.
    pub lag: i64,
    /// When the offset was committed, ms since the epoch.
    pub commit_timestamp_ms: i64,
}

/// The lag of every partition `group_id` has an offset for, sorted by
/// topic and partition. Errors are Kafka codes (e.g. COORDINATOR_NOT_AVAILABLE).
pub async fn group_lag(shard: &Rc<Shard>, group_id: &str) -> Result<Vec<PartitionLag>, i16> {
    let group = group_id.to_string();
    let committed = on_coordinator(shard, group_id, move |shard, partition| async move {
        shard.groups.committed(&shard, partition, &group).await
    })
    .await??;
    let mut out = Vec::with_capacity(committed.len());
    for ((topic, partition), value) in committed {
        let id = PartitionId {
            topic: topic.as_str().into(),
            partition,
        };
        let end = match shard
            .call_partition(
                id,
                PartitionOp::ListOffset {
                    timestamp: -1,
                    committed: false,
                },
            )
            .await
        {
            PartitionReply::Offset { offset, .. } => offset,
            _ => -1,
        };
        out.push(PartitionLag {
            topic,
            partition,
            committed_offset: value.offset,
            log_end_offset: end,
            lag: if end < 0 {
                -1
            } else {
                (end - value.offset).max(0)
            },
            commit_timestamp_ms: value.commit_timestamp_ms,
        });
    }
    Ok(out)
}

/// Burrow-style status of one group partition (see docs/LAG_STATUS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionStatus {
    /// Caught up, or lag shrinking.
    Ok,
    /// Committing, but lag never shrinks over the window.
    Warning,
    /// Committed offset not moving over the window while lag stays or grows.
    Stalled,
    /// No commit for longer than the window spans, with lag.
    Stopped,
}

impl PartitionStatus {
    /// The name the lag API prints.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionStatus::Ok => "OK",
            PartitionStatus::Warning => "WARNING",
            PartitionStatus::Stalled => "STALLED",
            PartitionStatus::Stopped => "STOPPED",
        }
    }
}

/// A group's status: the worst of its partitions (STALLED/STOPPED → ERROR).
pub fn group_status(partitions: impl IntoIterator<Item = PartitionStatus>) -> &'static str {
    let mut worst = "OK";
    for p in partitions {
        match p {
            PartitionStatus::Stalled | PartitionStatus::Stopped => return "ERROR",
            PartitionStatus::Warning => worst = "WARNING",
            PartitionStatus::Ok => {}
        }
    }
    worst
}

/// Default commits kept per group partition (`lag_window_commits`;
/// Burrow's `intervals`).
pub const LAG_WINDOW_COMMITS_DEFAULT: usize = 10;
/// Fewest commits a window may keep: the rules compare two of them.
pub const LAG_WINDOW_COMMITS_MIN: usize = 2;
/// Most commits a window may keep (memory per group partition).
pub const LAG_WINDOW_COMMITS_MAX: usize = 1_000;
/// Default of `lag_stopped_after_ms`: a partition is STOPPED only after at
/// least this long without a commit, however short the window spans.
pub const LAG_STOPPED_AFTER_MS_DEFAULT: u64 = 60_000;

const _: () = assert!(LAG_WINDOW_COMMITS_MIN <= LAG_WINDOW_COMMITS_DEFAULT);
const _: () = assert!(LAG_WINDOW_COMMITS_DEFAULT <= LAG_WINDOW_COMMITS_MAX);

/// The tunable part of the rules (broker config keys `lag_window_commits`
/// and `lag_stopped_after_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagRules {
    /// Commits kept per group partition.
    pub window_commits: usize,
    /// Shortest time without a commit that can make a partition STOPPED, ms.
    pub stopped_after_ms: i64,
}

impl Default for LagRules {
    fn default() -> Self {
        LagRules {
            window_commits: LAG_WINDOW_COMMITS_DEFAULT,
            stopped_after_ms: LAG_STOPPED_AFTER_MS_DEFAULT as i64,
        }
    }
}

/// One commit as observed: its offset, timestamp and the lag when seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSample {
    /// Committed offset.
    pub offset: i64,
    /// Commit timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// Lag when observed (>= 0).
    pub lag: i64,
}

/// The last `window_commits` distinct commits of one group partition.
#[derive(Debug, Clone, Default)]
pub struct LagWindow {
    samples: std::collections::VecDeque<CommitSample>,
}

impl LagWindow {
    /// Records an observation: a new commit (new timestamp or offset) is
    /// appended; the same commit seen again only updates its lag. An offset
    /// moving backwards (a reset) restarts the window.
    pub fn observe(&mut self, sample: CommitSample, window_commits: usize) {
        match self.samples.back_mut() {
            Some(last) if sample.offset < last.offset => self.samples.clear(),
            Some(last)
                if last.offset == sample.offset && last.timestamp_ms == sample.timestamp_ms =>
            {
                last.lag = sample.lag;
                return;
            }
            _ => {}
        }
        self.samples.push_back(sample);
        while self.samples.len() > window_commits.max(LAG_WINDOW_COMMITS_MIN) {
            self.samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &CommitSample> {
        self.samples.iter()
    }

    /// Evaluates the rules at `now_ms` given the partition's lag now.
    pub fn status(&self, now_ms: i64, lag_now: i64, rules: &LagRules) -> PartitionStatus {
        let window: Vec<CommitSample> = self.samples.iter().copied().collect();
        evaluate(&window, now_ms, lag_now, rules.stopped_after_ms)
    }
}

/// Burrow's rules over `window` (oldest first), in order:
/// 1. lag now is 0 → OK;
/// 2. no commit for longer than the window spans (and at least
///    `stopped_after_ms`) → STOPPED;
/// 3. any lag in the window is 0, or fewer than 2 commits → OK;
/// 4. offset unchanged across the window, lag never shrinking → STALLED;
/// 5. offset moving but lag never shrinking in any interval → WARNING;
/// 6. otherwise OK.
pub fn evaluate(
    window: &[CommitSample],
    now_ms: i64,
    lag_now: i64,
    stopped_after_ms: i64,
) -> PartitionStatus {
    if lag_now <= 0 {
        return PartitionStatus::Ok;
    }
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return PartitionStatus::Ok;
    };
    let span = last.timestamp_ms - first.timestamp_ms;
    if now_ms - last.timestamp_ms > span.max(stopped_after_ms) {
        return PartitionStatus::Stopped;
    }
    if window.len() < 2 || window.iter().any(|s| s.lag == 0) {
        return PartitionStatus::Ok;
    }
    let never_shrinks = window.windows(2).all(|w| w[1].lag >= w[0].lag);
    if !never_shrinks {
        return PartitionStatus::Ok;
    }
    if first.offset == last.offset {
        PartitionStatus::Stalled
    } else {
        PartitionStatus::Warning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: i64 = LAG_STOPPED_AFTER_MS_DEFAULT as i64;

    fn s(offset: i64, timestamp_ms: i64, lag: i64) -> CommitSample {
        CommitSample {
            offset,
            timestamp_ms,
            lag,
        }
    }

    #[test]
    fn lag_status_rules() {
        use PartitionStatus::*;
        let keeping_up = [s(10, 0, 5), s(20, 1_000, 3), s(30, 2_000, 4)];
        assert_eq!(evaluate(&keeping_up, 2_500, 4, STOP), Ok);
        assert_eq!(evaluate(&keeping_up, 2_500, 0, STOP), Ok);
        // committing, lag growing every interval
        let falling_behind = [s(10, 0, 5), s(20, 1_000, 8), s(30, 2_000, 12)];
        assert_eq!(evaluate(&falling_behind, 2_500, 12, STOP), Warning);
        // a zero lag anywhere in the window: OK
        let caught_up_once = [s(10, 0, 0), s(20, 1_000, 8), s(30, 2_000, 12)];
        assert_eq!(evaluate(&caught_up_once, 2_500, 12, STOP), Ok);
        // committing the same offset while lag grows
        let stalled = [s(10, 0, 5), s(10, 1_000, 5), s(10, 2_000, 9)];
        assert_eq!(evaluate(&stalled, 2_500, 9, STOP), Stalled);
        // no commit for longer than the window spans (and the minimum)
        let late = 2_000 + STOP + 1;
        assert_eq!(evaluate(&keeping_up, late, 4, STOP), Stopped);
        assert_eq!(evaluate(&keeping_up, late, 0, STOP), Ok);
        assert_eq!(evaluate(&[s(10, 0, 3)], STOP + 1, 7, STOP), Stopped);
        assert_eq!(evaluate(&[s(10, 0, 3)], 1_000, 7, STOP), Ok);
        assert_eq!(evaluate(&[], 1_000, 7, STOP), Ok);
        assert_eq!(group_status([Ok, Warning]), "WARNING");
        assert_eq!(group_status([Warning, Stopped, Ok]), "ERROR");
        assert_eq!(group_status([Ok, Ok]), "OK");
    }

    #[test]
    fn lag_window_dedups_slides_and_restarts_on_rewind() {
        const N: usize = LAG_WINDOW_COMMITS_DEFAULT;
        let mut w = LagWindow::default();
        w.observe(s(10, 0, 5), N);
        w.observe(s(10, 0, 7), N); // same commit seen again: lag updated
        assert_eq!(w.samples().copied().collect::<Vec<_>>(), vec![s(10, 0, 7)]);
        for i in 1..=20 {
            w.observe(s(10 + i, i * 1_000, 5), N);
        }
        assert_eq!(w.samples().count(), N);
        assert_eq!(w.samples().next().unwrap().offset, 21);
        w.observe(s(0, 30_000, 30), N); // reset-offsets to earliest
        assert_eq!(w.samples().count(), 1);
    }

    #[test]
    fn lag_status_stopped_consumer_is_error_after_configured_time() {
        // Burrow's "stopped" case: the consumer committed for 2 s, then
        // stopped while producers go on; lag grows, the offset stays.
        let rules = LagRules {
            window_commits: 10,
            stopped_after_ms: 1_000,
        };
        let mut w = LagWindow::default();
        for (i, offset) in [10, 20, 30].into_iter().enumerate() {
            w.observe(s(offset, i as i64 * 1_000, 0), rules.window_commits);
        }
        assert_eq!(w.status(2_500, 4, &rules), PartitionStatus::Ok);
        // 2.5 s after the last commit: longer than the 2 s span and the 1 s floor
        assert_eq!(w.status(4_500, 40, &rules), PartitionStatus::Stopped);
        assert_eq!(group_status([w.status(4_500, 40, &rules)]), "ERROR");
        // one commit only: the floor alone decides
        let mut one = LagWindow::default();
        one.observe(s(5, 0, 3), rules.window_commits);
        assert_eq!(one.status(900, 9, &rules), PartitionStatus::Ok);
        assert_eq!(one.status(1_100, 9, &rules), PartitionStatus::Stopped);
    }

    #[test]
    fn lag_window_keeps_configured_commit_count() {
        let mut w = LagWindow::default();
        for i in 0..10 {
            w.observe(s(i, i * 1_000, 1), 3);
        }
        assert_eq!(w.samples().count(), 3);
        w.observe(s(11, 11_000, 1), 0); // below the minimum: 2 kept
        assert_eq!(w.samples().count(), LAG_WINDOW_COMMITS_MIN);
    }
}
