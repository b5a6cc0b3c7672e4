//! Durable snapshots and the committed log id, on [`MemDisk`]: the state
//! machine reopens from its snapshot file, hooks see installs, a damaged
//! snapshot fails open, and a one-node Raft restarted after snapshot +
//! purge comes back with the whole state (snapshot plus the log after it,
//! re-applied up to the saved committed log id), even after a crash.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use openraft::async_runtime::WatchReceiver;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::{AsyncRuntime, BasicNode, Config, Raft, SnapshotPolicy, StoredMembership};

use super::cluster_tests::topic;
use super::log_store::{LogStoreError, RaftLogStore};
use super::runtime::GlommioRuntime;
use super::snapshot_file::SNAPSHOT_FILE_NAME;
use super::state_machine::ClusterStateMachine;
use super::types::{ControllerRaft, LogId};
use crate::cluster::state::ClusterState;
use crate::storage::MemDisk;

fn dir() -> PathBuf {
    PathBuf::from("/data/controller")
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId { term, node_id: 1 }, index)
}

fn state_with(topics: &[&str]) -> ClusterState {
    let mut state = ClusterState::default();
    for name in topics {
        state.apply(&topic(name));
    }
    state
}

fn install(sm: &mut ClusterStateMachine, state: &ClusterState, last: LogId) {
    let meta = SnapshotMetaOf::<ControllerRaft> {
        last_log_id: Some(last),
        last_membership: StoredMembership::default(),
    };
    let bytes = serde_json::to_vec(state).unwrap();
    block_on(sm.install_snapshot(&meta, bytes)).unwrap();
}

#[test]
fn installed_snapshot_survives_a_crash_and_hooks_see_it() {
    let disk = MemDisk::new();
    let mut sm = block_on(ClusterStateMachine::open(disk.clone(), &dir())).unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen_by_hook = seen.clone();
    sm.on_change(Box::new(move |state, last| {
        let names: Vec<String> = state.topics.keys().cloned().collect();
        seen_by_hook.borrow_mut().push((names, last));
    }));
    let state = state_with(&["a", "b"]);
    install(&mut sm, &state, log_id(2, 9));
    assert_eq!(
        *seen.borrow(),
        vec![(vec!["a".to_string(), "b".to_string()], Some(log_id(2, 9)))]
    );
    drop(sm);
    disk.crash();
    let reopened = block_on(ClusterStateMachine::open(disk.clone(), &dir())).unwrap();
    assert_eq!(reopened.state(), state);
    assert_eq!(reopened.last_applied(), Some(log_id(2, 9)));
    let mut reopened = reopened;
    let current = block_on(reopened.get_current_snapshot()).unwrap();
    assert_eq!(
        current.map(|s| s.meta.last_log_id),
        Some(Some(log_id(2, 9)))
    );
}

#[test]
fn damaged_snapshot_file_fails_open() {
    let disk = MemDisk::new();
    let mut sm = block_on(ClusterStateMachine::open(disk.clone(), &dir())).unwrap();
    install(&mut sm, &state_with(&["a"]), log_id(1, 3));
    let path = dir().join(SNAPSHOT_FILE_NAME);
    assert!(disk.corrupt(&path, 12, 0x01));
    let opened = block_on(ClusterStateMachine::open(disk.clone(), &dir()));
    assert!(matches!(opened, Err(LogStoreError::Corrupt { .. })));
}

#[test]
fn committed_log_id_survives_a_crash() {
    let disk = MemDisk::new();
    let mut store = block_on(RaftLogStore::open(disk.clone(), &dir())).unwrap();
    block_on(store.save_committed_durably(Some(log_id(3, 14)))).unwrap();
    drop(store);
    disk.crash();
    let store = block_on(RaftLogStore::open(disk.clone(), &dir())).unwrap();
    assert_eq!(store.committed(), Some(log_id(3, 14)));
}

type Node = Raft<ControllerRaft, ClusterStateMachine>;

/// An in-process network for a one-node cluster: it never sends anything.
struct NoPeers;

impl openraft::network::RaftNetworkFactory<ControllerRaft> for NoPeers {
    type Network = super::cluster_tests::Connection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        super::cluster_tests::Connection::unrouted(target)
    }
}

async fn start_single(disk: &MemDisk, dir: &Path) -> (Node, ClusterStateMachine) {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    };
    let config = Arc::new(config.validate().unwrap());
    let store = RaftLogStore::open(disk.clone(), dir).await.unwrap();
    let sm = ClusterStateMachine::open(disk.clone(), dir).await.unwrap();
    let raft = Raft::new(1, config, NoPeers, store, sm.clone())
        .await
        .unwrap();
    (raft, sm)
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        GlommioRuntime::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn one_node_restarts_from_snapshot_plus_log_after_purge_and_crash() {
    GlommioRuntime::new(1).block_on(async {
        let disk = MemDisk::new();
        let (raft, _) = start_single(&disk, &dir()).await;
        let members: BTreeMap<u64, BasicNode> = [(1, BasicNode::new(""))].into();
        raft.initialize(members).await.unwrap();
        for i in 0..13 {
            raft.client_write(topic(&format!("t{i}"))).await.unwrap();
        }
        let metrics = raft.metrics();
        wait_for("a snapshot and a purge", || {
            let m = metrics.borrow_watched();
            m.purged.is_some() && m.snapshot.is_some_and(|s| s.index() >= 10)
        })
        .await;
        let last_applied = metrics.borrow_watched().last_applied;
        raft.shutdown().await.unwrap();
        drop(raft);
        disk.crash();

        let (raft, sm) = start_single(&disk, &dir()).await;
        // Snapshot loaded, committed entries after it re-applied at start.
        wait_for("state re-applied", || sm.last_applied() >= last_applied).await;
        assert_eq!(sm.state().topics.len(), 13);
        let purged = raft.metrics().borrow_watched().purged;
        assert!(purged.is_some(), "the purge survived the restart");
        raft.shutdown().await.unwrap();
    });
}
