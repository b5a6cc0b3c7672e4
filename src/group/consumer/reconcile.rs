//! Moving one member from what it owns towards its target assignment, one
//! heartbeat at a time, so that a partition is never owned by two members:
//!
//! 1. Partitions it owns but is no longer assigned are revoked first: the
//!    member keeps its epoch and state UnrevokedPartitions until a heartbeat
//!    lists owned partitions that include none of them.
//! 2. Then it moves to the assignment epoch and receives the target
//!    partitions that nobody else owns (owned counts partitions still being
//!    revoked by their previous member). Any still held elsewhere leave it
//!    UnreleasedPartitions, and a later heartbeat hands them over once freed.
//!
//! This is Kafka's CurrentAssignmentBuilder in spirit (KIP-848's
//! "reconciliation"), written from the KIP's rules.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::member::{ConsumerMember, MemberState};
use super::TopicPartitions;

/// The inputs to one reconciliation step.
pub struct Step<'a> {
    /// The group's target assignment epoch.
    pub assignment_epoch: i32,
    /// The member's target partitions.
    pub target: &'a TopicPartitions,
    /// Partitions the member says it owns (`None`: not sent in this heartbeat).
    pub owned: Option<&'a TopicPartitions>,
    /// Whether another member owns (or is still revoking) a partition.
    pub owned_elsewhere: &'a dyn Fn(&Uuid, i32) -> bool,
}

/// Whether the client may still hold any of `revoking`: unknown unless it
/// sent its owned partitions.
fn still_owns(owned: Option<&TopicPartitions>, revoking: &TopicPartitions) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    revoking.iter().any(|(topic, ps)| {
        owned
            .get(topic)
            .is_some_and(|held| ps.iter().any(|p| held.contains(p)))
    })
}

/// Applies one step to `m`; returns whether anything changed.
pub fn reconcile(m: &mut ConsumerMember, step: &Step<'_>) -> bool {
    let before = (
        m.member_epoch,
        m.state,
        m.assigned.clone(),
        m.pending_revocation.clone(),
    );
    match m.state {
        MemberState::UnrevokedPartitions => {
            if still_owns(step.owned, &m.pending_revocation) {
                // Still revoking. If the target moved on, recompute from
                // everything it may hold: what it must revoke can only
                // grow, and a partition back in its target is kept.
                if m.member_epoch < step.assignment_epoch {
                    let mut holding = m.assigned.clone();
                    merge(&mut holding, &m.pending_revocation);
                    next_assignment(m, step, &holding);
                }
            } else {
                m.pending_revocation.clear();
                let assigned = m.assigned.clone();
                next_assignment(m, step, &assigned);
            }
        }
        MemberState::Stable | MemberState::UnreleasedPartitions | MemberState::Unknown => {
            if m.member_epoch != step.assignment_epoch || m.state != MemberState::Stable {
                let assigned = m.assigned.clone();
                next_assignment(m, step, &assigned);
            }
        }
    }
    let after = (m.member_epoch, m.state, &m.assigned, &m.pending_revocation);
    (before.0, before.1, &before.2, &before.3) != after
}

fn merge(into: &mut TopicPartitions, from: &TopicPartitions) {
    for (topic, ps) in from {
        into.entry(*topic).or_default().extend(ps.iter().copied());
    }
}

/// Kafka's computeNextAssignment: keep ∩ target, revoke the rest, add the
/// free target partitions once nothing is left to revoke.
fn next_assignment(m: &mut ConsumerMember, step: &Step<'_>, current: &TopicPartitions) {
    let mut kept = TopicPartitions::new();
    let mut revoke = TopicPartitions::new();
    let mut add = TopicPartitions::new();
    let mut unreleased = false;
    let topics: BTreeSet<&Uuid> = current.keys().chain(step.target.keys()).collect();
    for topic in topics {
        let empty = BTreeSet::new();
        let target = step.target.get(topic).unwrap_or(&empty);
        let mine = current.get(topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = mine.intersection(target).copied().collect();
        let gone: BTreeSet<i32> = mine.difference(target).copied().collect();
        let mut new = BTreeSet::new();
        for p in target.difference(mine) {
            if (step.owned_elsewhere)(topic, *p) {
                unreleased = true;
            } else {
                new.insert(*p);
            }
        }
        for (set, into) in [(keep, &mut kept), (gone, &mut revoke), (new, &mut add)] {
            if !set.is_empty() {
                into.insert(*topic, set);
            }
        }
    }
    if !revoke.is_empty() && still_owns(step.owned, &revoke) {
        // Revoke first, at the current epoch.
        m.state = MemberState::UnrevokedPartitions;
        m.assigned = kept;
        m.pending_revocation = revoke;
        return;
    }
    merge(&mut kept, &add);
    m.assigned = kept;
    m.pending_revocation.clear();
    if m.member_epoch != step.assignment_epoch {
        m.previous_member_epoch = m.member_epoch;
        m.member_epoch = step.assignment_epoch;
    }
    m.state = match unreleased {
        true => MemberState::UnreleasedPartitions,
        false => MemberState::Stable,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn tps(ps: &[i32]) -> TopicPartitions {
        [(Uuid::from_u128(1), ps.iter().copied().collect())].into()
    }

    fn member(epoch: i32, owned: &[i32]) -> ConsumerMember {
        let mut m = ConsumerMember::new("m", Instant::now());
        m.member_epoch = epoch;
        m.assigned = tps(owned);
        m
    }

    #[test]
    fn revocation_comes_before_the_epoch_bump() {
        let mut m = member(1, &[0, 1, 2]);
        let target = tps(&[0, 3]);
        let nobody = |_: &Uuid, _: i32| false;
        let owned = tps(&[0, 1, 2]);
        let step = Step {
            assignment_epoch: 2,
            target: &target,
            owned: Some(&owned),
            owned_elsewhere: &nobody,
        };
        assert!(reconcile(&mut m, &step));
        assert_eq!(m.state, MemberState::UnrevokedPartitions);
        assert_eq!((m.member_epoch, &m.assigned), (1, &tps(&[0])));
        assert_eq!(m.pending_revocation, tps(&[1, 2]));
        // A heartbeat without owned partitions proves nothing.
        let blind = Step {
            owned: None,
            ..step
        };
        assert!(!reconcile(&mut m, &blind));
        // Once the client no longer owns 1 and 2: epoch 2, gets 3.
        let owned = tps(&[0]);
        let done = Step {
            owned: Some(&owned),
            ..blind
        };
        assert!(reconcile(&mut m, &done));
        assert_eq!(m.state, MemberState::Stable);
        assert_eq!((m.member_epoch, m.previous_member_epoch), (2, 1));
        assert_eq!(m.assigned, tps(&[0, 3]));
        assert!(m.pending_revocation.is_empty());
    }

    #[test]
    fn a_partition_owned_elsewhere_is_not_given_until_released() {
        let mut m = member(1, &[]);
        let target = tps(&[4, 5]);
        let held = std::cell::Cell::new(true);
        let elsewhere = |_: &Uuid, p: i32| p == 5 && held.get();
        let step = Step {
            assignment_epoch: 2,
            target: &target,
            owned: None,
            owned_elsewhere: &elsewhere,
        };
        reconcile(&mut m, &step);
        assert_eq!(m.state, MemberState::UnreleasedPartitions);
        assert_eq!((m.member_epoch, &m.assigned), (2, &tps(&[4])));
        assert!(!reconcile(&mut m, &step), "5 is still held");
        held.set(false);
        assert!(reconcile(&mut m, &step));
        assert_eq!((m.state, &m.assigned), (MemberState::Stable, &tps(&[4, 5])));
    }
}
