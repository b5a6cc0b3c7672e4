//! Controller RPCs over TCP, on the controller's own listener
//! (`--controller-listen`), apart from the Kafka listeners.
//!
//! - [`frame`]: the wire format, `[length: u32 BE][JSON body]`, bounded by
//!   [`CONTROLLER_FRAME_BYTES_MAX`]; the request and response enums (Raft's
//!   AppendEntries, Vote, PreVote, a full snapshot, and `App` for the
//!   broker-to-controller protocol) and [`RemoteError`].
//! - [`server`]: [`serve`] answers requests from the node's `Raft` and an
//!   [`AppHandler`], one at a time per connection.
//! - [`client`]: [`TcpNetwork`], openraft's network factory (one connection
//!   per openraft client, redialled after an error, RPC deadlines from
//!   openraft's `RPCOption`), and [`PeerClient`] for one-shot `App`
//!   requests.
//!
//! Why JSON: metadata traffic is small and rare (heartbeats, a few
//! changes a second at most, a snapshot of a few MiB at worst), the Raft
//! types already derive serde, and a frame read with `tcpdump -A` or a
//! test's bytes is readable. A binary codec can replace `frame` alone if
//! that ever matters. Why not the Kafka listener: Raft traffic must not
//! queue behind client requests, and the controller's quorum port is not
//! something clients should reach.
//!
//! Everything here is `!Send` and runs on the controller's shard.

pub mod client;
pub mod frame;
pub mod server;

pub use client::{CallError, PeerClient, PeerConnection, TcpNetwork, CONTROLLER_CONNECT_MS_MAX};
pub use frame::{ControllerRequest, ControllerResponse, RemoteError, CONTROLLER_FRAME_BYTES_MAX};
pub use server::{serve, AppHandler, ControllerNode, NoApp};

#[cfg(test)]
mod cluster_tcp_tests;
#[cfg(test)]
mod tests;
