//! Requests from a current member: Heartbeat, LeaveGroup, and the member
//! and generation checks they share with SyncGroup and OffsetCommit.

use super::*;

impl Group {
    /// Checks that a request comes from the current member of this
    /// generation. Static members must use their current member id.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if let Some(instance) = instance {
            if let Some(current) = self.static_members.get(instance) {
                if current != member_id {
                    return Err(code(ResponseError::FencedInstanceId));
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(code(ResponseError::UnknownMemberId));
        }
        if generation != self.generation {
            return Err(code(ResponseError::IllegalGeneration));
        }
        Ok(())
    }

    /// Heartbeat; returns the error code.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return code(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.check_member(member_id, instance, generation) {
            return e;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            _ => 0,
        }
    }

    /// LeaveGroup of one member (by member id, or by instance id when the
    /// member id is empty); returns the error code.
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>, now: Instant) -> i16 {
        let id = match (member_id.is_empty(), instance) {
            (true, Some(instance)) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return code(ResponseError::UnknownMemberId),
            },
            (false, Some(instance)) => {
                if self
                    .static_members
                    .get(instance)
                    .is_some_and(|id| id != member_id)
                {
                    return code(ResponseError::FencedInstanceId);
                }
                member_id.to_string()
            }
            _ => member_id.to_string(),
        };
        if self.pending.shift_remove(&id).is_some() {
            return 0;
        }
        if !self.members.contains_key(&id) {
            return code(ResponseError::UnknownMemberId);
        }
        self.remove_member_and_rebalance(&id, now);
        0
    }

    /// Checks an OffsetCommit against the group (Kafka's rules: an empty
    /// group takes commits with generation -1 from anyone, e.g. admin tools
    /// or assign() consumers; otherwise the current member and generation).
    pub fn check_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(code(ResponseError::RebalanceInProgress));
        }
        self.check_member(member_id, instance, generation)
    }
}
