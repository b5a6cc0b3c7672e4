//! The controller listener: accepts connections on the current glommio
//! executor and answers [`ControllerRequest`]s from the node's `Raft` and
//! the application's [`AppHandler`].
//!
//! One request at a time per connection: a frame is read, served, answered,
//! then the next is read. openraft sends one RPC at a time per replication
//! stream (each on its own client connection), so pipelining would buy
//! nothing, and in-order answers come for free. Connections are served
//! concurrently, each its own task, at most
//! [`CONTROLLER_CONNECTIONS_MAX`] at once.
//!
//! A broken frame (length zero or over the limit, a torn frame, a stall
//! over [`CONTROLLER_READ_IDLE_MS_MAX`]) closes that connection with a
//! `warn!` line: the next frame's start cannot be found. A whole frame
//! whose body does not decode (garbage JSON, an unknown request) is
//! answered with [`RemoteError::BadRequest`] and a `warn!` line, and the
//! connection stays open, as it does for a request that decodes but fails
//! (a Raft error, an application error: [`ControllerResponse::Error`]).
//! The listener goes on in every case; nothing a peer sends panics it.
//!
//! Dropping the [`serve`] future (or cancelling its task) closes the
//! listener and every connection it accepted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use glommio::net::{TcpListener, TcpStream};
use openraft::{AsyncRuntime, Raft};

use super::frame::{
    decode_body, read_frame_body, write_frame, ControllerRequest, ControllerResponse, FrameError,
    RemoteError,
};
use crate::cluster::raft::runtime::GlommioRuntime;
use crate::cluster::raft::state_machine::ClusterStateMachine;
use crate::cluster::raft::types::ControllerRaft;

/// Most controller connections served at once; more are closed at accept.
/// A controller quorum has a handful of peers and each broker holds one or
/// two connections, so this is far above normal use.
pub const CONTROLLER_CONNECTIONS_MAX: usize = 1024;
/// Longest wait for the next frame (or the rest of one), in milliseconds,
/// before an idle or stalled connection is closed. Raft heartbeats keep a
/// peer's connection busy far more often than this.
pub const CONTROLLER_READ_IDLE_MS_MAX: u64 = 60_000;
/// Longest write of one response, in milliseconds.
pub const CONTROLLER_WRITE_MS_MAX: u64 = 10_000;
/// Pause after a failed accept (e.g. out of file descriptors), in ms.
pub const ACCEPT_RETRY_MS: u64 = 50;

/// The controller's Raft node.
pub type ControllerNode = Raft<ControllerRaft, ClusterStateMachine>;

/// Serves [`ControllerRequest::App`] requests (broker registration,
/// heartbeats, forwarded admin changes: the lead's protocol, as JSON).
pub trait AppHandler {
    /// Answers one request; an `Err` travels back as
    /// [`RemoteError::App`].
    fn handle(
        &self,
        request: serde_json::Value,
    ) -> LocalBoxFuture<'static, Result<serde_json::Value, String>>;
}

/// An [`AppHandler`] that refuses every request (a controller with no
/// application protocol yet).
pub struct NoApp;

impl AppHandler for NoApp {
    fn handle(
        &self,
        _request: serde_json::Value,
    ) -> LocalBoxFuture<'static, Result<serde_json::Value, String>> {
        Box::pin(async { Err("no application handler on this controller".to_string()) })
    }
}

/// The connection tasks of one [`serve`] call, cancelled when it ends.
#[derive(Default)]
struct Connections {
    next_id: u64,
    tasks: HashMap<u64, glommio::task::JoinHandle<()>>,
}

struct CancelOnDrop(Rc<RefCell<Connections>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for (_, task) in self.0.borrow_mut().tasks.drain() {
            task.cancel();
        }
    }
}

/// Accepts controller connections on `listener` forever, serving each on
/// the current executor (see the module doc).
pub async fn serve(listener: TcpListener, raft: ControllerNode, app: Rc<dyn AppHandler>) {
    let connections = Rc::new(RefCell::new(Connections::default()));
    let _cancel = CancelOnDrop(connections.clone());
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("controller listener: accept failed: {e}");
                GlommioRuntime::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let mut conns = connections.borrow_mut();
        if conns.tasks.len() >= CONTROLLER_CONNECTIONS_MAX {
            tracing::warn!(
                "controller listener: closing connection from {peer}: \
                 {CONTROLLER_CONNECTIONS_MAX} connections already open"
            );
            continue;
        }
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("controller connection from {peer}: TCP_NODELAY: {e}");
        }
        let id = conns.next_id;
        conns.next_id += 1;
        let registry = Rc::downgrade(&connections);
        let (raft, app) = (raft.clone(), app.clone());
        let task = glommio::spawn_local(async move {
            serve_connection(stream, &peer, &raft, app.as_ref()).await;
            if let Some(registry) = registry.upgrade() {
                registry.borrow_mut().tasks.remove(&id);
            }
        })
        .detach();
        conns.tasks.insert(id, task);
    }
}

/// Serves one connection until the peer closes it or sends a broken frame.
async fn serve_connection(
    mut stream: TcpStream,
    peer: &str,
    raft: &ControllerNode,
    app: &dyn AppHandler,
) {
    let idle = Duration::from_millis(CONTROLLER_READ_IDLE_MS_MAX);
    let write_limit = Duration::from_millis(CONTROLLER_WRITE_MS_MAX);
    loop {
        let read = GlommioRuntime::timeout(idle, read_frame_body(&mut stream)).await;
        let body = match read {
            Ok(Ok(body)) => body,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                tracing::warn!("controller connection from {peer}: closing: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "controller connection from {peer}: closing: no frame for {} ms",
                    CONTROLLER_READ_IDLE_MS_MAX
                );
                return;
            }
        };
        let response = match decode_body::<ControllerRequest>(&body) {
            Ok(request) => answer(raft, app, request).await,
            Err(e) => {
                tracing::warn!(
                    "controller connection from {peer}: refusing a {} byte frame: {e}",
                    body.len()
                );
                ControllerResponse::Error(RemoteError::BadRequest(e.to_string()))
            }
        };
        let written = GlommioRuntime::timeout(write_limit, write_frame(&mut stream, &response));
        match written.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("controller connection from {peer}: closing: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "controller connection from {peer}: closing: response write stalled"
                );
                return;
            }
        }
    }
}

/// Serves one decoded request.
async fn answer(
    raft: &ControllerNode,
    app: &dyn AppHandler,
    request: ControllerRequest,
) -> ControllerResponse {
    let raft_error =
        |e: &dyn std::fmt::Display| ControllerResponse::Error(RemoteError::Raft(e.to_string()));
    match request {
        ControllerRequest::AppendEntries(rpc) => match raft.append_entries(rpc).await {
            Ok(r) => ControllerResponse::AppendEntries(r),
            Err(e) => raft_error(&e),
        },
        ControllerRequest::Vote(rpc) => match raft.vote(rpc).await {
            Ok(r) => ControllerResponse::Vote(r),
            Err(e) => raft_error(&e),
        },
        ControllerRequest::PreVote(rpc) => match raft.pre_vote(rpc).await {
            Ok(r) => ControllerResponse::PreVote(r),
            Err(e) => raft_error(&e),
        },
        ControllerRequest::FullSnapshot {
            vote,
            meta,
            snapshot,
        } => {
            let snapshot = openraft::type_config::alias::SnapshotOf::<ControllerRaft, Vec<u8>> {
                meta,
                snapshot: snapshot.into_bytes(),
            };
            match raft.install_full_snapshot(vote, snapshot).await {
                Ok(r) => ControllerResponse::FullSnapshot(r),
                Err(e) => raft_error(&e),
            }
        }
        ControllerRequest::App(request) => match app.handle(request).await {
            Ok(value) => ControllerResponse::App(value),
            Err(e) => ControllerResponse::Error(RemoteError::App(e)),
        },
    }
}
