//! Starting and stopping the shards.
//!
//! `run` loads the metadata snapshot, makes the channel mesh, and starts one
//! pinned glommio executor per shard. Each shard primes glommio's DMA path,
//! opens (and recovers) the partitions it owns, binds the Kafka listener with
//! SO_REUSEPORT and reports ready; the main thread waits for all of them and
//! then only waits for a signal. SIGTERM/SIGINT ask every shard to stop
//! accepting and close its partitions cleanly (flush, indexes, checkpoints).

use std::rc::Rc;
use std::sync::{mpsc as std_mpsc, Arc};

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{error, info, warn};

use super::messages::ShardMsg;
use super::placement::{io_memory_per_shard, memlock_limit_bytes, shard_cpus};
use super::{Shard, ShardSender};
use crate::config::Config;
use crate::metadata::{self, Snapshot};
use crate::server;

/// How long the start-up probe waits for a listener already on our port.
const PORT_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// How long the port may stay taken before start-up gives up.
const PORT_PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// Pause between probes.
const PORT_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The lock file that keeps two brokers off one data directory.
pub(crate) const DATA_DIR_LOCK_FILE_NAME: &str = ".lock";

/// A broker that could not start; the message says what and where.
#[derive(thiserror::Error, Debug)]
pub enum StartError {
    /// The metadata could not be loaded.
    #[error("cannot load metadata from {dir}: {source}")]
    Metadata {
        /// The data directory.
        dir: std::path::PathBuf,
        /// Why.
        source: metadata::MetadataError,
    },
    /// An executor could not be created.
    #[error("failed to create io_uring runtime for shard {shard}: {message}")]
    Executor {
        /// Which shard.
        shard: usize,
        /// glommio's error.
        message: String,
    },
    /// The data directory cannot be resolved.
    #[error("data directory {dir}: {source}")]
    DataDir {
        /// The data directory as configured.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the data directory.
    #[error("data directory {dir} is in use by another corestreamd (lock {lock}): {source}")]
    DataDirLocked {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The lock file.
        lock: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address is taken.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A shard failed while starting.
    #[error("shard {shard} failed to start: {message}")]
    Shard {
        /// Which shard.
        shard: usize,
        /// Why.
        message: String,
    },
}

type ReadyReport = (usize, Result<(), String>);

/// Runs the broker until SIGTERM/SIGINT; returns once every shard closed.
pub fn run(mut config: Config) -> Result<(), StartError> {
    metadata::ensure_data_dir(&config.data_dir).map_err(|source| StartError::Metadata {
        dir: config.data_dir.clone(),
        source,
    })?;
    // Absolute from here on: glommio opens directories for fsync by path,
    // and a relative path there fails (EBADF) on glommio 0.9.
    config.data_dir =
        std::fs::canonicalize(&config.data_dir).map_err(|source| StartError::DataDir {
            dir: config.data_dir.clone(),
            source,
        })?;
    let meta_err = |source| StartError::Metadata {
        dir: config.data_dir.clone(),
        source,
    };
    let _data_dir_lock = lock_data_dir(&config.data_dir)?;
    let snapshot = Arc::new(metadata::load(&config.data_dir, config.shards).map_err(meta_err)?);
    check_port_free(&config)?;
    block_stop_signals();
    let config = Arc::new(config);
    let cpus = shard_cpus(config.shards);
    let memlock = memlock_limit_bytes();
    let io_memory = io_memory_per_shard(config.shards, memlock);
    info!(
        "starting {} shards on cpus {cpus:?}; RLIMIT_MEMLOCK {}, glommio io_memory {} KiB per shard{}",
        config.shards,
        memlock.map(|b| format!("{} KiB", b >> 10)).unwrap_or_else(|| "unlimited".into()),
        io_memory >> 10,
        if io_memory == 0 { " (DMA buffers come from the heap)" } else { "" },
    );
    let (senders, receivers): (Vec<ShardSender>, Vec<_>) =
        (0..config.shards).map(|_| mpsc::unbounded()).unzip();
    let (ready_tx, ready_rx) = std_mpsc::channel::<ReadyReport>();
    let mut handles = Vec::new();
    for (shard, inbox) in receivers.into_iter().enumerate() {
        let (config, peers, snapshot, ready) = (
            config.clone(),
            senders.clone(),
            snapshot.clone(),
            ready_tx.clone(),
        );
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpus[shard]))
            .name(&format!("shard-{shard}"))
            .io_memory(io_memory)
            .spawn(move || shard_main(shard, config, peers, inbox, snapshot, ready))
            .map_err(|e| StartError::Executor {
                shard,
                message: e.to_string(),
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    wait_ready(config.shards, &ready_rx)?;
    info!(
        "corestreamd ready: listening on {} with {} shards",
        config.listen, config.shards
    );
    wait_for_stop_signal();
    stop_shards(&senders);
    for h in handles {
        if let Err(e) = h.join() {
            warn!("shard exited with an error: {e}");
        }
    }
    info!("corestreamd stopped");
    Ok(())
}

/// Takes an exclusive lock on `<data_dir>/.lock` for the life of the process,
/// as Kafka does: two brokers writing one log would corrupt it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    use std::os::fd::AsRawFd;
    let lock = dir.join(DATA_DIR_LOCK_FILE_NAME);
    let locked = |source| StartError::DataDirLocked {
        dir: dir.to_path_buf(),
        lock: lock.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(locked)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(locked(std::io::Error::last_os_error()));
    }
    Ok(file)
}

/// Shards bind with SO_REUSEPORT, which would let a second broker share the
/// port and silently take half the connections. So before binding, see
/// whether anything already accepts connections there. (A plain bind would
/// also trip over the previous run's TIME_WAIT sockets, which carry
/// SO_REUSEPORT, and refuse a quick restart.)
fn check_port_free(config: &Config) -> Result<(), StartError> {
    let mut probe = config.listen;
    if probe.ip().is_unspecified() {
        probe.set_ip(match probe {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // After a SIGKILL the kernel tears down the dead broker's io_uring
    // asynchronously, and its listening sockets live on for a moment: keep
    // probing for a while before calling the port taken.
    let deadline = std::time::Instant::now() + PORT_PROBE_PATIENCE;
    loop {
        if std::net::TcpStream::connect_timeout(&probe, PORT_PROBE_TIMEOUT).is_err() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(StartError::Listen {
                addr: config.listen,
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another process accepts connections there",
                ),
            });
        }
        std::thread::sleep(PORT_PROBE_INTERVAL);
    }
}

fn wait_ready(shards: usize, ready: &std_mpsc::Receiver<ReadyReport>) -> Result<(), StartError> {
    for _ in 0..shards {
        match ready.recv() {
            Ok((_, Ok(()))) => {}
            Ok((shard, Err(message))) => return Err(StartError::Shard { shard, message }),
            Err(_) => {
                return Err(StartError::Shard {
                    shard: usize::MAX,
                    message: "a shard exited during start-up".into(),
                })
            }
        }
    }
    Ok(())
}

async fn shard_main(
    id: usize,
    config: Arc<Config>,
    peers: Vec<ShardSender>,
    mut inbox: mpsc::UnboundedReceiver<ShardMsg>,
    snapshot: Arc<Snapshot>,
    ready: std_mpsc::Sender<ReadyReport>,
) {
    if let Err(e) = crate::storage::prime_dma_io(&config.data_dir).await {
        let _ = ready.send((
            id,
            Err(format!(
                "priming O_DIRECT I/O in {}: {e}",
                config.data_dir.display()
            )),
        ));
        return;
    }
    let shard = Rc::new(Shard::new(id, config.clone(), peers));
    shard.apply_snapshot(snapshot).await;
    let listener = match glommio::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send((id, Err(format!("cannot listen on {}: {e}", config.listen))));
            return;
        }
    };
    let _ = ready.send((id, Ok(())));
    let accepting = glommio::spawn_local(server::accept_loop(shard.clone(), listener));
    while let Some(msg) = inbox.next().await {
        if let ShardMsg::Shutdown { reply } = msg {
            drop(accepting); // dropping a glommio Task cancels it: no new connections
            shard.close_all_partitions().await;
            let _ = reply.send(());
            break;
        }
        shard.handle_message(msg).await;
    }
}

fn stop_shards(senders: &[ShardSender]) {
    let acks: Vec<_> = senders
        .iter()
        .filter_map(|s| {
            let (reply, ack) = oneshot::channel();
            s.unbounded_send(ShardMsg::Shutdown { reply })
                .ok()
                .map(|_| ack)
        })
        .collect();
    for ack in acks {
        if futures::executor::block_on(ack).is_err() {
            error!("a shard stopped without closing its partitions");
        }
    }
}

const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

fn stop_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in STOP_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks the stop signals in this thread before any executor starts, so
/// every thread inherits the mask and only `sigwait` below receives them.
fn block_stop_signals() {
    let set = stop_sigset();
    // SAFETY: a valid sigset; pthread_sigmask only changes this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn wait_for_stop_signal() {
    let set = stop_sigset();
    let mut sig: libc::c_int = 0;
    // SAFETY: valid sigset and out-pointer.
    while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
    info!("signal {sig} received: stopping (closing every partition cleanly)");
}
