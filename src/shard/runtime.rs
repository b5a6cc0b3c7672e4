//! Starting and stopping the shards.
//!
//! `run` loads the metadata snapshot, makes the channel mesh, and starts one
//! pinned glommio executor per shard. Each shard primes glommio's DMA path,
//! opens (and recovers) the partitions it owns, binds the Kafka listener with
//! SO_REUSEPORT and reports ready; the main thread waits for all of them and
//! then hands over to `ops::supervisor` (signals, watchdog, reload).
//! SIGTERM/SIGINT ask every shard to stop accepting, drain its in-flight
//! requests (at most [`DRAIN_WAIT_MAX`]) and close its partitions cleanly
//! (flush, indexes, checkpoints), all within `shutdown_timeout_ms`.
//!
//! systemd (`ops::notify`) hears STATUS= as shards finish recovery, READY=1
//! once every shard listens, and STOPPING=1 when a stop begins. Shard 0 also
//! serves the admin HTTP port (`ops::admin`), bound here by the main thread.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{error, info, warn};

use super::cross_wake::cross_thread;
use super::messages::ShardMsg;
use super::placement::{io_memory_per_shard, memlock_limit_bytes, shard_cpus};
use super::{Shard, ShardSender};
use crate::config::{Config, Flags};
use crate::metadata::{self, Snapshot};
use crate::ops::logging::LogControl;
use crate::ops::notify::Notifier;
use crate::ops::supervisor::{self, Supervisor};
use crate::ops::{admin, metrics};
use crate::server;

/// Longest a stopping shard waits for its in-flight requests before it
/// closes its partitions anyway (well inside `shutdown_timeout_ms`).
pub(crate) const DRAIN_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// Pause between checks of the in-flight count while draining.
const DRAIN_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
const _: () =
    assert!(DRAIN_WAIT_MAX.as_millis() < crate::config::SHUTDOWN_TIMEOUT_MS_MIN as u128 * 10);

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
    /// The TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(crate::security::tls::TlsError),
    /// The initial user cannot be made.
    #[error("initial user: {0}")]
    InitialUser(String),
    /// The admin listen address is taken or invalid.
    #[error("cannot listen on admin address {addr}: {source}")]
    AdminListen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data dir belongs to another node or cluster.
    #[error(transparent)]
    Identity(#[from] crate::cluster::identity::IdentityError),
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
/// SIGHUP cannot reload anything (no flags known); see [`run_supervised`].
pub fn run(config: Config) -> Result<(), StartError> {
    run_supervised(config, None, None)
}

/// [`run`], with the start flags (re-applied on SIGHUP) and the log
/// control (to change the level on SIGHUP).
pub fn run_supervised(
    mut config: Config,
    flags: Option<Flags>,
    log: Option<LogControl>,
) -> Result<(), StartError> {
    let notifier = Notifier::from_env();
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
    let in_cluster = config.cluster.enabled();
    let identity =
        crate::cluster::identity::check_node(&config.data_dir, config.node_id, in_cluster)?;
    let mut loaded = metadata::load(&config.data_dir, config.shards).map_err(meta_err)?;
    if in_cluster {
        // The cluster's metadata comes from the controller quorum; what a
        // single node kept in meta/ is not imported (yet): say so.
        if !loaded.topics.is_empty() {
            warn!(
                topics = loaded.topics.len(),
                "this data dir has single-node topics; a cluster node does not serve them"
            );
        }
        loaded = Snapshot::default();
        crate::cluster::member::mark_joining();
    }
    // Dynamic broker configs persisted with the metadata go over the TOML's.
    loaded.log_defaults = Arc::new(config.log_defaults.with_dynamic(&loaded.broker_configs));
    match in_cluster {
        // The controller adds it to the cluster's metadata (item 6 of
        // issue 22): checked here so a missing password fails the start.
        true => crate::security::initial_user::check_for_cluster(&config)?,
        false => crate::security::initial_user::add(&config, &mut loaded)?,
    }
    let snapshot = Arc::new(loaded);
    for listener in config.listeners() {
        check_port_free(listener.bind)?;
    }
    if let Some(files) = &config.security.tls {
        crate::security::tls::install(files).map_err(StartError::Tls)?;
    }
    crate::security::inter_broker::install(&config.inter_broker).map_err(StartError::Tls)?;
    let admin_fd = bind_admin(&config)?;
    supervisor::block_signals();
    let partitions_per_shard: Vec<usize> = (0..config.shards)
        .map(|s| snapshot.owned_by(s).count())
        .collect();
    notifier.status(&format!(
        "recovering: starting {} shards, {} partitions",
        config.shards,
        partitions_per_shard.iter().sum::<usize>()
    ));
    let mut admin_fd = admin_fd;
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
        let owner = (shard == 0).then(|| OwnerStart {
            admin_fd: admin_fd.take(),
            identity: identity.clone(),
        });
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpus[shard]))
            .name(&format!("shard-{shard}"))
            .io_memory(io_memory);
        if config.shard_spin_us > 0 {
            builder =
                builder.spin_before_park(std::time::Duration::from_micros(config.shard_spin_us));
        }
        let handle = builder
            .spawn(move || shard_main(shard, config, peers, inbox, snapshot, ready, owner))
            .map_err(|e| StartError::Executor {
                shard,
                message: e.to_string(),
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    wait_ready(&partitions_per_shard, &ready_rx, &notifier)?;
    // Opening partitions (recovery reads, index loads) left freed memory
    // that the tuned allocator would otherwise keep for good.
    crate::malloc_tune::release_free_memory();
    info!(
        "corestreamd ready: listening on {} with {} shards{}",
        listeners_text(&config),
        config.shards,
        config
            .ops
            .admin_listen
            .map(|a| format!("; admin HTTP on {a}"))
            .unwrap_or_default()
    );
    admin::set_ready(true);
    notifier.ready(&format!(
        "serving on {} with {} shards",
        listeners_text(&config),
        config.shards
    ));
    let mut supervisor = Supervisor {
        notifier,
        log,
        flags,
        config: (*config).clone(),
    };
    supervisor.run_until_stop(&senders);
    admin::set_ready(false);
    supervisor
        .notifier
        .stopping("stopping: draining requests, closing partitions");
    if let Err(late) = supervisor.stop_shards(&senders) {
        error!(
            "shards {late:?} did not stop within shutdown_timeout_ms={}: exiting anyway \
             (acknowledged data is on disk; the next start recovers the rest)",
            supervisor.config.ops.shutdown_timeout_ms
        );
        std::process::exit(supervisor::EXIT_STOP_TIMEOUT);
    }
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
fn check_port_free(addr: std::net::SocketAddr) -> Result<(), StartError> {
    let mut probe = addr;
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
                addr,
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another process accepts connections there",
                ),
            });
        }
        std::thread::sleep(PORT_PROBE_INTERVAL);
    }
}

/// The listeners for log lines: `PLAINTEXT://127.0.0.1:9092,...`.
fn listeners_text(config: &Config) -> String {
    config
        .listeners()
        .iter()
        .map(|l| format!("{}://{}", l.protocol, l.bind))
        .collect::<Vec<_>>()
        .join(",")
}

/// Binds the admin HTTP listener (std: no SO_REUSEPORT, so a taken port
/// fails here) and returns its fd for shard 0.
fn bind_admin(config: &Config) -> Result<Option<std::os::fd::OwnedFd>, StartError> {
    let Some(addr) = config.ops.admin_listen else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|source| StartError::AdminListen { addr, source })?;
    Ok(Some(listener.into()))
}

fn wait_ready(
    partitions_per_shard: &[usize],
    ready: &std_mpsc::Receiver<ReadyReport>,
    notifier: &Notifier,
) -> Result<(), StartError> {
    let shards = partitions_per_shard.len();
    let total: usize = partitions_per_shard.iter().sum();
    let mut opened = 0;
    for done in 1..=shards {
        match ready.recv() {
            Ok((shard, Ok(()))) => {
                opened += partitions_per_shard.get(shard).copied().unwrap_or(0);
                notifier.status(&format!(
                    "recovering: {done}/{shards} shards ready, {opened}/{total} partitions open"
                ));
            }
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

/// What only shard 0 (the metadata owner) gets at start.
struct OwnerStart {
    /// The bound admin HTTP listener.
    admin_fd: Option<std::os::fd::OwnedFd>,
    /// This node's identity (`meta/node.json`), for the cluster member.
    identity: crate::cluster::identity::NodeIdentity,
}

async fn shard_main(
    id: usize,
    config: Arc<Config>,
    peers: Vec<ShardSender>,
    mut inbox: mpsc::UnboundedReceiver<ShardMsg>,
    snapshot: Arc<Snapshot>,
    ready: std_mpsc::Sender<ReadyReport>,
    owner: Option<OwnerStart>,
) {
    // Before anything here waits on another thread (cross_wake.rs).
    super::cross_wake::start_pump();
    let reserving = std::time::Instant::now();
    crate::fetch::tail_cache::TailCache::init_for_this_shard(config.tail_cache_bytes);
    let reserved = crate::fetch::tail_cache::TailCache::for_this_shard().reserved_bytes();
    info!(
        shard = id,
        "tail cache: {} MiB reserved for a budget of {} MiB in {} ms",
        reserved >> 20,
        config.tail_cache_bytes >> 20,
        reserving.elapsed().as_millis()
    );
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
    super::housekeeping::spawn(shard.clone());
    crate::txn::spawn_sweeper(shard.clone());
    let mut bound = Vec::new();
    for spec in config.listeners() {
        match glommio::net::TcpListener::bind(spec.bind) {
            Ok(l) => bound.push((l, Rc::new(spec))),
            Err(e) => {
                let _ = ready.send((
                    id,
                    Err(format!(
                        "cannot listen on {} ({}): {e}",
                        spec.bind, spec.protocol
                    )),
                ));
                return;
            }
        }
    }
    let (admin_fd, identity) = match owner {
        Some(o) => (o.admin_fd, Some(o.identity)),
        None => (None, None),
    };
    let admin = admin_fd.map(|fd| {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: a bound, listening TCP socket whose ownership moves here.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) };
        glommio::spawn_local(admin::serve(shard.clone(), listener))
    });
    if let (true, Some(identity)) = (config.cluster.enabled(), identity) {
        match crate::cluster::start::join(&shard, identity).await {
            Ok(member) => shard.set_cluster_member(member),
            Err(e) => {
                let _ = ready.send((id, Err(format!("joining the cluster: {e}"))));
                return;
            }
        }
    }
    // Serving starts once the node has its metadata: at once on a single
    // node, after registering with the controller in a cluster. This shard
    // keeps handling messages meanwhile (the cluster's first snapshot
    // arrives through them).
    let serving = glommio::spawn_local({
        let shard = shard.clone();
        let in_cluster = config.cluster.enabled();
        async move {
            if in_cluster {
                crate::cluster::member::wait_until_ready().await;
                glommio::spawn_local(shard.clone().run_isr_checks()).detach();
                glommio::spawn_local(shard.clone().run_hw_checkpoints()).detach();
            }
            // Groups are loaded before READY (see group::load).
            shard.groups.load_all(&shard).await;
            let _ = ready.send((id, Ok(())));
            let accepting: Vec<_> = bound
                .into_iter()
                .map(|(listener, spec)| {
                    glommio::spawn_local(server::accept_loop(shard.clone(), listener, spec))
                })
                .collect();
            // Dropping `serving` drops these: no new connections.
            futures::future::join_all(accepting).await;
        }
    });
    while let Some(msg) = cross_thread(inbox.next()).await {
        if let ShardMsg::Shutdown { reply, draining } = msg {
            if let Some(member) = shard.cluster_member() {
                // Also stops publishing; a publication in flight finishes
                // before the partitions close, or it would reopen them.
                member.controlled_shutdown().await;
                shard.wait_metadata_idle().await;
            }
            drop(serving); // dropping a glommio Task cancels it: no new connections
            shard.begin_stopping(); // and no new requests on the open ones
            drop(admin);
            // Other shards' messages are still handled while the shards
            // drain: a request in flight here may wait on a partition of
            // another shard and theirs on ours, so each shard keeps serving
            // its partitions until every shard has drained.
            let mut drained = std::pin::pin!(drain_all_shards(id, &draining));
            loop {
                let next = std::pin::pin!(cross_thread(inbox.next()));
                match select(drained.as_mut(), next).await {
                    Either::Left(((), _)) => break,
                    Either::Right((Some(ShardMsg::Shutdown { .. }), _)) => {}
                    Either::Right((Some(msg), _)) => shard.handle_message(msg).await,
                    Either::Right((None, _)) => {
                        drained.as_mut().await;
                        break;
                    }
                }
            }
            shard.close_all_partitions().await;
            if let Some(member) = shard.cluster_member() {
                member.stop_controller().await;
            }
            let _ = reply.send(());
            break;
        }
        shard.handle_message(msg).await;
    }
}

/// Waits (at most [`DRAIN_WAIT_MAX`]) until this shard has no request in
/// flight, then until every shard is in that state (`draining` counts the
/// shards not yet drained), so requests already being handled anywhere
/// finish before partitions close.
async fn drain_all_shards(shard: usize, draining: &AtomicUsize) {
    let deadline = std::time::Instant::now() + DRAIN_WAIT_MAX;
    while metrics::requests_in_flight() > 0 {
        if std::time::Instant::now() >= deadline {
            warn!(
                shard,
                in_flight = metrics::requests_in_flight(),
                by_api_key = ?metrics::requests_in_flight_by_api(),
                "requests still in flight after {} ms: closing partitions anyway",
                DRAIN_WAIT_MAX.as_millis()
            );
            break;
        }
        glommio::timer::sleep(DRAIN_POLL_INTERVAL).await;
    }
    draining.fetch_sub(1, Ordering::AcqRel);
    while draining.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(DRAIN_POLL_INTERVAL).await;
    }
}
