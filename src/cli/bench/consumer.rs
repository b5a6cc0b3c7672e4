//! One consumer thread of `bench consume|e2e`.
//!
//! Decisions:
//! - Pipelining a fetch needs the next offset, which only its answer
//!   gives; so a consumer's partitions on one leader are split into up to
//!   `--max-in-flight` slots, each with one fetch in flight, and a slot's
//!   next fetch goes out as soon as its answer is counted. With one
//!   partition that is one fetch at a time, and large `--fetch-max-bytes`
//!   is what keeps the pipe full.
//! - Records count toward `--records` through one shared claim counter, so
//!   the consumers of a run stop at exactly the number asked even though a
//!   fetch brings whole batches.
//! - e2e latency is the time the answer was read minus the send time in
//!   the value's first 8 bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;

use super::stats::{now_ns, Stats};
use super::values::for_each_value;
use super::wire::{split, PipeReader, PipeWriter};
use super::{ConsumerArgs, Target};
use crate::cli::client::{check, kafka_error_name, ClientError, Conn};
use crate::cli::consume::{next_offset_after, whole_batches};

/// Highest Fetch version this generator fills in (v13 names topics by id).
const FETCH_VERSION_MAX: i16 = 12;
/// The last Fetch version without tagged fields: used with a broker whose
/// flexible Fetch responses carry a tag the chosen version does not define
/// (Tansu 0.6 sends tag 0, NodeEndpoints of v16+, at v12), which the
/// crate's decoder refuses.
const FETCH_VERSION_NOT_FLEXIBLE: i16 = 11;
/// Fetch v7 added sessions, v5 log_start_offset, v9 current_leader_epoch.
const FETCH_SESSION_VERSION_MIN: i16 = 7;
const FETCH_LOG_START_VERSION_MIN: i16 = 5;
const FETCH_LEADER_EPOCH_VERSION_MIN: i16 = 9;
/// How often the loop looks at the stop conditions while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What one consumer thread does.
pub struct ConsumerPlan {
    /// Topic and leaders.
    pub target: Arc<Target>,
    /// The consumer flags.
    pub args: ConsumerArgs,
    /// Partitions assigned to this consumer, with their start offsets.
    pub start: BTreeMap<i32, i64>,
    /// Records to consume over all consumers (`u64::MAX`: until the
    /// deadline); e2e lowers it to what was produced once producers end.
    pub limit: Arc<AtomicU64>,
    /// Records claimed so far by all consumers.
    pub claimed: Arc<AtomicU64>,
    /// End of the run.
    pub deadline: Option<Instant>,
    /// Values carry their send time: record e2e latency.
    pub stamped: bool,
    /// Shared counters (consume side).
    pub stats: Arc<Stats>,
    /// Set to end the run.
    pub stop: Arc<AtomicBool>,
}

/// A fetch's answer, from a reader thread.
struct Answer {
    slot: usize,
    read_ns: u64,
    response: Result<FetchResponse, ClientError>,
}

/// Partitions fetched together, one request in flight.
struct Slot {
    lane: usize,
    partitions: Vec<i32>,
}

struct Lane {
    writer: PipeWriter,
    version: i16,
    to_reader: Sender<(usize, i32)>,
}

/// Runs one consumer until the records are claimed, the deadline, `stop`,
/// or no record for `--idle-timeout-s`.
pub fn run(plan: ConsumerPlan) -> Result<(), ClientError> {
    let (answer_tx, answers) = mpsc::channel::<Answer>();
    let (mut lanes, slots, readers) = open(&plan, answer_tx)?;
    let mut offsets = plan.start.clone();
    for slot in 0..slots.len() {
        fetch(&plan, &mut lanes, &slots, slot, &offsets)?;
    }
    let result = consume_loop(&plan, &mut lanes, &slots, &mut offsets, &answers);
    drop(lanes);
    drop(answers);
    for r in readers {
        let _ = r.join();
    }
    result
}

/// What [`open`] sets up: the lanes, their slots and their reader threads.
type Opened = (Vec<Lane>, Vec<Slot>, Vec<std::thread::JoinHandle<()>>);

fn open(plan: &ConsumerPlan, answer_tx: Sender<Answer>) -> Result<Opened, ClientError> {
    let leader_of: HashMap<i32, i32> = plan.target.partitions.iter().copied().collect();
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in plan.start.keys() {
        by_leader.entry(leader_of[p]).or_default().push(*p);
    }
    let (mut lanes, mut slots, mut readers) = (Vec::new(), Vec::new(), Vec::new());
    for (leader, partitions) in by_leader {
        let mut conn = Conn::connect(&plan.target.address(leader)?)?;
        let version = fetch_version(&mut conn)?;
        let (writer, reader) = split(conn)?;
        let (tx, rx) = mpsc::channel();
        let out = answer_tx.clone();
        readers.push(std::thread::spawn(move || {
            read_answers(reader, version, rx, out)
        }));
        let n_slots = plan.args.max_in_flight.min(partitions.len()).max(1);
        for s in 0..n_slots {
            slots.push(Slot {
                lane: lanes.len(),
                partitions: partitions
                    .iter()
                    .skip(s)
                    .step_by(n_slots)
                    .copied()
                    .collect(),
            });
        }
        lanes.push(Lane {
            writer,
            version,
            to_reader: tx,
        });
    }
    Ok((lanes, slots, readers))
}

/// The Fetch version for `conn`: the highest both sides know, unless an
/// empty probe Fetch at it cannot be decoded because of a tagged field, then
/// [`FETCH_VERSION_NOT_FLEXIBLE`] (with a note on stderr).
fn fetch_version(conn: &mut Conn) -> Result<i16, ClientError> {
    let version = conn.version::<FetchRequest>(FETCH_VERSION_MAX)?;
    if version <= FETCH_VERSION_NOT_FLEXIBLE {
        return Ok(version);
    }
    let mut probe = FetchRequest::default();
    probe.replica_id = BrokerId(-1);
    probe.session_epoch = -1;
    match conn.send_at(&probe, version) {
        Err(ClientError::Protocol { message, .. }) if message.contains("Tag") => {
            eprintln!(
                "corestream bench: Fetch v{version} response not decodable ({message}); using v{FETCH_VERSION_NOT_FLEXIBLE}"
            );
            Ok(FETCH_VERSION_NOT_FLEXIBLE)
        }
        Err(e) => Err(e),
        Ok(_) => Ok(version),
    }
}

fn read_answers(
    mut reader: PipeReader,
    version: i16,
    requests: Receiver<(usize, i32)>,
    out: Sender<Answer>,
) {
    for (slot, correlation_id) in requests {
        let response = reader.recv::<FetchRequest>(version, correlation_id);
        let broken = response.is_err();
        let answer = Answer {
            slot,
            read_ns: now_ns(),
            response,
        };
        if out.send(answer).is_err() || broken {
            return;
        }
    }
}

fn fetch(
    plan: &ConsumerPlan,
    lanes: &mut [Lane],
    slots: &[Slot],
    slot: usize,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), ClientError> {
    let lane = &mut lanes[slots[slot].lane];
    let v = lane.version;
    let mut t = FetchTopic::default();
    t.topic = StrBytes::from_string(plan.target.topic.clone()).into();
    t.partitions = slots[slot]
        .partitions
        .iter()
        .map(|&p| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = offsets[&p];
            fp.partition_max_bytes = plan.args.partition_max_bytes;
            if v >= FETCH_LOG_START_VERSION_MIN {
                fp.log_start_offset = -1;
            }
            if v >= FETCH_LEADER_EPOCH_VERSION_MIN {
                fp.current_leader_epoch = -1;
            }
            fp
        })
        .collect();
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = plan.args.fetch_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = plan.args.fetch_max_bytes;
    if v >= FETCH_SESSION_VERSION_MIN {
        request.session_epoch = -1;
    }
    request.topics = vec![t];
    let correlation_id = lane.writer.send(&request, v)?;
    lane.to_reader
        .send((slot, correlation_id))
        .map_err(|_| ClientError::Usage("the fetch reader stopped".into()))
}

fn consume_loop(
    plan: &ConsumerPlan,
    lanes: &mut [Lane],
    slots: &[Slot],
    offsets: &mut BTreeMap<i32, i64>,
    answers: &Receiver<Answer>,
) -> Result<(), ClientError> {
    let idle = Duration::from_secs_f64(plan.args.idle_timeout_s);
    let mut last_record = Instant::now();
    loop {
        let now = Instant::now();
        let claimed_all =
            plan.claimed.load(Ordering::Relaxed) >= plan.limit.load(Ordering::Relaxed);
        if claimed_all
            || plan.stop.load(Ordering::Relaxed)
            || plan.deadline.is_some_and(|d| now >= d)
        {
            return Ok(());
        }
        if now >= last_record + idle {
            plan.stats.warn(&format!(
                "no record for {:.1} s: consumer stops (--idle-timeout-s)",
                idle.as_secs_f64()
            ));
            return Ok(());
        }
        let answer = match answers.recv_timeout(POLL_INTERVAL) {
            Ok(a) => a,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ClientError::Usage("every fetch reader stopped".into()))
            }
        };
        let response = answer.response.inspect_err(|e| {
            plan.stats.record_errors(1);
            plan.stats.warn(&e.to_string());
        })?;
        if count(plan, &response, answer.read_ns, offsets)? > 0 {
            last_record = Instant::now();
        }
        fetch(plan, lanes, slots, answer.slot, offsets)?;
    }
}

/// Counts the records of one answer and moves the offsets past them.
fn count(
    plan: &ConsumerPlan,
    response: &FetchResponse,
    read_ns: u64,
    offsets: &mut BTreeMap<i32, i64>,
) -> Result<u64, ClientError> {
    let topic = &plan.target.topic;
    check(response.error_code, || format!("fetching {topic}"))
        .inspect_err(|_| plan.stats.record_errors(1))?;
    let mut counted = 0;
    let mut stamps = Vec::new();
    for p in response.responses.iter().flat_map(|t| &t.partitions) {
        let partition = p.partition_index;
        if p.error_code != 0 {
            plan.stats.record_errors(1);
            plan.stats.warn(&format!(
                "fetching {topic}-{partition}: {}",
                kafka_error_name(p.error_code)
            ));
            plan.stop.store(true, Ordering::Relaxed);
            continue;
        }
        let Some(records) = p.records.clone() else {
            continue;
        };
        for batch in whole_batches(records) {
            let from = offsets[&partition];
            let (mut n, mut bytes) = (0u64, 0u64);
            stamps.clear();
            for_each_value(&batch, from, |v| {
                n += 1;
                bytes += v.len() as u64;
                if plan.stamped && v.len() >= 8 {
                    stamps.push(u64::from_be_bytes(v[..8].try_into().expect("8 bytes")));
                }
            })
            .map_err(|e| ClientError::Protocol {
                api: "Fetch".into(),
                addr: topic.clone(),
                message: format!("partition {partition}: {e}"),
            })?;
            if let Some(next) = next_offset_after(&batch) {
                offsets.insert(partition, next.max(from));
            }
            counted += claim(plan, n, bytes, read_ns, &mut stamps);
        }
    }
    Ok(counted)
}

/// Counts up to `n` records against `--records`; returns how many counted.
fn claim(plan: &ConsumerPlan, n: u64, bytes: u64, read_ns: u64, stamps: &mut Vec<u64>) -> u64 {
    if n == 0 {
        return 0;
    }
    let limit = plan.limit.load(Ordering::Relaxed);
    let before = plan.claimed.fetch_add(n, Ordering::Relaxed);
    let taken = n.min(limit.saturating_sub(before));
    if taken == 0 {
        return 0;
    }
    // Bytes of the records counted (values of one run are equal-sized).
    let taken_bytes = if taken == n { bytes } else { bytes / n * taken };
    stamps.truncate(taken as usize);
    plan.stats.record_done(taken, taken_bytes, read_ns, stamps);
    taken
}
