//! The loop of `corestream consume --group G`: fetch the member's assigned
//! partitions, print, commit, heartbeat, and start over after a rebalance.
//!
//! What is committed is the position after the last record *printed* per
//! partition (after a whole fetch round: the fetch position, which also
//! steps over control batches), so `--max N` followed by another
//! `consume --group` prints each record once.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use kafka_protocol::messages::BrokerId;

use super::client::{ClientError, Cluster};
use super::consume::{fetch_round, print_record, ConsumeArgs};
use super::groups::group_lag;
use super::member::{needs_rejoin, Member};
use super::output::Output;
use super::topics::{list_offsets, OFFSET_EARLIEST, OFFSET_LATEST};

/// Pause between fetch rounds when the member has no partition (more
/// members than partitions), so it only heartbeats.
const IDLE_ROUND_PAUSE: Duration = Duration::from_millis(200);

/// Where the member reads: next offset per assigned partition, the
/// partitions grouped by leader, and what was committed last.
struct Positions {
    next: BTreeMap<i32, i64>,
    by_leader: BTreeMap<i32, Vec<i32>>,
    committed: BTreeMap<i32, i64>,
}

/// Committed offsets of the assignment, or earliest/latest where none.
fn positions(
    cluster: &mut Cluster,
    args: &ConsumeArgs,
    group: &str,
    member: &Member,
) -> Result<Positions, ClientError> {
    let leaders: Vec<(i32, BrokerId)> = cluster
        .leaders(&args.topic)?
        .into_iter()
        .filter(|(p, _)| member.partitions.contains(p))
        .collect();
    let committed: BTreeMap<i32, i64> = group_lag(cluster, group)?
        .into_iter()
        .filter(|r| r.topic == args.topic && r.committed >= 0)
        .map(|r| (r.partition, r.committed))
        .collect();
    let reset = if args.from_beginning {
        OFFSET_EARLIEST
    } else {
        OFFSET_LATEST
    };
    let missing: Vec<(i32, BrokerId)> = leaders
        .iter()
        .filter(|(p, _)| !committed.contains_key(p))
        .copied()
        .collect();
    let mut next = list_offsets(cluster, &args.topic, &missing, reset)?;
    next.extend(
        committed
            .iter()
            .filter(|(p, _)| member.partitions.contains(p)),
    );
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, leader) in &leaders {
        by_leader.entry(leader.0).or_default().push(*p);
    }
    Ok(Positions {
        next,
        by_leader,
        committed,
    })
}

/// Commits the partitions whose position moved since the last commit.
fn commit_moved(
    cluster: &mut Cluster,
    member: &Member,
    pos: &mut Positions,
    printed: &BTreeMap<i32, i64>,
) -> Result<(), ClientError> {
    let moved: Vec<(i32, i64)> = printed
        .iter()
        .filter(|(p, o)| pos.committed.get(p) != Some(o))
        .map(|(p, o)| (*p, *o))
        .collect();
    member.commit(cluster, &moved)?;
    pos.committed.extend(moved);
    Ok(())
}

/// Runs `consume --group`.
pub fn run(
    cluster: &mut Cluster,
    output: &Output,
    args: &ConsumeArgs,
    group: &str,
) -> Result<(), ClientError> {
    let mut member = Member::join(cluster, group, &args.topic)?;
    let mut pos = positions(cluster, args, group, &member)?;
    let mut printed = BTreeMap::new();
    let (mut count, mut last_record) = (0u64, Instant::now());
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut done = false;
        for (leader, parts) in pos.by_leader.clone() {
            let records = fetch_round(
                cluster,
                &args.topic,
                BrokerId(leader),
                &mut pos.next,
                &parts,
            )?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            for (p, r) in records {
                print_record(&mut stdout, output.json, args, p, &r);
                printed.insert(p, r.offset + 1);
                count += 1;
                if args.max.is_some_and(|m| count >= m) {
                    done = true;
                    break;
                }
            }
            if done {
                break;
            }
            for p in &parts {
                printed.insert(*p, pos.next[p]);
            }
        }
        let _ = stdout.flush();
        done |= args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t));
        let committed = commit_moved(cluster, &member, &mut pos, &printed);
        let rebalance = match committed {
            Ok(()) => member.heartbeat_if_due(cluster)?,
            Err(e) if needs_rejoin(&e) => true,
            Err(e) => return Err(e),
        };
        if done {
            return member.leave(cluster);
        }
        if rebalance {
            member.rejoin(cluster)?;
            pos = positions(cluster, args, group, &member)?;
            printed.clear();
        } else if pos.by_leader.is_empty() {
            std::thread::sleep(IDLE_ROUND_PAUSE);
        }
    }
}
