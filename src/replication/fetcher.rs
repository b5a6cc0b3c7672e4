//! A follower shard's fetcher for one leader broker: a loop of Kafka
//! Fetch v12 requests with this node's ReplicaId over one connection,
//! carrying every partition the shard follows from that broker.
//!
//! Each partition is fetched from its durable end (every append is made
//! durable before the next fetch, so the offset the leader records is on
//! this disk) with its LastFetchedEpoch, the leader epoch of its last
//! batch. A leader that finds the follower's tail diverging from its own
//! log answers DivergingEpoch instead of records; the follower truncates
//! to the end of that epoch as both logs agree on it (KIP-595's check,
//! Kafka's follower truncation) and fetches again. Received batches are
//! appended as they are, through the partition (no re-encoding).
//! Errors back off and retry: a moved leadership is fixed by the next
//! snapshot, which reassigns the partition to another fetcher.
//! OFFSET_OUT_OF_RANGE means the leader's log no longer starts at or below
//! this replica's end (its retention or DeleteRecords ran while this
//! replica was away): the fetcher asks the leader for its log start
//! (ListOffsets, earliest) and, when that is past this replica's end,
//! empties the replica's log and starts it again there, as Kafka's
//! follower does (`Partition::reset_replica`). That start may fall inside
//! a batch (DeleteRecords moves it to any offset); the leader then sends
//! the whole batch, and the still empty log starts again at the batch's
//! base offset to take it, as Kafka's follower does.
//!
//! The fetcher reaches the leader on its inter-broker listener with the
//! broker's own TLS and SASL settings (`security::inter_broker`). A failed
//! connection or login is retried with a doubling backoff up to
//! [`RECONNECT_BACKOFF_MAX`], logged on the first failure and then once in
//! [`FAILURE_LOG_EVERY`]. A leader that refuses the fetch for want of
//! CLUSTER_ACTION (TOPIC_AUTHORIZATION_FAILED on every partition, Kafka's
//! answer to a follower) is asked again after [`DENIED_BACKOFF`]: a grant
//! takes effect within it, with no restart.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::{debug, info, warn};

use super::client::BrokerConnection;
use crate::shard::{Partition, Shard};
use crate::storage::StorageError;

/// Fetch version: v12 is the first with LastFetchedEpoch and
/// DivergingEpoch, and still names topics (no id lookups) and carries
/// ReplicaId as a field.
pub const FETCH_VERSION: i16 = 12;
/// A replica fetch's response budget, bytes.
pub const FETCH_MAX_BYTES: i32 = 16 * 1024 * 1024;
/// Per partition, bytes.
pub const PARTITION_FETCH_MAX_BYTES: i32 = 4 * 1024 * 1024;
/// How long the leader may hold a fetch with nothing new, ms (Kafka's
/// replica.fetch.wait.max.ms default).
pub const FETCH_MAX_WAIT_MS: i32 = 500;
/// Wait before retrying after an error or with nothing to fetch.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnects: the backoff doubles from
/// [`RETRY_BACKOFF`] up to this.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Wait after the leader refused the fetch for want of CLUSTER_ACTION.
pub const DENIED_BACKOFF: Duration = Duration::from_secs(1);
/// A failure run is logged on its first failure, then once in this many.
pub const FAILURE_LOG_EVERY: u32 = 20;
/// Replace a SASL connection this long before its session ends (KIP-368).
const SESSION_END_MARGIN: Duration = Duration::from_secs(5);
/// A fetch unanswered this long past its wait is given up (reconnect).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// ListOffsets version for the leader's log start: v4 carries
/// CurrentLeaderEpoch and is still non-flexible, as `FETCH_VERSION` is.
pub const LIST_OFFSETS_VERSION: i16 = 4;
/// ListOffsets' timestamp for the earliest offset (the log start).
const EARLIEST_TIMESTAMP: i64 = -2;

/// One follower shard's fetcher for one leader broker.
pub struct Fetcher {
    local: i32,
    leader: i32,
    partitions: RefCell<Vec<Rc<Partition>>>,
    stopped: Cell<bool>,
    /// Fetches in a row the leader refused (no CLUSTER_ACTION).
    denials: Cell<u32>,
}

impl Fetcher {
    /// A fetcher (not running yet) of node `local` from broker `leader`.
    pub fn new(local: i32, leader: i32) -> Rc<Fetcher> {
        Rc::new(Fetcher {
            local,
            leader,
            partitions: RefCell::new(Vec::new()),
            stopped: Cell::new(false),
            denials: Cell::new(0),
        })
    }

    /// Runs the fetch loop on this shard until [`Fetcher::stop`].
    pub fn spawn(me: Rc<Fetcher>, shard: Rc<Shard>) {
        glommio::spawn_local(async move { me.run(shard).await }).detach();
    }

    /// Ends the loop after its current fetch.
    pub fn stop(&self) {
        self.stopped.set(true);
    }

    /// The partitions to fetch from now on, sorted so that each topic is
    /// one FetchTopic of the request (`request` groups runs).
    pub fn set_partitions(&self, mut partitions: Vec<Rc<Partition>>) {
        partitions.sort_by(|a, b| a.id.cmp(&b.id));
        *self.partitions.borrow_mut() = partitions;
    }

    async fn run(self: Rc<Self>, shard: Rc<Shard>) {
        let mut conn: Option<BrokerConnection> = None;
        let mut failures = 0u32;
        let security = crate::security::inter_broker::peer_security();
        let listener = shard.config.inter_broker.listener.name();
        while !self.stopped.get() {
            let partitions = self.partitions.borrow().clone();
            let addr = shard.snapshot().cluster.as_ref().and_then(|c| {
                c.live_broker(self.leader).map(|b| {
                    let (host, port) = b.address_on(listener);
                    format!("{host}:{port}")
                })
            });
            let (false, Some(addr)) = (partitions.is_empty(), addr) else {
                glommio::timer::sleep(RETRY_BACKOFF).await;
                continue;
            };
            // A leader that moved, or a SASL session about to end: a new
            // connection (and login).
            if conn
                .as_ref()
                .is_some_and(|c| c.addr() != addr || c.session_ending(SESSION_END_MARGIN))
            {
                conn = None;
            }
            if conn.is_none() {
                match BrokerConnection::connect_secured(&addr, &security).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        self.failed(&mut failures, &format!("connect: {e}")).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let request = self.request(&shard, &partitions);
            let timeout = FETCH_TIMEOUT + Duration::from_millis(FETCH_MAX_WAIT_MS as u64);
            match c.send(&request, FETCH_VERSION, timeout).await {
                Ok(response) => {
                    failures = 0;
                    let mut behind = Vec::new();
                    if !self.take(&shard, response, &partitions, &mut behind).await {
                        let wait = match self.denials.get() {
                            0 => RETRY_BACKOFF,
                            _ => DENIED_BACKOFF,
                        };
                        glommio::timer::sleep(wait).await;
                    }
                    let mut lost = None;
                    for p in behind {
                        if let Err(e) = self.catch_up_to_log_start(c, &p).await {
                            lost = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = lost {
                        conn = None;
                        self.failed(&mut failures, &format!("list offsets: {e}"))
                            .await;
                    }
                }
                Err(e) => {
                    conn = None;
                    self.failed(&mut failures, &format!("fetch: {e}")).await;
                }
            }
        }
        debug!(leader = self.leader, "replica fetcher stopped");
    }

    /// Logs the first failure of a run (then one in
    /// [`FAILURE_LOG_EVERY`]) and backs off, doubling up to
    /// [`RECONNECT_BACKOFF_MAX`].
    async fn failed(&self, failures: &mut u32, what: &str) {
        if failures.is_multiple_of(FAILURE_LOG_EVERY) {
            warn!(
                leader = self.leader,
                failures = *failures + 1,
                "replica fetcher: {what} (retrying)"
            );
        }
        *failures += 1;
        glommio::timer::sleep(reconnect_backoff(*failures)).await;
    }

    fn request(&self, shard: &Shard, partitions: &[Rc<Partition>]) -> FetchRequest {
        let snapshot = shard.snapshot();
        let mut topics: Vec<FetchTopic> = Vec::new();
        for p in partitions {
            let leader_epoch = match snapshot.locate(&p.id.topic, p.id.partition) {
                crate::metadata::PartitionLocation::Remote { leader_epoch, .. } => leader_epoch,
                _ => -1,
            };
            let partition = FetchPartition::default()
                .with_partition(p.id.partition)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(p.log.next_offset())
                .with_last_fetched_epoch(p.log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(p.log.log_start_offset())
                .with_partition_max_bytes(PARTITION_FETCH_MAX_BYTES);
            match topics.last_mut() {
                Some(t) if *t.topic.0 == *p.id.topic => t.partitions.push(partition),
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(p.id.topic.to_string())))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(self.local))
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// Appends what the leader sent; false when every partition failed
    /// (back off before asking again). Partitions the leader answered
    /// OFFSET_OUT_OF_RANGE go to `behind`.
    async fn take(
        &self,
        shard: &Shard,
        response: FetchResponse,
        partitions: &[Rc<Partition>],
        behind: &mut Vec<Rc<Partition>>,
    ) -> bool {
        if response.error_code != 0 {
            debug!(
                leader = self.leader,
                code = response.error_code,
                "replica fetch refused"
            );
            return false;
        }
        if self.denied(&response) {
            return false;
        }
        let mut any_ok = false;
        for topic in response.responses {
            for answer in topic.partitions {
                let Some(p) = partitions.iter().find(|p| {
                    *p.id.topic == *topic.topic.0 && p.id.partition == answer.partition_index
                }) else {
                    continue;
                };
                if answer.error_code == ResponseError::OffsetOutOfRange.code() {
                    behind.push(p.clone());
                    continue;
                }
                if answer.error_code != 0 {
                    self.partition_error(p, answer.error_code);
                    continue;
                }
                if answer.diverging_epoch.epoch >= 0 {
                    let (epoch, end) = (
                        answer.diverging_epoch.epoch,
                        answer.diverging_epoch.end_offset,
                    );
                    let (_, local_end) = p.log.end_offset_for(epoch);
                    let to = if local_end >= 0 {
                        end.min(local_end)
                    } else {
                        end
                    };
                    info!(partition = %p.id, epoch, leader_end = end, to, "log diverges from the leader's: truncating");
                    match p.truncate_replica(to).await {
                        Ok(hw_lowered) => {
                            any_ok = true;
                            if hw_lowered {
                                shard.write_hw_checkpoint().await;
                            }
                        }
                        Err(e) => warn!(partition = %p.id, "truncation failed: {e}"),
                    }
                    continue;
                }
                let records = answer.records.unwrap_or_default();
                crate::ops::metrics::record_replication_fetch(records.len());
                let mut appended = p.append_replica(&records, answer.high_watermark).await;
                if let Err(StorageError::NonContiguousReplica {
                    expected, found, ..
                }) = appended
                {
                    // Reset to a log start inside a batch (module doc):
                    // start the empty log again at the batch's base.
                    let empty = p.log.log_start_offset() == p.log.next_offset();
                    if empty && found < expected {
                        appended = match p.reset_replica(found).await {
                            Ok(()) => p.append_replica(&records, answer.high_watermark).await,
                            Err(e) => Err(e),
                        };
                    }
                }
                match appended {
                    Ok(()) => any_ok = true,
                    Err(e) => warn!(partition = %p.id, "appending fetched batches failed: {e}"),
                }
            }
        }
        any_ok
    }

    /// After OFFSET_OUT_OF_RANGE: asks the leader for its log start and,
    /// when it is past this replica's end, starts the replica's log again
    /// there. `Err` only for a connection failure; a partition error is
    /// logged and the next fetch tries again.
    async fn catch_up_to_log_start(
        &self,
        conn: &mut BrokerConnection,
        p: &Partition,
    ) -> Result<(), super::client::ClientError> {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(p.id.partition)
            .with_current_leader_epoch(p.leader_epoch())
            .with_timestamp(EARLIEST_TIMESTAMP);
        let topic = ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(p.id.topic.to_string())))
            .with_partitions(vec![partition]);
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.local))
            .with_topics(vec![topic]);
        let response: ListOffsetsResponse = conn
            .send(&request, LIST_OFFSETS_VERSION, FETCH_TIMEOUT)
            .await?;
        let answer = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|a| a.partition_index == p.id.partition);
        let Some(answer) = answer.filter(|a| a.error_code == 0) else {
            let code = answer.map(|a| a.error_code);
            warn!(partition = %p.id, leader = self.leader, ?code, "leader's log start unknown after OFFSET_OUT_OF_RANGE");
            return Ok(());
        };
        let end = p.log.next_offset();
        if answer.offset <= end {
            // Not behind the leader's start: a fetch past the leader's end
            // (a leader that lost data) is the epoch check's to settle.
            warn!(partition = %p.id, leader = self.leader, end, leader_log_start = answer.offset,
                "replica fetch out of range but not below the leader's log start");
            return Ok(());
        }
        if let Err(e) = p.reset_replica(answer.offset).await {
            warn!(partition = %p.id, "log reset to the leader's log start failed: {e}");
        }
        Ok(())
    }

    /// Whether the leader refused every partition for want of
    /// CLUSTER_ACTION; logs the first refusal of a run and one in
    /// [`FAILURE_LOG_EVERY`], and the end of the run.
    fn denied(&self, response: &FetchResponse) -> bool {
        let refused = [
            ResponseError::TopicAuthorizationFailed.code(),
            ResponseError::ClusterAuthorizationFailed.code(),
        ];
        let mut answers = response.responses.iter().flat_map(|t| &t.partitions);
        let denied =
            answers.clone().next().is_some() && answers.all(|p| refused.contains(&p.error_code));
        let run = self.denials.get();
        match (denied, run) {
            (true, n) => {
                if n.is_multiple_of(FAILURE_LOG_EVERY) {
                    warn!(
                        leader = self.leader,
                        denied = n + 1,
                        "replica fetch denied by the leader: this broker's principal lacks \
                         CLUSTER_ACTION on the cluster (retrying every {} ms)",
                        DENIED_BACKOFF.as_millis()
                    );
                }
                self.denials.set(n + 1);
            }
            (false, 0) => {}
            (false, n) => {
                info!(
                    leader = self.leader,
                    "replica fetch allowed again after {n} denials"
                );
                self.denials.set(0);
            }
        }
        denied
    }

    fn partition_error(&self, p: &Partition, code: i16) {
        let error = ResponseError::try_from_code(code);
        match error {
            Some(ResponseError::NotLeaderOrFollower)
            | Some(ResponseError::FencedLeaderEpoch)
            | Some(ResponseError::UnknownLeaderEpoch)
            | Some(ResponseError::UnknownTopicOrPartition) => {
                debug!(partition = %p.id, leader = self.leader, ?error, "waiting for new metadata")
            }
            _ => warn!(partition = %p.id, leader = self.leader, ?error, "replica fetch error"),
        }
    }
}

/// The wait after the `failures`-th failure in a row: [`RETRY_BACKOFF`]
/// doubled per failure, at most [`RECONNECT_BACKOFF_MAX`].
fn reconnect_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(RECONNECT_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetcher_reconnect_backoff_doubles_up_to_its_bound() {
        assert_eq!(reconnect_backoff(1), RETRY_BACKOFF);
        assert_eq!(reconnect_backoff(2), RETRY_BACKOFF * 2);
        assert_eq!(reconnect_backoff(3), RETRY_BACKOFF * 4);
        assert_eq!(reconnect_backoff(1_000), RECONNECT_BACKOFF_MAX);
    }
}
