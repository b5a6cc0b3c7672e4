//! ElectLeaders (key 43), v0-2 (v0 is ElectPreferredLeaders; v1 adds the
//! election type, KIP-460): forwarded to the active controller, which
//! decides each partition (`cluster::election`) and writes the elections.
//! The answer comes once they are committed; brokers learn the new
//! leaders from the next snapshot, as for any leader change.
//!
//! A single node (no controller quorum) leads every partition it has:
//! every existing partition answers ELECTION_NOT_NEEDED.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::cluster::election::ElectionType;
use crate::cluster::rpc::ElectionResult;
use crate::shard::METADATA_OWNER_SHARD;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ElectLeaders,
    min: 0,
    max: 2,
};

/// (topic, partitions) as asked; `None`: every partition.
type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// Answers ElectLeaders.
pub async fn handle(ctx: &RequestContext, request: ElectLeadersRequest) -> ElectLeadersResponse {
    // v0 has no type: it elects preferred leaders.
    let kind = if ctx.version == 0 { 0 } else { request.election_type };
    // Kafka's authorizer: ALTER on the cluster.
    if !ctx.authorize_cluster(crate::security::acl::Operation::Alter) {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if ElectionType::from_code(kind).is_none() {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    }
    let wanted: Wanted = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let results = match ctx.shard.config.cluster.enabled() {
        false => single_node(ctx, wanted),
        true => through_controller(ctx, kind, wanted).await,
    };
    ElectLeadersResponse::default().with_replica_election_results(group_by_topic(results))
}

/// A single node: existing partitions need no election.
fn single_node(ctx: &RequestContext, wanted: Wanted) -> Vec<(ElectionResult, Option<String>)> {
    let snapshot = ctx.shard.snapshot();
    let wanted = wanted.unwrap_or_else(|| {
        snapshot
            .topics
            .values()
            .map(|t| (t.name.to_string(), (0..t.partition_count()).collect()))
            .collect()
    });
    let mut results = Vec::new();
    for (topic, partitions) in wanted {
        let count = snapshot.topic(&topic).map_or(0, |t| t.partition_count());
        for partition in partitions {
            let code = match (0..count).contains(&partition) {
                true => ResponseError::ElectionNotNeeded.code(),
                false => ResponseError::UnknownTopicOrPartition.code(),
            };
            results.push((ElectionResult { topic: topic.clone(), partition, code }, None));
        }
    }
    results
}

/// A cluster: the controller decides and writes.
async fn through_controller(
    ctx: &RequestContext,
    kind: i8,
    wanted: Wanted,
) -> Vec<(ElectionResult, Option<String>)> {
    let asked = wanted.clone();
    let answer = ctx
        .shard
        .run_on(METADATA_OWNER_SHARD, move |shard| async move {
            match shard.cluster_member() {
                Some(member) => member.elect_leaders(kind, asked).await,
                None => Err("no cluster membership".to_string()),
            }
        })
        .await
        .unwrap_or_else(|| Err("shard 0 did not answer".to_string()));
    match answer {
        Ok(results) => results.into_iter().map(|r| (r, None)).collect(),
        // The controller could not be asked: every named partition says so
        // (a retriable code; with no names there is nothing to list).
        Err(e) => wanted
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(topic, partitions)| {
                let e = e.clone();
                partitions.into_iter().map(move |partition| {
                    let code = ResponseError::RequestTimedOut.code();
                    (ElectionResult { topic: topic.clone(), partition, code }, Some(e.clone()))
                })
            })
            .collect(),
    }
}

/// The response's per-topic form, topics in first-seen order.
fn group_by_topic(results: Vec<(ElectionResult, Option<String>)>) -> Vec<ReplicaElectionResult> {
    let mut grouped: Vec<ReplicaElectionResult> = Vec::new();
    for (r, message) in results {
        let message = message.or_else(|| {
            (r.code != 0)
                .then(|| ResponseError::try_from_code(r.code).map(|e| e.to_string()))
                .flatten()
        });
        let partition = PartitionResult::default()
            .with_partition_id(r.partition)
            .with_error_code(r.code)
            .with_error_message(message.map(StrBytes::from_string));
        match grouped.iter_mut().find(|g| *g.topic.0 == *r.topic) {
            Some(g) => g.partition_result.push(partition),
            None => grouped.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(r.topic)))
                    .with_partition_result(vec![partition]),
            ),
        }
    }
    grouped
}
