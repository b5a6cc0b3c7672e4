//! Fetch sessions (KIP-227, incremental fetch): the broker remembers which
//! partitions a consumer fetches, so the consumer sends only what changed
//! and the broker answers only partitions with something new.
//!
//! Decisions:
//! - **Per shard, bounded.** Kafka keeps one cache per broker
//!   (`max.incremental.fetch.session.cache.slots`, default 1000). Here each
//!   shard keeps its own ([`FETCH_SESSIONS_PER_SHARD_MAX`]), in the
//!   `Shard` (`!Send`, touched only by the connections that shard accepted):
//!   a connection lives on one shard, so a session is only ever used there,
//!   and no lock or message is needed. A client that reconnects and lands
//!   on another shard gets FETCH_SESSION_ID_NOT_FOUND and starts a new
//!   session with a full request, which clients do anyway after a
//!   disconnect. Session ids carry the shard (`(id - 1) % shards == shard`) and
//!   start at a random point, so an id is never valid on two shards and a
//!   stale id from before a restart is most likely unknown.
//! - **Eviction is Kafka's rule** (`FetchSessionCache.tryEvict`): when the
//!   cache is full, a session idle for [`FETCH_SESSION_IDLE_EVICT_MS`] goes
//!   first; otherwise the smallest session (by partition count, then least
//!   recently used) goes if the new one is larger; otherwise the new
//!   request is answered without a session (session id 0: the client keeps
//!   sending full requests). The scan over the cache runs only when a full
//!   request meets a full cache.
//! - **What the session remembers per partition**: the client's fetch
//!   offset and partition budget (an incremental request omits partitions
//!   whose fetch position did not change), and the high watermark, last
//!   stable offset and log start it last sent, which decide whether the
//!   partition is in the next incremental answer ([`must_respond`]). A new
//!   or errored partition remembers -1, so it is always answered next.
//! - **Fairness**: after an incremental answer the partitions that were in
//!   it move to the end of the session's order (as Kafka does), so a
//!   response budget that runs out does not always favour the same ones.
//! - **Topic ids**: a session made by a v13+ request keys partitions by
//!   topic id, an older one by name; mixing the two in one session is
//!   FETCH_SESSION_TOPIC_ID_ERROR, as in Kafka.
//! - Pure state machine: time is passed in, so it is unit-tested without a
//!   broker (`session/tests.rs`); the Fetch handler drives it.

use std::collections::HashMap;

use indexmap::IndexMap;
use kafka_protocol::messages::TopicName;
use kafka_protocol::ResponseError;
use uuid::Uuid;

/// Sessions one shard keeps (Kafka's `max.incremental.fetch.session.cache.slots`
/// default, per shard here).
pub const FETCH_SESSIONS_PER_SHARD_MAX: usize = 1000;
/// A session unused for this long may be evicted by any new session, in
/// milliseconds (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
pub const FETCH_SESSION_IDLE_EVICT_MS: u64 = 120_000;
/// Session epoch of a full request that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// Session epoch of a request that closes its session (or wants none).
pub const FINAL_EPOCH: i32 = -1;
/// Session id meaning "no session".
pub const NO_SESSION_ID: i32 = 0;

/// A topic as a session keys it: by id (v13+) or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicKey {
    /// v13+.
    Id(Uuid),
    /// Up to v12.
    Name(TopicName),
}

/// A partition as a session keys it.
pub type PartitionKey = (TopicKey, i32);

/// One partition of a session, or of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPartition {
    /// Topic name (empty when the request named the topic by id).
    pub topic_name: TopicName,
    /// Topic id (nil when the request named the topic by name).
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Where the client reads next.
    pub fetch_offset: i64,
    /// The client's per-partition budget, in bytes.
    pub max_bytes: i32,
    /// High watermark last sent to the client (-1: send it next time).
    pub high_watermark: i64,
    /// Last stable offset last sent.
    pub last_stable_offset: i64,
    /// Log start offset last sent.
    pub log_start_offset: i64,
    /// The client's CurrentLeaderEpoch (v9+; -1: no check), kept by the
    /// session as Kafka's cached partition keeps it.
    pub current_leader_epoch: i32,
    /// The epoch of the last batch the client fetched (v12+; -1: none):
    /// the DivergingEpoch check runs when it is set.
    pub last_fetched_epoch: i32,
}

impl SessionPartition {
    /// A partition as a request names it; nothing sent yet.
    pub fn requested(
        topic_name: TopicName,
        topic_id: Uuid,
        partition: i32,
        fetch_offset: i64,
        max_bytes: i32,
    ) -> Self {
        Self {
            topic_name,
            topic_id,
            partition,
            fetch_offset,
            max_bytes,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    /// The same with the request's CurrentLeaderEpoch and LastFetchedEpoch.
    pub fn with_epochs(self, current_leader_epoch: i32, last_fetched_epoch: i32) -> Self {
        Self {
            current_leader_epoch,
            last_fetched_epoch,
            ..self
        }
    }

    /// Its key in a session that does (or does not) use topic ids.
    pub fn key(&self, uses_topic_ids: bool) -> PartitionKey {
        let topic = if uses_topic_ids {
            TopicKey::Id(self.topic_id)
        } else {
            TopicKey::Name(self.topic_name.clone())
        };
        (topic, self.partition)
    }
}

/// What a read of one partition produced, as far as sessions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionResult {
    /// Record bytes in the answer.
    pub records_bytes: usize,
    /// Partition error code (0: none).
    pub error_code: i16,
    /// High watermark answered.
    pub high_watermark: i64,
    /// Last stable offset answered.
    pub last_stable_offset: i64,
    /// Log start offset answered.
    pub log_start_offset: i64,
    /// The answer carries a DivergingEpoch (the fetcher must truncate).
    pub diverging: bool,
}

/// Whether an incremental answer must carry this partition (Kafka's
/// `CachedPartition.maybeUpdateResponseData`): it has records, an error, or
/// a high watermark, last stable offset or log start the client has not
/// seen. Updates what the session remembers as sent. An error makes the
/// session forget the high watermark, so the partition is sent again once
/// the error clears.
pub fn must_respond(cached: &mut SessionPartition, result: &PartitionResult) -> bool {
    let mut respond = result.records_bytes > 0;
    if cached.high_watermark != result.high_watermark {
        cached.high_watermark = result.high_watermark;
        respond = true;
    }
    if cached.last_stable_offset != result.last_stable_offset {
        cached.last_stable_offset = result.last_stable_offset;
        respond = true;
    }
    if cached.log_start_offset != result.log_start_offset {
        cached.log_start_offset = result.log_start_offset;
        respond = true;
    }
    if result.error_code != 0 || result.diverging {
        cached.high_watermark = -1;
        respond = true;
    }
    respond
}

/// The session fields and partition lists of a Fetch request (v7+; older
/// requests decode as session 0, epoch -1: no session).
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    /// Session id (0: none).
    pub session_id: i32,
    /// Session epoch.
    pub session_epoch: i32,
    /// v13+: topics named by id.
    pub uses_topic_ids: bool,
    /// Partitions added or changed (all of them in a full request).
    pub partitions: Vec<SessionPartition>,
    /// Partitions to drop from the session.
    pub forgotten: Vec<PartitionKey>,
}

/// What the handler does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchPlan {
    /// Read the request's partitions, answer them all, keep nothing
    /// (v<7, or epoch -1).
    Sessionless,
    /// Read the request's partitions, answer them all, then try to open a
    /// session with them ([`FetchSessionCache::open`]).
    Full,
    /// Read the session's partitions in this order and answer those that
    /// changed ([`FetchSessionCache::finish_incremental`]).
    Incremental {
        /// The session.
        session_id: i32,
        /// Its partitions after this request's changes, in order.
        partitions: Vec<SessionPartition>,
    },
    /// Answer with this top-level error and no partitions.
    Error(i16),
}

struct FetchSession {
    /// The epoch the next incremental request must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    partitions: IndexMap<PartitionKey, SessionPartition>,
    last_used_ms: u64,
}

/// One shard's fetch sessions. `!Send` on purpose: it lives in its shard.
pub struct FetchSessionCache {
    sessions: HashMap<i32, FetchSession>,
    slots_max: usize,
    shard: u32,
    shard_count: u32,
    /// Next id sequence number (ids are `seq * shard_count + shard + 1`).
    next_seq: u32,
    opened_total: u64,
    evictions_total: u64,
    incremental_total: u64,
}

impl FetchSessionCache {
    /// A cache of at most `slots_max` sessions for shard `shard` of
    /// `shard_count`; ids start at `seed` (random in the broker).
    pub fn new(slots_max: usize, shard: usize, shard_count: usize, seed: u32) -> Self {
        let shard_count = shard_count.max(1) as u32;
        let mut cache = Self {
            sessions: HashMap::new(),
            slots_max,
            shard: shard as u32 % shard_count,
            shard_count,
            next_seq: 0,
            opened_total: 0,
            evictions_total: 0,
            incremental_total: 0,
        };
        cache.next_seq = seed % cache.seq_range();
        cache
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions opened since start.
    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }

    /// Sessions evicted to make room since start.
    pub fn evictions_total(&self) -> u64 {
        self.evictions_total
    }

    /// Incremental requests accepted since start.
    pub fn incremental_total(&self) -> u64 {
        self.incremental_total
    }

    /// Partitions of a session (tests, diagnostics).
    pub fn session_partitions(&self, session_id: i32) -> Option<Vec<SessionPartition>> {
        let session = self.sessions.get(&session_id)?;
        Some(session.partitions.values().cloned().collect())
    }

    /// Decides how to serve a request and applies its session changes
    /// (Kafka's `FetchManager.newContext`): a full request (epoch 0 or -1)
    /// first closes the session it names; an incremental one must name a
    /// known session at its expected epoch, which then moves on by one.
    pub fn begin(&mut self, request: &SessionRequest, now_ms: u64) -> FetchPlan {
        let epoch = request.session_epoch;
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            if request.session_id != NO_SESSION_ID {
                self.sessions.remove(&request.session_id);
            }
            return if epoch == FINAL_EPOCH {
                FetchPlan::Sessionless
            } else {
                FetchPlan::Full
            };
        }
        let Some(session) = self.sessions.get_mut(&request.session_id) else {
            return FetchPlan::Error(ResponseError::FetchSessionIdNotFound.code());
        };
        if session.next_epoch != epoch {
            return FetchPlan::Error(ResponseError::InvalidFetchSessionEpoch.code());
        }
        if session.uses_topic_ids != request.uses_topic_ids {
            return FetchPlan::Error(ResponseError::FetchSessionTopicIdError.code());
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        self.incremental_total += 1;
        let ids = session.uses_topic_ids;
        for p in &request.partitions {
            match session.partitions.get_mut(&p.key(ids)) {
                Some(cached) => {
                    cached.fetch_offset = p.fetch_offset;
                    cached.max_bytes = p.max_bytes;
                    cached.current_leader_epoch = p.current_leader_epoch;
                    cached.last_fetched_epoch = p.last_fetched_epoch;
                }
                None => {
                    session.partitions.insert(p.key(ids), p.clone());
                }
            }
        }
        for key in &request.forgotten {
            session.partitions.shift_remove(key);
        }
        FetchPlan::Incremental {
            session_id: request.session_id,
            partitions: session.partitions.values().cloned().collect(),
        }
    }

    /// After a full request's reads: opens a session remembering what was
    /// sent (`partitions`, already updated with [`must_respond`]), evicting
    /// another if the cache is full and Kafka's rule allows. Returns the new
    /// session's id, or [`NO_SESSION_ID`] if there is no room.
    pub fn open(
        &mut self,
        partitions: Vec<SessionPartition>,
        uses_topic_ids: bool,
        now_ms: u64,
    ) -> i32 {
        if self.slots_max == 0 || !self.make_room(partitions.len(), now_ms) {
            return NO_SESSION_ID;
        }
        let id = self.new_id();
        let partitions = partitions
            .into_iter()
            .map(|p| (p.key(uses_topic_ids), p))
            .collect();
        self.sessions.insert(
            id,
            FetchSession {
                next_epoch: next_epoch(INITIAL_EPOCH),
                uses_topic_ids,
                partitions,
                last_used_ms: now_ms,
            },
        );
        self.opened_total += 1;
        id
    }

    /// After an incremental request's reads: stores what was sent for the
    /// partitions that were answered (`answered`, updated with
    /// [`must_respond`]) and moves them to the end of the session's order.
    /// The session may have been closed or evicted meanwhile (then nothing
    /// happens: the client learns it on its next request).
    pub fn finish_incremental(&mut self, session_id: i32, answered: Vec<SessionPartition>) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let ids = session.uses_topic_ids;
        for p in answered {
            let key = p.key(ids);
            if let Some(cached) = session.partitions.shift_remove(&key) {
                session.partitions.insert(
                    key,
                    SessionPartition {
                        fetch_offset: cached.fetch_offset,
                        max_bytes: cached.max_bytes,
                        ..p
                    },
                );
            }
        }
    }

    /// Frees a slot if the cache is full (see the module doc). False when
    /// no session may go for one of `new_size` partitions.
    fn make_room(&mut self, new_size: usize, now_ms: u64) -> bool {
        if self.sessions.len() < self.slots_max {
            return true;
        }
        let stale = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used_ms, **id))
            .filter(|(_, s)| s.last_used_ms + FETCH_SESSION_IDLE_EVICT_MS < now_ms)
            .map(|(id, _)| *id);
        let smaller = || {
            self.sessions
                .iter()
                .min_by_key(|(id, s)| (s.partitions.len(), s.last_used_ms, **id))
                .filter(|(_, s)| s.partitions.len() < new_size)
                .map(|(id, _)| *id)
        };
        match stale.or_else(smaller) {
            Some(victim) => {
                self.sessions.remove(&victim);
                self.evictions_total += 1;
                true
            }
            None => false,
        }
    }

    /// Ids per shard before the sequence wraps (keeps ids positive i32).
    fn seq_range(&self) -> u32 {
        (i32::MAX as u32 - self.shard_count) / self.shard_count
    }

    fn new_id(&mut self) -> i32 {
        loop {
            let seq = self.next_seq;
            self.next_seq = (seq + 1) % self.seq_range();
            let id = (seq * self.shard_count + self.shard + 1) as i32;
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// The epoch after `epoch`, wrapping to 1 (0 and -1 are reserved), as
/// Kafka's `FetchMetadata.nextEpoch`.
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        INITIAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests;
