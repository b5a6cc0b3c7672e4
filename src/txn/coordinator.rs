//! One shard's transactional ids: state in memory, every change written to
//! `__transaction_state` (fdatasync) before it is acted on or answered.
//!
//! Requests for one id are serialized by a per-id async lock, so EndTxn's
//! marker writes never interleave with another request's change of the
//! same id; different ids proceed in parallel. A state partition is
//! replayed on first use after start, or by the sweeper soon after start.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::markers::write_markers;
use super::records::{decode_key, decode_value, encode_key, encode_value};
use super::state::{
    check_producer, plan_add, plan_end, plan_init, EndPlan, InitPlan, TxnMeta, TxnPartition,
    TxnState, EPOCH_MAX,
};
use super::TXN_TOPIC;
use crate::group::store;
use crate::metadata::PartitionId;
use crate::producer::ids::PRODUCER_ID_BLOCK_SIZE;
use crate::shard::{now_ms, Shard, METADATA_OWNER_SHARD};

struct Entry {
    partition: i32,
    meta: TxnMeta,
}

/// The transactional ids this shard coordinates.
#[derive(Default)]
pub struct TxnCoordinator {
    txns: RefCell<HashMap<String, Entry>>,
    loaded: RefCell<HashSet<i32>>,
    load_lock: futures::lock::Mutex<()>,
    id_locks: RefCell<HashMap<String, Rc<futures::lock::Mutex<()>>>>,
}

/// One id as DescribeTransactions / ListTransactions report it.
#[derive(Clone, Debug)]
pub struct TxnView {
    /// The transactional id.
    pub transactional_id: String,
    /// Its metadata.
    pub meta: TxnMeta,
}

impl TxnCoordinator {
    /// Forgets the transactional ids of state partition `partition` (its
    /// leadership moved to another broker, whose coordinator now owns
    /// them): if it comes back they are replayed from the log again, with
    /// what the other coordinator wrote meanwhile.
    pub fn unload(&self, partition: i32) {
        if self.loaded.borrow_mut().remove(&partition) {
            self.txns
                .borrow_mut()
                .retain(|_, e| e.partition != partition);
            info!(
                partition,
                "{TXN_TOPIC} partition led elsewhere: its transactional ids unloaded"
            );
        }
    }

    /// Replays state partition `partition` if not done since start.
    pub async fn ready(&self, shard: &Rc<Shard>, partition: i32) -> Result<(), i16> {
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let _serial = self.load_lock.lock().await;
        if self.loaded.borrow().contains(&partition) {
            return Ok(());
        }
        let mut loaded: HashMap<String, Option<TxnMeta>> = HashMap::new();
        let replayed = store::replay_from(shard, TXN_TOPIC, partition, |key, value| {
            let Ok(id) = decode_key(key) else {
                warn!(partition, "skipping an unreadable {TXN_TOPIC} key");
                return;
            };
            match value.map(decode_value) {
                None => {
                    loaded.insert(id, None);
                }
                Some(Ok(meta)) => {
                    loaded.insert(id, Some(meta));
                }
                Some(Err(e)) => warn!(partition, transactional_id = %id, "skipping an unreadable {TXN_TOPIC} value: {e}"),
            }
        })
        .await;
        if let Err(e) = replayed {
            warn!("cannot load transactions: {e}");
            return Err(e.error_code());
        }
        let mut txns = self.txns.borrow_mut();
        let count = loaded.len();
        for (id, meta) in loaded {
            match meta {
                Some(meta) => txns.insert(id, Entry { partition, meta }),
                None => txns.remove(&id),
            };
        }
        if count > 0 {
            info!(
                partition,
                ids = count,
                "loaded transactional ids from {TXN_TOPIC}"
            );
        }
        self.loaded.borrow_mut().insert(partition);
        Ok(())
    }

    fn lock_for(&self, id: &str) -> Rc<futures::lock::Mutex<()>> {
        self.id_locks
            .borrow_mut()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn current(&self, id: &str) -> Option<TxnMeta> {
        self.txns.borrow().get(id).map(|e| e.meta.clone())
    }

    /// Writes `meta` for `id` durably, then makes it current.
    async fn persist(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        meta: TxnMeta,
    ) -> Result<TxnMeta, i16> {
        let record = (encode_key(id), Some(encode_value(&meta)));
        store::append_to(shard, TXN_TOPIC, partition, &[record], None).await?;
        self.txns.borrow_mut().insert(
            id.to_string(),
            Entry {
                partition,
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }

    /// InitProducerId for a transactional id: a new producer id for a new
    /// id; otherwise the epoch bumped (fencing the previous producer), after
    /// aborting its open transaction. Returns (producer id, epoch).
    pub async fn init_producer_id(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        if timeout_ms <= 0 || timeout_ms > shard.config.txn.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout.code());
        }
        self.ready(shard, partition).await?;
        let lock = self.lock_for(id);
        let _serial = lock.lock().await;
        let now = now_ms();
        let Some(mut meta) = self.current(id) else {
            if expected.is_some() {
                // KIP-360 names an id/epoch this coordinator never gave.
                return Err(ResponseError::InvalidProducerIdMapping.code());
            }
            let producer_id = allocate_producer_id(shard).await?;
            let meta = TxnMeta {
                producer_id,
                epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: Default::default(),
                start_ms: -1,
                update_ms: now,
            };
            let meta = self.persist(shard, partition, id, meta).await?;
            return Ok((meta.producer_id, meta.epoch));
        };
        match plan_init(&meta, expected)? {
            InitPlan::Current => return Ok((meta.producer_id, meta.epoch)),
            InitPlan::AbortThenBump => {
                info!(transactional_id = %id, producer_id = meta.producer_id, "new producer instance: aborting the open transaction of the old one");
                meta = self.abort_fencing(shard, partition, id, meta).await?;
            }
            InitPlan::Bump => {}
        }
        let mut next = TxnMeta {
            timeout_ms,
            state: TxnState::Empty,
            partitions: Default::default(),
            start_ms: -1,
            update_ms: now,
            ..meta
        };
        if next.epoch >= EPOCH_MAX {
            next.producer_id = allocate_producer_id(shard).await?;
            next.epoch = 0;
        } else {
            next.epoch += 1;
        }
        let next = self.persist(shard, partition, id, next).await?;
        Ok((next.producer_id, next.epoch))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds `partitions` to the open
    /// transaction (opening one if needed), durably.
    pub async fn add_partitions(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<(), i16> {
        self.ready(shard, partition).await?;
        let lock = self.lock_for(id);
        let _serial = lock.lock().await;
        let meta = self
            .current(id)
            .ok_or(ResponseError::InvalidProducerIdMapping.code())?;
        if let Some(next) = plan_add(&meta, producer_id, epoch, partitions, now_ms())? {
            self.persist(shard, partition, id, next).await?;
        }
        Ok(())
    }

    /// EndTxn: Prepare (durable), every marker, Complete (durable).
    pub async fn end_txn(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        self.ready(shard, partition).await?;
        let lock = self.lock_for(id);
        let _serial = lock.lock().await;
        let meta = self
            .current(id)
            .ok_or(ResponseError::InvalidProducerIdMapping.code())?;
        if plan_end(&meta, producer_id, epoch, commit)? == EndPlan::AlreadyDone {
            return Ok(());
        }
        let prepare = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        let prepared = TxnMeta {
            state: prepare,
            update_ms: now_ms(),
            ..meta
        };
        let prepared = self.persist(shard, partition, id, prepared).await?;
        self.complete(shard, partition, id, prepared)
            .await
            .map(|_| ())
    }

    /// Writes the markers of a prepared transaction and its Complete state.
    async fn complete(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        prepared: TxnMeta,
    ) -> Result<TxnMeta, i16> {
        let commit = prepared.state == TxnState::PrepareCommit;
        write_markers(
            shard,
            prepared.producer_id,
            prepared.epoch,
            commit,
            prepared.partitions.iter().cloned(),
        )
        .await
        .map_err(|_| ResponseError::CoordinatorNotAvailable.code())?;
        let done = TxnMeta {
            state: if commit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            },
            partitions: Default::default(),
            start_ms: -1,
            update_ms: now_ms(),
            ..prepared
        };
        self.persist(shard, partition, id, done).await
    }

    /// Aborts `meta`'s open transaction with the epoch bumped, which fences
    /// the producer that opened it (timeouts, a new producer instance).
    async fn abort_fencing(
        &self,
        shard: &Rc<Shard>,
        partition: i32,
        id: &str,
        meta: TxnMeta,
    ) -> Result<TxnMeta, i16> {
        let prepared = TxnMeta {
            epoch: meta.epoch.saturating_add(1),
            state: TxnState::PrepareAbort,
            update_ms: now_ms(),
            ..meta
        };
        let prepared = self.persist(shard, partition, id, prepared).await?;
        self.complete(shard, partition, id, prepared).await
    }

    /// KIP-890 part 1: `Ok` if `partition` is in `id`'s ongoing transaction
    /// at this producer id and epoch.
    pub fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &PartitionId,
    ) -> Result<(), i16> {
        let txns = self.txns.borrow();
        let Some(entry) = txns.get(id) else {
            return Err(ResponseError::InvalidProducerIdMapping.code());
        };
        let meta = &entry.meta;
        if producer_id != meta.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping.code());
        }
        if epoch != meta.epoch {
            return Err(ResponseError::InvalidProducerEpoch.code());
        }
        let key = (partition.topic.to_string(), partition.partition);
        if meta.state != TxnState::Ongoing || !meta.partitions.contains(&key) {
            return Err(ResponseError::InvalidTxnState.code());
        }
        Ok(())
    }

    /// Checks a TxnOffsetCommit's producer against `id`'s current one.
    pub fn check_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<(), i16> {
        let txns = self.txns.borrow();
        let entry = txns
            .get(id)
            .ok_or(ResponseError::InvalidProducerIdMapping.code())?;
        check_producer(&entry.meta, producer_id, epoch)
    }

    /// The metadata of `id`, if this shard coordinates it.
    pub fn describe(&self, id: &str) -> Option<TxnMeta> {
        self.current(id)
    }

    /// Loads every state partition this shard owns.
    pub async fn load_owned(&self, shard: &Rc<Shard>) {
        let snapshot = shard.snapshot();
        if let Some(topic) = snapshot.topic(TXN_TOPIC) {
            for partition in 0..topic.partition_count() {
                if snapshot.shard_for(TXN_TOPIC, partition) == Some(shard.id) {
                    let _ = self.ready(shard, partition).await;
                }
            }
        }
    }

    /// Every id this shard has loaded.
    pub fn list(&self) -> Vec<TxnView> {
        self.txns
            .borrow()
            .iter()
            .map(|(id, e)| TxnView {
                transactional_id: id.clone(),
                meta: e.meta.clone(),
            })
            .collect()
    }

    /// Loads the state partitions this shard owns, aborts transactions past
    /// their timeout (fencing their producer), finishes Prepare states a
    /// crash or a failed marker write left behind, and expires idle ids.
    pub async fn sweep(&self, shard: &Rc<Shard>) {
        self.load_owned(shard).await;
        self.finish_due(shard).await;
        let expiration_ms = i64::try_from(shard.config.txn.id_expiration_ms).unwrap_or(i64::MAX);
        self.expire_idle(shard, expiration_ms).await;
    }

    /// Aborts timed-out transactions and finishes Prepare states.
    async fn finish_due(&self, shard: &Rc<Shard>) {
        let now = now_ms();
        let due: Vec<(String, i32)> = self
            .txns
            .borrow()
            .iter()
            .filter(|(_, e)| needs_attention(&e.meta, now))
            .map(|(id, e)| (id.clone(), e.partition))
            .collect();
        for (id, partition) in due {
            let lock = self.lock_for(&id);
            let _serial = lock.lock().await;
            let Some(meta) = self.current(&id) else {
                continue;
            };
            if !needs_attention(&meta, now_ms()) {
                continue;
            }
            let result = if meta.state == TxnState::Ongoing {
                info!(transactional_id = %id, producer_id = meta.producer_id, timeout_ms = meta.timeout_ms, "transaction timed out: aborting it and fencing its producer");
                self.abort_fencing(shard, partition, &id, meta).await
            } else {
                info!(transactional_id = %id, state = meta.state.name(), "finishing a transaction's markers");
                self.complete(shard, partition, &id, meta).await
            };
            if let Err(code) = result {
                warn!(transactional_id = %id, code, "transaction not finished; retrying at the next sweep");
            }
        }
    }
}

impl TxnCoordinator {
    /// Forgets the ids with no transaction open whose last change is older
    /// than `expiration_ms` (Kafka's transactional.id.expiration.ms): a
    /// tombstone goes to `__transaction_state` first, so a restart does not
    /// bring them back. A producer using an expired id later gets a new
    /// producer id from InitProducerId, as with Kafka.
    async fn expire_idle(&self, shard: &Rc<Shard>, expiration_ms: i64) {
        let now = now_ms();
        let due: Vec<(String, i32)> = self
            .txns
            .borrow()
            .iter()
            .filter(|(_, e)| expired(&e.meta, now, expiration_ms))
            .map(|(id, e)| (id.clone(), e.partition))
            .collect();
        for (id, partition) in due {
            let lock = self.lock_for(&id);
            let serial = lock.lock().await;
            if !self
                .current(&id)
                .is_some_and(|meta| expired(&meta, now_ms(), expiration_ms))
            {
                continue;
            }
            let tombstone = (encode_key(&id), None);
            if let Err(code) =
                store::append_to(shard, TXN_TOPIC, partition, &[tombstone], None).await
            {
                warn!(transactional_id = %id, code, "expiring a transactional id failed; retrying at the next sweep");
                continue;
            }
            self.txns.borrow_mut().remove(&id);
            info!(transactional_id = %id, "transactional id expired (transactional.id.expiration.ms)");
            drop(serial);
            // Nobody else waits on this id's lock (only the map and this
            // function hold it): drop it so idle ids do not pile up.
            if Rc::strong_count(&lock) == 2 {
                self.id_locks.borrow_mut().remove(&id);
            }
        }
    }
}

/// Whether `meta` has no transaction open and has been idle past
/// `expiration_ms`.
fn expired(meta: &TxnMeta, now: i64, expiration_ms: i64) -> bool {
    let idle = matches!(
        meta.state,
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
    );
    idle && now.saturating_sub(meta.update_ms) > expiration_ms
}

fn needs_attention(meta: &TxnMeta, now: i64) -> bool {
    match meta.state {
        TxnState::Ongoing => now > meta.start_ms.saturating_add(i64::from(meta.timeout_ms)),
        TxnState::PrepareCommit | TxnState::PrepareAbort => true,
        _ => false,
    }
}

/// A new producer id from the metadata owner's durable allocator (shard 0),
/// or the Kafka error for the client.
pub async fn allocate_producer_id(shard: &Rc<Shard>) -> Result<i64, i16> {
    let allocated = shard
        .run_on(METADATA_OWNER_SHARD, |shard| async move {
            let member = shard.cluster_member();
            match member {
                Some(member) => {
                    let block = |_| async move {
                        let start = member.producer_id_block(PRODUCER_ID_BLOCK_SIZE).await?;
                        Ok::<_, String>((start, start + PRODUCER_ID_BLOCK_SIZE))
                    };
                    shard.producer_ids.allocate_with(block).await
                }
                None => shard
                    .producer_ids
                    .allocate()
                    .await
                    .map_err(|e| e.to_string()),
            }
        })
        .await;
    match allocated {
        Some(Ok(id)) => Ok(id),
        Some(Err(e)) => {
            warn!("producer id allocation failed: {e}");
            Err(ResponseError::KafkaStorageError.code())
        }
        None => Err(ResponseError::CoordinatorNotAvailable.code()),
    }
}
