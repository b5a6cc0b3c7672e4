//! [`ClusterStateMachine`]: openraft's state machine over [`ClusterState`].
//!
//! Decisions:
//!
//! - The state is in memory; its durable form is the last snapshot
//!   (`snapshot_file`, `raft-snapshot` in the raft directory) plus the log
//!   after it. [`ClusterStateMachine::open`] loads the snapshot; openraft
//!   then re-applies the committed entries after it (the log store saves
//!   the committed log id, `raft-committed`). A snapshot is written (atomic
//!   write + fsync) before `build_snapshot` or `install_snapshot` returns,
//!   so by the time openraft purges the log up to a snapshot, that snapshot
//!   is on disk. [`ClusterStateMachine::default`] keeps snapshots in memory
//!   only (openraft's storage suite, in-memory tests).
//! - A snapshot is the [`ClusterState`] as JSON bytes; its meta (last
//!   applied log id, membership) travels beside it in openraft's
//!   `SnapshotMeta`.
//! - The builder shares the state (`Rc<RefCell<..>>`) and serialises it
//!   when called: the state is small and everything is on one shard, so
//!   there is no copy-on-write to arrange.
//! - Change hooks ([`ClusterStateMachine::on_change`]) run after each
//!   applied batch and after a snapshot install, before the batch's client
//!   responses are sent: when `client_write` returns on the leader, its
//!   hooks have seen the change.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{SnapshotMetaOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, StoredMembership};

use super::log_store::LogStoreError;
use super::snapshot_file::{read_snapshot, write_snapshot, Snapshot, SNAPSHOT_FILE_NAME};
use super::types::{ClusterResponse, ControllerRaft, LogId};
use crate::cluster::state::ClusterState;
use crate::storage::{Disk, StorageError};

/// A snapshot's bytes: the JSON of a [`ClusterState`].
pub type SnapshotBytes = Vec<u8>;

/// A change hook: the state after a change and the last applied log id.
pub type ChangeHook = Box<dyn Fn(&ClusterState, Option<LogId>)>;

/// Writes a snapshot durably (the disk and path are captured).
type Persist = Rc<dyn Fn(Snapshot) -> LocalBoxFuture<'static, Result<(), LogStoreError>>>;

#[derive(Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembershipOf<ControllerRaft>,
    state: ClusterState,
    current_snapshot: Option<Snapshot>,
}

/// The controller's state machine; `!Send`, lives on the controller shard.
/// Clones share the state, the hooks and the snapshot file.
#[derive(Clone, Default)]
pub struct ClusterStateMachine {
    applied: Rc<RefCell<Applied>>,
    hooks: Rc<RefCell<Vec<Rc<ChangeHook>>>>,
    persist: Option<Persist>,
}

impl ClusterStateMachine {
    /// Opens the state machine of the raft directory `dir`: its last
    /// snapshot if one was saved (else the empty state), and new snapshots
    /// saved there.
    pub async fn open<D: Disk + Clone + 'static>(
        disk: D,
        dir: &Path,
    ) -> Result<Self, LogStoreError> {
        disk.create_dir_all(dir)
            .await
            .map_err(StorageError::io_at("create dir", dir, None))?;
        let path = dir.join(SNAPSHOT_FILE_NAME);
        let mut applied = Applied::default();
        if let Some(snapshot) = read_snapshot(&disk, &path).await? {
            applied.state =
                serde_json::from_slice(&snapshot.snapshot).map_err(|e| LogStoreError::Corrupt {
                    path: path.clone(),
                    position: 0,
                    reason: format!("snapshot state: {e}"),
                })?;
            applied.last_applied = snapshot.meta.last_log_id;
            applied.membership = snapshot.meta.last_membership.clone();
            applied.current_snapshot = Some(snapshot);
        }
        let persist: Persist = Rc::new(move |snapshot: Snapshot| {
            let disk = disk.clone();
            let path = path.clone();
            async move { write_snapshot(&disk, &path, &snapshot).await }.boxed_local()
        });
        Ok(ClusterStateMachine {
            applied: Rc::new(RefCell::new(applied)),
            hooks: Rc::default(),
            persist: Some(persist),
        })
    }

    /// A copy of the current cluster state.
    pub fn state(&self) -> ClusterState {
        self.applied.borrow().state.clone()
    }

    /// Reads the current state without copying it (heartbeats and the
    /// fencing check read a few fields several times a second). `read`
    /// must not call back into the state machine.
    pub fn read<R>(&self, read: impl FnOnce(&ClusterState) -> R) -> R {
        read(&self.applied.borrow().state)
    }

    /// The log id of the last applied entry.
    pub fn last_applied(&self) -> Option<LogId> {
        self.applied.borrow().last_applied
    }

    /// Calls `hook` after every applied batch of entries and after every
    /// installed snapshot, with the new state and the last applied log id.
    /// A hook must not call `on_change` itself (it may read the state).
    pub fn on_change(&self, hook: ChangeHook) {
        self.hooks.borrow_mut().push(Rc::new(hook));
    }

    fn notify(&self) {
        let hooks: Vec<Rc<ChangeHook>> = self.hooks.borrow().clone();
        if hooks.is_empty() {
            return;
        }
        let applied = self.applied.borrow();
        for hook in hooks {
            hook(&applied.state, applied.last_applied);
        }
    }

    async fn persist(&self, snapshot: &Snapshot) -> Result<(), io::Error> {
        if let Some(persist) = &self.persist {
            persist(snapshot.clone()).await?;
        }
        Ok(())
    }
}

fn decode_state(bytes: &[u8]) -> Result<ClusterState, io::Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("cluster snapshot: {e}")))
}

impl RaftSnapshotBuilder<ControllerRaft> for ClusterStateMachine {
    type SnapshotData = SnapshotBytes;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let snapshot = {
            let applied = self.applied.borrow();
            let bytes = serde_json::to_vec(&applied.state).map_err(io::Error::other)?;
            let meta = SnapshotMetaOf::<ControllerRaft> {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            Snapshot {
                meta,
                snapshot: bytes,
            }
        };
        self.persist(&snapshot).await?;
        self.applied.borrow_mut().current_snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }
}

impl RaftStateMachine<ControllerRaft> for ClusterStateMachine {
    type SnapshotData = SnapshotBytes;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembershipOf<ControllerRaft>), io::Error> {
        let applied = self.applied.borrow();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm:
            Stream<Item = Result<EntryResponder<ControllerRaft>, io::Error>> + Unpin + OptionalSend,
    {
        let mut responses = Vec::new();
        let mut failed = None;
        while let Some(item) = entries.next().await {
            let (entry, responder) = match item {
                Ok(item) => item,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let log_id = entry.log_id();
            let response = {
                let mut applied = self.applied.borrow_mut();
                applied.last_applied = Some(log_id);
                match &entry.payload {
                    EntryPayload::Blank => ClusterResponse::default(),
                    EntryPayload::Normal(command) => applied.state.apply(command),
                    EntryPayload::Membership(membership) => {
                        applied.membership =
                            StoredMembership::new(Some(log_id), membership.clone());
                        ClusterResponse::default()
                    }
                }
            };
            if let Some(responder) = responder {
                responses.push((responder, response));
            }
        }
        // Hooks first: a client whose write returned finds it in the hooks'
        // view (see the module doc).
        self.notify();
        for (responder, response) in responses {
            responder.send(response);
        }
        failed.map_or(Ok(()), Err)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<ControllerRaft>,
        snapshot: SnapshotBytes,
    ) -> Result<(), io::Error> {
        let state = decode_state(&snapshot)?;
        let snapshot = Snapshot {
            meta: meta.clone(),
            snapshot,
        };
        self.persist(&snapshot).await?;
        {
            let mut applied = self.applied.borrow_mut();
            applied.state = state;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.current_snapshot = Some(snapshot);
        }
        self.notify();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.applied.borrow().current_snapshot.clone())
    }
}
