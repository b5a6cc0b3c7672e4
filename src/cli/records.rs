//! `corestream records delete` (kafka-delete-records).

use clap::Subcommand;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::DeleteRecordsRequest;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::Output;
use super::topics::{topic_name, ADMIN_TIMEOUT_MS};

/// Highest DeleteRecords version this client fills in.
const DELETE_RECORDS_VERSION_MAX: i16 = 2;

/// Record commands.
#[derive(Subcommand, Debug)]
pub enum RecordsCommand {
    /// Delete a partition's records before an offset (moves its log start).
    Delete {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// First offset to keep (-1: the high watermark, i.e. delete all).
        #[arg(long, allow_negative_numbers = true)]
        before: i64,
    },
}

/// Runs a record command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: RecordsCommand) -> Result<(), ClientError> {
    match cmd {
        RecordsCommand::Delete {
            topic,
            partition,
            before,
        } => delete(cluster, out, &topic, partition, before),
    }
}

fn delete(
    cluster: &mut Cluster,
    out: &Output,
    topic: &str,
    partition: i32,
    before: i64,
) -> Result<(), ClientError> {
    if before < -1 {
        return Err(ClientError::Usage(format!(
            "--before {before}: must be an offset or -1"
        )));
    }
    let leader = cluster
        .leaders(topic)?
        .into_iter()
        .find(|(p, _)| *p == partition)
        .map(|(_, l)| l)
        .ok_or_else(|| {
            ClientError::Usage(format!("topic {topic:?} has no partition {partition}"))
        })?;
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = before;
    let mut t = DeleteRecordsTopic::default();
    t.name = topic_name(topic);
    t.partitions = vec![p];
    let mut request = DeleteRecordsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = ADMIN_TIMEOUT_MS;
    let answer = cluster
        .node(leader.0)?
        .send(&request, DELETE_RECORDS_VERSION_MAX)?;
    let mut low = -1;
    for t in &answer.topics {
        for p in &t.partitions {
            check(p.error_code, || {
                format!("deleting records of {topic}-{}", p.partition_index)
            })?;
            low = p.low_watermark;
        }
    }
    out.table(
        &["TOPIC", "PARTITION", "LOW-WATERMARK"],
        &[vec![
            topic.to_string(),
            partition.to_string(),
            low.to_string(),
        ]],
        json!({"topic": topic, "partition": partition, "low_watermark": low}),
    );
    Ok(())
}
