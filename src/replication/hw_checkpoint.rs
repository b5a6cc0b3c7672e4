//! The shard's side of the high-watermark checkpoint
//! (`storage::hw_checkpoint` has the file and the reasons): read once
//! before the shard opens its first partitions, written every
//! [`HW_CHECKPOINT_INTERVAL`] when a high watermark moved, at once when a
//! follower's truncation lowered one, and on clean shutdown before the
//! partitions close.
//!
//! Only a cluster node runs any of this; a single node's high watermark
//! is its log's durable end and needs no file.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tracing::warn;
use uuid::Uuid;

use crate::metadata::PartitionId;
use crate::shard::{Partition, Shard};
use crate::storage::{read_hw_checkpoint, write_hw_checkpoint, DmaDisk, HwCheckpoint};

/// How often moved high watermarks are written (Kafka's
/// replica.high.watermark.checkpoint.interval.ms default): a crash loses
/// at most this much of the high watermark's progress, which only delays
/// what consumers see after the restart.
pub const HW_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(5_000);

/// One entry of the file: topic, partition, topic id, high watermark.
type Entry = (String, i32, Uuid, i64);

/// A shard's checkpoint state.
#[derive(Default)]
pub struct HwCheckpoints {
    /// What the file held at start-up (`None` until read).
    loaded: RefCell<Option<HwCheckpoint>>,
    /// What was last written (sorted), to skip unchanged writes.
    written: RefCell<Vec<Entry>>,
    /// One write at a time: two would share the temp file.
    writing: futures::lock::Mutex<()>,
}

impl Shard {
    /// Reads this shard's checkpoint once (cluster nodes only), before
    /// its first partitions open.
    pub(crate) async fn load_hw_checkpoint(&self) {
        let hw = &self.replication.hw;
        if !self.config.cluster.enabled() || hw.loaded.borrow().is_some() {
            return;
        }
        let loaded = read_hw_checkpoint(&DmaDisk, &self.config.data_dir, self.id)
            .await
            .unwrap_or_else(|e| {
                warn!(shard = self.id, "high-watermark checkpoint not read: {e}");
                HwCheckpoint::new()
            });
        *hw.loaded.borrow_mut() = Some(loaded);
    }

    /// Starts a just-opened partition from its checkpointed high
    /// watermark, if the checkpoint has one for this topic id.
    pub(crate) fn restore_hw(&self, p: &Partition) {
        let loaded = self.replication.hw.loaded.borrow();
        let key = (p.id.topic.to_string(), p.id.partition);
        let checkpointed = loaded
            .as_ref()
            .and_then(|l| l.get(&key))
            .filter(|(id, _)| *id == p.topic_id)
            .map(|(_, hw)| *hw);
        p.restore_hw(checkpointed);
    }

    /// Writes the high watermarks of this shard's replicated partitions
    /// if any moved since the last write. Errors are logged (the next
    /// write retries; the file on disk stays a valid, older one).
    pub(crate) async fn write_hw_checkpoint(&self) {
        if !self.config.cluster.enabled() {
            return;
        }
        let hw = &self.replication.hw;
        let _one = hw.writing.lock().await;
        let entries = self.hw_entries();
        if *hw.written.borrow() == entries {
            return;
        }
        match write_hw_checkpoint(&DmaDisk, &self.config.data_dir, self.id, &entries).await {
            Ok(()) => *hw.written.borrow_mut() = entries,
            Err(e) => warn!(
                shard = self.id,
                "high-watermark checkpoint not written: {e}"
            ),
        }
    }

    fn hw_entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .local_partitions()
            .iter()
            .filter_map(|p| {
                let PartitionId { topic, partition } = &p.id;
                let hw = p.hw_to_checkpoint()?;
                Some((topic.to_string(), *partition, p.topic_id, hw))
            })
            .collect();
        entries.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        entries
    }

    /// Runs for the life of a cluster shard: the periodic write.
    pub(crate) async fn run_hw_checkpoints(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(HW_CHECKPOINT_INTERVAL).await;
            self.write_hw_checkpoint().await;
        }
    }
}
