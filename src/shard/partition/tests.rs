//! A partition on a real O_DIRECT disk in a glommio executor: the orders in
//! which a marker write, a parked long poll and reads interleave.

use std::cell::Cell;
use std::rc::Rc;

use futures::channel::oneshot;
use uuid::Uuid;

use super::{Partition, PartitionOp, PartitionReply, ProduceOrigin};
use crate::metadata::PartitionId;
use crate::protocol::batch::{build_test_batch, build_test_producer_batch, TestRecord};
use crate::storage::{prime_dma_io, DmaDisk, LogConfig, PartitionLog};

fn run_glommio<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor")
        .run(async move { f().await })
}

async fn open_partition(data_dir: &std::path::Path) -> Rc<Partition> {
    prime_dma_io(data_dir).await.expect("prime");
    let log = PartitionLog::open(DmaDisk, data_dir.join("t-0"), LogConfig::default())
        .await
        .expect("open log");
    let id = PartitionId {
        topic: "t".into(),
        partition: 0,
    };
    Rc::new(
        Partition::open(id, Uuid::new_v4(), log)
            .await
            .expect("open"),
    )
}

async fn run(p: &Rc<Partition>, op: PartitionOp) -> PartitionReply {
    let (reply, answer) = oneshot::channel();
    p.execute(op, reply).await;
    answer.await.expect("answered")
}

async fn produce(p: &Rc<Partition>, batch: Vec<u8>) -> i64 {
    let op = PartitionOp::Produce {
        records: bytes::Bytes::from(batch),
        acks: -1,
        origin: ProduceOrigin::Client,
        timeout_ms: 30_000,
    };
    match run(p, op).await {
        PartitionReply::Produced { base_offset, .. } => base_offset,
        other => panic!("produce: {other:?}"),
    }
}

fn records(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| (format!("k{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect()
}

fn as_test_records(owned: &[(Vec<u8>, Vec<u8>)]) -> Vec<TestRecord<'_>> {
    owned
        .iter()
        .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
        .collect()
}

/// What a read_committed Read of `p` from `offset` returns: the offsets of
/// the batches it carries and the producer ids it lists as aborted.
async fn read_committed(p: &Rc<Partition>, offset: i64) -> (Vec<i64>, Vec<(i64, i64)>) {
    let op = PartitionOp::Read {
        offset,
        max_bytes: 1 << 20,
        min_one: true,
        committed: true,
        last_fetched_epoch: -1,
    };
    match run(p, op).await {
        PartitionReply::Read {
            records, aborted, ..
        } => (
            records.batch_extents().map(|b| b.base_offset).collect(),
            aborted
                .unwrap_or_default()
                .iter()
                .map(|a| (a.producer_id, a.first_offset))
                .collect(),
        ),
        other => panic!("read: {other:?}"),
    }
}

const PRODUCER_ID: i64 = 7;

/// Issue: a read_committed consumer long-polling while a transaction was
/// aborted got the transaction's records with no aborted entry, because
/// the LSO passed the transaction when its marker was appended, before the
/// marker was durable and its aborted-index entry pushed. At every point
/// the marker write can be interleaved with (each yield below), a read that
/// returns the transaction's batch must also list it as aborted.
#[test]
fn write_txn_marker_abort_never_shows_read_committed_the_aborted_records() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        let p = open_partition(&data_dir).await;
        let plain = records(3);
        produce(&p, build_test_batch(0, &as_test_records(&plain), 1_000)).await;
        let txn = records(125);
        let batch = build_test_producer_batch(&as_test_records(&txn), PRODUCER_ID, 0, 0, true);
        let txn_first = produce(&p, batch).await;
        assert_eq!(txn_first, 3);
        assert_eq!(
            p.last_stable_offset(),
            txn_first,
            "an open transaction holds the LSO"
        );

        // A read_committed long poll parked at the LSO, as a consumer's is.
        let (parked, woken) = oneshot::channel();
        let wait = PartitionOp::WaitForData {
            offset: txn_first,
            committed: true,
        };
        p.execute(wait, parked).await;

        let done = Rc::new(Cell::new(false));
        let marker = {
            let (p, done) = (p.clone(), done.clone());
            glommio::spawn_local(async move {
                let reply = p.write_marker(PRODUCER_ID, 0, false, 0).await;
                done.set(true);
                reply
            })
        };
        let mut observations = 0;
        while !done.get() {
            let (batches, aborted) = read_committed(&p, txn_first).await;
            if batches.contains(&txn_first) {
                assert!(
                    aborted.contains(&(PRODUCER_ID, txn_first)),
                    "the aborted transaction's batch was returned without its aborted entry \
                     (batches {batches:?}, aborted {aborted:?})"
                );
            }
            observations += 1;
            futures_lite::future::yield_now().await;
        }
        assert!(
            observations > 1,
            "the marker write was not interleaved with reads"
        );
        let marker_offset = match marker.await {
            PartitionReply::Produced { base_offset, .. } => base_offset,
            other => panic!("marker: {other:?}"),
        };
        assert_eq!(marker_offset, txn_first + 125);

        // The parked poll was woken; what it then reads is filtered.
        assert!(matches!(woken.await, Ok(PartitionReply::DataReady)));
        let (batches, aborted) = read_committed(&p, txn_first).await;
        assert_eq!(batches, vec![txn_first, marker_offset]);
        assert_eq!(aborted, vec![(PRODUCER_ID, txn_first)]);
        assert_eq!(p.last_stable_offset(), marker_offset + 1);
    });
}

/// A commit marker holds the LSO back the same way until it is durable: a
/// read_committed reader never passes a transaction whose outcome is not
/// yet written.
#[test]
fn write_txn_marker_commit_keeps_the_lso_until_the_marker_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        let p = open_partition(&data_dir).await;
        let txn = records(10);
        let batch = build_test_producer_batch(&as_test_records(&txn), PRODUCER_ID, 0, 0, true);
        let txn_first = produce(&p, batch).await;
        let done = Rc::new(Cell::new(false));
        let marker = {
            let (p, done) = (p.clone(), done.clone());
            glommio::spawn_local(async move {
                let reply = p.write_marker(PRODUCER_ID, 0, true, 0).await;
                done.set(true);
                reply
            })
        };
        while !done.get() {
            let lso = p.last_stable_offset();
            assert!(
                lso == txn_first || p.log.high_watermark() > txn_first + 10,
                "LSO {lso} passed the transaction before its marker was durable"
            );
            futures_lite::future::yield_now().await;
        }
        assert!(matches!(marker.await, PartitionReply::Produced { .. }));
        assert_eq!(p.last_stable_offset(), txn_first + 11);
    });
}

#[test]
fn restore_hw_starts_a_replica_at_the_checkpoint_cut_to_its_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        let p = open_partition(&dir).await;
        let owned = vec![(b"k".to_vec(), b"v".to_vec()); 10];
        produce(&p, build_test_batch(0, &as_test_records(&owned), 1_000)).await;
        assert_eq!(p.log.high_watermark(), 10);
        // No checkpoint: nothing of a replicated log is known committed.
        p.restore_hw(None);
        assert_eq!(p.hw.get(), 0);
        // A checkpoint within the log is taken as it is...
        p.restore_hw(Some(7));
        assert_eq!(p.hw.get(), 7);
        // ...one past the log's end (a tail lost since) is cut to it.
        p.restore_hw(Some(25));
        assert_eq!(p.hw.get(), 10);
        // Only a replicated partition is checkpointed.
        assert_eq!(p.hw_to_checkpoint(), None);
    });
}
