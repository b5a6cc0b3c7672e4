//! A broker's membership in the cluster, on shard 0 of every node.
//!
//! - Registers with the active controller, then heartbeats every
//!   [`HEARTBEAT_INTERVAL`]; a heartbeat answered "fenced" (it missed its
//!   session, or the controller lost it) makes it register again.
//! - Keeps the shards' snapshot in step with the cluster state: a voter
//!   reads its own state machine (checked every [`SYNC_INTERVAL`]), a
//!   broker-only node fetches the state from the controller when a
//!   heartbeat says it is newer. Nothing is published before the
//!   registration is applied locally, so the shards never see the
//!   intermediate states of a log being replayed at start-up.
//! - Forwards metadata changes (CreateTopics...) to the controller and
//!   answers them once this broker's shards have the result, as a single
//!   node answers once every shard applied it.
//! - Asks the controller to move its leaderships on a clean stop.
//!
//! The controller is found by trying the last known leader, then every
//! voter in turn, following `NotController` hints.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::Either;
use kafka_protocol::ResponseError;
use tracing::{error, info, warn};

use super::controller::Controller;
use super::identity::{self, NodeIdentity};
use super::quorum::{self, QuorumStatus};
use super::rpc::{call_app, BrokerRequest, BrokerResponse};
use super::state::ClusterState;
use super::view::snapshot_of;
use crate::metadata::LogDefaults;
use crate::shard::{MetaChange, MetaResult, Shard};

/// Kafka's `broker.heartbeat.interval.ms` is 2 s; ours is shorter because
/// a broker-only node also learns of new metadata through it.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(1_000);
/// How often a voter compares its state machine with what it published.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(20);
/// Bound on one request to a controller.
pub const CONTROLLER_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one heartbeat or registration attempt: a controller that went
/// silent (paused, cut off) must not hold the broker past its session
/// timeout (2 s at least) before it tries the next voter.
pub const HEARTBEAT_CALL_TIMEOUT: Duration = Duration::from_millis(700);
/// How long a forwarded change waits for its result to reach this
/// broker's shards before it answers REQUEST_TIMED_OUT.
pub const CHANGE_VISIBLE_WAIT_MAX: Duration = Duration::from_secs(15);
/// Longest a stopping broker waits for the controller to move its
/// leaderships (well inside the smallest `shutdown_timeout_ms`).
pub const CONTROLLED_SHUTDOWN_WAIT_MAX: Duration = Duration::from_secs(5);
/// Controllers tried per call (hints followed) before giving up.
const CONTROLLER_ATTEMPTS_MAX: usize = 6;
/// Pause between polls while waiting for a change to be published.
const PUBLISH_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// False from the start of a cluster node until it is registered and has
/// published the cluster state; true on a single node. `/v1/ready` reads it.
static MEMBER_READY: AtomicBool = AtomicBool::new(true);

/// Whether the node may be called ready (see [`MEMBER_READY`]).
pub fn member_ready() -> bool {
    MEMBER_READY.load(Ordering::Acquire)
}

/// A cluster node is starting: not ready until it has registered. Called
/// before the shards start, so none of them sees the single-node default.
pub fn mark_joining() {
    MEMBER_READY.store(false, Ordering::Release);
}

/// Waits (polling, any shard) until the node has registered and published
/// the cluster's metadata.
pub async fn wait_until_ready() {
    while !member_ready() {
        glommio::timer::sleep(PUBLISH_POLL_INTERVAL).await;
    }
}

/// Where this node is and how to reach the quorum.
pub struct MemberConfig {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised Kafka host and port.
    pub host: String,
    /// Advertised Kafka port.
    pub port: i32,
    /// Every listener's advertised endpoint.
    pub endpoints: Vec<crate::metadata::BrokerEndpoint>,
    /// Controller addresses of the voters.
    pub voters: Vec<String>,
    /// The static log defaults (TOML).
    pub static_defaults: LogDefaults,
}

/// One node's membership (shard 0).
pub struct Member {
    config: MemberConfig,
    /// This node's controller when it is a voter.
    controller: Option<Rc<Controller>>,
    leader_addr: RefCell<Option<String>>,
    /// Registration epoch, 0 while not registered.
    epoch: Cell<i64>,
    /// Log index the registration was applied at; nothing is published
    /// before the local state reaches it.
    registered_index: Cell<u64>,
    /// The broker-only node's copy of the state and its index.
    fetched: RefCell<(u64, Rc<ClusterState>)>,
    /// The last published state's log index.
    published_index: Cell<u64>,
    /// The active controller's node id, as published.
    controller_id: Cell<i32>,
    /// `meta/node.json` as last read or written.
    identity: RefCell<NodeIdentity>,
    /// Set when the node stops: nothing is published any more, so no
    /// snapshot reopens partitions while the shards close them.
    stopping: Cell<bool>,
}

impl Member {
    /// A member; `controller` is this node's own when it is a voter.
    pub fn new(
        config: MemberConfig,
        identity: NodeIdentity,
        controller: Option<Rc<Controller>>,
    ) -> Rc<Member> {
        mark_joining();
        Rc::new(Member {
            config,
            controller,
            leader_addr: RefCell::new(None),
            epoch: Cell::new(0),
            registered_index: Cell::new(u64::MAX),
            fetched: RefCell::new((0, Rc::new(ClusterState::default()))),
            published_index: Cell::new(0),
            controller_id: Cell::new(-1),
            identity: RefCell::new(identity),
            stopping: Cell::new(false),
        })
    }

    /// Whether this broker is registered (and not fenced since).
    pub fn registered(&self) -> bool {
        self.epoch.get() > 0
    }

    /// The registration epoch, 0 while not registered.
    pub fn epoch(&self) -> i64 {
        self.epoch.get()
    }

    /// The controller log index of the metadata the shards have.
    pub fn published_index(&self) -> u64 {
        self.published_index.get()
    }

    /// This node's controller, when it is a voter.
    pub fn controller(&self) -> Option<&Rc<Controller>> {
        self.controller.as_ref()
    }

    /// Sends `request` to the active controller.
    pub async fn call(&self, request: &BrokerRequest) -> Result<BrokerResponse, String> {
        let mut last_error = String::from("no controller voter configured");
        let mut candidates: Vec<String> = self.leader_addr.borrow().iter().cloned().collect();
        candidates.extend(self.config.voters.iter().cloned());
        let mut tried = 0;
        while let Some(addr) = candidates.first().cloned() {
            candidates.remove(0);
            tried += 1;
            if tried > CONTROLLER_ATTEMPTS_MAX.max(self.config.voters.len() + 1) {
                break;
            }
            let timeout = match request {
                BrokerRequest::Heartbeat { .. } | BrokerRequest::Register { .. } => {
                    HEARTBEAT_CALL_TIMEOUT
                }
                _ => CONTROLLER_CALL_TIMEOUT,
            };
            match call_app(&addr, request, timeout).await {
                Ok(BrokerResponse::NotController { leader_addr }) => {
                    last_error = format!("{addr} is not the active controller");
                    if let Some(leader) = leader_addr.filter(|l| *l != addr) {
                        candidates.insert(0, leader);
                    }
                }
                Ok(response) => {
                    *self.leader_addr.borrow_mut() = Some(addr);
                    return Ok(response);
                }
                Err(e) => last_error = format!("{addr}: {e}"),
            }
        }
        *self.leader_addr.borrow_mut() = None;
        Err(last_error)
    }

    /// Runs on shard 0 for the life of the node.
    pub async fn run(self: Rc<Self>, shard: Rc<Shard>) {
        if self.controller.is_some() {
            let me = self.clone();
            let on = shard.clone();
            glommio::spawn_local(async move { me.sync_loop(on).await }).detach();
        }
        loop {
            if let Err(e) = self.beat(&shard).await {
                warn!("cluster membership: {e}");
            }
            glommio::timer::sleep(HEARTBEAT_INTERVAL).await;
        }
    }

    /// One registration or heartbeat.
    async fn beat(&self, shard: &Rc<Shard>) -> Result<(), String> {
        if self.stopping.get() {
            return Ok(()); // fenced on purpose: do not register again
        }
        let id = self.config.node_id;
        if self.epoch.get() == 0 {
            let request = BrokerRequest::Register {
                id,
                host: self.config.host.clone(),
                port: self.config.port,
                shards: shard.shard_count() as u16,
                endpoints: self.config.endpoints.clone(),
            };
            match self.call(&request).await? {
                BrokerResponse::Registered { epoch, index } => {
                    info!(epoch, "registered with the controller");
                    self.registered_index.set(index);
                    self.epoch.set(epoch);
                    self.catch_up(shard, index).await;
                }
                other => return Err(format!("registration answered {other:?}")),
            }
            return Ok(());
        }
        let request = BrokerRequest::Heartbeat {
            id,
            epoch: self.epoch.get(),
        };
        match self.call(&request).await? {
            BrokerResponse::HeartbeatAck {
                fenced,
                applied_index,
                controller_id,
            } => {
                if fenced {
                    warn!("the controller fenced this broker: registering again");
                    // Not ready (/v1/ready) until registered again.
                    mark_joining();
                    self.epoch.set(0);
                    return Ok(());
                }
                if controller_id != self.controller_id.get() {
                    self.controller_id.set(controller_id);
                    self.publish_current(shard).await;
                }
                if self.controller.is_none() && applied_index > self.fetched.borrow().0 {
                    self.fetch_state(shard).await?;
                }
                Ok(())
            }
            other => Err(format!("heartbeat answered {other:?}")),
        }
    }

    /// After registering: waits until the local state has the
    /// registration, then publishes and reports ready.
    async fn catch_up(&self, shard: &Rc<Shard>, index: u64) {
        let deadline = Instant::now() + CHANGE_VISIBLE_WAIT_MAX;
        while self.local_index() < index && Instant::now() < deadline {
            if self.controller.is_none() {
                if let Err(e) = self.fetch_state(shard).await {
                    warn!("fetching the cluster state: {e}");
                }
            }
            glommio::timer::sleep(PUBLISH_POLL_INTERVAL).await;
        }
        self.publish_current(shard).await;
        MEMBER_READY.store(true, Ordering::Release);
    }

    /// The log index of the state this node can read.
    fn local_index(&self) -> u64 {
        match &self.controller {
            Some(c) => c.applied_index(),
            None => self.fetched.borrow().0,
        }
    }

    /// Voters: publishes whenever the state machine moved.
    async fn sync_loop(&self, shard: Rc<Shard>) {
        loop {
            glommio::timer::sleep(SYNC_INTERVAL).await;
            if self.local_index() > self.published_index.get() {
                self.publish_current(&shard).await;
            }
        }
    }

    async fn fetch_state(&self, shard: &Rc<Shard>) -> Result<(), String> {
        let have_index = self.fetched.borrow().0;
        match self.call(&BrokerRequest::FetchState { have_index }).await? {
            BrokerResponse::State {
                applied_index,
                state: Some(state),
            } => {
                *self.fetched.borrow_mut() = (applied_index, Rc::new(*state));
                self.publish_current(shard).await;
                Ok(())
            }
            BrokerResponse::State { .. } => Ok(()),
            other => Err(format!("state fetch answered {other:?}")),
        }
    }

    /// Makes the shards' snapshot from the current state, once registered.
    async fn publish_current(&self, shard: &Rc<Shard>) {
        if self.stopping.get() {
            return;
        }
        let index = self.local_index();
        if index < self.registered_index.get() {
            return;
        }
        let state = match &self.controller {
            Some(c) => Rc::new(c.state_machine.state()),
            None => self.fetched.borrow().1.clone(),
        };
        if !self.check_cluster_id(shard, &state.cluster_id).await {
            return;
        }
        let controller_id = match &self.controller {
            Some(c) => c.leader().map_or(-1, |(id, _)| id as i32),
            None => self.controller_id.get(),
        };
        let next = |version| {
            snapshot_of(
                &state,
                self.config.node_id,
                shard.shard_count(),
                controller_id,
                &self.config.static_defaults,
                version,
            )
        };
        shard.publish_cluster_snapshot(next).await;
        self.published_index
            .set(self.published_index.get().max(index));
    }

    /// A data dir that served another cluster refuses this one: stops the
    /// node with a clear line rather than mixing two clusters' data.
    /// The first id seen is recorded (blocking I/O, off the shard thread).
    async fn check_cluster_id(&self, shard: &Rc<Shard>, cluster_id: &str) -> bool {
        if cluster_id.is_empty() {
            return false; // not named yet: nothing to publish
        }
        let identity = self.identity.borrow().clone();
        if identity.cluster_id.as_deref() == Some(cluster_id) {
            return true;
        }
        let (dir, id) = (shard.config.data_dir.clone(), cluster_id.to_string());
        let checked = glommio::executor()
            .spawn_blocking(move || identity::adopt_cluster_id(&dir, &identity, &id))
            .await;
        match checked {
            Ok(Some(adopted)) => {
                info!(cluster_id, "joined the cluster");
                *self.identity.borrow_mut() = adopted;
                true
            }
            Ok(None) => true,
            Err(e) => {
                error!("{e}");
                std::process::exit(identity::EXIT_IDENTITY_MISMATCH);
            }
        }
    }

    /// A metadata change through the controller; answered once this
    /// broker's shards have its result.
    pub async fn change(&self, shard: &Rc<Shard>, change: MetaChange) -> MetaResult {
        let request = BrokerRequest::Propose { change };
        let index = match self.call(&request).await {
            Ok(BrokerResponse::Proposed { code: 0, index, .. }) => index,
            Ok(BrokerResponse::Proposed { code, message, .. }) => return (code, message),
            Ok(other) => return not_available(format!("controller answered {other:?}")),
            Err(e) => return not_available(e),
        };
        let deadline = Instant::now() + CHANGE_VISIBLE_WAIT_MAX;
        while self.published_index.get() < index {
            if Instant::now() >= deadline {
                return (
                    ResponseError::RequestTimedOut.code(),
                    Some(format!(
                        "change committed at {index} but not applied here yet"
                    )),
                );
            }
            if self.controller.is_none() {
                let _ = self.fetch_state(shard).await;
            } else if self.local_index() >= index {
                self.publish_current(shard).await;
            }
            glommio::timer::sleep(PUBLISH_POLL_INTERVAL).await;
        }
        (0, None)
    }

    /// Stops this node's Raft node (a voter) before the shard's executor
    /// ends, so its tasks finish their own way instead of being dropped
    /// mid-flight; bounded by [`CONTROLLED_SHUTDOWN_WAIT_MAX`].
    pub async fn stop_controller(&self) {
        let Some(controller) = &self.controller else {
            return;
        };
        let stopping = std::pin::pin!(controller.raft.shutdown());
        let waited = std::pin::pin!(glommio::timer::sleep(CONTROLLED_SHUTDOWN_WAIT_MAX));
        match futures::future::select(stopping, waited).await {
            Either::Left((Ok(()), _)) => info!("controller stopped"),
            Either::Left((Err(e), _)) => warn!("controller stop: {e}"),
            Either::Right(_) => warn!("controller did not stop in time"),
        }
    }

    /// Asks the controller to set a partition's ISR (AlterPartition) at
    /// the leader and partition epochs this leader holds. The new ISR
    /// reaches the shards in a snapshot, like every change.
    pub async fn alter_partition(
        &self,
        topic: String,
        partition: i32,
        (leader_epoch, partition_epoch): (i32, i32),
        isr: Vec<i32>,
    ) -> Result<(), String> {
        let request = BrokerRequest::AlterPartition {
            id: self.config.node_id,
            topic,
            partition,
            leader_epoch,
            partition_epoch,
            isr,
        };
        match self.call(&request).await? {
            BrokerResponse::PartitionAltered { code: 0, .. } => Ok(()),
            BrokerResponse::PartitionAltered { code, .. } => Err(format!(
                "controller refused: {:?}",
                kafka_protocol::ResponseError::try_from_code(code)
            )),
            other => Err(format!("AlterPartition answered {other:?}")),
        }
    }

    /// The quorum's status from the active controller: this node's own
    /// when it leads, else asked of the leader (only it knows each voter's
    /// progress).
    pub async fn describe_quorum(&self) -> Result<QuorumStatus, String> {
        if let Some(controller) = self.controller.as_ref().filter(|c| c.is_leader()) {
            return Ok(quorum::status(controller));
        }
        match self.call(&BrokerRequest::DescribeQuorum).await? {
            BrokerResponse::Quorum(status) => Ok(status),
            other => Err(format!("DescribeQuorum answered {other:?}")),
        }
    }

    /// ElectLeaders through the controller: each partition's outcome.
    pub async fn elect_leaders(
        &self,
        kind: i8,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<super::rpc::ElectionResult>, String> {
        match self
            .call(&BrokerRequest::ElectLeaders { kind, partitions })
            .await?
        {
            BrokerResponse::LeadersElected { results } => Ok(results),
            other => Err(format!("ElectLeaders answered {other:?}")),
        }
    }

    /// A block of `count` producer ids from the controller.
    pub async fn producer_id_block(&self, count: i64) -> Result<i64, String> {
        match self
            .call(&BrokerRequest::AllocateProducerIds { count })
            .await?
        {
            BrokerResponse::ProducerIds { start } => Ok(start),
            other => Err(format!("producer id block answered {other:?}")),
        }
    }

    /// Controlled shutdown: the controller moves this broker's leaderships
    /// (and fences it) before the shards stop.
    /// Bounded by [`CONTROLLED_SHUTDOWN_WAIT_MAX`]: without a quorum the
    /// stop goes on and the session timeout fences this broker instead.
    /// Publishing and heartbeats stop here too.
    pub async fn controlled_shutdown(&self) {
        let id = self.config.node_id;
        mark_joining();
        self.stopping.set(true);
        let request = BrokerRequest::ControlledShutdown { id };
        let asked = std::pin::pin!(self.call(&request));
        let waited = std::pin::pin!(glommio::timer::sleep(CONTROLLED_SHUTDOWN_WAIT_MAX));
        match futures::future::select(asked, waited).await {
            Either::Left((Ok(BrokerResponse::Done), _)) => {
                info!("controlled shutdown: leaderships moved")
            }
            Either::Left((Ok(other), _)) => warn!("controlled shutdown answered {other:?}"),
            Either::Left((Err(e), _)) => {
                warn!("controlled shutdown failed, the session timeout will fence: {e}")
            }
            Either::Right(_) => warn!(
                "no answer to controlled shutdown within {} ms: the session timeout will fence",
                CONTROLLED_SHUTDOWN_WAIT_MAX.as_millis()
            ),
        }
    }
}

fn not_available(message: String) -> MetaResult {
    warn!("metadata change not made: {message}");
    (ResponseError::NotController.code(), Some(message))
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Member(node {})", self.config.node_id)
    }
}
