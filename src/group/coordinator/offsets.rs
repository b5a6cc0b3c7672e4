//! Committed offsets on the coordinator: OffsetCommit, OffsetFetch, and
//! the committed offsets lag reporting reads.

use super::*;

impl GroupCoordinator {
    /// OffsetCommit: checks the member and generation, writes the offsets
    /// durably, then makes them visible. One code per partition, in order.
    pub async fn commit(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        committer: Committer,
        offsets: Vec<(String, i32, OffsetValue)>,
    ) -> Vec<i16> {
        let all = |code: i16| vec![code; offsets.len()];
        let _turn = self.commit_order.lock(&group_id.to_string()).await;
        if let Err(code) = self.ready(shard, partition).await {
            return all(code);
        }
        {
            let mut groups = self.groups.borrow_mut();
            let check = match groups.get(group_id) {
                Some(Entry {
                    consumer: Some(c), ..
                }) => c.validate_offset_request(&committer.member_id, committer.generation),
                Some(entry) => entry.group.check_commit(
                    &committer.member_id,
                    committer.group_instance_id.as_deref(),
                    committer.generation,
                ),
                None if committer.generation < 0 => Ok(()),
                None => Err(ResponseError::UnknownMemberId.code()),
            };
            if let Err(code) = check {
                return all(code);
            }
            Self::entry_or_new(&mut groups, group_id, partition);
        }
        let (codes, records) = offset_records(group_id, &offsets);
        if let Err(code) = store::append(shard, partition, &records).await {
            return all(code);
        }
        let mut groups = self.groups.borrow_mut();
        let entry = Self::entry_or_new(&mut groups, group_id, partition);
        for ((topic, p, value), code) in offsets.into_iter().zip(&codes) {
            if *code == 0 {
                entry.offsets.insert((topic, p), value);
            }
        }
        codes
    }

    /// OffsetFetch: the committed offsets of the named partitions (all of
    /// them when `topics` is `None`); `None` for a partition without one.
    pub async fn fetch_offsets(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, i16> {
        self.ready(shard, partition).await?;
        let groups = self.groups.borrow();
        let offsets = groups.get(group_id).map(|e| &e.offsets);
        Ok(match topics {
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                .collect(),
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, parts)| {
                    parts.into_iter().map(move |p| {
                        let v = offsets.and_then(|o| o.get(&(topic.clone(), p))).cloned();
                        (topic.clone(), p, v)
                    })
                })
                .collect(),
        })
    }

    /// The committed offsets of a group (for lag), on its coordinator.
    pub async fn committed(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
    ) -> Result<Offsets, i16> {
        self.ready(shard, partition).await?;
        Ok(self
            .groups
            .borrow()
            .get(group_id)
            .map(|e| e.offsets.clone())
            .unwrap_or_default())
    }
}
