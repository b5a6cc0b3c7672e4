//! Loopback TCP bandwidth: the "network" limit for `scripts/bench --suite`.
//!
//! A plain socket pump with nothing Kafka about it: `--streams` sender
//! threads each write 1 MiB buffers into their own loopback connection for
//! `--seconds`, one receiver thread per connection reads and discards them.
//! The figure is bytes received / wall time, which is what a broker could at
//! best move through the kernel's loopback path on this machine.
//!
//! std only, so the suite builds it with a bare `rustc -O` (no Cargo.toml
//! entry, no dependency on the broker crate). A Python pump would measure
//! the interpreter, not the kernel.
//!
//! Usage: socket_pump [--streams N] [--seconds S]
//! Prints one JSON line: {"streams","seconds","bytes","mb_per_s"}
//! (MB = 10^6 bytes).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Size of each write and read, in bytes: large enough that syscall cost
/// is noise next to the copy.
const BUFFER_BYTES: usize = 1 << 20;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

fn main() -> std::io::Result<()> {
    let streams = arg("--streams", 1.0) as usize;
    let seconds = arg("--seconds", 3.0);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));

    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..streams {
        let mut tx = TcpStream::connect(addr)?;
        let (mut rx, _) = listener.accept()?;
        receivers.push(thread::spawn(move || {
            let mut buf = vec![0u8; BUFFER_BYTES];
            let mut total = 0u64;
            loop {
                match rx.read(&mut buf) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n as u64,
                }
            }
        }));
        let stop = stop.clone();
        senders.push(thread::spawn(move || {
            let buf = vec![0x5au8; BUFFER_BYTES];
            while !stop.load(Ordering::Relaxed) {
                if tx.write_all(&buf).is_err() {
                    break;
                }
            }
            // Dropping tx closes the stream: the receiver sees EOF.
        }));
    }
    let started = Instant::now();
    thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().expect("sender thread");
    }
    let bytes: u64 = receivers.into_iter().map(|r| r.join().expect("receiver thread")).sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{{\"streams\": {streams}, \"seconds\": {elapsed:.3}, \"bytes\": {bytes}, \"mb_per_s\": {:.1}}}",
        bytes as f64 / elapsed / 1e6
    );
    Ok(())
}
