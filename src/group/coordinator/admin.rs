//! The group admin APIs on the coordinator: DescribeGroups, ListGroups,
//! DeleteGroups and OffsetDelete.

use super::*;

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// group.instance.id.
    pub group_instance_id: Option<String>,
    /// client.id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the selected protocol.
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// Error code (0, or e.g. COORDINATOR_NOT_AVAILABLE).
    pub error: i16,
    /// State name; "Dead" for an unknown group.
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol.
    pub protocol: String,
    /// Members.
    pub members: Vec<DescribedMember>,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for a group that only holds offsets).
    pub protocol_type: String,
    /// State name.
    pub state: &'static str,
    /// "classic" or "consumer" (ListGroups v5).
    pub group_type: &'static str,
}

impl GroupCoordinator {
    /// DescribeGroups of one group.
    pub async fn describe(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
    ) -> GroupDescription {
        let mut description = GroupDescription {
            error: 0,
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if let Err(code) = self.ready(shard, partition).await {
            description.error = code;
            return description;
        }
        let groups = self.groups.borrow();
        let Some(entry) = groups.get(group_id) else {
            return description;
        };
        if entry.consumer.is_some() {
            // Kafka: "Group X is not a classic group" (Dead, or
            // GROUP_ID_NOT_FOUND from DescribeGroups v6).
            return description;
        }
        let g = &entry.group;
        let protocol = g.protocol().unwrap_or_default().to_string();
        description.state = g.state().name();
        description.protocol_type = g.protocol_type().unwrap_or_default().to_string();
        let stable = g.state() == GroupState::Stable;
        description.members = g
            .members()
            .map(|m| DescribedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol),
                // Kafka shows assignments only once the group is Stable.
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        description.protocol = protocol;
        description
    }

    /// Every group of every offsets partition this shard owns.
    pub async fn list(&self, shard: &Rc<Shard>) -> Result<Vec<ListedGroup>, i16> {
        let owned: Vec<i32> = shard
            .snapshot()
            .owned_by(shard.id)
            .filter(|(id, _)| &*id.topic == crate::group::OFFSETS_TOPIC)
            .map(|(id, _)| id.partition)
            .collect();
        for partition in owned {
            self.ready(shard, partition).await?;
        }
        let groups = self.groups.borrow();
        Ok(groups
            .values()
            .filter(|e| e.group.state() != GroupState::Dead)
            .map(|e| match &e.consumer {
                Some(c) => ListedGroup {
                    group_id: e.group.id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: c.state().name(),
                    group_type: "consumer",
                },
                None => ListedGroup {
                    group_id: e.group.id.clone(),
                    protocol_type: e.group.protocol_type().unwrap_or_default().to_string(),
                    state: e.group.state().name(),
                    group_type: "classic",
                },
            })
            .collect())
    }

    /// DeleteGroups of one group: only an empty group may be deleted; its
    /// offsets and metadata get tombstones.
    pub async fn delete(&self, shard: &Rc<Shard>, partition: i32, group_id: &str) -> i16 {
        if let Err(code) = self.ready(shard, partition).await {
            return code;
        }
        let tombstones: Vec<KeyValue> = {
            let groups = self.groups.borrow();
            let Some(entry) = groups.get(group_id) else {
                return ResponseError::GroupIdNotFound.code();
            };
            match entry.group.state() {
                GroupState::Dead => return ResponseError::GroupIdNotFound.code(),
                _ if !entry.is_empty_group() => return ResponseError::NonEmptyGroup.code(),
                _ => {}
            }
            let consumer_records = entry.consumer.as_ref().map(consumer_tombstones);
            let group = group_id.to_string();
            entry
                .offsets
                .keys()
                .map(|(topic, p)| {
                    let key = RecordKey::Offset {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *p,
                    };
                    (key.encode(), None)
                })
                .chain(std::iter::once((
                    RecordKey::Group {
                        group: group.clone(),
                    }
                    .encode(),
                    None,
                )))
                .chain(consumer_records.into_iter().flatten())
                .collect()
        };
        if let Err(code) = store::append(shard, partition, &tombstones).await {
            return code;
        }
        let mut groups = self.groups.borrow_mut();
        // A member may have joined while the tombstones were written: the
        // group then lives on (with no offsets, as on a Kafka broker).
        match groups.get_mut(group_id) {
            Some(entry) if entry.is_empty_group() => {
                entry.group.mark_dead();
                groups.remove(group_id);
            }
            Some(entry) => entry.offsets.clear(),
            None => {}
        }
        0
    }

    /// OffsetDelete: removes committed offsets of partitions no member is
    /// subscribed to (all of them in an empty group). A code per partition,
    /// or a group error.
    pub async fn delete_offsets(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<i16>, i16> {
        self.ready(shard, partition).await?;
        let (codes, tombstones) = {
            let groups = self.groups.borrow();
            let Some(entry) = groups.get(group_id) else {
                return Err(ResponseError::GroupIdNotFound.code());
            };
            let subscribed = subscribed_topics(&entry.group);
            let codes: Vec<i16> = partitions
                .iter()
                .map(|(topic, _)| match subscribed.contains(topic) {
                    true => ResponseError::GroupSubscribedToTopic.code(),
                    false => 0,
                })
                .collect();
            let tombstones: Vec<KeyValue> = partitions
                .iter()
                .zip(&codes)
                .filter(|((t, p), code)| {
                    **code == 0 && entry.offsets.contains_key(&(t.clone(), *p))
                })
                .map(|((topic, p), _)| {
                    let key = RecordKey::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *p,
                    };
                    (key.encode(), None)
                })
                .collect();
            (codes, tombstones)
        };
        store::append(shard, partition, &tombstones).await?;
        let mut groups = self.groups.borrow_mut();
        if let Some(entry) = groups.get_mut(group_id) {
            for ((topic, p), code) in partitions.into_iter().zip(&codes) {
                if *code == 0 {
                    entry.offsets.remove(&(topic, p));
                }
            }
        }
        Ok(codes)
    }
}
