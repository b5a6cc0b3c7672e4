//! The controller RPC client: [`PeerConnection`] (one lazily dialled TCP
//! connection to a "host:port", one request at a time), [`PeerClient`]
//! (one-shot application requests for the broker side), and [`TcpNetwork`],
//! openraft's network factory over them.
//!
//! - Each openraft client ([`TcpNetwork::new_client`]: one per replication
//!   stream, and one per peer per election) holds one connection to its
//!   target, dialled on first use and reused for every RPC after it. Any
//!   failure or timeout drops it (its state is unknown: half a frame may be
//!   on the wire) and the next RPC dials again.
//! - Timeouts: an RPC (dial + write + read) must finish within openraft's
//!   `RPCOption::soft_ttl()`; a dial alone within
//!   [`CONTROLLER_CONNECT_MS_MAX`] too.
//! - Failures map to openraft's errors by what they mean for retrying: no
//!   connection (dial refused or timed out), or the target answering with
//!   an error, is `Unreachable` (openraft backs off); a broken connection
//!   or a bad answer is `Network` (retried at once, on a new connection);
//!   an RPC over its deadline is `Timeout`.
//! - "host:port" is resolved by the standard library (blocking getaddrinfo
//!   for a host name): done once per dial, not per RPC; numeric addresses
//!   resolve without a lookup.

use std::future::Future;
use std::time::Duration;

use glommio::net::TcpStream;
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::SnapshotOf;
use openraft::{AsyncRuntime, BasicNode};

use super::frame::{read_frame, write_frame, ControllerRequest, ControllerResponse, RemoteError};
use crate::cluster::raft::runtime::GlommioRuntime;
use crate::cluster::raft::types::{ControllerRaft, NodeId, Vote};

/// Longest TCP connect to a controller, in milliseconds (also bounded by
/// the RPC's own deadline).
pub const CONTROLLER_CONNECT_MS_MAX: u64 = 2_000;

/// Why a controller RPC got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection to the target (dial failed or timed out).
    #[error("cannot connect to controller {addr}: {reason}")]
    Connect {
        /// The target "host:port".
        addr: String,
        /// The dial error.
        reason: String,
    },
    /// The connection broke or the answer was not a frame of ours.
    #[error("controller {addr}: {reason}")]
    Connection {
        /// The target "host:port".
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("controller {addr}: no answer within {ms} ms")]
    Timeout {
        /// The target "host:port".
        addr: String,
        /// The deadline.
        ms: u128,
    },
    /// The target answered with an error.
    #[error("controller {addr}: {error}")]
    Remote {
        /// The target "host:port".
        addr: String,
        /// Its answer.
        error: RemoteError,
    },
    /// The target answered with another kind of response (a bug).
    #[error("controller {addr}: unexpected answer {answer}")]
    Unexpected {
        /// The target "host:port".
        addr: String,
        /// The variant received.
        answer: String,
    },
    /// The request cannot be sent (too large, snapshot not UTF-8).
    #[error("cannot send to controller {addr}: {reason}")]
    BadRequest {
        /// The target "host:port".
        addr: String,
        /// Why.
        reason: String,
    },
}

/// One connection to a controller's listener; see the module doc.
pub struct PeerConnection {
    addr: String,
    stream: Option<TcpStream>,
}

impl PeerConnection {
    /// A connection to `addr` ("host:port"), dialled on the first call.
    pub fn new(addr: impl Into<String>) -> Self {
        PeerConnection {
            addr: addr.into(),
            stream: None,
        }
    }

    /// The target's "host:port".
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` and reads its answer, within `deadline`. Any error
    /// drops the connection; the next call dials again. A
    /// [`ControllerResponse::Error`] answer is [`CallError::Remote`].
    pub async fn call(
        &mut self,
        request: &ControllerRequest,
        deadline: Duration,
    ) -> Result<ControllerResponse, CallError> {
        let result =
            GlommioRuntime::timeout(deadline, self.call_unbounded(request, deadline)).await;
        let answer = match result {
            Ok(answer) => answer,
            Err(_) => Err(CallError::Timeout {
                addr: self.addr.clone(),
                ms: deadline.as_millis(),
            }),
        };
        match answer {
            Ok(ControllerResponse::Error(error)) => Err(CallError::Remote {
                addr: self.addr.clone(),
                error,
            }),
            Ok(answer) => Ok(answer),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn call_unbounded(
        &mut self,
        request: &ControllerRequest,
        deadline: Duration,
    ) -> Result<ControllerResponse, CallError> {
        let addr = self.addr.clone();
        if self.stream.is_none() {
            let connect = deadline.min(Duration::from_millis(CONTROLLER_CONNECT_MS_MAX));
            let stream = TcpStream::connect_timeout(addr.as_str(), connect)
                .await
                .map_err(|e| CallError::Connect {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            // Small RPCs: do not wait for Nagle.
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let broken = |e: super::frame::FrameError| CallError::Connection {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let Some(stream) = self.stream.as_mut() else {
            return Err(broken(super::frame::FrameError::Closed));
        };
        write_frame(stream, request).await.map_err(|e| match e {
            super::frame::FrameError::Encode(reason) => CallError::BadRequest {
                addr: addr.clone(),
                reason,
            },
            other => broken(other),
        })?;
        read_frame(stream).await.map_err(broken)
    }
}

/// Sends one application request to the controller at `addr` and returns
/// its answer: a new connection per call (broker-to-controller traffic is
/// rare). For repeated calls keep a [`PeerConnection`] instead.
pub struct PeerClient;

impl PeerClient {
    /// `request` as [`ControllerRequest::App`] to `addr` ("host:port"),
    /// answered within `deadline`.
    pub async fn send_app(
        addr: &str,
        request: serde_json::Value,
        deadline: Duration,
    ) -> Result<serde_json::Value, CallError> {
        let mut connection = PeerConnection::new(addr);
        match connection
            .call(&ControllerRequest::App(request), deadline)
            .await?
        {
            ControllerResponse::App(value) => Ok(value),
            other => Err(unexpected(addr, &other)),
        }
    }
}

fn unexpected(addr: &str, answer: &ControllerResponse) -> CallError {
    let answer = format!("{answer:?}");
    CallError::Unexpected {
        addr: addr.to_string(),
        answer: answer.chars().take(120).collect(),
    }
}

/// openraft's network factory over TCP: each client dials the target's
/// `BasicNode::addr`. `node_id` is this node's id (for timeout errors).
#[derive(Clone, Debug)]
pub struct TcpNetwork {
    node_id: NodeId,
}

impl TcpNetwork {
    /// The network of the controller node `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        TcpNetwork { node_id }
    }
}

/// One openraft client of [`TcpNetwork`]: a connection to one target.
pub struct TcpNetworkClient {
    node_id: NodeId,
    target: NodeId,
    connection: PeerConnection,
}

impl RaftNetworkFactory<ControllerRaft> for TcpNetwork {
    type Network = TcpNetworkClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpNetworkClient {
        TcpNetworkClient {
            node_id: self.node_id,
            target,
            connection: PeerConnection::new(node.addr.clone()),
        }
    }
}

impl TcpNetworkClient {
    fn to_rpc_error(&self, action: RPCTypes, error: CallError) -> RPCError<ControllerRaft> {
        match error {
            CallError::Timeout { .. } => RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout: Duration::ZERO,
            }),
            CallError::Connect { .. } | CallError::Remote { .. } | CallError::BadRequest { .. } => {
                RPCError::Unreachable(Unreachable::from_string(error))
            }
            CallError::Connection { .. } | CallError::Unexpected { .. } => {
                RPCError::Network(NetworkError::from_string(error))
            }
        }
    }

    async fn rpc(
        &mut self,
        action: RPCTypes,
        request: ControllerRequest,
        option: &RPCOption,
    ) -> Result<ControllerResponse, RPCError<ControllerRaft>> {
        let deadline = option.soft_ttl();
        self.connection.call(&request, deadline).await.map_err(|e| {
            match self.to_rpc_error(action, e) {
                RPCError::Timeout(mut t) => {
                    t.timeout = deadline;
                    RPCError::Timeout(t)
                }
                other => other,
            }
        })
    }

    fn unexpected(&self, answer: &ControllerResponse) -> RPCError<ControllerRaft> {
        RPCError::Network(NetworkError::from_string(unexpected(
            self.connection.addr(),
            answer,
        )))
    }
}

impl RaftNetworkV2<ControllerRaft> for TcpNetworkClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<ControllerRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ControllerRaft>, RPCError<ControllerRaft>> {
        let request = ControllerRequest::AppendEntries(rpc);
        match self.rpc(RPCTypes::AppendEntries, request, &option).await? {
            ControllerResponse::AppendEntries(r) => Ok(r),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ControllerRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<ControllerRaft>, RPCError<ControllerRaft>> {
        match self
            .rpc(RPCTypes::Vote, ControllerRequest::Vote(rpc), &option)
            .await?
        {
            ControllerResponse::Vote(r) => Ok(r),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<ControllerRaft>,
        option: RPCOption,
    ) -> Result<VoteResponse<ControllerRaft>, RPCError<ControllerRaft>> {
        let request = ControllerRequest::PreVote(rpc);
        match self.rpc(RPCTypes::Vote, request, &option).await? {
            ControllerResponse::PreVote(r) => Ok(r),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<ControllerRaft, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<ControllerRaft>, StreamingError<ControllerRaft>> {
        let snapshot_text = String::from_utf8(snapshot.snapshot).map_err(|e| {
            StreamingError::Unreachable(Unreachable::from_string(format!(
                "snapshot bytes are not UTF-8 JSON: {e}"
            )))
        })?;
        let request = ControllerRequest::FullSnapshot {
            vote,
            meta: snapshot.meta,
            snapshot: snapshot_text,
        };
        let sent = self.rpc(RPCTypes::InstallSnapshot, request, &option);
        let outcome = match futures::future::select(Box::pin(sent), Box::pin(cancel)).await {
            futures::future::Either::Left((answer, _)) => Ok(answer),
            futures::future::Either::Right((closed, _)) => Err(closed),
        };
        let answer = match outcome {
            Ok(answer) => answer,
            Err(closed) => {
                // The cancelled RPC may have left half a frame behind.
                self.connection.stream = None;
                return Err(StreamingError::Closed(closed));
            }
        };
        match answer {
            Ok(ControllerResponse::FullSnapshot(r)) => Ok(r),
            Ok(other) => Err(StreamingError::Network(NetworkError::from_string(
                unexpected(self.connection.addr(), &other),
            ))),
            Err(RPCError::Timeout(t)) => Err(StreamingError::Timeout(t)),
            Err(RPCError::Unreachable(u)) => Err(StreamingError::Unreachable(u)),
            Err(RPCError::Network(n)) => Err(StreamingError::Network(n)),
            Err(RPCError::RemoteError(r)) => {
                Err(StreamingError::Unreachable(Unreachable::from_string(r)))
            }
        }
    }
}
