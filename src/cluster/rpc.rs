//! What brokers ask the active controller, over the controller listener
//! (as `App` frames of `cluster::transport`, beside the Raft RPCs).
//!
//! Kafka's brokers use BrokerRegistration, BrokerHeartbeat and a fetch of
//! the metadata log; ours are the same ideas as a small JSON protocol
//! private to corestream: a broker registers, heartbeats, asks for the
//! state when its copy is older than the controller's, forwards admin
//! changes and takes producer-id blocks. Any controller answers
//! [`BrokerResponse::NotController`] (naming the leader when it knows
//! it) unless it is the active one.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::controller::Controller;
use super::state::ClusterState;
use super::transport::{AppHandler, PeerClient};
use crate::shard::MetaChange;

/// A broker's request to the active controller.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BrokerRequest {
    /// Join, or come back after a fence or a restart.
    Register {
        /// `node.id`.
        id: i32,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: i32,
        /// Shard count.
        shards: u16,
        /// Every listener's advertised endpoint.
        #[serde(default)]
        endpoints: Vec<crate::metadata::BrokerEndpoint>,
    },
    /// Still alive, at this registration epoch.
    Heartbeat {
        /// `node.id`.
        id: i32,
        /// The epoch `Register` answered.
        epoch: i64,
    },
    /// Stopping: move my leaderships away now (controlled shutdown).
    ControlledShutdown {
        /// `node.id`.
        id: i32,
    },
    /// A metadata change a client asked this broker for.
    Propose {
        /// The change, checked by the controller.
        change: MetaChange,
    },
    /// The whole cluster state, if the controller has applied more than
    /// `have_index`.
    FetchState {
        /// The log index the broker's copy is at.
        have_index: u64,
    },
    /// A block of producer ids.
    AllocateProducerIds {
        /// Ids wanted.
        count: i64,
    },
    /// A partition leader shrinks or expands its ISR (Kafka's
    /// AlterPartition).
    AlterPartition {
        /// The leader's `node.id`.
        id: i32,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The leader epoch the leader holds.
        leader_epoch: i32,
        /// The partition epoch its ISR is at.
        partition_epoch: i32,
        /// The ISR it wants.
        isr: Vec<i32>,
    },
    /// The quorum's status as the active controller sees it
    /// (DescribeQuorum; only the leader knows each voter's progress).
    DescribeQuorum,
    /// ElectLeaders from a client (KIP-460).
    ElectLeaders {
        /// 0 PREFERRED, 1 UNCLEAN.
        kind: i8,
        /// (topic, partitions); `None`: every partition.
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
}

/// One partition's ElectLeaders outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Kafka error code (0: elected).
    pub code: i16,
}

/// The active controller's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BrokerResponse {
    /// Registered at `epoch`; the registration is applied at `index`.
    Registered {
        /// The broker's new epoch.
        epoch: i64,
        /// Log index of the registration.
        index: u64,
    },
    /// A heartbeat's answer.
    HeartbeatAck {
        /// The broker is fenced (or unknown, or at an old epoch): it must
        /// register again.
        fenced: bool,
        /// The controller's applied log index.
        applied_index: u64,
        /// The active controller's node id.
        controller_id: i32,
    },
    /// Done (controlled shutdown).
    Done,
    /// A change's outcome: a Kafka error code (0: committed at `index`).
    Proposed {
        /// Kafka error code.
        code: i16,
        /// Kafka error message.
        message: Option<String>,
        /// Log index of the last command of the change.
        index: u64,
    },
    /// The state at `applied_index` (`None`: the broker's copy is current).
    State {
        /// The controller's applied log index.
        applied_index: u64,
        /// The state, when newer than the broker's.
        state: Option<Box<ClusterState>>,
    },
    /// An AlterPartition's outcome: a Kafka error code (0: written at
    /// `index`, the partition now at `partition_epoch`).
    PartitionAltered {
        /// Kafka error code.
        code: i16,
        /// The new partition epoch.
        partition_epoch: i32,
        /// Log index of the change.
        index: u64,
    },
    /// The quorum's status (`DescribeQuorum`).
    Quorum(super::quorum::QuorumStatus),
    /// ElectLeaders' outcome per partition.
    LeadersElected {
        /// In request order.
        results: Vec<ElectionResult>,
    },
    /// The first id of a block of the asked size.
    ProducerIds {
        /// First id.
        start: i64,
    },
    /// This node is not the active controller.
    NotController {
        /// The leader's controller address, when known.
        leader_addr: Option<String>,
    },
    /// The controller could not do it (Raft error, shutting down).
    Failed {
        /// Why.
        message: String,
    },
}

/// Sends `request` to the controller at `addr` ("host:port") as an `App`
/// frame of the controller transport and decodes the answer.
pub async fn call_app(
    addr: &str,
    request: &BrokerRequest,
    deadline: std::time::Duration,
) -> Result<BrokerResponse, String> {
    let body = serde_json::to_value(request).map_err(|e| e.to_string())?;
    let answer = PeerClient::send_app(addr, body, deadline)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_value(answer).map_err(|e| format!("{addr}: bad answer: {e}"))
}

/// The controller's side: [`BrokerRequest`]s out of `App` frames.
pub struct ControllerApp(pub Rc<Controller>);

impl AppHandler for ControllerApp {
    fn handle(
        &self,
        request: serde_json::Value,
    ) -> LocalBoxFuture<'static, Result<serde_json::Value, String>> {
        let controller = self.0.clone();
        Box::pin(async move {
            let request: BrokerRequest =
                serde_json::from_value(request).map_err(|e| format!("bad broker request: {e}"))?;
            let response = controller.handle(request).await;
            serde_json::to_value(response).map_err(|e| e.to_string())
        })
    }
}
