//! [`ClusterStateMachine`]: openraft's state machine over [`ClusterState`].
//!
//! Decisions:
//!
//! - In memory only, for now: on restart the state is rebuilt from the
//!   last snapshot plus the log (openraft re-applies committed entries).
//!   Snapshots themselves are not persisted yet either, so a restarted node
//!   currently re-applies from the start of its log: purging the log is
//!   only safe once snapshots are on disk (next step).
//! - A snapshot is the [`ClusterState`] as JSON bytes; its meta (last
//!   applied log id, membership) travels beside it in openraft's
//!   `SnapshotMeta`.
//! - The builder shares the state (`Rc<RefCell<..>>`) and serialises it
//!   when called: the state is small and everything is on one shard, so
//!   there is no copy-on-write to arrange.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use futures::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, StoredMembership};

use super::types::{ClusterResponse, ControllerRaft, LogId};
use crate::cluster::state::ClusterState;

/// A snapshot's bytes: the JSON of a [`ClusterState`].
pub type SnapshotBytes = Vec<u8>;

type Snapshot = SnapshotOf<ControllerRaft, SnapshotBytes>;

#[derive(Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembershipOf<ControllerRaft>,
    state: ClusterState,
    current_snapshot: Option<Snapshot>,
}

/// The controller's state machine; `!Send`, lives on the controller shard.
#[derive(Clone, Default)]
pub struct ClusterStateMachine {
    applied: Rc<RefCell<Applied>>,
}

impl ClusterStateMachine {
    /// A copy of the current cluster state.
    pub fn state(&self) -> ClusterState {
        self.applied.borrow().state.clone()
    }

    /// The log id of the last applied entry.
    pub fn last_applied(&self) -> Option<LogId> {
        self.applied.borrow().last_applied
    }
}

fn decode_state(bytes: &[u8]) -> Result<ClusterState, io::Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("cluster snapshot: {e}")))
}

impl RaftSnapshotBuilder<ControllerRaft> for ClusterStateMachine {
    type SnapshotData = SnapshotBytes;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let mut applied = self.applied.borrow_mut();
        let bytes = serde_json::to_vec(&applied.state).map_err(io::Error::other)?;
        let meta = SnapshotMetaOf::<ControllerRaft> {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
        };
        let snapshot = Snapshot {
            meta,
            snapshot: bytes,
        };
        applied.current_snapshot = Some(snapshot.clone());
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
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
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
                responder.send(response);
            }
        }
        Ok(())
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
        let mut applied = self.applied.borrow_mut();
        applied.state = state;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        applied.current_snapshot = Some(Snapshot {
            meta: meta.clone(),
            snapshot,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.applied.borrow().current_snapshot.clone())
    }
}
