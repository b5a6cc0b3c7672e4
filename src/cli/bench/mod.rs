//! `corestream bench produce|consume|e2e`: the native load generator (like
//! kafka-producer-perf-test / kafka-consumer-perf-test and `rpk`).
//!
//! Decisions:
//! - Threads with blocking sockets, not an async runtime: each producer or
//!   consumer is a thread with its own connection per leader, pipelining
//!   up to `--max-in-flight` requests, and a reader thread per connection
//!   takes the answers ([`wire`]). That keeps a broker busy and the
//!   generator small.
//! - Its flags are parsed by their own parser ([`BenchCli`]) from the
//!   words after `bench`: `--json FILE` here names a file, while the CLI's
//!   global `--json` is a switch, and clap cannot give one name two
//!   meanings in one command tree.
//! - The JSON summary ([`stats::Summary::to_json`]) is the contract with
//!   `scripts/bench` and `bench/loadgen.py`: the same keys from both.
//!
//! Exit status: 0; 1 if any record failed (`errors` > 0) or a client
//! thread failed; 2 bad flags; 3 no broker reachable.

pub mod args;
pub mod consumer;
pub mod producer;
pub mod rate;
pub mod stats;
pub mod values;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use kafka_protocol::messages::BrokerId;

pub use args::{Acks, BenchCli, CommonArgs, Compressions, ConsumerArgs, From, Mode, ProducerArgs};

use super::client::{ClientError, Cluster};
use super::topics::{create, list_offsets, OFFSET_EARLIEST, OFFSET_LATEST};
use super::{EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE};
use stats::{Stats, Summary};

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// How long a created topic may take to show its leaders in Metadata.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The topic under load: partitions with their leaders, and addresses.
pub struct Target {
    /// Topic name.
    pub topic: String,
    /// (partition, leader node), by partition.
    pub partitions: Vec<(i32, i32)>,
    addresses: HashMap<i32, String>,
}

impl Target {
    /// The address of broker `node`.
    pub fn address(&self, node: i32) -> Result<String, ClientError> {
        self.addresses
            .get(&node)
            .cloned()
            .ok_or_else(|| ClientError::Usage(format!("broker {node} is not in the metadata")))
    }

    fn leaders(&self) -> Vec<(i32, BrokerId)> {
        self.partitions
            .iter()
            .map(|&(p, l)| (p, BrokerId(l)))
            .collect()
    }
}

/// Runs `bench` with the words after it; returns the exit status.
pub fn main(global_brokers: &str, json_stdout: bool, words: &[String]) -> i32 {
    let argv = std::iter::once("corestream bench".to_string()).chain(words.iter().cloned());
    let cli = match BenchCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    if let Err(message) = cli.mode.validate() {
        eprintln!("corestream bench: {message}");
        return EXIT_USAGE;
    }
    let common = cli.mode.common();
    let brokers = common.brokers.as_deref().unwrap_or(global_brokers);
    let mut cluster = match Cluster::connect(brokers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corestream bench: {e}");
            return EXIT_UNREACHABLE;
        }
    };
    let summary = match run(&mut cluster, &cli.mode) {
        Ok(s) => Summary {
            config: cli.mode.config(brokers),
            ..s
        },
        Err(e) => {
            eprintln!("corestream bench: {e}");
            return match e {
                ClientError::Usage(_) => EXIT_USAGE,
                ClientError::Connect { .. } => EXIT_UNREACHABLE,
                _ => EXIT_FAILED,
            };
        }
    };
    let json = summary.to_json();
    if let Some(path) = &common.json {
        if let Err(e) = std::fs::write(path, format!("{json:#}\n")) {
            eprintln!("corestream bench: writing {}: {e}", path.display());
            return EXIT_FAILED;
        }
    }
    if json_stdout {
        println!("{json}");
    } else {
        print!("{}", summary.to_text());
    }
    if summary.errors > 0 {
        EXIT_FAILED
    } else {
        0
    }
}

/// Sets up the topic and runs the mode's threads to the end.
fn run(cluster: &mut Cluster, mode: &Mode) -> Result<Summary, ClientError> {
    let common = mode.common();
    let target = Arc::new(prepare_target(cluster, common)?);
    let start = match mode {
        Mode::Produce { .. } => BTreeMap::new(),
        Mode::Consume { consumer, .. } if consumer.from == From::Earliest => {
            list_offsets(cluster, &target.topic, &target.leaders(), OFFSET_EARLIEST)?
        }
        _ => list_offsets(cluster, &target.topic, &target.leaders(), OFFSET_LATEST)?,
    };
    let run = Run::new(common);
    let (produced, consumed) = (Arc::new(Stats::new()), Arc::new(Stats::new()));
    let limit = Arc::new(AtomicU64::new(run.records.unwrap_or(u64::MAX)));
    let (name, shown) = match mode {
        Mode::Produce { .. } => ("produce", &produced),
        Mode::Consume { .. } => ("consume", &consumed),
        Mode::E2e { .. } => ("e2e", &consumed),
    };
    let progress = run.progress(common, shown);
    let mut failed = 0;
    match mode {
        Mode::Produce { producer, .. } => {
            failed += run.join(run.producers(&target, common, producer, &produced, false));
        }
        Mode::Consume { consumer, .. } => {
            failed +=
                run.join(run.consumers(&target, common, consumer, start, &consumed, &limit, false));
        }
        Mode::E2e {
            producer, consumer, ..
        } => {
            let consumers =
                run.consumers(&target, common, consumer, start, &consumed, &limit, true);
            failed += run.join(run.producers(&target, common, producer, &produced, true));
            // What was produced is all the consumers can get.
            limit.fetch_min(produced.records.load(Ordering::Relaxed), Ordering::Relaxed);
            failed += run.join(consumers);
        }
    }
    let seconds = run.started.elapsed().as_secs_f64();
    run.finish(progress);
    let errors = produced.errors.load(Ordering::Relaxed) + consumed.errors.load(Ordering::Relaxed);
    Ok(Summary {
        mode: name,
        records: shown.records.load(Ordering::Relaxed),
        bytes: shown.bytes.load(Ordering::Relaxed),
        seconds,
        latency: if name == "consume" {
            None
        } else {
            shown.latency()
        },
        produce_latency: if name == "e2e" {
            produced.latency()
        } else {
            None
        },
        errors: errors + failed,
        config: serde_json::Value::Null,
    })
}

/// The topic's partitions and leaders, creating it if missing.
fn prepare_target(cluster: &mut Cluster, common: &CommonArgs) -> Result<Target, ClientError> {
    let topic = &common.topic;
    let mut leaders = match cluster.leaders(topic) {
        Err(ClientError::Kafka { code, .. }) if code == UNKNOWN_TOPIC_OR_PARTITION => {
            create(cluster, topic, common.partitions, -1, &[])?;
            Vec::new()
        }
        other => other?,
    };
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    while leaders.is_empty() || leaders.iter().any(|(_, l)| l.0 < 0) {
        if Instant::now() > deadline {
            return Err(ClientError::Usage(format!(
                "topic {topic:?} has no leaders"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
        leaders = cluster.leaders(topic)?;
    }
    if leaders.len() != common.partitions as usize {
        eprintln!(
            "corestream bench: topic {topic} exists with {} partitions (not --partitions {})",
            leaders.len(),
            common.partitions
        );
    }
    let mut addresses = HashMap::new();
    for (_, l) in &leaders {
        if let Some(a) = cluster.address(l.0) {
            addresses.insert(l.0, a);
        }
    }
    Ok(Target {
        topic: topic.clone(),
        partitions: leaders.into_iter().map(|(p, l)| (p, l.0)).collect(),
        addresses,
    })
}

/// What every thread of one run shares.
struct Run {
    started: Instant,
    records: Option<u64>,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
    progress_done: Arc<AtomicBool>,
}

type ClientThread = JoinHandle<Result<(), ClientError>>;

impl Run {
    fn new(common: &CommonArgs) -> Run {
        stats::now_ns(); // starts the shared clock
        let started = Instant::now();
        Run {
            started,
            records: common.effective_records(),
            deadline: common
                .duration_s
                .map(|s| started + Duration::from_secs_f64(s)),
            stop: Arc::new(AtomicBool::new(false)),
            progress_done: Arc::new(AtomicBool::new(false)),
        }
    }

    fn progress(&self, common: &CommonArgs, stats: &Arc<Stats>) -> Option<JoinHandle<()>> {
        common
            .progress_on()
            .then(|| stats::spawn_progress(stats.clone(), self.started, self.progress_done.clone()))
    }

    fn finish(&self, progress: Option<JoinHandle<()>>) {
        self.progress_done.store(true, Ordering::Relaxed);
        if let Some(p) = progress {
            let _ = p.join();
        }
    }

    /// Joins client threads; returns how many failed (their error printed).
    fn join(&self, threads: Vec<ClientThread>) -> u64 {
        let mut failed = 0;
        for t in threads {
            let outcome = t
                .join()
                .unwrap_or_else(|_| Err(ClientError::Usage("a client thread panicked".into())));
            if let Err(e) = outcome {
                eprintln!("corestream bench: {e}");
                self.stop.store(true, Ordering::Relaxed);
                failed += 1;
            }
        }
        failed
    }

    fn producers(
        &self,
        target: &Arc<Target>,
        common: &CommonArgs,
        args: &ProducerArgs,
        stats: &Arc<Stats>,
        stamp: bool,
    ) -> Vec<ClientThread> {
        let n = args.producers;
        let partitions = target.partitions.len();
        (0..n)
            .map(|i| {
                let mut args = args.clone();
                args.max_in_flight = common.max_in_flight;
                let rate = args.target_rate / n as f64;
                let plan = producer::ProducerPlan {
                    target: target.clone(),
                    args,
                    record_bytes: common.record_bytes,
                    records: self.records.map(|r| share(r, n, i)),
                    deadline: self.deadline,
                    rate,
                    first_partition: i * partitions / n,
                    stamp,
                    stats: stats.clone(),
                    stop: self.stop.clone(),
                };
                std::thread::spawn(move || producer::run(plan))
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn consumers(
        &self,
        target: &Arc<Target>,
        common: &CommonArgs,
        args: &ConsumerArgs,
        start: BTreeMap<i32, i64>,
        stats: &Arc<Stats>,
        limit: &Arc<AtomicU64>,
        stamped: bool,
    ) -> Vec<ClientThread> {
        let claimed = Arc::new(AtomicU64::new(0));
        let n = args.consumers.min(start.len()).max(1);
        if n < args.consumers {
            eprintln!("corestream bench: {n} consumers (one per partition at most)");
        }
        (0..n)
            .map(|i| {
                let mut args = args.clone();
                args.max_in_flight = common.max_in_flight;
                let mine = start
                    .iter()
                    .skip(i)
                    .step_by(n)
                    .map(|(&p, &o)| (p, o))
                    .collect();
                let plan = consumer::ConsumerPlan {
                    target: target.clone(),
                    args,
                    start: mine,
                    limit: limit.clone(),
                    claimed: claimed.clone(),
                    deadline: self.deadline,
                    stamped,
                    stats: stats.clone(),
                    stop: self.stop.clone(),
                };
                std::thread::spawn(move || consumer::run(plan))
            })
            .collect()
    }
}

/// Share `i` of `n` of `total` (the first ones take the remainder).
pub fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    total / n + u64::from((i as u64) < total % n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_share_splits_exactly() {
        for (total, n) in [(10u64, 3usize), (1, 4), (1_000_000, 7)] {
            let parts: Vec<u64> = (0..n).map(|i| share(total, n, i)).collect();
            assert_eq!(parts.iter().sum::<u64>(), total);
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }
}
