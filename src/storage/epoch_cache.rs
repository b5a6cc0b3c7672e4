//! [`LeaderEpochCache`]: which leader epoch wrote which offsets of a
//! partition (Kafka's `LeaderEpochFileCache`), and its file,
//! `leader-epoch-checkpoint`.
//!
//! Entries are `(epoch, start_offset)`: the first offset written under
//! that epoch. Both columns strictly increase. The cache answers the two
//! questions replication asks (KIP-101, KIP-279, KIP-595):
//! OffsetsForLeaderEpoch (`end_offset_for`: where did epoch `e` end?) and
//! Fetch's DivergingEpoch (`diverging`: does a follower's last fetched
//! epoch and offset agree with this log?).
//!
//! File format, Kafka's, so operators and tools recognise it:
//!
//! ```text
//! 0                  version
//! 2                  number of entries
//! 0 0                epoch start_offset
//! 3 150
//! ```
//!
//! Decisions:
//! - Entries are added only for a batch whose epoch is *higher* than the
//!   latest one (negative epochs, written by clients before the broker
//!   stamped batches, are ignored). A log's epochs never go down, so a
//!   lower one is a stale batch, not a new leader.
//! - The in-memory cache is the truth; the file may be *ahead* of the
//!   durable log (entries for data not yet durable: `flush` writes the file
//!   before the data), never behind it. Recovery trims entries at or past
//!   the recovered end (`truncate_from_end`) and below the log start
//!   (`truncate_from_start`), and rebuilds from the batches' headers when
//!   the file is missing, unreadable, or older than the log's last batch.
//! - `end_offset_for` below the first known epoch answers the requested
//!   epoch and the first entry's start offset, as Kafka does: the data
//!   before it is gone, and the follower should start from there.

/// Name of the cache file inside the partition directory (Kafka's).
pub const LEADER_EPOCH_FILE_NAME: &str = "leader-epoch-checkpoint";
/// Format version of the file (Kafka's `CURRENT_VERSION`).
const LEADER_EPOCH_FILE_VERSION: u32 = 0;
/// Epoch and offset Kafka answers when nothing is known
/// (`UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// See [`UNDEFINED_EPOCH`].
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One entry: `epoch` started writing at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch (>= 0).
    pub epoch: i32,
    /// First offset written under it.
    pub start_offset: i64,
}

/// What a follower's `(last_fetched_epoch, fetch_offset)` says about its
/// log compared with this one (Fetch v12+, KIP-595).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// The follower's log is a prefix of this one up to `fetch_offset`.
    Consistent,
    /// The follower must truncate: this log's `epoch` (the largest one
    /// `<=` the follower's) ends at `end_offset`. Fetch answers it as
    /// `diverging_epoch` with no records.
    Diverging {
        /// Largest epoch here that is `<=` the last fetched epoch.
        epoch: i32,
        /// Where that epoch ends here.
        end_offset: i64,
    },
    /// Nothing here says where the epoch ends (empty cache, or an epoch
    /// above every known one): Kafka answers OFFSET_OUT_OF_RANGE.
    Unknown,
}

/// The leader-epoch cache of one partition. See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    /// Epochs and start offsets, both strictly increasing.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache holding `entries` (must be strictly increasing in both).
    pub fn from_entries(entries: Vec<EpochEntry>) -> Option<Self> {
        let increasing = entries
            .windows(2)
            .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
        let valid = entries.iter().all(|e| e.epoch >= 0 && e.start_offset >= 0);
        (increasing && valid).then_some(Self { entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any is known.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that a batch of `epoch` starts at `start_offset`; a new
    /// entry only if the epoch is higher than the latest one (and >= 0).
    /// Returns whether the cache changed.
    pub fn observe(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return false;
        }
        // A log's offsets only grow, so an entry at or past the new start
        // can only be a leftover of data truncated without the cache
        // being told; Kafka drops those too (non-monotonic entries).
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < start_offset);
        self.entries.truncate(keep);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// OffsetsForLeaderEpoch: `(epoch, end_offset)` for `requested`, with
    /// `log_end_offset` the end of this log. Kafka's
    /// `LeaderEpochFileCache.endOffsetFor`:
    /// - the latest epoch ends at the log end;
    /// - an older known epoch ends where the next higher one starts, and
    ///   the answer names the largest epoch `<= requested`;
    /// - below every entry: `(requested, first start offset)`;
    /// - otherwise (empty cache, above the latest, -1): `(-1, -1)`.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        const UNKNOWN: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return UNKNOWN;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return UNKNOWN;
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => (floor.epoch, next.start_offset),
            None => (requested, next.start_offset),
        }
    }

    /// Fetch v12+ DivergingEpoch check, as Kafka's leader makes it: the
    /// follower's log is consistent if this log's answer for
    /// `last_fetched_epoch` is that same epoch ending at or after
    /// `fetch_offset`.
    pub fn diverging(
        &self,
        last_fetched_epoch: i32,
        fetch_offset: i64,
        log_end_offset: i64,
    ) -> Divergence {
        let (epoch, end_offset) = self.end_offset_for(last_fetched_epoch, log_end_offset);
        if epoch == UNDEFINED_EPOCH || end_offset == UNDEFINED_EPOCH_OFFSET {
            return Divergence::Unknown;
        }
        if epoch < last_fetched_epoch || end_offset < fetch_offset {
            return Divergence::Diverging { epoch, end_offset };
        }
        Divergence::Consistent
    }

    /// Drops every entry starting at or after `end_offset` (the log was
    /// cut there). Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log start moved to `start_offset`: entries wholly below it go,
    /// and the one covering it now starts there (Kafka's
    /// `truncateFromStart`). Returns whether the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covered = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(covering) = covered.checked_sub(1) else {
            return false;
        };
        let changed = covering > 0 || self.entries[covering].start_offset != start_offset;
        self.entries.drain(..covering);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// The file's bytes (Kafka's text format).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{LEADER_EPOCH_FILE_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        text.into_bytes()
    }

    /// Parses the file; `None` if it is not a well-formed file of this
    /// version with strictly increasing entries.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let version: u32 = lines.next()?.trim().parse().ok()?;
        if version != LEADER_EPOCH_FILE_VERSION {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut entries = Vec::with_capacity(count.min(bytes.len()));
        for line in lines.by_ref().take(count) {
            let mut fields = line.split_whitespace();
            let epoch = fields.next()?.parse().ok()?;
            let start_offset = fields.next()?.parse().ok()?;
            if fields.next().is_some() {
                return None;
            }
            entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        let trailing = lines.any(|l| !l.trim().is_empty());
        if entries.len() != count || trailing {
            return None;
        }
        Self::from_entries(entries)
    }
}

#[cfg(test)]
#[path = "epoch_cache_tests.rs"]
mod tests;
