//! Three Raft nodes on one glommio executor, each with its own `MemDisk`
//! log store and state machine, wired by an in-memory network that calls
//! the target node's `Raft` handle directly. Proves openraft, the glommio
//! runtime adapter, the log store and the state machine work together:
//! election, commit and apply on every node, and a new election after the
//! leader is shut down.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AsyncRuntime, BasicNode, Config, Raft};

use super::log_store::RaftLogStore;
use super::runtime::GlommioRuntime;
use super::state_machine::{ClusterStateMachine, SnapshotBytes};
use super::types::{ClusterCommand, ControllerRaft, NodeId, Vote};
use crate::cluster::state::ClusterState;
use crate::storage::MemDisk;

type Node = Raft<ControllerRaft, ClusterStateMachine>;
type Snapshot = openraft::type_config::alias::SnapshotOf<ControllerRaft, SnapshotBytes>;

/// The nodes reachable on the in-memory network.
#[derive(Clone, Default)]
pub(super) struct Router {
    nodes: Rc<RefCell<BTreeMap<NodeId, Node>>>,
}

impl Router {
    fn node(&self, id: NodeId) -> Option<Node> {
        self.nodes.borrow().get(&id).cloned()
    }
}

/// A connection to one node through the [`Router`].
pub(super) struct Connection {
    router: Router,
    target: NodeId,
}

impl Connection {
    /// A connection on an empty network: every RPC finds the target down.
    pub(super) fn unrouted(target: NodeId) -> Self {
        Connection {
            router: Router::default(),
            target,
        }
    }

    fn target(&self) -> Result<Node, Unreachable<ControllerRaft>> {
        let target = self.target;
        self.router
            .node(target)
            .ok_or_else(|| Unreachable::from_string(format!("node {target} is down")))
    }
}

fn unreachable(e: impl std::fmt::Display) -> RPCError<ControllerRaft> {
    RPCError::Unreachable(Unreachable::from_string(e))
}

impl RaftNetworkFactory<ControllerRaft> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetworkV2<ControllerRaft> for Connection {
    type SnapshotData = SnapshotBytes;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ControllerRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<ControllerRaft>, RPCError<ControllerRaft>> {
        let node = self.target().map_err(RPCError::Unreachable)?;
        node.append_entries(rpc).await.map_err(unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ControllerRaft>,
        _option: RPCOption,
    ) -> Result<VoteResponse<ControllerRaft>, RPCError<ControllerRaft>> {
        let node = self.target().map_err(RPCError::Unreachable)?;
        node.vote(rpc).await.map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<ControllerRaft>, StreamingError<ControllerRaft>> {
        let node = self.target()?;
        node.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::from_string(e)))
    }
}

struct TestNode {
    raft: Node,
    state_machine: ClusterStateMachine,
}

async fn start_node(router: &Router, id: NodeId) -> TestNode {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        ..Config::default()
    };
    let config = Arc::new(config.validate().expect("raft config"));
    let log_store = RaftLogStore::open(MemDisk::new(), Path::new("/controller"))
        .await
        .expect("open log store");
    let state_machine = ClusterStateMachine::default();
    let raft = Raft::new(id, config, router.clone(), log_store, state_machine.clone())
        .await
        .expect("start raft node");
    router.nodes.borrow_mut().insert(id, raft.clone());
    TestNode {
        raft,
        state_machine,
    }
}

/// Polls `check` every 20 ms until it holds, for at most 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        GlommioRuntime::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader all `nodes` agree on, once they do and it is not `former`
/// (followers keep naming a shut-down leader until their election timeout).
async fn agreed_leader(nodes: &[&TestNode], former: Option<NodeId>) -> NodeId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut leaders = Vec::new();
        for node in nodes {
            leaders.push(node.raft.current_leader().await);
        }
        if let Some(Some(first)) = leaders.first() {
            if leaders.iter().all(|l| l == &Some(*first)) && former != Some(*first) {
                return *first;
            }
        }
        assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
        GlommioRuntime::sleep(Duration::from_millis(20)).await;
    }
}

/// A `PutTopic` of an empty topic named `name` (placement does not matter
/// to the Raft layer).
pub(crate) fn topic(name: &str) -> ClusterCommand {
    ClusterCommand::PutTopic {
        name: name.into(),
        topic: crate::cluster::state::TopicRecord {
            id: uuid::Uuid::new_v4(),
            configs: BTreeMap::new(),
            partitions: Vec::new(),
        },
    }
}

fn has_topic(state: &ClusterState, name: &str) -> bool {
    state.topics.contains_key(name)
}

#[test]
fn three_nodes_elect_commit_apply_and_survive_the_leader_shutting_down() {
    GlommioRuntime::new(1).block_on(async {
        let router = Router::default();
        let mut nodes = BTreeMap::new();
        for id in 1..=3 {
            nodes.insert(id, start_node(&router, id).await);
        }
        let members: BTreeMap<NodeId, BasicNode> =
            (1..=3).map(|id| (id, BasicNode::new(""))).collect();
        nodes[&1]
            .raft
            .initialize(members)
            .await
            .expect("initialize");

        let all: Vec<&TestNode> = nodes.values().collect();
        let leader = agreed_leader(&all, None).await;
        let written = nodes[&leader].raft.client_write(topic("orders")).await;
        assert!(written.expect("commit on the leader").response().applied);
        eventually("orders applied on all three", || {
            nodes
                .values()
                .all(|n| has_topic(&n.state_machine.state(), "orders"))
        })
        .await;

        // The leader goes away: the other two elect a new one and commit.
        router.nodes.borrow_mut().remove(&leader);
        nodes[&leader].raft.shutdown().await.expect("shutdown");
        let rest: Vec<&TestNode> = nodes
            .iter()
            .filter(|(id, _)| **id != leader)
            .map(|(_, n)| n)
            .collect();
        let new_leader = agreed_leader(&rest, Some(leader)).await;
        assert_ne!(new_leader, leader);
        let written = nodes[&new_leader]
            .raft
            .client_write(topic("payments"))
            .await;
        assert!(
            written
                .expect("commit on the new leader")
                .response()
                .applied
        );
        eventually("payments applied on the two survivors", || {
            rest.iter()
                .all(|n| has_topic(&n.state_machine.state(), "payments"))
        })
        .await;
        for node in rest {
            node.raft.shutdown().await.expect("shutdown");
        }
    });
}
