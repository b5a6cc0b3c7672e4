//! The per-core runtime: one glommio executor per shard, pinned to a CPU.
//!
//! A [`Shard`] is `!Send` and lives on its executor only. It holds the
//! metadata snapshot it reads without waiting, the partitions it owns, and a
//! sender to every shard (itself included) — a full mesh of channels.
//! Requests that name partitions are split by owner: a partition on this
//! shard is a direct call, one elsewhere is a [`ShardMsg`] answered through a
//! oneshot channel. Handlers send all of a request's partition operations at
//! once and await them together, then merge the answers in request order.
//!
//! The channels are `futures` unbounded channels: they are `Send`. A task
//! waiting on one never lends its glommio waker to the sending thread:
//! every cross-thread wait goes through [`cross_wake`] (`cross_thread`),
//! which hands the sender a thread-safe waker that queues the wake-up for
//! the shard's own pump task (glommio's foreign waker drop could free a
//! task twice; the module says how). What bounds the channels is upstream:
//! each connection has a bounded number of requests in flight.

pub mod cross_wake;
pub mod fifo_lock;
mod housekeeping;
pub mod internal_topic;
mod messages;
mod meta_owner;
mod partition;
pub mod placement;
mod runtime;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use kafka_protocol::ResponseError;

pub use housekeeping::{now_ms, HOUSEKEEPING_SHARES};
pub use messages::{
    MetaChange, MetaResult, PartitionOp, PartitionReply, ProduceOrigin, ShardJob, ShardMsg,
    DEFAULT_REPLICATION,
};
pub use meta_owner::next_snapshot;
pub use partition::{check_leader_epoch, Partition, NO_LEADER_EPOCH_CHECK, PENDING_BYTES_MAX};
pub(crate) use partition::{IsrProposal, RoleChange};
pub use runtime::{run, run_supervised, StartError};

use crate::config::Config;
use crate::metadata::{PartitionId, PartitionLocation, Snapshot};
use cross_wake::cross_thread;

/// The sending side of one shard's inbox.
pub type ShardSender = mpsc::UnboundedSender<ShardMsg>;

/// One shard's state. `!Send`: it never leaves its executor.
pub struct Shard {
    /// This shard's index.
    pub id: usize,
    /// Broker configuration.
    pub config: Arc<Config>,
    peers: Vec<ShardSender>,
    snapshot: RefCell<Arc<Snapshot>>,
    partitions: RefCell<HashMap<PartitionId, Rc<Partition>>>,
    /// Serializes metadata changes; only used on the metadata owner.
    meta_lock: futures::lock::Mutex<()>,
    /// The consumer groups this shard coordinates.
    pub groups: crate::group::GroupCoordinator,
    /// Producer id allocation; used on the metadata owner (shard 0) only.
    pub producer_ids: crate::producer::ProducerIdAllocator,
    /// The transactional ids this shard coordinates.
    pub txns: crate::txn::TxnCoordinator,
    /// Fetch sessions (KIP-227) of the connections this shard accepted.
    pub fetch_sessions: RefCell<crate::fetch::FetchSessionCache>,
    /// This node's cluster membership (shard 0 of a cluster node only).
    cluster: RefCell<Option<Rc<crate::cluster::member::Member>>>,
    /// The followers' fetchers of this shard (cluster only).
    pub replication: crate::replication::ShardReplication,
    /// Set when this shard starts to stop: connections read no new request
    /// (see `server::connection`), so the drain ends once the requests
    /// already read are answered, as Kafka closes its sockets on shutdown.
    stopping: std::cell::Cell<bool>,
}

/// The shard that makes metadata changes.
pub const METADATA_OWNER_SHARD: usize = 0;

impl Shard {
    fn new(id: usize, config: Arc<Config>, peers: Vec<ShardSender>) -> Shard {
        let producer_ids = crate::producer::ProducerIdAllocator::new(&config.data_dir);
        let fetch_sessions = crate::fetch::FetchSessionCache::new(
            crate::fetch::session::FETCH_SESSIONS_PER_SHARD_MAX,
            id,
            peers.len(),
            uuid::Uuid::new_v4().as_u128() as u32,
        );
        Shard {
            id,
            config,
            peers,
            snapshot: RefCell::new(Arc::new(Snapshot::default())),
            partitions: RefCell::new(HashMap::new()),
            meta_lock: futures::lock::Mutex::new(()),
            groups: crate::group::GroupCoordinator::new(),
            producer_ids,
            txns: crate::txn::TxnCoordinator::default(),
            fetch_sessions: RefCell::new(fetch_sessions),
            cluster: RefCell::new(None),
            replication: Default::default(),
            stopping: std::cell::Cell::new(false),
        }
    }

    /// Whether this shard is stopping (no new requests are read).
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Marks this shard as stopping; see [`Shard::is_stopping`].
    pub fn begin_stopping(&self) {
        self.stopping.set(true);
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.peers.len()
    }

    /// This node's cluster membership, on shard 0 of a cluster node.
    pub fn cluster_member(&self) -> Option<Rc<crate::cluster::member::Member>> {
        self.cluster.borrow().clone()
    }

    /// Records the membership `cluster::start::join` made (shard 0).
    pub fn set_cluster_member(&self, member: Rc<crate::cluster::member::Member>) {
        *self.cluster.borrow_mut() = Some(member);
    }

    /// The current metadata snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Whether any client quota is configured: the one branch the request
    /// path pays for quotas when there are none (`quota`).
    #[inline]
    pub fn quotas_configured(&self) -> bool {
        !self.snapshot.borrow().client_quotas.is_empty()
    }

    /// Every partition this shard owns (metrics, admin).
    pub fn local_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions.borrow().values().cloned().collect()
    }

    /// A partition this shard owns.
    pub fn local_partition(&self, id: &PartitionId) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(id).cloned()
    }

    /// Runs `op` on the partition's owner: a direct call when that is this
    /// shard, a message otherwise.
    pub async fn call_partition(
        self: &Rc<Self>,
        id: PartitionId,
        op: PartitionOp,
    ) -> PartitionReply {
        self.send_partition(id, op).await
    }

    /// Hands `op` to the partition's owner now (before returning) and gives
    /// the future of its answer. Operations sent to one partition from one
    /// shard start there in the order they were sent (a FIFO run queue on
    /// the owner, or the FIFO channel to it), which is how a connection's
    /// produces to a partition keep their order (`server::request_order`).
    pub fn send_partition(
        self: &Rc<Self>,
        id: PartitionId,
        op: PartitionOp,
    ) -> impl std::future::Future<Output = PartitionReply> + 'static {
        let sent = self.dispatch_partition(id, op);
        async move {
            match sent {
                Ok(answer) => cross_thread(answer).await.unwrap_or(PartitionReply::Error(
                    ResponseError::NotLeaderOrFollower.code(),
                )),
                Err(reply) => reply,
            }
        }
    }

    fn dispatch_partition(
        self: &Rc<Self>,
        id: PartitionId,
        op: PartitionOp,
    ) -> Result<oneshot::Receiver<PartitionReply>, PartitionReply> {
        let location = self.snapshot.borrow().locate(&id.topic, id.partition);
        let owner = match location {
            PartitionLocation::Local(owner) => owner,
            // Another broker leads it: the client refreshes its metadata.
            PartitionLocation::Remote { .. } => {
                return Err(PartitionReply::Error(
                    ResponseError::NotLeaderOrFollower.code(),
                ))
            }
            PartitionLocation::Unknown => {
                return Err(PartitionReply::Error(
                    ResponseError::UnknownTopicOrPartition.code(),
                ))
            }
        };
        let (reply, answer) = oneshot::channel();
        if owner == self.id {
            // A detached task, as on the remote path: the caller (a
            // connection's request task) is cancelled when its client goes
            // away, and an append or flush must never stop half-way.
            // glommio's run queue is FIFO, so ops spawned here start in
            // the order they were sent.
            let me = self.clone();
            glommio::spawn_local(async move { me.execute_local(id, op, reply).await }).detach();
        } else {
            crate::ops::metrics::cross_shard_message();
            let sent = self.peers[owner].unbounded_send(ShardMsg::Partition { id, op, reply });
            if sent.is_err() {
                return Err(PartitionReply::Error(
                    ResponseError::NotLeaderOrFollower.code(),
                ));
            }
        }
        Ok(answer)
    }

    /// Starts `f` on shard `target` without waiting for it (a detached task
    /// there; here when `target` is this shard). Dropped, with everything
    /// it owns, if the target is gone or stopping.
    pub fn send_job<F, Fut>(self: &Rc<Self>, target: usize, f: F)
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        if target == self.id {
            glommio::spawn_local(f(self.clone())).detach();
            return;
        }
        crate::ops::metrics::cross_shard_message();
        let job: ShardJob = Box::new(move |shard| Box::pin(f(shard)));
        if let Some(peer) = self.peers.get(target) {
            let _ = peer.unbounded_send(ShardMsg::Run(job));
        }
    }

    /// Runs `f` on shard `target` and returns its result: a direct call when
    /// `target` is this shard, a [`ShardMsg::Run`] otherwise. `f` is `Send`
    /// (it crosses threads); the future it makes runs on the target shard
    /// and may be `!Send`. `None` if the target shard is gone.
    pub async fn run_on<F, Fut, T>(self: &Rc<Self>, target: usize, f: F) -> Option<T>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if target == self.id {
            return Some(f(self.clone()).await);
        }
        let (reply, answer) = oneshot::channel();
        crate::ops::metrics::cross_shard_message();
        let job: ShardJob = Box::new(move |shard| {
            Box::pin(async move {
                let _ = reply.send(f(shard).await);
            })
        });
        self.peers
            .get(target)?
            .unbounded_send(ShardMsg::Run(job))
            .ok()?;
        cross_thread(answer).await.ok()
    }

    async fn execute_local(
        self: &Rc<Self>,
        id: PartitionId,
        op: PartitionOp,
        reply: oneshot::Sender<PartitionReply>,
    ) {
        match self.local_partition(&id) {
            Some(p) => match op {
                PartitionOp::Produce {
                    records,
                    acks,
                    timeout_ms,
                    origin:
                        ProduceOrigin::Transactional {
                            transactional_id,
                            producer_id,
                            epoch,
                        },
                } => {
                    // KIP-890 part 1: verified with the coordinator unless
                    // the transaction is already open here.
                    let verify = crate::txn::verify_partition(
                        self,
                        transactional_id,
                        producer_id,
                        epoch,
                        id,
                    );
                    let answer = p
                        .produce_transactional(
                            records,
                            (acks, timeout_ms),
                            (producer_id, epoch),
                            verify,
                        )
                        .await;
                    let _ = reply.send(answer);
                }
                PartitionOp::ReplicaFetch {
                    replica_id,
                    offset,
                    max_bytes,
                    last_fetched_epoch,
                } => {
                    let fetch = (offset, last_fetched_epoch, max_bytes);
                    let answer = self.replica_fetch(&p, replica_id, fetch).await;
                    let _ = reply.send(answer);
                }
                op => p.execute(op, reply).await,
            },
            // Not (yet or any more) open here: the client refreshes metadata and retries.
            None => {
                let _ = reply.send(PartitionReply::Error(
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
            }
        }
    }

    /// Handles one message from the mesh. Partition operations run as their
    /// own tasks so a long-poll or a flush never holds up the inbox.
    async fn handle_message(self: &Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Partition { id, op, reply } => {
                let me = self.clone();
                glommio::spawn_local(async move { me.execute_local(id, op, reply).await }).detach();
            }
            ShardMsg::ApplySnapshot { snapshot, reply } => {
                self.apply_snapshot(snapshot).await;
                let _ = reply.send(());
            }
            ShardMsg::Meta { change, reply } => {
                let me = self.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(me.change_metadata_here(change).await);
                })
                .detach();
            }
            ShardMsg::Run(job) => {
                glommio::spawn_local(job(self.clone())).detach();
            }
            ShardMsg::Shutdown { reply, .. } => {
                self.replication.stop_all();
                self.close_all_partitions().await;
                let _ = reply.send(());
            }
        }
    }
}
