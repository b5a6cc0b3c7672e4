//! Three controller nodes, each on its own glommio executor in its own
//! thread, each with a real `DmaDisk` raft directory in a tempdir, talking
//! over real loopback TCP through [`TcpNetwork`] and [`serve`]: election,
//! commit and apply everywhere; a follower stopped while the others write
//! and purge their logs comes back from its data directory and catches up
//! through a snapshot install; the leader stopped, a new one is elected.
//!
//! The test thread drives the nodes with commands over channels and polls
//! their status; timeouts are generous because the test machine's cores
//! are shared with other builds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use glommio::net::TcpListener;
use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};

use super::server::NoApp;
use super::tests::on_executor;
use super::{serve, TcpNetwork};
use crate::cluster::raft::cluster_tests::topic;
use crate::cluster::raft::types::{ClusterCommand, LogId, NodeId};
use crate::cluster::raft::{ClusterStateMachine, RaftLogStore};
use crate::cluster::state::ClusterState;
use crate::storage::{prime_dma_io, DmaDisk};

/// What a node reports to the test thread.
#[derive(Clone, Debug)]
struct Status {
    leader: Option<NodeId>,
    state: ClusterState,
    last_applied: Option<LogId>,
    snapshot: Option<LogId>,
    purged: Option<LogId>,
}

enum Command {
    Initialize(BTreeMap<NodeId, BasicNode>),
    Write(ClusterCommand, oneshot::Sender<Result<(), String>>),
    Status(oneshot::Sender<Status>),
}

struct NodeHandle {
    commands: mpsc::UnboundedSender<Command>,
    thread: JoinHandle<()>,
}

fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        install_snapshot_timeout: 5_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(4),
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    Arc::new(config.validate().expect("raft config"))
}

async fn status(
    raft: &Raft<crate::cluster::raft::ControllerRaft, ClusterStateMachine>,
    sm: &ClusterStateMachine,
) -> Status {
    let metrics = raft.metrics().borrow_watched().clone();
    Status {
        leader: metrics.current_leader,
        state: sm.state(),
        last_applied: sm.last_applied(),
        snapshot: metrics.snapshot,
        purged: metrics.purged,
    }
}

/// Runs node `id` until its command channel closes, then shuts it down.
async fn run_node(
    id: NodeId,
    data_dir: PathBuf,
    addr: SocketAddr,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    prime_dma_io(&data_dir).await.expect("prime O_DIRECT");
    let dir = data_dir.join("raft");
    let store = RaftLogStore::open(DmaDisk, &dir).await.expect("log store");
    let sm = ClusterStateMachine::open(DmaDisk, &dir)
        .await
        .expect("state machine");
    let raft = Raft::new(id, config(), TcpNetwork::new(id), store, sm.clone())
        .await
        .expect("raft");
    let listener = TcpListener::bind(addr).expect("bind controller listener");
    let server = glommio::spawn_local(serve(listener, raft.clone(), Rc::new(NoApp)));
    while let Some(command) = commands.next().await {
        match command {
            Command::Initialize(members) => raft.initialize(members).await.expect("initialize"),
            Command::Write(command, reply) => {
                let written = raft.client_write(command).await;
                let _ = reply.send(written.map(|_| ()).map_err(|e| e.to_string()));
            }
            Command::Status(reply) => {
                let _ = reply.send(status(&raft, &sm).await);
            }
        }
    }
    drop(server);
    raft.shutdown().await.expect("shutdown");
}

fn start(id: NodeId, data_dir: &Path, addr: SocketAddr) -> NodeHandle {
    let (commands, receiver) = mpsc::unbounded();
    let data_dir = data_dir.to_path_buf();
    let thread = std::thread::spawn(move || {
        on_executor(move || run_node(id, data_dir, addr, receiver));
    });
    NodeHandle { commands, thread }
}

impl NodeHandle {
    fn status(&self) -> Option<Status> {
        let (reply, answer) = oneshot::channel();
        self.commands.unbounded_send(Command::Status(reply)).ok()?;
        futures::executor::block_on(answer).ok()
    }

    fn write(&self, command: ClusterCommand) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(Command::Write(command, reply))
            .map_err(|e| e.to_string())?;
        futures::executor::block_on(answer).map_err(|e| e.to_string())?
    }

    fn stop(self) {
        drop(self.commands);
        self.thread.join().expect("node thread");
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Polls until `check` holds, for at most 60 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The leader every node in `ids` names, once they agree and it is not
/// `former`.
fn agreed_leader(nodes: &BTreeMap<NodeId, NodeHandle>, former: Option<NodeId>) -> NodeId {
    let mut agreed = None;
    eventually("an agreed leader", || {
        let leaders: Vec<_> = nodes
            .values()
            .map(|n| n.status().and_then(|s| s.leader))
            .collect();
        agreed =
            leaders[0].filter(|l| leaders.iter().all(|x| *x == Some(*l)) && Some(*l) != former);
        agreed.is_some()
    });
    agreed.unwrap_or_default()
}

#[test]
fn three_nodes_over_tcp_catch_up_by_snapshot_and_reelect() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let addrs: BTreeMap<NodeId, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let dir = |id: NodeId| tmp.path().join(format!("node-{id}"));
    let mut nodes: BTreeMap<NodeId, NodeHandle> = addrs
        .iter()
        .map(|(id, addr)| (*id, start(*id, &dir(*id), *addr)))
        .collect();
    let members = addrs
        .iter()
        .map(|(id, a)| (*id, BasicNode::new(a.to_string())))
        .collect();
    nodes[&1]
        .commands
        .unbounded_send(Command::Initialize(members))
        .expect("send");

    let leader = agreed_leader(&nodes, None);
    nodes[&leader].write(topic("first")).expect("first write");
    eventually("first applied on all three", || {
        nodes.values().all(|n| {
            n.status()
                .is_some_and(|s| s.state.topics.contains_key("first"))
        })
    });

    // A follower stops; the others go on, snapshot and purge past it.
    let follower = (1..=3).find(|id| *id != leader).unwrap_or_default();
    let stopped_at = nodes[&follower].status().and_then(|s| s.last_applied);
    if let Some(node) = nodes.remove(&follower) {
        node.stop();
    }
    for i in 0..12 {
        nodes[&leader]
            .write(topic(&format!("while-down-{i}")))
            .expect("write");
    }
    eventually("the leader purged past the stopped follower", || {
        nodes[&leader]
            .status()
            .is_some_and(|s| s.purged > stopped_at && s.snapshot.is_some())
    });
    let expected = nodes[&leader].status().map(|s| s.state).unwrap_or_default();
    assert_eq!(expected.topics.len(), 13);

    // It restarts from its data directory and catches up by snapshot.
    nodes.insert(follower, start(follower, &dir(follower), addrs[&follower]));
    eventually("the restarted follower caught up", || {
        nodes[&follower]
            .status()
            .is_some_and(|s| s.state == expected)
    });
    let restarted = nodes[&follower].status().expect("status");
    assert!(
        restarted.snapshot.is_some_and(|s| Some(s) > stopped_at),
        "{restarted:?}"
    );

    // The leader stops: the other two elect a new one over TCP and commit.
    if let Some(node) = nodes.remove(&leader) {
        node.stop();
    }
    let new_leader = agreed_leader(&nodes, Some(leader));
    nodes[&new_leader]
        .write(topic("after"))
        .expect("write on the new leader");
    eventually("after applied on both", || {
        nodes.values().all(|n| {
            n.status()
                .is_some_and(|s| s.state.topics.contains_key("after"))
        })
    });
    for (_, node) in std::mem::take(&mut nodes) {
        node.stop();
    }
}
