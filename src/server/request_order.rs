//! The effects of one connection's requests land as if they ran one at a
//! time, in the order they were sent, as Kafka runs them.
//!
//! Kafka reads a connection's next request only after answering the
//! previous one. corestream reads ahead and runs up to
//! `REQUESTS_IN_FLIGHT_MAX` requests of a connection at once (pipelined
//! produce is where its throughput comes from), so before a request starts
//! the reader checks it against every request of the connection still
//! running ([`OrderGate::admit`]). Each request has a [`Footprint`]:
//!
//! - `Read`: changes nothing a later request can observe (ApiVersions,
//!   Metadata, ListOffsets, Fetch without a session, OffsetFetch, the
//!   Describe and List APIs, FindCoordinator). Reads overlap each other:
//!   their order cannot be seen. (Metadata and FindCoordinator may create a
//!   topic, through the metadata owner; creating it twice is one creation.)
//! - `SessionFetch`: a Fetch that opens or moves a fetch session (KIP-227).
//!   It overlaps reads, but not another fetch: session epochs are a
//!   sequence.
//! - `Produce`: overlaps other produces. Each takes a dispatch ticket when
//!   it is admitted (a [`FifoLock`] of the connection, so in request order)
//!   and hands its partitions' batches to the owner shards only in its turn
//!   (`RequestContext::dispatch_turn`), giving the turn up once all are
//!   sent (`RequestContext::dispatched`). Batches for one partition then
//!   reach its owner in request order (one FIFO channel or run queue per
//!   shard pair) and take its append lock in that order (`FifoLock`);
//!   transactional batches keep it through their coordinator check
//!   (`Partition::produce_transactional`). So a connection's batches land
//!   in each partition in the order it sent them, while their flushes are
//!   shared (group commit).
//! - `Exclusive`: everything else (offset commits, group membership,
//!   transactions, topic and config changes, DeleteRecords, produce after a
//!   read and so on) waits for every earlier request of the connection to
//!   finish, and every later one waits for it: exactly Kafka's one at a
//!   time. A produce after a read, or a read after a produce, waits the
//!   same way (a Fetch must see the connection's earlier produce); clients
//!   keep producing and consuming on separate connections, so this costs
//!   them nothing.
//!
//! Responses are written in request order by the connection's writer in
//! any case. The check costs a scan of at most `REQUESTS_IN_FLIGHT_MAX`
//! entries per request; a Fetch's session fields are read from fixed
//! positions of its body.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::protocol::frame::parse_request_header;
use crate::shard::fifo_lock::{Acquire, FifoGuard, FifoLock};

/// How a request may overlap the connection's other requests (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Footprint {
    /// Changes nothing another request observes.
    Read,
    /// A Fetch that opens or moves a fetch session.
    SessionFetch,
    /// Appends records.
    Produce,
    /// Anything else: runs alone.
    Exclusive,
}

/// The first Fetch version with session fields (KIP-227).
const FETCH_SESSION_VERSION_MIN: i16 = 7;
/// The first Fetch version without `replica_id` in the body (KIP-903).
const FETCH_NO_REPLICA_ID_VERSION_MIN: i16 = 15;
/// Fetch body bytes before the session id: replica_id (below v15),
/// max_wait_ms, min_bytes, max_bytes, isolation_level.
const FETCH_FIXED_BYTES_BEFORE_SESSION: usize = 4 + 4 + 4 + 1;
const FETCH_REPLICA_ID_BYTES: usize = 4;

impl Footprint {
    /// The footprint of a request frame (size prefix removed). A frame that
    /// cannot be classified is `Exclusive`, the safe choice.
    pub fn of(frame: &Bytes) -> Footprint {
        let Some(key) = frame
            .get(..2)
            .and_then(|b| ApiKey::try_from(i16::from_be_bytes([b[0], b[1]])).ok())
        else {
            return Footprint::Exclusive;
        };
        match key {
            ApiKey::Produce => Footprint::Produce,
            ApiKey::Fetch => fetch_footprint(frame),
            ApiKey::ApiVersions
            | ApiKey::Metadata
            | ApiKey::ListOffsets
            | ApiKey::OffsetForLeaderEpoch
            | ApiKey::DescribeConfigs
            | ApiKey::DescribeCluster
            | ApiKey::FindCoordinator
            | ApiKey::OffsetFetch
            | ApiKey::ListGroups
            | ApiKey::DescribeGroups
            | ApiKey::DescribeTransactions
            | ApiKey::ListTransactions
            | ApiKey::ConsumerGroupDescribe => Footprint::Read,
            _ => Footprint::Exclusive,
        }
    }

    /// Whether a request of footprint `next` may start while one of `self`
    /// runs (produces keep their order through dispatch turns instead).
    fn admits(self, next: Footprint) -> bool {
        use Footprint::*;
        matches!(
            (self, next),
            (Read, Read) | (Read, SessionFetch) | (SessionFetch, Read) | (Produce, Produce)
        )
    }
}

/// A Fetch without a session (session id 0, epoch -1, as librdkafka and
/// every fetch below v7 send) is a read; one naming or opening a session
/// is a `SessionFetch`.
fn fetch_footprint(frame: &Bytes) -> Footprint {
    let mut body = frame.clone();
    let Ok(header) = parse_request_header(&mut body) else {
        return Footprint::Exclusive;
    };
    if header.header_version.is_none() {
        return Footprint::Exclusive; // refused before any handler runs
    }
    if header.api_version < FETCH_SESSION_VERSION_MIN {
        return Footprint::Read;
    }
    let mut at = FETCH_FIXED_BYTES_BEFORE_SESSION;
    if header.api_version < FETCH_NO_REPLICA_ID_VERSION_MIN {
        at += FETCH_REPLICA_ID_BYTES;
    }
    let Some(fields) = body.get(at..at + 8) else {
        return Footprint::Exclusive; // will not decode: closed by the dispatcher
    };
    let session_id = i32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]);
    let epoch = i32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]);
    if session_id == 0 && epoch == -1 {
        Footprint::Read
    } else {
        Footprint::SessionFetch
    }
}

#[derive(Debug)]
struct Running {
    id: u64,
    footprint: Footprint,
}

#[derive(Debug, Default)]
struct GateState {
    running: Vec<Running>,
    next_id: u64,
    /// The connection's reader, waiting to admit a request.
    reader: Option<Waker>,
}

/// One connection's requests in flight, by footprint (module doc).
/// `!Send`: it lives with its connection.
#[derive(Debug, Default)]
pub struct OrderGate {
    state: RefCell<GateState>,
    /// Produces hand their batches to the owners one at a time, in request
    /// order.
    dispatch_turns: FifoLock,
}

impl OrderGate {
    /// A gate with nothing running.
    pub fn new() -> Rc<OrderGate> {
        Rc::new(OrderGate::default())
    }

    /// Waits until a request of `footprint` may start, then registers it;
    /// it counts as running until the [`Admission`] drops.
    pub async fn admit(self: &Rc<Self>, footprint: Footprint) -> Admission {
        poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            if state.running.iter().all(|r| r.footprint.admits(footprint)) {
                Poll::Ready(())
            } else {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        let mut state = self.state.borrow_mut();
        let id = state.next_id;
        state.next_id += 1;
        state.running.push(Running { id, footprint });
        // The ticket is taken here, in the reader: in request order.
        let turn =
            (footprint == Footprint::Produce).then(|| Turn::Waiting(self.dispatch_turns.lock()));
        Admission {
            gate: self.clone(),
            id,
            turn: RefCell::new(turn),
        }
    }

    fn finished(&self, id: u64) {
        let mut state = self.state.borrow_mut();
        if let Some(at) = state.running.iter().position(|r| r.id == id) {
            state.running.swap_remove(at);
        }
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

/// A produce's place in its connection's dispatch order.
#[derive(Debug)]
enum Turn {
    Waiting(Acquire),
    /// The turn, held (for its `Drop`) until the produce dispatched.
    Holding {
        _guard: FifoGuard,
    },
}

/// A request admitted by an [`OrderGate`]; it leaves the gate when dropped
/// (its handler finished, or its task was cancelled with the connection),
/// giving up its dispatch turn if it still has one.
#[derive(Debug)]
pub struct Admission {
    gate: Rc<OrderGate>,
    id: u64,
    /// A produce's dispatch turn (`None` for other requests, or once given
    /// up).
    turn: RefCell<Option<Turn>>,
}

impl Admission {
    /// Waits until the connection's earlier produces have handed their
    /// batches to the owners (at once when they have, the usual case).
    pub async fn dispatch_turn(&self) {
        let taken = self.turn.borrow_mut().take();
        let waiting = match taken {
            Some(Turn::Waiting(acquire)) => acquire,
            other => {
                *self.turn.borrow_mut() = other;
                return;
            }
        };
        let guard = waiting.await;
        *self.turn.borrow_mut() = Some(Turn::Holding { _guard: guard });
    }

    /// The request has handed all its work to the partitions' owners: the
    /// connection's next produce may dispatch.
    pub fn dispatched(&self) {
        self.turn.borrow_mut().take();
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.finished(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn frame(key: i16, version: i16, body: &[u8]) -> Bytes {
        let mut f = Vec::new();
        f.extend_from_slice(&key.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes()); // correlation id
        f.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        if version >= 12 {
            f.push(0); // no tagged fields (flexible header)
        }
        f.extend_from_slice(body);
        Bytes::from(f)
    }

    fn fetch_body(version: i16, session_id: i32, epoch: i32) -> Vec<u8> {
        let mut b = Vec::new();
        if version < 15 {
            b.extend_from_slice(&(-1i32).to_be_bytes());
        }
        b.extend_from_slice(&500i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&(1i32 << 20).to_be_bytes());
        b.push(0);
        b.extend_from_slice(&session_id.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b
    }

    #[test]
    fn footprint_of_fetch_v4_v12_v16_reads_the_session_fields() {
        for version in [7, 11, 12, 15, 16] {
            let sessionless = frame(1, version, &fetch_body(version, 0, -1));
            assert_eq!(Footprint::of(&sessionless), Footprint::Read, "v{version}");
            let session = frame(1, version, &fetch_body(version, 0, 0));
            assert_eq!(
                Footprint::of(&session),
                Footprint::SessionFetch,
                "v{version}"
            );
            let incremental = frame(1, version, &fetch_body(version, 42, 3));
            assert_eq!(Footprint::of(&incremental), Footprint::SessionFetch);
        }
        assert_eq!(Footprint::of(&frame(1, 4, &[])), Footprint::Read);
        assert_eq!(Footprint::of(&frame(1, 12, &[0; 3])), Footprint::Exclusive);
    }

    #[test]
    fn footprint_of_commits_and_unknown_keys_is_exclusive() {
        assert_eq!(Footprint::of(&frame(8, 8, &[])), Footprint::Exclusive);
        assert_eq!(Footprint::of(&frame(9999, 0, &[])), Footprint::Exclusive);
        assert_eq!(
            Footprint::of(&Bytes::from_static(&[0])),
            Footprint::Exclusive
        );
        assert_eq!(Footprint::of(&frame(0, 9, &[])), Footprint::Produce);
        assert_eq!(Footprint::of(&frame(3, 12, &[])), Footprint::Read);
    }

    #[test]
    fn order_gate_runs_exclusive_requests_alone_and_reads_together() {
        futures::executor::block_on(async {
            let gate = OrderGate::new();
            let read1 = gate.admit(Footprint::Read).await;
            let _read2 = gate.admit(Footprint::Read).await;
            let mut commit = Box::pin(gate.admit(Footprint::Exclusive));
            assert!(
                commit.as_mut().now_or_never().is_none(),
                "waits for the reads"
            );
            drop(read1);
            drop(_read2);
            let commit = commit.await;
            let mut read3 = Box::pin(gate.admit(Footprint::Read));
            assert!(
                read3.as_mut().now_or_never().is_none(),
                "waits for the commit"
            );
            drop(commit);
            let _ = read3.await;
        });
    }

    #[test]
    fn order_gate_runs_produces_together_but_dispatches_them_in_order() {
        futures::executor::block_on(async {
            let gate = OrderGate::new();
            let first = gate.admit(Footprint::Produce).await;
            let second = gate.admit(Footprint::Produce).await;
            {
                let mut turn = Box::pin(second.dispatch_turn());
                assert!(
                    turn.as_mut().now_or_never().is_none(),
                    "first dispatches first"
                );
            }
            first.dispatch_turn().await;
            first.dispatched();
            second.dispatch_turn().await;
            second.dispatched();
            let mut fetch = Box::pin(gate.admit(Footprint::Read));
            assert!(
                fetch.as_mut().now_or_never().is_none(),
                "a read waits for produces"
            );
            drop(first);
            drop(second);
            let _ = fetch.await;
        });
    }

    #[test]
    fn order_gate_passes_the_dispatch_turn_on_when_a_produce_fails_early() {
        futures::executor::block_on(async {
            let gate = OrderGate::new();
            let failed = gate.admit(Footprint::Produce).await;
            let next = gate.admit(Footprint::Produce).await;
            drop(failed); // e.g. its body did not decode: never dispatched
            next.dispatch_turn().await;
        });
    }
}
