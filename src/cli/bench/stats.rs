//! Counters, the latency histogram, live progress and the final summary.
//!
//! Decisions:
//! - One [`Stats`] per run, shared by every producer/consumer thread:
//!   counters are atomics; the HdrHistogram sits behind a mutex taken once
//!   per acknowledged request or fetched batch (not per record), so the
//!   lock is not where the time goes.
//! - Latencies are recorded in microseconds (1 µs .. 1 h, 3 significant
//!   digits: ±0.1 %) and reported in milliseconds.
//! - Times are nanoseconds since one process-wide [`Instant`] ([`now_ns`]),
//!   so an e2e record's embedded send time and its consume time read the
//!   same monotonic clock.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Highest latency the histogram holds, in µs (1 hour); larger ones are
/// clamped to it.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits the histogram keeps.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
/// Error messages printed per run; later ones are only counted.
pub const WARNINGS_PRINTED_MAX: u64 = 10;
/// Interval of the progress line.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's first call: the clock e2e records carry.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Counters and latencies of one run, shared by its threads.
pub struct Stats {
    /// Records done (acknowledged, or consumed).
    pub records: AtomicU64,
    /// Record value bytes done.
    pub bytes: AtomicU64,
    /// Records that failed (or requests, where no record count is known).
    pub errors: AtomicU64,
    warned: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Stats {
        let histogram = Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Stats {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            warned: AtomicU64::new(0),
            latency_us: Mutex::new(histogram),
        }
    }

    /// Counts `records` records of `bytes` value bytes done at `done_ns`,
    /// each started at one of `started_ns` (empty: no latency, e.g. consume).
    pub fn record_done(&self, records: u64, bytes: u64, done_ns: u64, started_ns: &[u64]) {
        if !started_ns.is_empty() {
            let mut h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
            for &s in started_ns {
                let us = (done_ns.saturating_sub(s) / 1000).clamp(1, LATENCY_US_MAX);
                h.saturating_record(us);
            }
        }
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `n` failed records.
    pub fn record_errors(&self, n: u64) {
        self.errors.fetch_add(n, Ordering::Relaxed);
    }

    /// Prints an error to stderr (the first [`WARNINGS_PRINTED_MAX`] only).
    pub fn warn(&self, message: &str) {
        let n = self.warned.fetch_add(1, Ordering::Relaxed);
        if n < WARNINGS_PRINTED_MAX {
            eprintln!("corestream bench: {message}");
        } else if n == WARNINGS_PRINTED_MAX {
            eprintln!("corestream bench: further errors are only counted");
        }
    }

    /// The latency percentiles so far (`None` if nothing was recorded).
    pub fn latency(&self) -> Option<Latency> {
        let h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        Latency::of(&h)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of a histogram in µs; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// The result of a run, as printed and written with `--json`.
#[derive(Debug, Clone)]
pub struct Summary {
    /// produce, consume or e2e.
    pub mode: &'static str,
    /// Records done.
    pub records: u64,
    /// Record value bytes done.
    pub bytes: u64,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// Latency percentiles (produce: send to ack; e2e: send to consume).
    pub latency: Option<Latency>,
    /// e2e only: the producers' send-to-ack percentiles of the same run
    /// (JSON `produce_latency_ms`, as `bench/loadgen.py` writes it).
    pub produce_latency: Option<Latency>,
    /// Failed records.
    pub errors: u64,
    /// Every flag of the run.
    pub config: Value,
}

impl Summary {
    /// Records per second.
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// 10^6 bytes of record values per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }

    /// The JSON document (the contract with `scripts/bench`: exactly these
    /// keys).
    pub fn to_json(&self) -> Value {
        let percentiles = |l: Latency| json!({"p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999, "max": l.max});
        let latency = self.latency.map(percentiles);
        let mut doc = json!({
            "mode": self.mode,
            "records": self.records,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "records_per_s": self.records_per_s(),
            "mb_per_s": self.mb_per_s(),
            "latency_ms": latency,
            "errors": self.errors,
            "config": self.config,
        });
        if let Some(l) = self.produce_latency {
            doc["produce_latency_ms"] = percentiles(l);
        }
        doc
    }

    /// The summary for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {} records, {:.1} MB in {:.3} s: {:.0} records/s, {:.1} MB/s, {} errors\n",
            self.mode,
            self.records,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.records_per_s(),
            self.mb_per_s(),
            self.errors
        );
        let what = if self.mode == "e2e" {
            "send to consume"
        } else {
            "send to ack"
        };
        for (what, l) in [(what, self.latency), ("send to ack", self.produce_latency)] {
            if let Some(l) = l {
                s += &format!(
                    "latency ms ({what}): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
                    l.p50, l.p90, l.p99, l.p999, l.max
                );
            }
        }
        s
    }
}

/// Prints a progress line to stderr every [`PROGRESS_INTERVAL`] until
/// `done` is set.
pub fn spawn_progress(
    stats: Arc<Stats>,
    started: Instant,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut last_records, mut last_bytes, mut last_at) = (0u64, 0u64, started);
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if last_at.elapsed() < PROGRESS_INTERVAL {
                continue;
            }
            let now = Instant::now();
            let records = stats.records.load(Ordering::Relaxed);
            let bytes = stats.bytes.load(Ordering::Relaxed);
            let dt = now.duration_since(last_at).as_secs_f64();
            let p99 = stats
                .latency()
                .map(|l| format!("p99 {:.2} ms", l.p99))
                .unwrap_or_else(|| "p99 -".into());
            let _ = writeln!(
                std::io::stderr().lock(),
                "{:7.1} s  {:>10.0} records/s  {:8.1} MB/s  {}  ({} records, {} errors)",
                now.duration_since(started).as_secs_f64(),
                (records - last_records) as f64 / dt,
                (bytes - last_bytes) as f64 / 1e6 / dt,
                p99,
                records,
                stats.errors.load(Ordering::Relaxed)
            );
            (last_records, last_bytes, last_at) = (records, bytes, now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_latency_percentiles_are_ordered_and_in_ms() {
        let stats = Stats::new();
        // 1000 records started at 0 and done 1..=1000 ms later.
        for ms in 1..=1000u64 {
            stats.record_done(1, 10, ms * 1_000_000, &[0]);
        }
        let l = stats.latency().unwrap();
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p90 - 900.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.p999 - 999.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(stats.records.load(Ordering::Relaxed), 1000);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 10_000);
    }

    #[test]
    fn bench_latency_empty_is_none_and_clamped() {
        let stats = Stats::new();
        assert_eq!(stats.latency(), None);
        stats.record_done(3, 30, 10, &[]);
        assert_eq!(stats.latency(), None, "no start times: no latency");
        // Done before started (clock skew) counts as the 1 µs floor.
        stats.record_done(1, 1, 5, &[10]);
        assert_eq!(stats.latency().unwrap().max, 0.001);
    }

    #[test]
    fn bench_summary_json_has_exactly_the_contract_keys() {
        let s = Summary {
            mode: "produce",
            records: 2000,
            bytes: 2_000_000,
            seconds: 2.0,
            latency: Some(Latency {
                p50: 1.0,
                p90: 2.0,
                p99: 3.0,
                p999: 4.0,
                max: 5.0,
            }),
            produce_latency: None,
            errors: 0,
            config: json!({"acks": "all"}),
        };
        let v = s.to_json();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "bytes",
                "config",
                "errors",
                "latency_ms",
                "mb_per_s",
                "mode",
                "records",
                "records_per_s",
                "seconds"
            ]
        );
        assert_eq!(v["records_per_s"], 1000.0);
        assert_eq!(v["mb_per_s"], 1.0);
        let mut lk: Vec<&str> = v["latency_ms"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        lk.sort();
        assert_eq!(lk, ["max", "p50", "p90", "p99", "p999"]);
        let consume = Summary {
            mode: "consume",
            latency: None,
            config: s.config.clone(),
            ..s
        };
        assert!(consume.to_json()["latency_ms"].is_null());
        assert!(!consume.to_text().contains("latency"));
        let e2e = Summary {
            mode: "e2e",
            produce_latency: s.latency,
            ..s
        };
        assert_eq!(e2e.to_json()["produce_latency_ms"]["p99"], 3.0);
        assert!(e2e.to_text().contains("(send to consume)"));
        assert!(e2e.to_text().contains("(send to ack)"));
    }
}
