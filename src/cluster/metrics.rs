//! The cluster's part of `/metrics` (shard 0 of a cluster node): this
//! broker's membership and, on a voter, its view of the controller quorum.
//! Rendered only in a cluster, so a single node's scrape is unchanged.
//!
//! Voter lag is what the active controller knows: each voter's last
//! replicated log index (matched index) and how far that is behind the
//! leader's last one; followers export neither (they do not know it).
//! Every node exports each registered broker's state (fenced or not) as
//! its metadata has it.

use std::fmt::Write;

use super::member::Member;
use super::quorum::status;
use crate::metadata::{ClusterView, Snapshot};

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
pub fn render(member: &Member, snapshot: &Snapshot, out: &mut String) {
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
    if let Some(cluster) = &snapshot.cluster {
        broker_states(cluster, out);
    }
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
    let quorum = status(controller);
    // Kafka's OfflinePartitionsCount: the active controller's count, 0 on
    // the other voters, so a sum over nodes is the cluster's.
    let offline = match quorum.is_leader() {
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
        u64::from(quorum.is_leader()),
    );
    gauge(
        out,
        "corestream_controller_leader_id",
        "Node id of the active controller as this voter knows it (0 when none is known).",
        quorum.leader_id.unwrap_or(0),
    );
    gauge(
        out,
        "corestream_controller_raft_term",
        "Current Raft term.",
        quorum.term,
    );
    gauge(
        out,
        "corestream_controller_raft_last_log_index",
        "Index of the last entry in this voter's Raft log.",
        quorum.last_log_index,
    );
    gauge(
        out,
        "corestream_controller_raft_committed_index",
        "Index of the last entry this voter knows to be committed.",
        quorum.committed_index,
    );
    gauge(
        out,
        "corestream_controller_raft_applied_index",
        "Index of the last entry applied to this voter's metadata.",
        quorum.applied_index,
    );
    // Per voter, on the active controller only: the others do not know.
    let known: Vec<_> = quorum
        .voters
        .iter()
        .filter_map(|v| Some((v.id, v.matched_index?, v.lag_entries?)))
        .collect();
    if known.is_empty() {
        return;
    }
    family(
        out,
        "corestream_controller_voter_matched_index",
        "Index of the last entry the active controller knows a voter holds.",
    );
    for (voter, matched, _) in &known {
        let _ = writeln!(
            out,
            "corestream_controller_voter_matched_index{{voter=\"{voter}\"}} {matched}"
        );
    }
    family(
        out,
        "corestream_controller_voter_lag_entries",
        "Entries a voter's log is behind the active controller's.",
    );
    for (voter, _, lag) in &known {
        let _ = writeln!(
            out,
            "corestream_controller_voter_lag_entries{{voter=\"{voter}\"}} {lag}"
        );
    }
}

/// The HELP and TYPE lines of a gauge family with labelled samples.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Every registered broker's state as this broker's metadata has it:
/// 1 fenced, 0 registered and unfenced.
fn broker_states(cluster: &ClusterView, out: &mut String) {
    family(
        out,
        "corestream_cluster_broker_fenced",
        "Per registered broker: 1 when fenced (missed its heartbeats or shut down), 0 when live.",
    );
    for broker in cluster.brokers.values() {
        let _ = writeln!(
            out,
            "corestream_cluster_broker_fenced{{broker=\"{}\"}} {}",
            broker.id,
            u64::from(broker.fenced)
        );
    }
}
