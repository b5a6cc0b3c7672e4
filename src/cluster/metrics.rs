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
    let Some(controller) = member.controller() else {
        return;
    };
    let metrics = controller.raft.metrics().borrow_watched().clone();
    let leader = metrics.current_leader;
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
