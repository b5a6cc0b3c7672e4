//! Cross-shard routing cost: a glommio shared-channel round trip between two
//! executors pinned to different CPUs (what `Shard::call_partition` pays
//! when the partition's owner is another shard), with glommio's default
//! parking and with `spin_before_park`. Not criterion: the measurement
//! needs two executors running for the whole loop, so it times the loop
//! itself and prints the mean, p50 and p99 round trip and the CPU time the
//! process used per round trip (what spinning costs).
//!
//! `cargo bench --bench cross_shard` (ROUND_TRIPS round trips per setting).

use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

/// Round trips measured per setting.
const ROUND_TRIPS: usize = 20_000;
/// Spin settings compared (None: glommio's default parking).
const SPINS: [Option<Duration>; 3] = [
    None,
    Some(Duration::from_micros(50)),
    Some(Duration::from_millis(1)),
];

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn builder(cpu: usize, spin: Option<Duration>) -> LocalExecutorBuilder {
    let b = LocalExecutorBuilder::new(Placement::Fixed(cpu));
    match spin {
        Some(d) => b.spin_before_park(d),
        None => b,
    }
}

fn measure(spin: Option<Duration>, cpus: (usize, usize)) -> (Vec<Duration>, Duration, Duration) {
    let (to_echo, echo_in) = shared_channel::new_bounded::<u64>(1);
    let (to_caller, caller_in) = shared_channel::new_bounded::<u64>(1);
    let echo = builder(cpus.1, spin)
        .spawn(move || async move {
            let rx = echo_in.connect().await;
            let tx = to_caller.connect().await;
            while let Some(v) = rx.recv().await {
                if tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .expect("echo executor");
    let caller = builder(cpus.0, spin)
        .spawn(move || async move {
            let tx = to_echo.connect().await;
            let rx = caller_in.connect().await;
            let mut samples = Vec::with_capacity(ROUND_TRIPS);
            let (cpu0, wall0) = (cpu_time(), Instant::now());
            for i in 0..ROUND_TRIPS as u64 {
                let t = Instant::now();
                tx.send(i).await.expect("echo alive");
                let back = rx.recv().await.expect("echo alive");
                assert_eq!(back, i);
                samples.push(t.elapsed());
            }
            (samples, wall0.elapsed(), cpu_time() - cpu0)
        })
        .expect("caller executor");
    let out = caller.join().expect("caller ran");
    echo.join().expect("echo ran");
    out
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pair = (0, if cpus > 1 { 1 } else { 0 });
    println!("cross_shard: {ROUND_TRIPS} shared-channel round trips, executors on cpus {pair:?}");
    for spin in SPINS {
        let (mut samples, wall, cpu) = measure(spin, pair);
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "  spin_before_park {:>8}: mean {:7.1} us  p50 {:7.1} us  p99 {:7.1} us  cpu {:6.1} us per round trip ({:.0} % of 2 cpus)",
            spin.map_or("default".to_string(), |d| format!("{d:?}")),
            us(wall) / ROUND_TRIPS as f64,
            us(pick(0.5)),
            us(pick(0.99)),
            us(cpu) / ROUND_TRIPS as f64,
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / 2.0,
        );
    }
}
