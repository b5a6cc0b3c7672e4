//! The cluster's part of `/metrics` (shard 0 of a cluster node): this
//! broker's membership and, on a voter, its view of the controller quorum.
//! Rendered only in a cluster, so a single node's scrape is unchanged.
//!
//! Voter lag is what the active controller knows: each voter's last
//! replicated log index behind the leader's last one; followers export
//! no lag (they do not know it).

use std::fmt::Write;

use openraft::async_runtime::watch::WatchReceiver;

use super::member::Member;

/// Unclean leader elections this node's controller made (an out-of-sync
/// replica given an offline partition; records may have been lost).
pub static UNCLEAN_LEADER_ELECTIONS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);
/// Clean elections this node's controller made outside a fence
/// (preferred-leader rebalance, ElectLeaders).
pub static CLEAN_LEADER_ELECTIONS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// One counter family with one sample.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

/// One gauge family with one sample.
fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Appends the cluster metric families to `out`.
pub fn render(member: &Member, out: &mut String) {
    gauge(
        out,
        "corestream_cluster_broker_registered",
        "1 while this broker is registered and unfenced with the active controller.",
        u64::from(member.registered()),
    );
    gauge(
        out,
        "corestream_cluster_broker_epoch",
        "This broker's registration epoch (0 while not registered).",
        member.epoch().max(0) as u64,
    );
    gauge(
        out,
        "corestream_cluster_metadata_published_index",
        "Controller log index of the metadata this broker's shards have.",
        member.published_index(),
    );
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    counter(
        out,
        "corestream_unclean_leader_elections_total",
        "Unclean leader elections made by this node's controller while active (records may have been lost).",
        UNCLEAN_LEADER_ELECTIONS.load(relaxed),
    );
    counter(
        out,
        "corestream_clean_leader_elections_total",
        "Preferred and ElectLeaders elections made by this node's controller while active (fences not counted).",
        CLEAN_LEADER_ELECTIONS.load(relaxed),
    );
    let Some(controller) = member.controller() else {
        return;
    };
    let metrics = controller.raft.metrics().borrow_watched().clone();
    let leader = metrics.current_leader;
    // Kafka's OfflinePartitionsCount: the active controller's count, 0 on
    // the other voters, so a sum over nodes is the cluster's.
    let offline = match leader == Some(controller.node_id) {
        true => controller.state_machine.read(|state| {
            state
                .topics
                .values()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.leader == crate::metadata::NO_LEADER)
                .count() as u64
        }),
        false => 0,
    };
    gauge(
        out,
        "corestream_offline_partitions",
        "Partitions without a leader (every ISR member fenced), as the active controller counts them; 0 on other voters.",
        offline,
    );
    gauge(
        out,
        "corestream_controller_active",
        "1 on the active controller (the Raft leader).",
        u64::from(leader == Some(controller.node_id)),
    );
    gauge(
        out,
        "corestream_controller_leader_id",
        "Node id of the active controller as this voter knows it (0 when none is known).",
        leader.unwrap_or(0),
    );
    gauge(
        out,
        "corestream_controller_raft_term",
        "Current Raft term.",
        metrics.current_term,
    );
    gauge(
        out,
        "corestream_controller_raft_last_log_index",
        "Index of the last entry in this voter's Raft log.",
        metrics.last_log_index.unwrap_or(0),
    );
    gauge(
        out,
        "corestream_controller_raft_committed_index",
        "Index of the last entry this voter knows to be committed.",
        metrics.local_committed.map_or(0, |l| l.index),
    );
    gauge(
        out,
        "corestream_controller_raft_applied_index",
        "Index of the last entry applied to this voter's metadata.",
        metrics.last_applied.map_or(0, |l| l.index),
    );
    if let Some(replication) = &metrics.replication {
        let last = metrics.last_log_index.unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP corestream_controller_voter_lag_entries Entries a voter's log is behind the active controller's."
        );
        let _ = writeln!(out, "# TYPE corestream_controller_voter_lag_entries gauge");
        for (voter, matched) in replication {
            let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
            let _ = writeln!(
                out,
                "corestream_controller_voter_lag_entries{{voter=\"{voter}\"}} {behind}"
            );
        }
    }
}
