//! The admin HTTP port (`admin_listen`, default 127.0.0.1:9644).
//!
//! Routes (every answer closes the connection):
//! - `/metrics`: Prometheus text (see `ops::metrics`).
//! - `/v1/health` (alias `/healthz`): 200 when every shard answers a
//!   `run_on` ping within [`HEALTH_PING_WAIT`], 503 otherwise.
//! - `/v1/ready` (alias `/ready`): 200 between "start-up finished" and
//!   "stop began", 503 otherwise (load balancers stop sending then).
//! - `/v1/groups`: JSON list of consumer groups.
//! - `/v1/groups/{group}/lag`: JSON per-partition lag of one group, with a
//!   Burrow-style status per partition and for the group, evaluated over a
//!   sliding window of the commits this port observed (docs/LAG_STATUS.md).
//! - `/ui/` and the console's JSON endpoints (`/v1/overview`, `/v1/topics`,
//!   `/v1/groups/{group}`, ...; reads GET, changes POST), unless
//!   `admin_ui = false`: see `crate::console` and docs/CONSOLE.md.
//!
//! Decisions:
//! - It runs on shard 0's executor with glommio's `TcpListener`, so it adds
//!   no thread. The socket is bound by the main thread with std (no
//!   SO_REUSEPORT: a second broker on the same port must fail to start
//!   rather than share the port) and handed to shard 0 as a raw fd.
//! - A minimal HTTP/1.1 responder (`ops::http`) is enough for Prometheus,
//!   curl and the console: read a bounded head and body, answer with
//!   Content-Length, close. At most [`ADMIN_CONNECTIONS_MAX`] requests are
//!   served at once.
//! - Guards: every route but the probes checks the `Host` header while the
//!   port listens on loopback (DNS rebinding: a rebound page could read
//!   the metrics' topic and group names) and, with `admin_token_file`,
//!   a bearer token (`console::admin_token_check`). The probes stay open
//!   for systemd, load balancers and orchestrators.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::group::lag::{CommitSample, LagRules, LagWindow, PartitionLag, PartitionStatus};

use super::http::{self, Request, Response};
use super::metrics::{self, GroupLagStats, PartitionStats, ProcessStats, ShardReport};
use crate::shard::Shard;

/// Admin requests served at once; more are closed on accept.
pub const ADMIN_CONNECTIONS_MAX: usize = 16;
/// How long `/v1/health` waits for each shard's answer.
pub const HEALTH_PING_WAIT: Duration = Duration::from_secs(2);
/// Pause after a failed accept before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

static READY: AtomicBool = AtomicBool::new(false);

/// Set by the main thread: true after start-up, false once a stop begins.
pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::Release);
}

/// Whether the broker is ready (see [`set_ready`]); a cluster node also
/// needs to be registered with the controller (a fenced or stopping one
/// is not ready).
pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire) && crate::cluster::member::member_ready()
}

/// Accepts admin connections until the task is dropped.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    let started = Instant::now();
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(shard = shard.id, "admin accept failed: {e}");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if open.get() >= ADMIN_CONNECTIONS_MAX {
            continue; // dropping the stream closes it
        }
        open.set(open.get() + 1);
        let (shard, open) = (shard.clone(), open.clone());
        glommio::spawn_local(async move {
            if let Err(e) = handle(&shard, stream, started).await {
                debug!("admin connection: {e}");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream, started: Instant) -> std::io::Result<()> {
    let response = match http::read_request(&mut stream).await {
        Ok(request) => route(shard, &request, started).await,
        Err(e) => match e.response() {
            Some(r) => r,
            None => return Ok(()),
        },
    };
    http::write_response(&mut stream, &response).await
}

async fn route(shard: &Rc<Shard>, request: &Request, started: Instant) -> Response {
    if shard.config.ops.admin_ui {
        if let Some(response) = crate::console::route(shard, request).await {
            return response;
        }
    }
    if request.method != "GET" {
        return Response::error("405 Method Not Allowed", "GET only");
    }
    let path = request.path.as_str();
    let probe = matches!(path, "/v1/health" | "/healthz" | "/v1/ready" | "/ready");
    if !probe {
        // /metrics and the lag routes show topic and group names: the same
        // DNS-rebinding and token guards as the console's reads.
        let guarded = crate::console::guard::check_host(request, shard.config.ops.admin_listen)
            .and_then(|()| crate::console::admin_token_check(shard, request));
        if let Err(e) = guarded {
            return e.into_response();
        }
    }
    match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: scrape(shard, started).await.into_bytes().into(),
        },
        "/v1/health" | "/healthz" => health(shard).await,
        "/v1/ready" | "/ready" if is_ready() => Response::text("200 OK", "ready\n"),
        "/v1/ready" | "/ready" => Response::text("503 Service Unavailable", "not ready\n"),
        "/v1/groups" => match all_groups(shard).await {
            Ok(groups) => Response::json(serde_json::json!({ "groups": groups })),
            Err(code) => Response::text("503 Service Unavailable", format!("kafka error {code}\n")),
        },
        _ => match path
            .strip_prefix("/v1/groups/")
            .and_then(|rest| rest.strip_suffix("/lag"))
        {
            Some(group) if !group.is_empty() => {
                group_lag_json(shard, &http::percent_decode(group)).await
            }
            _ => Response::error("404 Not Found", format!("no route {path}")),
        },
    }
}

async fn health(shard: &Rc<Shard>) -> Response {
    let pings = (0..shard.shard_count()).map(|target| {
        let ping = shard.run_on(target, |s| async move { s.id });
        let timeout = glommio::timer::sleep(HEALTH_PING_WAIT);
        async move {
            futures::pin_mut!(ping, timeout);
            match futures::future::select(ping, timeout).await {
                futures::future::Either::Left((Some(_), _)) => None,
                _ => Some(target),
            }
        }
    });
    let silent: Vec<usize> = futures::future::join_all(pings)
        .await
        .into_iter()
        .flatten()
        .collect();
    if silent.is_empty() {
        Response::text("200 OK", "ok\n")
    } else {
        Response::text(
            "503 Service Unavailable",
            format!("shards not answering: {silent:?}\n"),
        )
    }
}

/// What one shard reports: counters and the state of its partitions.
pub(crate) fn shard_report(shard: &Shard) -> ShardReport {
    let mut partitions: Vec<PartitionStats> = shard
        .local_partitions()
        .iter()
        .map(|p| PartitionStats {
            topic: p.id.topic.to_string(),
            partition: p.id.partition,
            high_watermark: p.high_watermark(),
            log_end_offset: p.log.next_offset(),
            log_start_offset: p.log.log_start_offset(),
            size_bytes: p.log.size_bytes(),
            replication: p.replication_stats(),
        })
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let tail_cache = crate::fetch::tail_cache::TailCache::for_this_shard();
    let sessions = shard.fetch_sessions.borrow();
    ShardReport {
        shard: shard.id,
        metrics: metrics::snapshot(),
        partitions,
        fetch: crate::fetch::FetchMetrics::this_shard(),
        tail_cache_bytes: tail_cache.used_bytes() as u64,
        tail_cache_capacity_bytes: tail_cache.budget_bytes() as u64,
        tail_cache_reserved_bytes: tail_cache.reserved_bytes() as u64,
        tail_cache_unreserved_copy_bytes: tail_cache.unreserved_copy_bytes(),
        fetch_sessions_open: sessions.len() as u64,
        fetch_sessions_opened: sessions.opened_total(),
        fetch_session_evictions: sessions.evictions_total(),
        fetch_session_incremental_requests: sessions.incremental_total(),
    }
}

/// Gathers every shard's report, every group's lag and process stats, and
/// renders them.
pub async fn scrape(shard: &Rc<Shard>, started: Instant) -> String {
    let jobs = (0..shard.shard_count())
        .map(|target| shard.run_on(target, |s| async move { shard_report(&s) }));
    let reports: Vec<ShardReport> = futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut lags = Vec::new();
    for group in all_groups(shard).await.unwrap_or_default() {
        if let Ok(partitions) = crate::group::lag::group_lag(shard, &group).await {
            observe_lag(&shard.config.ops.lag_rules, &group, &partitions);
            lags.extend(partitions.into_iter().map(|p| GroupLagStats {
                group: group.clone(),
                topic: p.topic,
                partition: p.partition,
                committed_offset: p.committed_offset,
                lag: p.lag,
            }));
        }
    }
    let process = ProcessStats {
        resident_memory_bytes: resident_memory_bytes().await,
        allocator: metrics::allocator_stats(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        ready: is_ready(),
    };
    let mut text = metrics::render(&reports, &lags, &process);
    if let Some(member) = shard.cluster_member() {
        crate::cluster::metrics::render(&member, &shard.snapshot(), &mut text);
    }
    text
}

/// Group ids of every shard's coordinator, sorted.
pub(crate) async fn all_groups(shard: &Rc<Shard>) -> Result<Vec<String>, i16> {
    let jobs = (0..shard.shard_count()).map(|target| {
        shard.run_on(target, |s| async move {
            s.groups
                .list(&s)
                .await
                .map(|groups| groups.into_iter().map(|g| g.group_id).collect::<Vec<_>>())
        })
    });
    let mut groups = Vec::new();
    for answer in futures::future::join_all(jobs).await {
        groups.extend(answer.unwrap_or(Ok(Vec::new()))?);
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

thread_local! {
    /// Commit windows per (group, topic, partition), kept on shard 0 (the
    /// admin port's shard) and fed by every lag API call and /metrics scrape.
    static LAG_WINDOWS: RefCell<HashMap<(String, String, i32), LagWindow>> =
        RefCell::new(HashMap::new());
}

/// Feeds `partitions` (one group's lag now) into the commit windows and
/// returns each partition's status, in the same order.
pub(crate) fn observe_lag(
    rules: &LagRules,
    group: &str,
    partitions: &[PartitionLag],
) -> Vec<PartitionStatus> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    LAG_WINDOWS.with(|windows| {
        let mut windows = windows.borrow_mut();
        // forget partitions of this group that no longer have an offset
        windows.retain(|(g, t, p), _| {
            g != group
                || partitions
                    .iter()
                    .any(|l| &l.topic == t && l.partition == *p)
        });
        partitions
            .iter()
            .map(|p| {
                if p.lag < 0 {
                    return PartitionStatus::Ok; // log end unknown: no verdict
                }
                let window = windows
                    .entry((group.to_string(), p.topic.clone(), p.partition))
                    .or_default();
                let sample = CommitSample {
                    offset: p.committed_offset,
                    timestamp_ms: p.commit_timestamp_ms,
                    lag: p.lag,
                };
                window.observe(sample, rules.window_commits);
                window.status(now_ms, p.lag, rules)
            })
            .collect()
    })
}

/// The commit windows this port keeps for `group`: per partition, the
/// commits seen (offset, time, lag), oldest first (the console's chart).
pub(crate) fn lag_history(group: &str) -> Vec<(String, i32, Vec<CommitSample>)> {
    LAG_WINDOWS.with(|windows| {
        let mut rows: Vec<_> = windows
            .borrow()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), w)| (t.clone(), *p, w.samples().copied().collect()))
            .collect();
        rows.sort_by(|a: &(String, i32, Vec<CommitSample>), b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows
    })
}

async fn group_lag_json(shard: &Rc<Shard>, group: &str) -> Response {
    match crate::group::lag::group_lag(shard, group).await {
        Ok(partitions) if partitions.is_empty() => Response::text(
            "404 Not Found",
            format!("group {group:?} has no committed offsets\n"),
        ),
        Ok(partitions) => {
            let total: i64 = partitions.iter().map(|p| p.lag.max(0)).sum();
            let statuses = observe_lag(&shard.config.ops.lag_rules, group, &partitions);
            let rows: Vec<_> = partitions
                .iter()
                .zip(&statuses)
                .map(|(p, status)| {
                    serde_json::json!({
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed_offset": p.committed_offset,
                        "log_end_offset": p.log_end_offset,
                        "lag": p.lag,
                        "status": status.as_str(),
                    })
                })
                .collect();
            Response::json(serde_json::json!({
                "group": group,
                "status": crate::group::lag::group_status(statuses.iter().copied()),
                "total_lag": total,
                "partitions": rows,
            }))
        }
        Err(code) => Response::text("503 Service Unavailable", format!("kafka error {code}\n")),
    }
}

/// Resident set size from /proc/self/statm, read on glommio's blocking
/// pool (a file read must not run on the shard thread).
async fn resident_memory_bytes() -> Option<u64> {
    let text = glommio::executor()
        .spawn_blocking(|| std::fs::read_to_string("/proc/self/statm").ok())
        .await?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_bytes).ok()?)
}
