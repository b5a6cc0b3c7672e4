//! Writing a transaction's markers to each of its partitions.
//!
//! Each partition's owner appends the marker durably. For a
//! `__consumer_offsets` partition the group coordinator on that shard then
//! applies (commit) or drops (abort) the producer's transactional offset
//! commits. A partition whose topic was deleted is done. Other failures
//! are retried a few times; if they persist the transaction stays in its
//! Prepare state and the sweeper tries again later (Kafka retries markers
//! until they succeed).

use std::rc::Rc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::ResponseError;
use tracing::warn;

use super::remote;
use super::state::TxnPartition;
use crate::group::OFFSETS_TOPIC;
use crate::metadata::{PartitionId, PartitionLocation};
use crate::shard::{PartitionOp, PartitionReply, Shard};

/// Attempts per partition before giving up until the next sweep.
pub const MARKER_ATTEMPTS: u32 = 5;
/// Pause between attempts.
pub const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Writes a COMMIT (`commit`) or ABORT marker for `producer_id` at `epoch`
/// to every partition in `partitions`; `Err` with a Kafka code if any
/// could not be written.
pub async fn write_markers(
    shard: &Rc<Shard>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    partitions: impl IntoIterator<Item = TxnPartition>,
) -> Result<(), i16> {
    let writes = partitions.into_iter().map(|(topic, partition)| {
        let shard = shard.clone();
        async move {
            let id = PartitionId {
                topic: topic.into(),
                partition,
            };
            let mut last = 0;
            for attempt in 0..MARKER_ATTEMPTS {
                if attempt > 0 {
                    glommio::timer::sleep(MARKER_RETRY_BACKOFF).await;
                }
                match write_one(&shard, id.clone(), producer_id, epoch, commit, 0).await {
                    Ok(()) => return Ok(()),
                    Err(code) => last = code,
                }
            }
            warn!(partition = %id, producer_id, code = last, "transaction marker not written; will retry");
            Err(last)
        }
    });
    join_all(writes)
        .await
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// Writes one marker on `id`'s owner (a deleted partition counts as done)
/// and, on `__consumer_offsets`, settles the producer's pending
/// transactional offset commits there. Also the body of WriteTxnMarkers.
pub(crate) async fn write_one(
    shard: &Rc<Shard>,
    id: PartitionId,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), i16> {
    let owner = match shard.snapshot().locate(&id.topic, id.partition) {
        PartitionLocation::Local(owner) => owner,
        PartitionLocation::Unknown => return Ok(()), // deleted: nothing to mark
        // Led by another broker: through it (`remote`); with no leader
        // now, the coordinator retries later.
        PartitionLocation::Remote { leader, .. } if leader >= 0 => {
            let producer = (producer_id, epoch);
            return remote::write_marker(shard, leader, &id, producer, commit, coordinator_epoch)
                .await;
        }
        PartitionLocation::Remote { .. } => return Err(ResponseError::NotLeaderOrFollower.code()),
    };
    let answer = shard
        .run_on(owner, move |shard| async move {
            let op = PartitionOp::WriteTxnMarker {
                producer_id,
                epoch,
                commit,
                coordinator_epoch,
            };
            match shard.call_partition(id.clone(), op).await {
                PartitionReply::Produced { .. } => {
                    if &*id.topic == OFFSETS_TOPIC {
                        let session = std::time::Duration::from_millis(
                            shard.config.group_consumer_session_timeout_ms,
                        );
                        shard.groups.complete_txn_offsets(
                            id.partition,
                            producer_id,
                            commit,
                            session,
                        );
                    }
                    Ok(())
                }
                PartitionReply::Error(code)
                    if code == ResponseError::UnknownTopicOrPartition.code() =>
                {
                    Ok(())
                }
                PartitionReply::Error(code) => Err(code),
                other => {
                    warn!(partition = %id, "unexpected reply to a marker write: {other:?}");
                    Err(ResponseError::UnknownServerError.code())
                }
            }
        })
        .await;
    answer.unwrap_or(Err(ResponseError::CoordinatorNotAvailable.code()))
}
