//! The admin HTTP port (`admin_listen`, default 127.0.0.1:9644).
//!
//! Routes (GET only; every answer closes the connection):
//! - `/metrics`: Prometheus text (see `ops::metrics`).
//! - `/v1/health` (alias `/healthz`): 200 when every shard answers a
//!   `run_on` ping within [`HEALTH_PING_WAIT`], 503 otherwise.
//! - `/v1/ready` (alias `/ready`): 200 between "start-up finished" and
//!   "stop began", 503 otherwise (load balancers stop sending then).
//! - `/v1/groups`: JSON list of consumer groups.
//! - `/v1/groups/{group}/lag`: JSON per-partition lag of one group, with a
//!   Burrow-style status per partition and for the group, evaluated over a
//!   sliding window of the commits this port observed (docs/LAG_STATUS.md).
//!
//! Decisions:
//! - It runs on shard 0's executor with glommio's `TcpListener`, so it adds
//!   no thread. The socket is bound by the main thread with std (no
//!   SO_REUSEPORT: a second broker on the same port must fail to start
//!   rather than share the port) and handed to shard 0 as a raw fd.
//! - A minimal HTTP/1.1 responder is enough for Prometheus and curl: read
//!   the head (at most [`HTTP_HEAD_BYTES_MAX`], within
//!   [`HTTP_READ_TIMEOUT`]), answer with Content-Length, close. At most
//!   [`ADMIN_CONNECTIONS_MAX`] requests are served at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::group::lag::{CommitSample, LagRules, LagWindow, PartitionLag, PartitionStatus};

use super::metrics::{self, GroupLagStats, PartitionStats, ProcessStats, ShardReport};
use crate::shard::Shard;

/// Largest request head read, in bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const HTTP_READ_TIMEOUT: Duration = Duration::from_secs(5);
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

/// An HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Status line code and reason, e.g. "200 OK".
    pub status: &'static str,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn json(value: serde_json::Value) -> Response {
        Response {
            status: "200 OK",
            content_type: "application/json",
            body: value.to_string() + "\n",
        }
    }

    /// The whole HTTP/1.1 response.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream, started: Instant) -> std::io::Result<()> {
    stream.set_read_timeout(Some(HTTP_READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= HTTP_HEAD_BYTES_MAX {
            let r = Response::text("431 Request Header Fields Too Large", "head too large\n");
            return stream.write_all(&r.encode()).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let response = match parse_request_line(&head) {
        Some(("GET", path)) => route(shard, path, started).await,
        Some(_) => Response::text("405 Method Not Allowed", "GET only\n"),
        None => Response::text("400 Bad Request", "bad request line\n"),
    };
    stream.write_all(&response.encode()).await?;
    stream.close().await
}

/// Method and path (query string removed) of an HTTP request head.
pub fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or(target)))
}

async fn route(shard: &Rc<Shard>, path: &str, started: Instant) -> Response {
    match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: scrape(shard, started).await,
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
            Some(group) if !group.is_empty() => group_lag_json(shard, &percent_decode(group)).await,
            _ => Response::text("404 Not Found", "not found\n"),
        },
    }
}

/// Decodes %XX escapes of a path segment (group ids may hold any byte).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
fn shard_report(shard: &Shard) -> ShardReport {
    let mut partitions: Vec<PartitionStats> = shard
        .local_partitions()
        .iter()
        .map(|p| PartitionStats {
            topic: p.id.topic.to_string(),
            partition: p.id.partition,
            high_watermark: p.log.high_watermark(),
            log_end_offset: p.log.next_offset(),
            log_start_offset: p.log.log_start_offset(),
            size_bytes: p.log.size_bytes(),
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
    metrics::render(&reports, &lags, &process)
}

/// Group ids of every shard's coordinator, sorted.
async fn all_groups(shard: &Rc<Shard>) -> Result<Vec<String>, i16> {
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
fn observe_lag(rules: &LagRules, group: &str, partitions: &[PartitionLag]) -> Vec<PartitionStatus> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_request_line_parsing() {
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"POST /v1/ready HTTP/1.0\r\n\r\n"),
            Some(("POST", "/v1/ready"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe\r\n\r\n"), None);
    }

    #[test]
    fn admin_response_encoding() {
        let bytes = Response::text("200 OK", "ok\n").encode();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\nok\n"));
    }

    #[test]
    fn admin_percent_decoding() {
        assert_eq!(percent_decode("my%20group%2F1"), "my group/1");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
