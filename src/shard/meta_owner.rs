//! Metadata changes and how shards apply them.
//!
//! Shard 0 is the metadata owner: it serializes changes, persists the new
//! snapshot, then broadcasts it and waits for every shard to apply it before
//! answering. Applying opens the partitions a shard now owns (running
//! recovery) and closes and deletes those that are gone, so when CreateTopics
//! or DeleteTopics answers, every shard already agrees.

use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use futures::StreamExt;
use kafka_protocol::ResponseError;
use tracing::{error, info};
use uuid::Uuid;

use super::cross_wake::cross_thread;
use super::messages::{MetaChange, MetaResult, ShardMsg};
use super::partition::Partition;
use super::{Shard, METADATA_OWNER_SHARD};
use crate::metadata::internal_topics::check_internal_config;
use crate::metadata::topic_config::{
    apply_edit, is_dynamic_broker_key, validate_dynamic_broker_value, AlterOp, ConfigEdit,
    ConfigValueError,
};
use crate::metadata::{
    self, is_internal_topic, LogDefaults, PartitionId, Snapshot, TopicConfig, TopicMeta,
};
use crate::storage::{DmaDisk, LogConfig, PartitionLog};

/// How long a deleted partition may stay in use by in-flight requests.
const REMOVE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);
/// How often removal checks again.
const REMOVE_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
/// Partitions a shard opens (recovers) or closes at once. Each is mostly
/// waiting on small file I/O, so one at a time left the disk idle: with
/// 11,000 partitions a clean stop took 13 s and a start 2.4 s one by one.
const PARTITION_OPENS_IN_FLIGHT_MAX: usize = 32;

impl Shard {
    /// Makes a metadata change through the metadata owner.
    pub async fn change_metadata(self: &Rc<Self>, change: MetaChange) -> MetaResult {
        if self.id == METADATA_OWNER_SHARD {
            return self.change_metadata_here(change).await;
        }
        let (reply, answer) = oneshot::channel();
        if self.peers[METADATA_OWNER_SHARD]
            .unbounded_send(ShardMsg::Meta { change, reply })
            .is_err()
        {
            return (
                ResponseError::UnknownServerError.code(),
                Some("metadata owner is gone".into()),
            );
        }
        cross_thread(answer).await.unwrap_or((
            ResponseError::UnknownServerError.code(),
            Some("metadata owner dropped the change".into()),
        ))
    }

    /// On the metadata owner: validate against the current snapshot, persist,
    /// broadcast, await every shard.
    /// In a cluster the controller checks and replicates the change instead;
    /// the lock is not held then, as publishing its result takes it.
    pub(super) async fn change_metadata_here(self: &Rc<Self>, change: MetaChange) -> MetaResult {
        if let Some(member) = self.cluster_member() {
            return member.change(self, change).await;
        }
        let _serial = self.meta_lock.lock().await;
        let current = self.snapshot();
        let next = match next_snapshot(
            &current,
            &change,
            self.shard_count(),
            &self.config.log_defaults,
        ) {
            Ok(next) => next,
            Err(result) => return result,
        };
        if matches!(
            change,
            MetaChange::AlterTopicConfig {
                validate_only: true,
                ..
            } | MetaChange::AlterBrokerConfig {
                validate_only: true,
                ..
            }
        ) {
            return (0, None);
        }
        if let Err(e) = metadata::save(&self.config.data_dir, &next).await {
            error!("metadata change {change:?} not persisted: {e}");
            return (ResponseError::KafkaStorageError.code(), Some(e.to_string()));
        }
        info!("metadata v{}: {change:?}", next.version);
        self.broadcast(Arc::new(next)).await;
        (0, None)
    }

    /// In a cluster: installs the snapshot `next(version)` built from the
    /// controller's state on every shard. Nothing is saved locally: the
    /// Raft log is the durable copy. Serialised with local changes by the
    /// same lock so versions only grow.
    pub async fn publish_cluster_snapshot(self: &Rc<Self>, next: impl FnOnce(u64) -> Snapshot) {
        let _serial = self.meta_lock.lock().await;
        let snapshot = next(self.snapshot().version + 1);
        self.broadcast(Arc::new(snapshot)).await;
    }

    /// Waits until no metadata change or publication is in flight (one
    /// that started keeps the lock until every shard applied it).
    pub async fn wait_metadata_idle(&self) {
        let _idle = self.meta_lock.lock().await;
    }

    async fn broadcast(self: &Rc<Self>, snapshot: Arc<Snapshot>) {
        let mut acks = Vec::with_capacity(self.peers.len());
        for (shard, peer) in self.peers.iter().enumerate() {
            if shard == self.id {
                continue;
            }
            let (reply, ack) = oneshot::channel();
            if peer
                .unbounded_send(ShardMsg::ApplySnapshot {
                    snapshot: snapshot.clone(),
                    reply,
                })
                .is_ok()
            {
                acks.push(ack);
            }
        }
        self.apply_snapshot(snapshot).await;
        for ack in acks {
            let _ = cross_thread(ack).await;
        }
    }

    /// Installs a snapshot: removes partitions that are gone (or whose topic
    /// was recreated under a new id), opens the ones this shard now owns.
    pub(super) async fn apply_snapshot(self: &Rc<Self>, snapshot: Arc<Snapshot>) {
        if snapshot.version < self.snapshot.borrow().version {
            return;
        }
        let owned: std::collections::HashMap<PartitionId, Uuid> =
            snapshot.owned_by(self.id).collect();
        let stale: Vec<Rc<Partition>> = self
            .partitions
            .borrow()
            .values()
            .filter(|p| owned.get(&p.id) != Some(&p.topic_id))
            .cloned()
            .collect();
        for p in stale {
            self.partitions.borrow_mut().remove(&p.id);
            self.remove_partition(p).await;
        }
        let missing: Vec<(PartitionId, Uuid)> = owned
            .into_iter()
            .filter(|(id, _)| !self.partitions.borrow().contains_key(id))
            .collect();
        for p in self.partitions.borrow().values() {
            // Config changes apply without a restart: roll size/time and
            // index interval here, the rest is read by housekeeping and
            // produce from the snapshot.
            p.set_leader_epoch(snapshot.leader_epoch(&p.id.topic, p.id.partition));
            let Some(topic) = snapshot.topic(&p.id.topic) else {
                continue;
            };
            let config = super::housekeeping::log_config(&snapshot.log_defaults, topic);
            if p.log.config() != config {
                if let Err(e) = p.log.set_config(config) {
                    error!(partition = %p.id, "topic config not applied: {e}");
                }
            }
        }
        self.open_missing(missing, &snapshot).await;
        self.apply_roles(&snapshot).await;
        *self.snapshot.borrow_mut() = snapshot;
    }

    /// Opens (recovers) the partitions this shard gained, at most
    /// [`PARTITION_OPENS_IN_FLIGHT_MAX`] at once; one that fails stays
    /// offline with a log line.
    async fn open_missing(&self, missing: Vec<(PartitionId, Uuid)>, snapshot: &Snapshot) {
        if !missing.is_empty() {
            self.load_hw_checkpoint().await;
        }
        let opening = futures::stream::iter(missing)
            .map(|(id, topic_id)| async move {
                let opened = match self.open_partition(&id, snapshot).await {
                    Ok(log) => Partition::open(id.clone(), topic_id, log).await,
                    Err(e) => Err(e),
                };
                (id, opened)
            })
            .buffer_unordered(PARTITION_OPENS_IN_FLIGHT_MAX);
        futures::pin_mut!(opening);
        while let Some((id, opened)) = opening.next().await {
            match opened {
                Ok(partition) => {
                    self.restore_hw(&partition);
                    partition.set_leader_epoch(snapshot.leader_epoch(&id.topic, id.partition));
                    self.partitions
                        .borrow_mut()
                        .insert(id.clone(), Rc::new(partition));
                }
                Err(e) => error!(partition = %id, "cannot open partition, it stays offline: {e}"),
            }
        }
    }

    async fn open_partition(
        &self,
        id: &PartitionId,
        snapshot: &Snapshot,
    ) -> Result<PartitionLog<DmaDisk>, crate::storage::StorageError> {
        let dir = self.config.data_dir.join(id.to_string());
        let config = match snapshot.topic(&id.topic) {
            Some(topic) => super::housekeeping::log_config(&snapshot.log_defaults, topic),
            None => LogConfig::default(),
        };
        PartitionLog::open(DmaDisk, dir, config).await
    }

    /// Deletes a removed partition's files once no in-flight request holds
    /// it any more (requests hold it only for the length of one operation).
    async fn remove_partition(&self, mut p: Rc<Partition>) {
        let id = p.id.clone();
        let deadline = std::time::Instant::now() + REMOVE_WAIT_MAX;
        loop {
            match Rc::try_unwrap(p) {
                Ok(part) => {
                    if let Err(e) = part.log.delete().await {
                        error!(partition = %id, "deleting partition files failed: {e}");
                    }
                    return;
                }
                Err(still_shared) if std::time::Instant::now() < deadline => {
                    p = still_shared;
                    glommio::timer::sleep(REMOVE_RETRY_INTERVAL).await;
                }
                Err(_) => {
                    error!(partition = %id, "partition still in use after {REMOVE_WAIT_MAX:?}; its directory is left in place");
                    return;
                }
            }
        }
    }

    /// Clean shutdown: flush, write indexes and checkpoints of every partition.
    pub(super) async fn close_all_partitions(&self) {
        // The high watermarks as they are at the end (cluster only): a
        // restarted replica starts from them.
        self.write_hw_checkpoint().await;
        let parts: Vec<Rc<Partition>> = self
            .partitions
            .borrow_mut()
            .drain()
            .map(|(_, p)| p)
            .collect();
        futures::stream::iter(parts)
            .for_each_concurrent(PARTITION_OPENS_IN_FLIGHT_MAX, |p| async move {
                if let Err(e) = p.close().await {
                    error!(partition = %p.id, "closing partition failed: {e}");
                }
            })
            .await;
    }
}

/// The snapshot after `change`, or the Kafka error that refuses it.
/// `static_defaults` are the broker's TOML log defaults (dynamic broker
/// configs go over them). The active controller of a cluster runs the same
/// checks (`cluster::plan`).
pub fn next_snapshot(
    current: &Snapshot,
    change: &MetaChange,
    shards: usize,
    static_defaults: &LogDefaults,
) -> Result<Snapshot, MetaResult> {
    let defaults = &*current.log_defaults;
    match change {
        MetaChange::AlterBrokerConfig {
            cluster_default,
            edit,
            ..
        } => {
            let mut configs = current.broker_configs.clone();
            let layer = match cluster_default {
                true => &mut configs.cluster_default,
                false => &mut configs.broker,
            };
            *layer =
                edit_broker_configs(layer, edit).map_err(|e| (e.error_code(), Some(e.message)))?;
            Ok(current.with_broker_configs(static_defaults, configs))
        }
        MetaChange::AlterTopicConfig { name, edit, .. } => {
            let Some(topic) = current.topic(name) else {
                return Err((
                    ResponseError::UnknownTopicOrPartition.code(),
                    Some(format!("Topic {name} does not exist.")),
                ));
            };
            let configs = apply_edit(defaults, &topic.configs, edit)
                .map_err(|e| (e.error_code(), Some(e.message)))?;
            // Checked on the result, not the edit: AlterConfigs replaces
            // every override, so leaving cleanup.policy out changes it too.
            if is_internal_topic(name) {
                let resolved = TopicConfig::resolve(defaults, &configs);
                check_internal_config(name, &resolved)
                    .map_err(|message| (ResponseError::InvalidConfig.code(), Some(message)))?;
            }
            let changed = TopicMeta::new(
                topic.name.clone(),
                topic.id,
                topic.partition_shards.clone(),
                configs,
            );
            Ok(current.with_topic(changed))
        }
        MetaChange::CreateTopic {
            name,
            partitions,
            configs,
            ..
        } => {
            if current.topic(name).is_some() {
                return Err((
                    ResponseError::TopicAlreadyExists.code(),
                    Some(format!("Topic '{name}' already exists.")),
                ));
            }
            let partition_shards = current.assign_shards(shards, *partitions as usize);
            Ok(current.with_topic(TopicMeta::new(
                name.as_str().into(),
                Uuid::new_v4(),
                partition_shards,
                configs.clone(),
            )))
        }
        MetaChange::DeleteTopic { name } => match current.topic(name) {
            None => Err((ResponseError::UnknownTopicOrPartition.code(), None)),
            Some(_) => Ok(current.without_topic(name)),
        },
        MetaChange::AlterScramCredentials {
            upsertions,
            deletions,
        } => {
            let mut users = (*current.users).clone();
            for (user, mechanism) in deletions {
                if let Some(credentials) = users.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        users.remove(user);
                    }
                }
            }
            for (user, mechanism, credential) in upsertions {
                users
                    .entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            Ok(current.with_users(users))
        }
        MetaChange::AlterAcls {
            creations,
            deletions,
        } => {
            let mut acls: std::collections::BTreeSet<_> =
                current.acls.bindings().cloned().collect();
            for acl in deletions {
                acls.remove(acl);
            }
            acls.extend(creations.iter().cloned());
            let (count, max) = (acls.len(), crate::security::acl::ACLS_MAX);
            if count > max && count > current.acls.len() {
                return Err((
                    ResponseError::PolicyViolation.code(),
                    Some(format!(
                        "creating these ACLs would make {count}, over the broker's limit of {max} (ACLS_MAX); delete some first"
                    )),
                ));
            }
            Ok(current.with_acls(crate::security::acl::AclIndex::new(acls)))
        }
        MetaChange::AlterClientQuotas { edits } => {
            let mut quotas = (*current.client_quotas).clone();
            for (entity, kind, value) in edits {
                quotas.set(entity, *kind, *value);
            }
            Ok(current.with_client_quotas(quotas))
        }
        MetaChange::CreatePartitions { name, total } => {
            let Some(topic) = current.topic(name) else {
                return Err((ResponseError::UnknownTopicOrPartition.code(), None));
            };
            let have = topic.partition_count();
            if *total <= have {
                return Err((
                    ResponseError::InvalidPartitions.code(),
                    Some(format!("Topic currently has {have} partitions, which is higher than or equal to the requested {total}.")),
                ));
            }
            let mut grown = TopicMeta::clone(topic);
            grown
                .partition_shards
                .extend(current.assign_shards(shards, (*total - have) as usize));
            Ok(current.with_topic(grown))
        }
    }
}

/// Applies a broker-config edit to one layer of dynamic broker configs:
/// a legacy AlterConfigs replaces the layer, an incremental one SETs or
/// DELETEs single keys (APPEND/SUBTRACT on `log.cleanup.policy`, the one
/// list key, work on its current layer value). Read-only keys are
/// INVALID_REQUEST naming them, as Kafka answers; bad values INVALID_CONFIG.
fn edit_broker_configs(
    layer: &std::collections::BTreeMap<String, String>,
    edit: &ConfigEdit,
) -> Result<std::collections::BTreeMap<String, String>, ConfigValueError> {
    let validate = |name: &str, value: &str| match validate_dynamic_broker_value(name, value) {
        Some(checked) => checked,
        None => Err(ConfigValueError::read_only(name)),
    };
    match edit {
        ConfigEdit::Replace(pairs) => pairs
            .iter()
            .map(|(name, value)| Ok((name.clone(), validate(name, value)?)))
            .collect(),
        ConfigEdit::Incremental(ops) => {
            let mut next = layer.clone();
            for (name, op, value) in ops {
                if !is_dynamic_broker_key(name) {
                    return Err(ConfigValueError::read_only(name));
                }
                match (op, value) {
                    (AlterOp::Delete, _) => {
                        next.remove(name);
                    }
                    (AlterOp::Set, Some(value)) => {
                        next.insert(name.clone(), validate(name, value)?);
                    }
                    (AlterOp::Append | AlterOp::Subtract, Some(value)) => {
                        let edited = edit_list(next.get(name), *op, value);
                        next.insert(name.clone(), validate(name, &edited)?);
                    }
                    (_, None) => {
                        return Err(ConfigValueError::invalid_request(
                            name,
                            format!("Null value not supported for : {name}"),
                        ))
                    }
                }
            }
            Ok(next)
        }
    }
}

/// APPEND or SUBTRACT `value`'s items on a comma-separated list.
fn edit_list(current: Option<&String>, op: AlterOp, value: &str) -> String {
    let items = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut list = current.map(|c| items(c)).unwrap_or_default();
    for item in items(value) {
        match op {
            AlterOp::Append if !list.contains(&item) => list.push(item),
            AlterOp::Subtract => list.retain(|i| *i != item),
            _ => {}
        }
    }
    list.join(",")
}
