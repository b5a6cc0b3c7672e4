//! Transactional offset commits (TxnOffsetCommit, KIP-98).
//!
//! A transactional producer commits a consumer group's offsets as part of
//! its transaction (`send_offsets_to_transaction`). The group coordinator
//! writes them to `__consumer_offsets` as a transactional batch of that
//! producer (durably, like any commit) but keeps them aside: they become
//! the group's committed offsets only when the transaction coordinator's
//! COMMIT marker lands in that partition, and are dropped on ABORT. At
//! replay the same rule applies (`store::replay_from`), and commits still
//! open at the end wait here for their marker.
//!
//! OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for a
//! partition with such a pending commit, as Kafka does (KIP-447;
//! `handlers/offset_fetch.rs` asks [`GroupCoordinator::has_pending_txn_offset`]).

use std::rc::Rc;

use super::coordinator::{offset_records, Committer, GroupCoordinator};
use super::records::{OffsetValue, RecordKey};
use super::store;
use super::OFFSETS_TOPIC;
use crate::shard::Shard;
use kafka_protocol::ResponseError;

impl GroupCoordinator {
    /// TxnOffsetCommit on the group's coordinator: checks the member (when
    /// the request names one), writes the offsets as `producer`'s
    /// transactional batch and holds them until the marker. One code per
    /// partition, in order.
    pub async fn commit_txn(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        producer: (i64, i16),
        committer: Committer,
        offsets: Vec<(String, i32, OffsetValue)>,
    ) -> Vec<i16> {
        let all = |code: i16| vec![code; offsets.len()];
        if let Err(code) = self.ready(shard, partition).await {
            return all(code);
        }
        if committer.generation >= 0 {
            let groups = self.groups.borrow();
            let check = match groups.get(group_id) {
                Some(entry) => entry.group.check_commit(
                    &committer.member_id,
                    committer.group_instance_id.as_deref(),
                    committer.generation,
                ),
                None => Err(ResponseError::UnknownMemberId.code()),
            };
            if let Err(code) = check {
                return all(code);
            }
        }
        let (codes, records) = offset_records(group_id, &offsets);
        if let Err(code) =
            store::append_to(shard, OFFSETS_TOPIC, partition, &records, Some(producer)).await
        {
            return all(code);
        }
        {
            let mut groups = self.groups.borrow_mut();
            Self::entry_or_new(&mut groups, group_id, partition);
        }
        self.txn_offsets
            .borrow_mut()
            .entry((partition, producer.0))
            .or_default()
            .extend(records);
        codes
    }

    /// A marker for `producer_id` landed in offsets partition `partition`:
    /// its held commits become the group's offsets (commit) or vanish.
    /// `session` is the KIP-848 session timeout records are applied with.
    pub fn complete_txn_offsets(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        session: std::time::Duration,
    ) {
        let held = self
            .txn_offsets
            .borrow_mut()
            .remove(&(partition, producer_id))
            .unwrap_or_default();
        if commit {
            let now = crate::clock::monotonic();
            for (key, value) in held {
                self.apply_record(partition, &key, value.as_deref(), now, session);
            }
        }
    }

    /// Whether `group_id` has a transactional commit for `topic`-`p` still
    /// waiting for its marker.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, p: i32) -> bool {
        self.txn_offsets
            .borrow()
            .values()
            .flatten()
            .any(|(key, _)| {
                matches!(
                    RecordKey::decode(key),
                    Ok(Some(RecordKey::Offset { group, topic: t, partition }))
                        if group == group_id && t == topic && partition == p
                )
            })
    }
}
