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
            .call_partition(id, PartitionOp::ListOffset { timestamp: -1 })
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
        });
    }
    Ok(out)
}
