//! The transport on one glommio executor over real loopback TCP, with a
//! one-node Raft on a real `DmaDisk` behind the listener: an `App` request
//! round trip (answer and typed error); broken frames (zero or oversized
//! length) closing only their own connection; whole frames that are not a
//! request (garbage JSON, an unknown variant) answered with `BadRequest` on
//! a connection that goes on serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use openraft::{BasicNode, Config, Raft};

use super::client::{CallError, PeerClient, PeerConnection};
use super::frame::{
    read_frame, ControllerRequest, ControllerResponse, RemoteError, CONTROLLER_FRAME_BYTES_MAX,
};
use super::server::{serve, AppHandler, ControllerNode};
use super::TcpNetwork;
use crate::cluster::raft::{ClusterStateMachine, RaftLogStore};
use crate::storage::{prime_dma_io, DmaDisk};

/// Answers `{"echo": request}`, or an error for `{"fail": reason}`.
struct Echo;

impl AppHandler for Echo {
    fn handle(
        &self,
        request: serde_json::Value,
    ) -> LocalBoxFuture<'static, Result<serde_json::Value, String>> {
        Box::pin(async move {
            match request.get("fail").and_then(|v| v.as_str()) {
                Some(reason) => Err(reason.to_string()),
                None => Ok(serde_json::json!({ "echo": request })),
            }
        })
    }
}

/// Runs `f` on a fresh glommio executor with heap DMA buffers (several
/// executors may run at once in the test process; locked memory is 8 MiB).
pub(super) fn on_executor<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let executor = glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .make()
        .expect("glommio executor");
    executor.run(async move { f().await })
}

async fn one_node(data_dir: &Path) -> ControllerNode {
    prime_dma_io(data_dir).await.expect("prime O_DIRECT");
    let dir = data_dir.join("raft");
    let store = RaftLogStore::open(DmaDisk, &dir).await.expect("log store");
    let sm = ClusterStateMachine::open(DmaDisk, &dir).await.expect("sm");
    let config = Arc::new(Config::default().validate().expect("config"));
    Raft::new(1, config, TcpNetwork::new(1), store, sm)
        .await
        .expect("raft")
}

async fn expect_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = glommio::timer::timeout(Duration::from_secs(5), async {
        Ok(stream.read(&mut byte).await)
    })
    .await
    .expect("the server closes a connection after a bad frame");
    assert!(matches!(read, Ok(0) | Err(_)), "read {read:?}");
}

#[test]
fn app_round_trip_and_broken_lengths_close_only_their_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().to_path_buf();
    on_executor(move || async move {
        let raft = one_node(&data_dir).await;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = glommio::spawn_local(serve(listener, raft.clone(), Rc::new(Echo)));
        let deadline = Duration::from_secs(5);

        let request = serde_json::json!({"register": {"id": 4}});
        let answer = PeerClient::send_app(&addr, request.clone(), deadline).await;
        assert_eq!(
            answer.expect("echo"),
            serde_json::json!({ "echo": request })
        );
        let failed =
            PeerClient::send_app(&addr, serde_json::json!({"fail": "not leader"}), deadline).await;
        assert!(
            matches!(&failed, Err(CallError::Remote { error: RemoteError::App(m), .. }) if m == "not leader"),
            "{failed:?}"
        );

        // Oversized and zero length prefixes: closed without reading a body.
        for length in [u32::MAX, CONTROLLER_FRAME_BYTES_MAX as u32 + 1, 0] {
            let mut broken = TcpStream::connect(addr.as_str()).await.expect("connect");
            broken
                .write_all(&length.to_be_bytes())
                .await
                .expect("write");
            expect_closed(&mut broken).await;
        }

        // The listener still serves, and one connection carries many calls.
        let mut connection = PeerConnection::new(addr.clone());
        for i in 0..3 {
            let call = ControllerRequest::App(serde_json::json!({ "n": i }));
            let answer = connection.call(&call, deadline).await.expect("call");
            assert!(matches!(answer, ControllerResponse::App(v) if v["echo"]["n"] == i));
        }
        let members: BTreeMap<u64, BasicNode> = [(1, BasicNode::new(addr.clone()))].into();
        raft.initialize(members).await.expect("initialize");

        drop(server);
        raft.shutdown().await.expect("shutdown");
    });
}

/// Sends `body` as one frame on `stream` and reads the answer.
async fn raw_call(stream: &mut TcpStream, body: &[u8]) -> ControllerResponse {
    let length = u32::try_from(body.len()).expect("small body");
    stream
        .write_all(&length.to_be_bytes())
        .await
        .expect("write");
    stream.write_all(body).await.expect("write");
    read_frame(stream).await.expect("an answer frame")
}

#[test]
fn garbage_json_and_unknown_requests_get_bad_request_and_the_connection_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().to_path_buf();
    on_executor(move || async move {
        let raft = one_node(&data_dir).await;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = glommio::spawn_local(serve(listener, raft.clone(), Rc::new(Echo)));
        let mut stream = TcpStream::connect(addr.as_str()).await.expect("connect");
        let bad: [&[u8]; 4] = [
            b"not json!",
            b"{\"Shutdown\":null}",
            b"{\"Vote\":{\"no\":\"fields\"}}",
            b"[1,2,3]",
        ];
        for body in bad {
            let answer = raw_call(&mut stream, body).await;
            assert!(
                matches!(
                    answer,
                    ControllerResponse::Error(RemoteError::BadRequest(_))
                ),
                "{}: {answer:?}",
                String::from_utf8_lossy(body)
            );
        }
        // The same connection still serves a good request after them.
        let good = serde_json::to_vec(&ControllerRequest::App(serde_json::json!({"n": 1})))
            .expect("encode");
        let answer = raw_call(&mut stream, &good).await;
        assert!(matches!(answer, ControllerResponse::App(v) if v["echo"]["n"] == 1));
        drop(server);
        raft.shutdown().await.expect("shutdown");
    });
}

#[test]
fn unreachable_peer_is_a_connect_error_within_the_deadline() {
    on_executor(|| async {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let result =
            PeerClient::send_app(&addr, serde_json::json!({}), Duration::from_secs(2)).await;
        assert!(
            matches!(result, Err(CallError::Connect { .. })),
            "{result:?}"
        );
    });
}
