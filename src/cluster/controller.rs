//! The controller: the Raft node of a voter, on shard 0, and what the
//! active one does for brokers.
//!
//! - Answers [`BrokerRequest`]s (`cluster::rpc`) when it is the Raft
//!   leader; a follower answers `NotController` with the leader's address.
//! - Keeps each broker's last heartbeat in memory (as Kafka's controller
//!   does: liveness is not replicated) and fences a broker whose last one
//!   is older than `broker.session.timeout.ms`. A newly elected controller
//!   starts every clock at its election, so a change of controller fences
//!   no one by itself.
//! - Names the cluster (`InitCluster`) when the log has no id yet, and
//!   adds its `--initial-user` when the cluster has no SASL user yet.
//! - Serialises proposals: a change is checked against the current state
//!   and its commands written before the next change is checked, so two
//!   CreateTopics of one name cannot both pass the check.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;
use tracing::{info, warn};

use super::plan::plan;
use super::raft::types::{ClusterCommand, NodeId};
use super::raft::ClusterStateMachine;
use super::rpc::{BrokerRequest, BrokerResponse};
use super::transport::ControllerNode;
use crate::metadata::LogDefaults;

/// How often the active controller looks for brokers to fence.
pub const FENCE_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// One voter's controller (shard 0 of a voter node).
pub struct Controller {
    /// This node's id.
    pub node_id: NodeId,
    /// The Raft node.
    pub raft: ControllerNode,
    /// Its state machine (the replicated cluster state).
    pub state_machine: ClusterStateMachine,
    /// `broker.session.timeout.ms`.
    session_timeout: Duration,
    /// The broker's static log defaults (TOML), for change checks.
    pub(super) static_defaults: LogDefaults,
    /// Last heartbeat per broker; reset when this node becomes leader.
    heartbeats: RefCell<HashMap<i32, Instant>>,
    /// The term the heartbeat clocks were started in.
    clocks_term: RefCell<Option<u64>>,
    /// Serialises check-and-write of proposals.
    pub(super) proposals: futures::lock::Mutex<()>,
    /// When leaderships move back to preferred replicas
    /// (`auto.leader.rebalance.enable`); `None`: never by itself.
    pub(super) rebalance: Option<RebalancePolicy>,
    /// `--initial-user` and its credential, added while the cluster has
    /// no user (`security::initial_user`).
    initial_user: RefCell<Option<(String, crate::security::scram::ScramCredential)>>,
}

/// The automatic preferred-leader rebalance's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalancePolicy {
    /// How often the imbalance is checked
    /// (`leader.imbalance.check.interval.seconds`).
    pub every: Duration,
    /// The share of a broker's preferred partitions that may be led
    /// elsewhere before they move back, percent, 0..=100
    /// (`leader.imbalance.per.broker.percentage`).
    pub imbalance_percent: u32,
}

impl Controller {
    /// Sets the user to add while the cluster has none.
    pub fn set_initial_user(
        &self,
        user: Option<(String, crate::security::scram::ScramCredential)>,
    ) {
        *self.initial_user.borrow_mut() = user;
    }

    /// A controller over a started Raft node.
    pub fn new(
        node_id: NodeId,
        raft: ControllerNode,
        state_machine: ClusterStateMachine,
        session_timeout: Duration,
        static_defaults: LogDefaults,
        rebalance: Option<RebalancePolicy>,
    ) -> Controller {
        Controller {
            node_id,
            raft,
            state_machine,
            session_timeout,
            static_defaults,
            heartbeats: RefCell::new(HashMap::new()),
            clocks_term: RefCell::new(None),
            proposals: futures::lock::Mutex::new(()),
            rebalance,
            initial_user: RefCell::new(None),
        }
    }

    /// The leader's node id and controller address, as this node knows them.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let leader = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .get_node(&leader)
            .map(|n| n.addr.clone())?;
        Some((leader, addr))
    }

    /// Whether this node is the active controller.
    pub fn is_leader(&self) -> bool {
        self.leader().is_some_and(|(id, _)| id == self.node_id)
    }

    /// The applied log index of this node's state machine.
    pub fn applied_index(&self) -> u64 {
        self.state_machine.last_applied().map_or(0, |l| l.index)
    }

    /// Answers one broker request.
    pub async fn handle(&self, request: BrokerRequest) -> BrokerResponse {
        if !self.is_leader() {
            return BrokerResponse::NotController {
                leader_addr: self.leader().map(|(_, addr)| addr),
            };
        }
        self.start_clocks_if_new_term();
        match request {
            BrokerRequest::Register {
                id,
                host,
                port,
                shards,
                endpoints,
            } => {
                let command = ClusterCommand::RegisterBroker {
                    id,
                    host,
                    port,
                    shards,
                    endpoints,
                };
                match self.write(command).await {
                    Ok((index, epoch)) => {
                        self.heartbeats.borrow_mut().insert(id, Instant::now());
                        info!(broker = id, epoch, "broker registered");
                        BrokerResponse::Registered { epoch, index }
                    }
                    Err(message) => BrokerResponse::Failed { message },
                }
            }
            BrokerRequest::Heartbeat { id, epoch } => {
                let current = self.state_machine.read(|state| {
                    state
                        .brokers
                        .get(&id)
                        .is_some_and(|b| !b.fenced && b.epoch == epoch)
                });
                if current {
                    self.heartbeats.borrow_mut().insert(id, Instant::now());
                }
                BrokerResponse::HeartbeatAck {
                    fenced: !current,
                    applied_index: self.applied_index(),
                    controller_id: self.node_id as i32,
                }
            }
            BrokerRequest::ControlledShutdown { id } => {
                self.heartbeats.borrow_mut().remove(&id);
                match self.write(ClusterCommand::FenceBroker { id }).await {
                    Ok(_) => {
                        info!(broker = id, "controlled shutdown: broker fenced");
                        BrokerResponse::Done
                    }
                    Err(message) => BrokerResponse::Failed { message },
                }
            }
            BrokerRequest::Propose { change } => self.propose(change).await,
            BrokerRequest::DescribeQuorum => BrokerResponse::Quorum(super::quorum::status(self)),
            BrokerRequest::FetchState { have_index } => {
                let applied_index = self.applied_index();
                let state =
                    (applied_index > have_index).then(|| Box::new(self.state_machine.state()));
                BrokerResponse::State {
                    applied_index,
                    state,
                }
            }
            BrokerRequest::AlterPartition {
                id,
                topic,
                partition,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let _serial = self.proposals.lock().await;
                let refused = self.state_machine.read(|state| {
                    state.check_alter_partition(
                        id,
                        &topic,
                        partition,
                        (leader_epoch, partition_epoch),
                        &isr,
                    )
                });
                if let Some(error) = refused {
                    return BrokerResponse::PartitionAltered {
                        code: error.code(),
                        partition_epoch,
                        index: 0,
                    };
                }
                let command = ClusterCommand::AlterPartition {
                    topic: topic.clone(),
                    partition,
                    leader_epoch,
                    partition_epoch,
                    isr: isr.clone(),
                };
                match self.write(command).await {
                    // Not applied (value 0: partition epochs after a change
                    // start at 1): a fence moved the partition meanwhile.
                    Ok((index, 0)) => BrokerResponse::PartitionAltered {
                        code: kafka_protocol::ResponseError::InvalidUpdateVersion.code(),
                        partition_epoch,
                        index,
                    },
                    Ok((index, epoch)) => {
                        info!(broker = id, %topic, partition, ?isr, "ISR changed");
                        BrokerResponse::PartitionAltered {
                            code: 0,
                            partition_epoch: epoch as i32,
                            index,
                        }
                    }
                    Err(message) => BrokerResponse::Failed { message },
                }
            }
            BrokerRequest::ElectLeaders { kind, partitions } => {
                self.elect_leaders(kind, partitions).await
            }
            BrokerRequest::AllocateProducerIds { count } => {
                match self
                    .write(ClusterCommand::AllocateProducerIds { count })
                    .await
                {
                    Ok((_, start)) => BrokerResponse::ProducerIds { start },
                    Err(message) => BrokerResponse::Failed { message },
                }
            }
        }
    }

    /// Checks `change` and writes its commands, one change at a time.
    async fn propose(&self, change: crate::shard::MetaChange) -> BrokerResponse {
        let _serial = self.proposals.lock().await;
        let state = self.state_machine.state();
        let commands = match plan(&state, &change, &self.static_defaults) {
            Ok(commands) => commands,
            Err((code, message)) => {
                return BrokerResponse::Proposed {
                    code,
                    message,
                    index: 0,
                }
            }
        };
        let mut index = self.applied_index();
        for command in commands {
            match self.write(command).await {
                Ok((at, _)) => index = at,
                Err(message) => return BrokerResponse::Failed { message },
            }
        }
        BrokerResponse::Proposed {
            code: 0,
            message: None,
            index,
        }
    }

    /// Writes one command; its log index and response value once applied.
    pub(super) async fn write(&self, command: ClusterCommand) -> Result<(u64, i64), String> {
        let written = self
            .raft
            .client_write(command)
            .await
            .map_err(|e| e.to_string())?;
        Ok((written.log_id.index, written.data.value))
    }

    /// Registered, unfenced brokers that are not `voters`, by id, with
    /// their last heartbeat this term (DescribeQuorum's observers).
    pub(super) fn observed_brokers(&self, voters: &[u64]) -> Vec<(i32, Option<Instant>)> {
        let clocks = self.heartbeats.borrow();
        self.state_machine.read(|state| {
            state
                .brokers
                .iter()
                .filter(|(id, b)| !b.fenced && !voters.contains(&(**id as u64)))
                .map(|(id, _)| (*id, clocks.get(id).copied()))
                .collect()
        })
    }

    /// On a new term as leader, every broker's clock starts now.
    fn start_clocks_if_new_term(&self) {
        let term = self.raft.metrics().borrow_watched().current_term;
        if *self.clocks_term.borrow() == Some(term) {
            return;
        }
        *self.clocks_term.borrow_mut() = Some(term);
        let now = Instant::now();
        let mut clocks = self.heartbeats.borrow_mut();
        clocks.clear();
        self.state_machine.read(|state| {
            for id in state.brokers.keys() {
                clocks.insert(*id, now);
            }
        });
    }

    /// Runs on shard 0 for the life of the node: while leader, names the
    /// cluster if needed and fences brokers whose heartbeats stopped.
    pub async fn run_duties(self: Rc<Self>) {
        let mut rebalanced_at = Instant::now();
        loop {
            glommio::timer::sleep(FENCE_CHECK_INTERVAL).await;
            if !self.is_leader() {
                continue;
            }
            self.start_clocks_if_new_term();
            if self.state_machine.read(|state| state.cluster_id.is_empty()) {
                let cluster_id = crate::metadata::new_cluster_id();
                if let Err(e) = self.write(ClusterCommand::InitCluster { cluster_id }).await {
                    warn!("cannot name the cluster: {e}");
                }
            }
            self.add_initial_user().await;
            for id in self.expired_brokers() {
                warn!(
                    broker = id,
                    "no heartbeat for {} ms: fencing the broker",
                    self.session_timeout.as_millis()
                );
                if let Err(e) = self.write(ClusterCommand::FenceBroker { id }).await {
                    warn!(broker = id, "fencing failed: {e}");
                }
            }
            self.elect_unclean().await;
            if self
                .rebalance
                .is_some_and(|r| rebalanced_at.elapsed() >= r.every)
            {
                rebalanced_at = Instant::now();
                self.rebalance().await;
            }
        }
    }

    /// Adds `--initial-user` when the cluster has no user, once: under
    /// the proposal lock, so an AlterUserScramCredentials in between is
    /// not overwritten.
    async fn add_initial_user(&self) {
        let Some((name, credential)) = self.initial_user.borrow().clone() else {
            return;
        };
        let _serial = self.proposals.lock().await;
        if !self.state_machine.read(|state| state.users.is_empty()) {
            self.initial_user.borrow_mut().take();
            return;
        }
        let mut users = crate::security::ScramUsers::new();
        users
            .entry(name.clone())
            .or_default()
            .insert(crate::security::scram::ScramMechanism::Sha512, credential);
        match self.write(ClusterCommand::SetUsers { users }).await {
            Ok(_) => {
                info!("initial user {name} added to the cluster (SCRAM-SHA-512)");
                self.initial_user.borrow_mut().take();
            }
            Err(e) => warn!("cannot add the initial user {name}: {e}"),
        }
    }

    /// Unfenced brokers whose last heartbeat is older than the session.
    fn expired_brokers(&self) -> Vec<i32> {
        let now = Instant::now();
        let mut clocks = self.heartbeats.borrow_mut();
        self.state_machine.read(|state| {
            state
                .brokers
                .iter()
                .filter(|(_, b)| !b.fenced)
                .filter(|(id, _)| {
                    let last = *clocks.entry(**id).or_insert(now);
                    now.duration_since(last) > self.session_timeout
                })
                .map(|(id, _)| *id)
                .collect()
        })
    }
}
