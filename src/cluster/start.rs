//! Bringing a cluster node up on shard 0 (`shard::runtime` calls
//! [`join`] when `controller_quorum_voters` is set).
//!
//! A voter opens its Raft log under `<data_dir>/raft`, starts the Raft
//! node, asks the quorum to form (every voter proposes the same initial
//! membership; whichever call comes second is refused and ignored),
//! listens for the quorum and for brokers on its controller address, and
//! runs the controller's duties. Every node, voter or not, then runs its
//! [`Member`]: registration, heartbeats, metadata published to the shards.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft};
use tracing::{info, warn};

use super::controller::{Controller, RebalancePolicy};
use super::identity::NodeIdentity;
use super::member::{Member, MemberConfig};
use super::raft::{ClusterStateMachine, NodeId, RaftLogStore};
use super::rpc::ControllerApp;
use super::transport::{self, TcpNetwork};
use crate::config::Config;
use crate::shard::Shard;
use crate::storage::DmaDisk;

/// The Raft log's directory under the data dir.
pub const RAFT_DIR_NAME: &str = "raft";
/// Leader heartbeat to followers, ms. Small: the quorum is a few nodes
/// on one network and a new controller should be found within a second.
pub const RAFT_HEARTBEAT_MS: u64 = 100;
/// Election timeout range, ms: ≥ 5 heartbeats, as Raft's paper advises,
/// so one slow heartbeat on a loaded machine does not start an election.
pub const RAFT_ELECTION_TIMEOUT_MIN_MS: u64 = 500;
/// Upper end of the randomised election timeout, ms.
pub const RAFT_ELECTION_TIMEOUT_MAX_MS: u64 = 1_000;

/// Starts this node's part of the cluster on shard 0: the controller when
/// it is a voter, and its membership. Returns the member.
pub async fn join(shard: &Rc<Shard>, identity: NodeIdentity) -> Result<Rc<Member>, String> {
    let config = &shard.config;
    let node_id = config.node_id;
    let controller = match config.cluster.own_voter(node_id) {
        Some(_) => Some(start_controller(config).await?),
        None => None,
    };
    let endpoints = registered_endpoints(config);
    // The one address older code reads: the inter-broker listener's.
    let (host, port) = endpoints
        .iter()
        .find(|e| e.name == config.inter_broker.listener.name())
        .map_or(
            (config.advertised_host.clone(), config.advertised_port),
            |e| (e.host.clone(), e.port),
        );
    let member = Member::new(
        MemberConfig {
            node_id,
            host,
            port,
            endpoints,
            voters: config
                .cluster
                .voters
                .iter()
                .map(|v| v.addr.clone())
                .collect(),
            static_defaults: config.log_defaults.clone(),
        },
        identity,
        controller,
    );
    glommio::spawn_local(member.clone().run(shard.clone())).detach();
    Ok(member)
}

/// Every listener's advertised endpoint, as the broker registers them.
fn registered_endpoints(config: &Config) -> Vec<crate::metadata::BrokerEndpoint> {
    config
        .listeners()
        .into_iter()
        .map(|l| crate::metadata::BrokerEndpoint {
            name: l.protocol.name().to_string(),
            host: l.advertised_host,
            port: l.advertised_port,
            security_protocol: l.protocol.name().to_string(),
        })
        .collect()
}

async fn start_controller(config: &Config) -> Result<Rc<Controller>, String> {
    let node_id = config.node_id as NodeId;
    let listen = config
        .cluster
        .controller_listen
        .ok_or("a voter needs a controller listener")?;
    let raft_config = openraft::Config {
        cluster_name: "corestream".into(),
        heartbeat_interval: RAFT_HEARTBEAT_MS,
        election_timeout_min: RAFT_ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: RAFT_ELECTION_TIMEOUT_MAX_MS,
        ..openraft::Config::default()
    };
    let raft_config = Arc::new(
        raft_config
            .validate()
            .map_err(|e| format!("raft config: {e}"))?,
    );
    let dir = config.data_dir.join(RAFT_DIR_NAME);
    let log_store = RaftLogStore::open(DmaDisk, &dir)
        .await
        .map_err(|e| format!("raft log in {}: {e}", dir.display()))?;
    let state_machine = ClusterStateMachine::open(DmaDisk, &dir)
        .await
        .map_err(|e| format!("raft snapshot in {}: {e}", dir.display()))?;
    let raft = Raft::new(
        node_id,
        raft_config,
        TcpNetwork::new(node_id),
        log_store,
        state_machine.clone(),
    )
    .await
    .map_err(|e| format!("starting the raft node: {e}"))?;
    let listener = glommio::net::TcpListener::bind(listen)
        .map_err(|e| format!("cannot listen for the controller quorum on {listen}: {e}"))?;
    let controller = Rc::new(Controller::new(
        node_id,
        raft.clone(),
        state_machine,
        Duration::from_millis(config.cluster.broker_session_timeout_ms),
        config.log_defaults.clone(),
        config
            .cluster
            .auto_leader_rebalance_enable
            .then_some(RebalancePolicy {
                every: Duration::from_secs(config.cluster.leader_imbalance_check_interval_s),
                imbalance_percent: config.cluster.leader_imbalance_per_broker_percentage,
            }),
    ));
    let initial_user =
        crate::security::initial_user::for_cluster(config).map_err(|e| e.to_string())?;
    controller.set_initial_user(initial_user);
    glommio::spawn_local(transport::serve(
        listener,
        raft.clone(),
        Rc::new(ControllerApp(controller.clone())),
    ))
    .detach();
    let members: BTreeMap<NodeId, BasicNode> = config
        .cluster
        .voters
        .iter()
        .map(|v| {
            (
                v.id as NodeId,
                BasicNode {
                    addr: v.addr.clone(),
                },
            )
        })
        .collect();
    // Every voter proposes the same first membership; on a log that has
    // one already (a restart, or another voter was first) this is refused.
    match raft.initialize(members).await {
        Ok(()) => info!("controller quorum initialised"),
        Err(e) => info!("controller quorum already initialised: {e}"),
    }
    glommio::spawn_local(controller.clone().run_duties()).detach();
    info!(node_id, %listen, "controller started");
    if config.cluster.voters.len().is_multiple_of(2) {
        warn!(
            voters = config.cluster.voters.len(),
            "an even number of voters tolerates no more failures than one fewer"
        );
    }
    Ok(controller)
}
