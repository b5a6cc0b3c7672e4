//! Log housekeeping on the owner shard: retention, compaction, and the
//! DeleteRecords entry point.
//!
//! Each shard runs one housekeeping task in its own glommio task queue
//! ([`HOUSEKEEPING_SHARES`] shares, `Latency::NotImportant`), so the
//! scheduler gives produce and fetch (the default queue) the CPU first and
//! housekeeping only what is left; its disk I/O goes through the same
//! io_uring but the cleaner is paced to `log.cleaner.io.max.bytes.per.second`.
//! Every `log.retention.check.interval.ms` it walks the partitions this
//! shard owns, reading each topic's config from the current snapshot (so a
//! config change applies at the next pass, without a restart):
//! - `cleanup.policy` contains `delete`: `enforce_retention` (time, size);
//! - contains `compact`: one compaction pass if the dirty ratio asks;
//! - the producer-state snapshot, if the log moved since the last one.
//!
//! Errors are logged and retried at the next pass; they do not take the
//! partition offline (the cleaner never changes data that is not
//! superseded, and retention only removes what is below the durable log
//! start), whereas a failed append or flush does.

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{Latency, Shares};
use kafka_protocol::ResponseError;
use tracing::{debug, info, warn};

use super::partition::{CleanerView, Partition};
use super::Shard;
use crate::metadata::{LogDefaults, PartitionId, TopicConfig, TopicMeta};
use crate::storage::{CompactionPolicy, IoPacer, LogConfig, RetentionPolicy, StorageError};

/// CPU shares of the housekeeping queue; the default queue has 1000, so
/// under contention housekeeping gets about 1/11 of the core.
pub const HOUSEKEEPING_SHARES: usize = 100;

/// The log settings of a topic's partitions under the broker's effective
/// log `defaults`.
pub(crate) fn log_config(defaults: &LogDefaults, topic: &TopicMeta) -> LogConfig {
    let topic = topic.config(defaults);
    LogConfig {
        segment_bytes: topic.segment_bytes,
        index_interval_bytes: topic.index_interval_bytes,
        segment_ms: topic.segment_ms,
        ..LogConfig::default()
    }
}

/// Wall-clock now, in ms since the epoch (Kafka timestamps): the clock
/// seam's wall time, under the name the shard's callers know.
pub use crate::clock::wall_ms as now_ms;

/// Starts this shard's housekeeping task in its low-priority queue.
pub(crate) fn spawn(shard: Rc<Shard>) {
    let queue = glommio::executor().create_task_queue(
        Shares::Static(HOUSEKEEPING_SHARES),
        Latency::NotImportant,
        "housekeeping",
    );
    let task = glommio::spawn_local_into(run(shard), queue);
    match task {
        Ok(task) => {
            task.detach();
        }
        Err(e) => warn!("housekeeping task not started: {e}"),
    }
}

async fn run(shard: Rc<Shard>) {
    // The check interval is static (read-only in Kafka too); the cleaner's
    // I/O budget and the topic defaults are read from each pass's snapshot.
    let interval = Duration::from_millis(shard.config.log_defaults.retention_check_interval_ms);
    let mut budget = shard.snapshot().log_defaults.cleaner_io_bytes_per_second;
    let mut pacer = BudgetPacer::new(budget);
    loop {
        glommio::timer::sleep(interval).await;
        let snapshot = shard.snapshot();
        if snapshot.log_defaults.cleaner_io_bytes_per_second != budget {
            budget = snapshot.log_defaults.cleaner_io_bytes_per_second;
            pacer = BudgetPacer::new(budget);
        }
        let partitions: Vec<Rc<Partition>> = shard.partitions.borrow().values().cloned().collect();
        for partition in partitions {
            let Some(topic) = shard.snapshot().topic(&partition.id.topic).cloned() else {
                continue;
            };
            let config = topic.config(&shard.snapshot().log_defaults);
            housekeep(&partition, &config, &mut pacer).await;
        }
    }
}

/// One partition's pass.
async fn housekeep(partition: &Partition, config: &TopicConfig, pacer: &mut BudgetPacer) {
    let id = &partition.id;
    let now = now_ms();
    partition.snapshot_producers().await;
    if config.cleanup_delete && (config.retention_ms >= 0 || config.retention_bytes >= 0) {
        let policy = RetentionPolicy {
            retention_ms: config.retention_ms,
            retention_bytes: config.retention_bytes,
        };
        match partition.log.enforce_retention(now, policy).await {
            Ok(r) if r.segments > 0 => {
                partition.prune_aborted_index();
                info!(partition = %id, segments = r.segments, bytes = r.bytes,
                log_start = partition.log.log_start_offset(), "retention deleted segments")
            }
            Ok(_) => {}
            Err(e) => log_failure(id, "retention", e),
        }
    }
    if config.cleanup_compact {
        let policy = CompactionPolicy {
            delete_retention_ms: config.delete_retention_ms,
            min_compaction_lag_ms: config.min_compaction_lag_ms,
            max_compaction_lag_ms: config.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: config.min_cleanable_dirty_ratio,
        };
        let started = std::time::Instant::now();
        let txns = CleanerView(partition);
        match partition.log.compact(now, &policy, &txns, pacer).await {
            Ok(Some(s)) if s.segments_rewritten > 0 => {
                partition.forget_cached_tail();
                // bytes_scanned and elapsed_us give the cleaner's throughput
                // (bench/housekeeping_latency.py reads this line).
                info!(partition = %id, segments = s.segments_cleaned,
                rewritten = s.segments_rewritten, removed = s.records_removed,
                bytes_scanned = s.bytes_scanned, bytes_before = s.bytes_before,
                bytes_after = s.bytes_after, elapsed_us = started.elapsed().as_micros() as u64,
                "compacted")
            }
            Ok(_) => {}
            Err(e) => log_failure(id, "compaction", e),
        }
    }
}

fn log_failure(id: &PartitionId, what: &str, e: StorageError) {
    match e {
        // Closed or offline: the partition's own error path reported it.
        StorageError::Failed { .. } => debug!(partition = %id, "{what} skipped: {e}"),
        e => warn!(partition = %id, "{what} failed, retried next pass: {e}"),
    }
}

/// Keeps cleaner I/O within a bytes/s budget by sleeping.
struct BudgetPacer {
    bytes_per_second: u64,
    window_start: Instant,
    window_bytes: u64,
}

/// Length of the pacer's accounting window: its budget resets after this.
const PACER_WINDOW: Duration = Duration::from_secs(1);

impl BudgetPacer {
    fn new(bytes_per_second: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }
}

impl IoPacer for BudgetPacer {
    async fn pace(&mut self, bytes: u64) {
        if self.window_start.elapsed() >= PACER_WINDOW {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        self.window_bytes += bytes;
        let due = Duration::from_secs_f64(self.window_bytes as f64 / self.bytes_per_second as f64);
        let elapsed = self.window_start.elapsed();
        if due > elapsed {
            glommio::timer::sleep(due - elapsed).await;
        } else {
            glommio::yield_if_needed().await;
        }
    }
}

impl Shard {
    /// DeleteRecords on one partition, run on its owner: moves the log
    /// start to `offset` (-1: the high watermark). Returns the new low
    /// watermark or a Kafka error code.
    pub async fn delete_records(self: &Rc<Self>, id: PartitionId, offset: i64) -> Result<i64, i16> {
        let owner = self.snapshot().serving_shard(&id.topic, id.partition)?;
        let answer = self
            .run_on(owner, move |shard| async move {
                let Some(partition) = shard.local_partition(&id) else {
                    return Err(ResponseError::UnknownTopicOrPartition.code());
                };
                match partition.log.delete_records(offset).await {
                    Ok(low_watermark) => {
                        partition.prune_aborted_index();
                        Ok(low_watermark)
                    }
                    Err(StorageError::OffsetOutOfRange { .. }) => {
                        Err(ResponseError::OffsetOutOfRange.code())
                    }
                    Err(e) => {
                        warn!(partition = %id, "delete records failed: {e}");
                        Err(ResponseError::KafkaStorageError.code())
                    }
                }
            })
            .await;
        answer.unwrap_or(Err(ResponseError::NotLeaderOrFollower.code()))
    }
}
