//! A transactional id's state and Kafka's rules for moving it, as pure
//! functions (the coordinator does the I/O around them).
//!
//! States and transitions follow Kafka's `TransactionState`: Empty →
//! Ongoing (first AddPartitions/AddOffsets) → PrepareCommit/PrepareAbort
//! (EndTxn, persisted before any marker) → CompleteCommit/CompleteAbort
//! (every marker written) → Ongoing again for the next transaction. A
//! timeout or a new InitProducerId aborts an Ongoing transaction with the
//! epoch bumped, which fences the old producer.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

/// Kafka's transaction states (the numbers are stored in
/// `__transaction_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction open.
    Empty = 0,
    /// Partitions added; data may be written.
    Ongoing = 1,
    /// Committing: markers being written.
    PrepareCommit = 2,
    /// Aborting: markers being written.
    PrepareAbort = 3,
    /// Committed; every marker written.
    CompleteCommit = 4,
    /// Aborted; every marker written.
    CompleteAbort = 5,
    /// Expired id (not produced here; read for compatibility).
    Dead = 6,
    /// Being fenced (not produced here; read for compatibility).
    PrepareEpochFence = 7,
}

impl TxnState {
    /// From the stored number.
    pub fn from_i8(v: i8) -> Option<TxnState> {
        Some(match v {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions / ListTransactions report (Kafka's).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// A topic partition in a transaction.
pub type TxnPartition = (String, i32);

/// One transactional id's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    /// Current producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub epoch: i16,
    /// transaction.timeout.ms the producer asked for.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the open (or finishing) transaction.
    pub partitions: BTreeSet<TxnPartition>,
    /// When the open transaction started (ms; -1 none).
    pub start_ms: i64,
    /// Last change (ms).
    pub update_ms: i64,
}

/// Highest epoch before a producer gets a new id: Kafka keeps one epoch
/// value spare so a fence bump never overflows.
pub const EPOCH_MAX: i16 = i16::MAX - 1;

/// What InitProducerId must do for an existing transactional id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitPlan {
    /// Abort the open transaction (fencing) first, then bump.
    AbortThenBump,
    /// Bump the epoch (or take a new id at the epoch limit).
    Bump,
    /// A retry of a bump already made: answer the current id and epoch.
    Current,
}

/// Kafka's InitProducerId rules for an id that exists. `expected` is the
/// KIP-360 (producer id, epoch) the client sent, if any.
pub fn plan_init(meta: &TxnMeta, expected: Option<(i64, i16)>) -> Result<InitPlan, i16> {
    if meta.state.is_preparing() {
        return Err(ResponseError::ConcurrentTransactions.code());
    }
    if let Some((pid, epoch)) = expected {
        if pid != meta.producer_id {
            return Err(ResponseError::ProducerFenced.code());
        }
        if epoch == meta.epoch - 1 && meta.state != TxnState::Ongoing {
            return Ok(InitPlan::Current);
        }
        if epoch != meta.epoch {
            return Err(ResponseError::ProducerFenced.code());
        }
    }
    Ok(match meta.state {
        TxnState::Ongoing => InitPlan::AbortThenBump,
        _ => InitPlan::Bump,
    })
}

/// Checks that a request's producer id and epoch are the current ones.
pub fn check_producer(meta: &TxnMeta, producer_id: i64, epoch: i16) -> Result<(), i16> {
    if producer_id != meta.producer_id {
        return Err(ResponseError::InvalidProducerIdMapping.code());
    }
    if epoch != meta.epoch {
        return Err(ResponseError::ProducerFenced.code());
    }
    Ok(())
}

/// AddPartitionsToTxn / AddOffsetsToTxn: the metadata after adding
/// `partitions`, or `None` when nothing changes (already in the
/// transaction).
pub fn plan_add(
    meta: &TxnMeta,
    producer_id: i64,
    epoch: i16,
    partitions: &[TxnPartition],
    now_ms: i64,
) -> Result<Option<TxnMeta>, i16> {
    check_producer(meta, producer_id, epoch)?;
    if meta.state.is_preparing() {
        return Err(ResponseError::ConcurrentTransactions.code());
    }
    if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
        return Ok(None);
    }
    let mut next = meta.clone();
    if next.state != TxnState::Ongoing {
        next.state = TxnState::Ongoing;
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.partitions.extend(partitions.iter().cloned());
    next.update_ms = now_ms;
    Ok(Some(next))
}

/// What EndTxn must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndPlan {
    /// Prepare, write the markers, complete.
    Complete,
    /// Already done (a retry): answer success.
    AlreadyDone,
}

/// Kafka's EndTxn rules.
pub fn plan_end(
    meta: &TxnMeta,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<EndPlan, i16> {
    check_producer(meta, producer_id, epoch)?;
    match (meta.state, commit) {
        (TxnState::Ongoing, _) => Ok(EndPlan::Complete),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndPlan::AlreadyDone)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(ResponseError::ConcurrentTransactions.code())
        }
        _ => Err(ResponseError::InvalidTxnState.code()),
    }
}

/// The error code a client of request version `version` understands for
/// PRODUCER_FENCED: versions before KIP-588's (2 for every transactional
/// API but TxnOffsetCommit, where it is 3) get INVALID_PRODUCER_EPOCH.
pub fn for_version(code: i16, version: i16, fenced_since: i16) -> i16 {
    if code == ResponseError::ProducerFenced.code() && version < fenced_since {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(state: TxnState, epoch: i16) -> TxnMeta {
        TxnMeta {
            producer_id: 9,
            epoch,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: 0,
        }
    }

    const FENCED: i16 = 90;
    const CONCURRENT: i16 = 51;
    const INVALID_STATE: i16 = 48;
    const BAD_MAPPING: i16 = 49;

    #[test]
    fn txn_state_init_plans() {
        let m = meta(TxnState::Empty, 3);
        assert_eq!(plan_init(&m, None), Ok(InitPlan::Bump));
        assert_eq!(plan_init(&m, Some((9, 3))), Ok(InitPlan::Bump));
        assert_eq!(plan_init(&m, Some((9, 2))), Ok(InitPlan::Current));
        assert_eq!(plan_init(&m, Some((9, 1))), Err(FENCED));
        assert_eq!(plan_init(&m, Some((8, 3))), Err(FENCED));
        let ongoing = meta(TxnState::Ongoing, 3);
        assert_eq!(plan_init(&ongoing, None), Ok(InitPlan::AbortThenBump));
        let preparing = meta(TxnState::PrepareCommit, 3);
        assert_eq!(plan_init(&preparing, None), Err(CONCURRENT));
    }

    #[test]
    fn txn_state_add_partitions() {
        let m = meta(TxnState::CompleteCommit, 1);
        let p = vec![("t".to_string(), 0)];
        let next = plan_add(&m, 9, 1, &p, 100).unwrap().unwrap();
        assert_eq!(next.state, TxnState::Ongoing);
        assert_eq!(next.start_ms, 100);
        assert_eq!(plan_add(&next, 9, 1, &p, 200), Ok(None));
        assert_eq!(plan_add(&next, 9, 0, &p, 200), Err(FENCED));
        assert_eq!(plan_add(&next, 8, 1, &p, 200), Err(BAD_MAPPING));
        let preparing = meta(TxnState::PrepareAbort, 1);
        assert_eq!(plan_add(&preparing, 9, 1, &p, 200), Err(CONCURRENT));
    }

    #[test]
    fn txn_state_end_plans() {
        assert_eq!(
            plan_end(&meta(TxnState::Ongoing, 0), 9, 0, true),
            Ok(EndPlan::Complete)
        );
        assert_eq!(
            plan_end(&meta(TxnState::CompleteCommit, 0), 9, 0, true),
            Ok(EndPlan::AlreadyDone)
        );
        assert_eq!(
            plan_end(&meta(TxnState::CompleteCommit, 0), 9, 0, false),
            Err(INVALID_STATE)
        );
        assert_eq!(
            plan_end(&meta(TxnState::Empty, 0), 9, 0, true),
            Err(INVALID_STATE)
        );
        assert_eq!(
            plan_end(&meta(TxnState::PrepareAbort, 0), 9, 0, false),
            Err(CONCURRENT)
        );
    }

    #[test]
    fn txn_state_fenced_code_by_version() {
        assert_eq!(for_version(FENCED, 1, 2), 47);
        assert_eq!(for_version(FENCED, 2, 2), FENCED);
        assert_eq!(for_version(CONCURRENT, 0, 2), CONCURRENT);
    }
}
