//! Client quotas (issue 22 item 7): Kafka's `producer_byte_rate`,
//! `consumer_byte_rate` and `request_percentage` per user, client id or
//! (user, client id), with `<default>` entities and Kafka's precedence
//! (`entity`), set through AlterClientQuotas and read through
//! DescribeClientQuotas (`handlers/alter_client_quotas.rs`,
//! `describe_client_quotas.rs`), enforced by throttle time.
//!
//! Decisions:
//! - **Storage.** Quotas are cluster metadata, on the ACLs' path: one
//!   `MetaChange::AlterClientQuotas` made by the metadata owner, persisted
//!   in `meta/topics.json` (`client_quotas`) on a single node and
//!   replicated as `ClusterCommand::SetClientQuotas` through Raft in a
//!   cluster. Every shard reads them in its own snapshot
//!   (`Snapshot::client_quotas`).
//! - **Enforcement, as KIP-219.** A request over its quota is answered at
//!   once with `throttle_time_ms`, and then the connection is *muted*: its
//!   reader reads no further request until the throttle time has passed
//!   (`ConnectionContext::mute_for`, checked by `server::connection` before
//!   each read). Produce bytes (the whole request frame, as Kafka counts
//!   `request.sizeInBytes`) are recorded by the connection's reader when it
//!   reads the frame, before anything else is read: the connection reads up
//!   to 32 requests ahead, and charging at answer time would let a
//!   pipelining producer (librdkafka pipelines by default) put dozens of
//!   requests past the quota before the first throttle is known. Fetch bytes
//!   (the records answered) are recorded when the answer is built; a client
//!   has at most two fetches in flight per connection anyway.
//! - **A throttled fetch still carries its records.** Kafka answers a fetch
//!   that would exceed the quota empty and takes its bytes back; here the
//!   partitions were already read and a fetch session moved on when the
//!   size is known, so the records go out and the mute lasts as long as
//!   those bytes need. The long-run rate is the bound either way.
//! - **Request time.** `request_percentage` bounds the time the broker
//!   spends handling a client's requests, as a percentage of one shard per
//!   second (Kafka: of one request handler thread). The time counted is a
//!   request's handling time on its connection's shard, from decode to
//!   answer, for every API but Fetch (whose long poll is waiting, not
//!   work; Kafka's purgatory is not counted either). Unlike Kafka, the wait
//!   for a produce's fsync is in it. The throttle it implies is decided when
//!   the connection's next request is read (that request is answered with it
//!   in Produce's and Fetch's `throttle_time_ms`, max with the byte quota, as
//!   Kafka takes the larger, and the connection is muted); other APIs'
//!   answers carry 0 and are muted only.
//! - **Per shard, exact for one client instance.** Usage is counted per
//!   shard (`tracker`), in Kafka's buckets (the entity level the quota came
//!   from). A connection lives on one shard and a Kafka client keeps one
//!   connection per broker, so one client instance is held to its quota
//!   exactly. Several client instances sharing a user or client id whose
//!   connections land on different shards each see the full quota on their
//!   shard: a broker with S shards lets such a group reach at most S times
//!   the quota (Kafka holds it to 1x per broker). Sharing a counter
//!   between shards would put an atomic per request on the hot path; the
//!   limit is kept honest by saying so here and in ARCHITECTURE.md.
//! - **Cost when unused.** With no quota configured the connection's reader
//!   pays one branch per request (`Shard::quotas_configured`), the Fetch
//!   handler one more, and the mute check one `Cell` read.
//! - **Principal.** The user is the authenticated principal's name
//!   (`User:alice` is `alice`; `ANONYMOUS` on PLAINTEXT without SASL).
//! - `controller_mutation_rate` (KIP-599) is refused with INVALID_REQUEST:
//!   topic mutations are not throttled here, and storing a quota that is
//!   never enforced would mislead. `ip` entities (connection-rate quotas)
//!   are refused too.

pub mod entity;
pub mod rate;
pub mod tracker;

pub use entity::{AppliedQuota, ClientQuotas, EntityName, PersistedQuota, QuotaEntity, QuotaType};

use crate::security::ConnectionContext;
use crate::shard::Shard;

/// Produce's API key.
const PRODUCE_API_KEY: i16 = 0;
/// Fetch's API key.
const FETCH_API_KEY: i16 = 1;

/// The client id of a request frame (size prefix removed): the nullable
/// string after api key, version and correlation id in every request
/// header version. `""` when absent or malformed (Kafka's empty client id).
pub fn client_id_of(frame: &[u8]) -> &str {
    const CLIENT_ID_AT: usize = 8;
    let Some(len) = frame.get(CLIENT_ID_AT..CLIENT_ID_AT + 2) else {
        return "";
    };
    let Ok(len) = usize::try_from(i16::from_be_bytes([len[0], len[1]])) else {
        return "";
    };
    frame
        .get(CLIENT_ID_AT + 2..CLIENT_ID_AT + 2 + len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// Called by the connection's reader for each request it reads, when some
/// quota is configured: charges a Produce's bytes, and decides the
/// throttle of this request (its produce bytes, and the request time the
/// connection's earlier requests used). Mutes the connection for it and
/// returns it, for the answer's `throttle_time_ms`.
pub fn on_request_read(shard: &Shard, connection: &ConnectionContext, frame: &[u8]) -> i32 {
    let quotas = shard.snapshot().client_quotas.clone();
    let principal = connection.principal.borrow();
    let user = entity::user_of_principal(&principal);
    let client_id = client_id_of(frame);
    let api_key = frame
        .get(..2)
        .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    let now_ms = crate::clock::monotonic_ms();
    let mut throttle_ms = 0;
    if api_key == PRODUCE_API_KEY {
        if let Some(q) = quotas.applied(QuotaType::Produce, user, client_id) {
            let bytes = (frame.len() + crate::protocol::frame::FRAME_SIZE_PREFIX_BYTES) as f64;
            throttle_ms = tracker::record(QuotaType::Produce, &q, now_ms, bytes);
        }
    }
    if let Some(q) = quotas.applied(QuotaType::Request, user, client_id) {
        throttle_ms = throttle_ms.max(tracker::throttle(QuotaType::Request, &q, now_ms));
    }
    connection.mute_for(throttle_ms);
    i32::try_from(throttle_ms).unwrap_or(i32::MAX)
}

/// Charges a Fetch answer's record bytes to the consumer quota, mutes the
/// connection for the throttle and returns it.
pub fn on_fetch_answered(
    shard: &Shard,
    connection: &ConnectionContext,
    client_id: &str,
    bytes: usize,
) -> i32 {
    let quotas = shard.snapshot().client_quotas.clone();
    let principal = connection.principal.borrow();
    let user = entity::user_of_principal(&principal);
    let Some(q) = quotas.applied(QuotaType::Fetch, user, client_id) else {
        return 0;
    };
    let throttle_ms = tracker::record(
        QuotaType::Fetch,
        &q,
        crate::clock::monotonic_ms(),
        bytes as f64,
    );
    connection.mute_for(throttle_ms);
    i32::try_from(throttle_ms).unwrap_or(i32::MAX)
}

/// Charges the handling time of one request (not a Fetch) to the request
/// quota; its throttle is decided when the next request is read.
pub fn on_request_handled(
    shard: &Shard,
    connection: &ConnectionContext,
    api_key: i16,
    client_id: &str,
    elapsed: std::time::Duration,
) {
    if api_key == FETCH_API_KEY {
        return;
    }
    let quotas = shard.snapshot().client_quotas.clone();
    let principal = connection.principal.borrow();
    let user = entity::user_of_principal(&principal);
    if let Some(q) = quotas.applied(QuotaType::Request, user, client_id) {
        // Kafka's unit: percent of one thread, i.e. 100 per second of time.
        let percent_seconds = elapsed.as_secs_f64() * 100.0;
        tracker::record_only(
            QuotaType::Request,
            &q,
            crate::clock::monotonic_ms(),
            percent_seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_client_id_of_request_header() {
        let mut frame = vec![0, 0, 0, 9, 0, 0, 0, 1];
        frame.extend_from_slice(&3i16.to_be_bytes());
        frame.extend_from_slice(b"app");
        assert_eq!(client_id_of(&frame), "app");
        frame[8..10].copy_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(client_id_of(&frame), "");
        frame[8..10].copy_from_slice(&100i16.to_be_bytes());
        assert_eq!(client_id_of(&frame), "", "a length past the frame");
        assert_eq!(client_id_of(&[0, 0]), "");
    }
}
