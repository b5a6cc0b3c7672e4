//! The fields of a ConsumerGroupHeartbeat: Kafka's validation rules, and
//! the member metadata a heartbeat may change.

use super::*;

/// Field rules Kafka applies before anything else.
pub(super) fn validate(req: &HeartbeatIn) -> Result<(), HeartbeatError> {
    let invalid = |m: &str| Err(error(ResponseError::InvalidRequest, m));
    if req.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if req.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if let Some(a) = req.server_assignor.as_deref() {
        if !ASSIGNORS.contains(&a) {
            return Err(error(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: uniform, range."
                ),
            ));
        }
    }
    if let Some(re) = req.subscribed_topic_regex.as_deref() {
        if let Err(e) = compile_regex(re) {
            return Err(error(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {e}"),
            ));
        }
    }
    match req.member_epoch {
        0 => {
            if req.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if req.owned.as_ref().is_some_and(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        }
        STATIC_LEAVE_EPOCH if req.instance_id.is_none() => {
            return invalid("InstanceId can't be null when leaving with epoch -2.");
        }
        e if e < STATIC_LEAVE_EPOCH => return invalid(&format!("MemberEpoch {e} is invalid.")),
        _ => {}
    }
    Ok(())
}

/// What a heartbeat changed in the member's metadata.
pub(super) struct Changed {
    pub(super) any: bool,
    pub(super) subscription: bool,
}

pub(super) fn update_metadata(m: &mut ConsumerMember, req: &HeartbeatIn) -> Changed {
    let before = m.metadata.clone();
    let md = &mut m.metadata;
    if let Some(names) = &req.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        md.subscribed_topic_names = names;
    }
    if let Some(re) = &req.subscribed_topic_regex {
        md.subscribed_topic_regex = (!re.is_empty()).then(|| re.clone());
    }
    if req.rebalance_timeout_ms != -1 {
        md.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.instance_id.is_some() {
        md.instance_id = req.instance_id.clone();
    }
    if req.rack_id.is_some() {
        md.rack_id = req.rack_id.clone();
    }
    if req.server_assignor.is_some() {
        md.server_assignor = req.server_assignor.clone();
    }
    if md.client_id.is_empty() {
        md.client_id = req.client_id.clone();
        md.client_host = req.client_host.clone();
    }
    Changed {
        any: *md != before,
        subscription: md.subscribed_topic_names != before.subscribed_topic_names
            || md.subscribed_topic_regex != before.subscribed_topic_regex
            || md.server_assignor != before.server_assignor,
    }
}
