//! SyncGroup: the leader hands out the assignments, the other members wait
//! for them (the second half of a rebalance; the join phase is in
//! [`super::join`], the rebalance itself in the parent module).

use super::*;

impl Group {
    /// SyncGroup: the leader's call carries every assignment.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Reply::Now(SyncResult::error(code(ResponseError::UnknownMemberId)));
        }
        if let Err(e) = self.check_member(member_id, instance, generation) {
            return Reply::Now(SyncResult::error(e));
        }
        let type_mismatch = protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref());
        let name_mismatch = protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref());
        if type_mismatch || name_mismatch {
            return Reply::Now(SyncResult::error(code(
                ResponseError::InconsistentGroupProtocol,
            )));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                Reply::Now(SyncResult::error(code(ResponseError::RebalanceInProgress)))
            }
            GroupState::Stable => {
                let member = &self.members[member_id];
                Reply::Now(self.sync_result(member.assignment.clone()))
            }
            _ if self.leader.as_deref() == Some(member_id) => {
                self.apply_assignments(assignments, now);
                let member = &self.members[member_id];
                Reply::Now(self.sync_result(member.assignment.clone()))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                let member = self.members.get_mut(member_id).expect("checked");
                member.last_seen = now;
                member.sync_waiter = Some(tx);
                Reply::Later(rx)
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// The leader's assignments: stored, handed to every waiting member,
    /// group Stable. Members the leader left out get an empty assignment.
    fn apply_assignments(&mut self, assignments: Vec<(String, Bytes)>, now: Instant) {
        for (id, assignment) in assignments {
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = assignment;
            }
        }
        self.set_state(GroupState::Stable);
        self.dirty = true;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.sync_result(self.members[&id].assignment.clone());
            if let Some(m) = self.members.get_mut(&id) {
                m.answer_sync(result, now);
            }
        }
    }
}
