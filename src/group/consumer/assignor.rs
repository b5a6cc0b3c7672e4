//! Server-side assignors: "uniform" (the default) and "range", the two
//! Kafka's broker ships. Both are pure functions of the members'
//! subscriptions, the topics' partition counts and (uniform) the previous
//! target assignment, so the coordinator can rerun them on any change.
//!
//! - uniform: balanced and sticky. Each member keeps what it had, up to its
//!   share (total / members, the first `total % members` in member-id order
//!   may keep one more), then every unassigned partition goes to the
//!   subscribed member holding the fewest. With identical subscriptions the
//!   counts differ by at most one.
//! - range: per topic, its subscribers in member-id order get contiguous
//!   ranges, the first `partitions % subscribers` one more each. Members
//!   subscribed to co-partitioned topics get the same partition numbers,
//!   which is what joins across topics rely on.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::records::SubscribedMetadata;
use super::TopicPartitions;

/// The assignor used when no member names one.
pub const DEFAULT_ASSIGNOR: &str = "uniform";
/// Assignors this broker runs.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub struct MemberSubscription<'a> {
    /// Resolved topic names it subscribes to.
    pub topics: BTreeSet<String>,
    /// Its previous target assignment.
    pub previous: Option<&'a TopicPartitions>,
}

/// Runs the named assignor (unknown names were refused at the heartbeat;
/// they fall back to uniform here rather than panic).
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, MemberSubscription<'_>>,
    topics: &SubscribedMetadata,
) -> BTreeMap<String, TopicPartitions> {
    match assignor {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

fn empty_targets(
    members: &BTreeMap<String, MemberSubscription<'_>>,
) -> BTreeMap<String, TopicPartitions> {
    members
        .keys()
        .map(|m| (m.clone(), TopicPartitions::new()))
        .collect()
}

/// Range: see the module doc.
pub fn range(
    members: &BTreeMap<String, MemberSubscription<'_>>,
    topics: &SubscribedMetadata,
) -> BTreeMap<String, TopicPartitions> {
    let mut out = empty_targets(members);
    for (name, info) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.topics.contains(name))
            .map(|(id, _)| id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as i32;
        let (share, extra) = (info.partitions / n, info.partitions % n);
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let count = share + i32::from((i as i32) < extra);
            let set: BTreeSet<i32> = (next..next + count).collect();
            next += count;
            if !set.is_empty() {
                out.get_mut(member).map(|tps| tps.insert(info.id, set));
            }
        }
    }
    out
}

/// Uniform: see the module doc.
pub fn uniform(
    members: &BTreeMap<String, MemberSubscription<'_>>,
    topics: &SubscribedMetadata,
) -> BTreeMap<String, TopicPartitions> {
    let mut out = empty_targets(members);
    if members.is_empty() {
        return out;
    }
    let name_of: BTreeMap<Uuid, &String> = topics.iter().map(|(n, t)| (t.id, n)).collect();
    // Every partition some member subscribes to, in a stable order.
    let mut unassigned: BTreeSet<(String, Uuid, i32)> = topics
        .iter()
        .filter(|(n, _)| members.values().any(|s| s.topics.contains(*n)))
        .flat_map(|(n, t)| (0..t.partitions).map(move |p| (n.clone(), t.id, p)))
        .collect();
    let total = unassigned.len();
    let n = members.len();
    let (share, mut extra) = (total / n, total % n);
    let mut counts: BTreeMap<&String, usize> = members.keys().map(|m| (m, 0)).collect();
    // Sticky pass: keep valid previous partitions up to the member's share.
    for (member, sub) in members {
        let Some(previous) = sub.previous else {
            continue;
        };
        let mut kept = Vec::new();
        for (topic_id, partitions) in previous {
            let Some(name) = name_of.get(topic_id) else {
                continue;
            };
            if !sub.topics.contains(*name) {
                continue;
            }
            for p in partitions {
                kept.push(((*name).clone(), *topic_id, *p));
            }
        }
        let mut quota = share;
        if kept.len() > share && extra > 0 {
            quota += 1;
            extra -= 1;
        }
        for key in kept.into_iter() {
            if counts[member] >= quota {
                break;
            }
            if unassigned.remove(&key) {
                let (_, id, p) = key;
                out.get_mut(member)
                    .map(|t| t.entry(id).or_default().insert(p));
                *counts.get_mut(member).expect("member counted") += 1;
            }
        }
    }
    // Fill: each remaining partition to its least-loaded subscriber.
    for (name, id, p) in unassigned {
        let least = members
            .iter()
            .filter(|(_, s)| s.topics.contains(&name))
            .min_by_key(|(m, _)| (counts[*m], *m))
            .map(|(m, _)| m);
        if let Some(member) = least {
            out.get_mut(member)
                .map(|t| t.entry(id).or_default().insert(p));
            *counts.get_mut(member).expect("member counted") += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::consumer::records::TopicInfo;

    fn topics(spec: &[(&str, u128, i32)]) -> SubscribedMetadata {
        spec.iter()
            .map(|(n, id, p)| {
                (
                    n.to_string(),
                    TopicInfo {
                        id: Uuid::from_u128(*id),
                        partitions: *p,
                    },
                )
            })
            .collect()
    }

    fn subs<'a>(
        spec: &[(&str, &[&str])],
        previous: &'a BTreeMap<String, TopicPartitions>,
    ) -> BTreeMap<String, MemberSubscription<'a>> {
        spec.iter()
            .map(|(m, ts)| {
                (
                    m.to_string(),
                    MemberSubscription {
                        topics: ts.iter().map(|t| t.to_string()).collect(),
                        previous: previous.get(*m),
                    },
                )
            })
            .collect()
    }

    fn count(t: &TopicPartitions) -> usize {
        t.values().map(|s| s.len()).sum()
    }

    fn assert_each_partition_once(out: &BTreeMap<String, TopicPartitions>, total: usize) {
        let mut seen = BTreeSet::new();
        for tps in out.values() {
            for (id, ps) in tps {
                for p in ps {
                    assert!(seen.insert((*id, *p)), "{id}-{p} assigned twice");
                }
            }
        }
        assert_eq!(seen.len(), total);
    }

    #[test]
    fn uniform_balances_six_partitions_over_three_members() {
        let t = topics(&[("t", 1, 6)]);
        let none = BTreeMap::new();
        let out = uniform(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])], &none),
            &t,
        );
        assert!(out.values().all(|tps| count(tps) == 2), "{out:?}");
        assert_each_partition_once(&out, 6);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins_or_leaves() {
        let t = topics(&[("t", 1, 6)]);
        let none = BTreeMap::new();
        let two = uniform(&subs(&[("a", &["t"]), ("b", &["t"])], &none), &t);
        let three = uniform(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])], &two),
            &t,
        );
        for m in ["a", "b"] {
            let kept = three[m][&Uuid::from_u128(1)].is_subset(&two[m][&Uuid::from_u128(1)]);
            assert!(
                kept,
                "{m} lost partitions it could keep: {two:?} -> {three:?}"
            );
        }
        let back = uniform(&subs(&[("a", &["t"]), ("c", &["t"])], &three), &t);
        assert_each_partition_once(&back, 6);
        assert!(back.values().all(|tps| count(tps) == 3));
        for m in ["a", "c"] {
            assert!(three[m][&Uuid::from_u128(1)].is_subset(&back[m][&Uuid::from_u128(1)]));
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let t = topics(&[("x", 1, 3), ("y", 2, 3)]);
        let none = BTreeMap::new();
        let out = uniform(&subs(&[("a", &["x"]), ("b", &["x", "y"])], &none), &t);
        assert_each_partition_once(&out, 6);
        assert!(
            !out["a"].contains_key(&Uuid::from_u128(2)),
            "a is not subscribed to y"
        );
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let t = topics(&[("t", 1, 7)]);
        let none = BTreeMap::new();
        let out = range(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])], &none),
            &t,
        );
        let id = Uuid::from_u128(1);
        assert_eq!(out["a"][&id], [0, 1, 2].into());
        assert_eq!(out["b"][&id], [3, 4].into());
        assert_eq!(out["c"][&id], [5, 6].into());
        let six = topics(&[("t", 1, 6)]);
        let out = range(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])], &none),
            &six,
        );
        assert!(out.values().all(|tps| count(tps) == 2));
    }
}
