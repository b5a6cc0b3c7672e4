//! Offsets retention (Kafka's offsets.retention.minutes, KIP-211): every
//! `offsets_retention_check_ms` each coordinator shard tombstones the
//! offsets of its groups that stayed Empty (in both protocols) long enough,
//! and deletes an Empty group left without offsets, as Kafka's cleanup does.

use std::rc::Rc;

use tracing::{info, warn};

use super::consumer::coordinator::tombstones as consumer_tombstones;
use super::coordinator::{GroupCoordinator, Offsets};
use super::records::{OffsetValue, RecordKey};
use super::state::{Group, GroupState};
use super::store::{self, KeyValue};
use crate::shard::Shard;

impl GroupCoordinator {
    /// Offsets retention: writes tombstones for the expired offsets of every
    /// loaded Empty group (see [`expired_offsets`]) and forgets them; an
    /// Empty group left without offsets is deleted too (metadata
    /// tombstone), as Kafka's cleanup does (unless a new member is between
    /// its MEMBER_ID_REQUIRED round and its rejoin). Returns how many offsets expired.
    pub async fn expire_offsets(&self, shard: &Rc<Shard>, now_ms: i64, retention_ms: u64) -> usize {
        // (group, partition, expired offsets with their values, drop the group)
        type Plan = (
            String,
            i32,
            Vec<((String, i32), OffsetValue)>,
            bool,
            Vec<KeyValue>,
        );
        let plans: Vec<Plan> = {
            let groups = self.groups.borrow();
            groups
                .values()
                .filter(|e| e.is_empty_group())
                .filter_map(|e| {
                    let expired: Vec<_> =
                        expired_offsets(&e.group, &e.offsets, now_ms, retention_ms)
                            .into_iter()
                            .map(|k| {
                                let v = e.offsets[&k].clone();
                                (k, v)
                            })
                            .collect();
                    let drop_group = expired.len() == e.offsets.len() && !e.group.has_pending();
                    let consumer = e.consumer.as_ref().filter(|_| drop_group);
                    let extra = consumer.map(consumer_tombstones).unwrap_or_default();
                    (!expired.is_empty())
                        .then(|| (e.group.id.clone(), e.partition, expired, drop_group, extra))
                })
                .collect()
        };
        let mut count = 0;
        for (group_id, partition, expired, drop_group, extra) in plans {
            let mut records: Vec<KeyValue> = expired
                .iter()
                .map(|((topic, p), _)| {
                    let key = RecordKey::Offset {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: *p,
                    };
                    (key.encode(), None)
                })
                .collect();
            if drop_group {
                let key = RecordKey::Group {
                    group: group_id.clone(),
                };
                records.push((key.encode(), None));
                records.extend(extra);
            }
            if let Err(code) = store::append(shard, partition, &records).await {
                warn!(group = %group_id, code, "expired offsets not removed");
                continue;
            }
            if !expired.is_empty() {
                info!(group = %group_id, offsets = expired.len(), "committed offsets expired");
            }
            count += expired.len();
            let mut groups = self.groups.borrow_mut();
            let Some(entry) = groups.get_mut(&group_id) else {
                continue;
            };
            // A commit or join may have come in while the tombstones were
            // written: keep what changed meanwhile.
            for (key, value) in expired {
                if entry.offsets.get(&key) == Some(&value) {
                    entry.offsets.remove(&key);
                }
            }
            if drop_group
                && entry.is_empty_group()
                && entry.offsets.is_empty()
                && !entry.group.has_pending()
            {
                entry.group.mark_dead();
                groups.remove(&group_id);
            }
        }
        count
    }
}

/// The offsets of `group` expired at `now_ms` (Kafka's rule since KIP-211):
/// none while the group has members; once it is Empty, an offset expires
/// `retention_ms` after the later of the group becoming Empty and its
/// commit. A group that never had members (offsets from admin tools or
/// assign() consumers) counts from the commit alone.
pub fn expired_offsets(
    group: &Group,
    offsets: &Offsets,
    now_ms: i64,
    retention_ms: u64,
) -> Vec<(String, i32)> {
    if group.state() != GroupState::Empty {
        return Vec::new();
    }
    let retention_ms = i64::try_from(retention_ms).unwrap_or(i64::MAX);
    let empty_since_ms = match group.protocol_type() {
        Some(_) => group.state_timestamp_ms(),
        None => i64::MIN,
    };
    offsets
        .iter()
        .filter(|(_, v)| {
            now_ms.saturating_sub(v.commit_timestamp_ms.max(empty_since_ms)) >= retention_ms
        })
        .map(|(k, _)| k.clone())
        .collect()
}
