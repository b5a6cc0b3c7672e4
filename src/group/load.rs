//! Eager loading of groups at start-up: every `__consumer_offsets`
//! partition a shard owns is replayed before the shard reports ready, so
//! ListGroups, offsets retention and lag see every group from the first
//! request, not only those some request touched since the start.
//!
//! Why before READY rather than in the background: replay reads each
//! partition once (compaction keeps it small), start-up already waits for
//! log recovery, and it spares every group API a "still loading" state
//! (Kafka's COORDINATOR_LOAD_IN_PROGRESS) that clients would have to retry.

use std::rc::Rc;
use std::time::Instant;

use tracing::{info, warn};

use super::{GroupCoordinator, OFFSETS_TOPIC};
use crate::shard::Shard;

impl GroupCoordinator {
    /// Replays every offsets partition this shard owns; returns how many
    /// were loaded. A partition that fails stays unloaded and is retried
    /// on first use (its requests get the error meanwhile).
    pub async fn load_all(&self, shard: &Rc<Shard>) -> usize {
        let owned: Vec<i32> = shard
            .snapshot()
            .owned_by(shard.id)
            .filter(|(id, _)| &*id.topic == OFFSETS_TOPIC)
            .map(|(id, _)| id.partition)
            .collect();
        if owned.is_empty() {
            return 0;
        }
        let started = Instant::now();
        let mut loaded = 0;
        for partition in &owned {
            match self.ready(shard, *partition).await {
                Ok(()) => loaded += 1,
                Err(code) => warn!(partition, code, "offsets partition not loaded at start"),
            }
        }
        info!(
            shard = shard.id,
            partitions = loaded,
            groups = self.groups.borrow().len(),
            "groups loaded in {:?}",
            started.elapsed()
        );
        loaded
    }
}
