//! Joining a classic group: protocol selection, new and known members,
//! static members rejoining (JoinGroup's half of the state machine; the
//! rebalance itself is in the parent module).

use super::*;

impl Group {
    /// Protocols every member supports (all of them for an empty group).
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            candidates.retain(|c| m.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Whether a member with these protocols may join.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidate_protocols()
                .iter()
                .any(|c| protocols.iter().any(|(n, _)| n == c))
    }

    /// The protocol the most members prefer among the common ones; ties go
    /// to the one the earliest member prefers.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: IndexMap<&str, usize> = candidates.iter().map(|c| (c.as_str(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        let first_member_choice = self.members.values().next().and_then(|m| {
            m.protocols
                .iter()
                .map(|(n, _)| n.as_str())
                .find(|n| votes.get(n) == Some(&max))
        });
        first_member_choice
            .or_else(|| votes.iter().find(|(_, v)| **v == max).map(|(n, _)| *n))
            .map(str::to_string)
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    /// JoinGroup.
    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let fail = |e: ResponseError| Reply::Now(JoinResult::error(code(e), &req.member_id));
        if self.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&req.session_timeout_ms) {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            return self.join_new(req, now);
        }
        if self.pending.shift_remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, now);
        }
        let Some(member) = self.members.get(&req.member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if req.group_instance_id.is_some() && member.group_instance_id != req.group_instance_id {
            return fail(ResponseError::FencedInstanceId);
        }
        self.join_known(req, now)
    }

    fn join_new(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.rejoin_static(old_id, req, now);
            }
        }
        if self.members.len() + self.pending.len() >= GROUP_MEMBERS_MAX {
            return Reply::Now(JoinResult::error(
                code(ResponseError::GroupMaxSizeReached),
                "",
            ));
        }
        let id = Self::new_member_id(&req.client_id);
        if req.require_known_member_id && req.group_instance_id.is_none() {
            let deadline = now + Duration::from_millis(req.session_timeout_ms as u64);
            self.pending.insert(id.clone(), deadline);
            return Reply::Now(JoinResult::error(
                code(ResponseError::MemberIdRequired),
                &id,
            ));
        }
        self.add_member_and_rebalance(id, req, now)
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let initial_delay = req.initial_rebalance_delay;
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                member_id: id,
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_seen: now,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        // Only a brand-new group's delay is extended by newcomers (Kafka
        // flags new members in generation 0 only).
        let first_generation = self.generation == 0;
        match &mut self.initial_join {
            Some(initial) => initial.new_member_added |= first_generation,
            None if self.state != GroupState::PreparingRebalance => {
                self.prepare_rebalance(now, initial_delay)
            }
            None => {}
        }
        self.maybe_complete_join(now);
        Reply::Later(rx)
    }

    /// A known member joins again.
    fn join_known(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let member = self
            .members
            .get_mut(&id)
            .expect("caller checked membership");
        let unchanged = member.protocols == req.protocols;
        member.last_seen = now;
        match self.state {
            GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance if unchanged => {
                return Reply::Now(self.current_join_result(&id));
            }
            GroupState::Stable if unchanged && !is_leader => {
                return Reply::Now(self.current_join_result(&id));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {}
            GroupState::Empty | GroupState::Dead => {
                return Reply::Now(JoinResult::error(code(ResponseError::UnknownMemberId), &id));
            }
        }
        let (tx, rx) = oneshot::channel();
        let member = self
            .members
            .get_mut(&id)
            .expect("caller checked membership");
        member.protocols = req.protocols;
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(JoinResult::error(
                code(ResponseError::RebalanceInProgress),
                &id,
            ));
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, Duration::ZERO); // never Empty here
        }
        self.maybe_complete_join(now);
        Reply::Later(rx)
    }

    /// A static member (known group.instance.id) joins without a member id:
    /// it gets a new id replacing the old one (whose pending requests are
    /// fenced). In a Stable group with unchanged protocols it keeps its
    /// assignment and no rebalance happens.
    fn rejoin_static(
        &mut self,
        old_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let Some(mut member) = self.members.shift_remove(&old_id) else {
            return Reply::Now(JoinResult::error(code(ResponseError::UnknownMemberId), ""));
        };
        let fenced = code(ResponseError::FencedInstanceId);
        member.answer_join(JoinResult::error(fenced, &old_id), now);
        member.answer_sync(SyncResult::error(fenced), now);
        let new_id = Self::new_member_id(&req.client_id);
        member.member_id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        let unchanged = member.protocols == req.protocols;
        self.members.insert(new_id.clone(), member);
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.state == GroupState::Stable && unchanged {
            self.dirty = true;
            let mut result = self.current_join_result(&new_id);
            result.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
            return Reply::Now(result);
        }
        let req = JoinRequest {
            member_id: new_id,
            ..req
        };
        self.join_known(req, now)
    }

    /// The current generation as a join answer for `member_id`; the leader
    /// gets every member's metadata.
    pub(super) fn current_join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }
}
