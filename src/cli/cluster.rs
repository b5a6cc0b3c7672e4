//! `corestream cluster info`: the cluster id, the controller, every broker
//! and the API versions each one serves (kafka-broker-api-versions, plus
//! what kafka-metadata-quorum would say of a single node).

use clap::Subcommand;
use serde_json::json;

use super::client::{ClientError, Cluster};
use super::output::{render_table, Output};
use super::topics::{api_versions_of, API_VERSIONS_HEADERS};

/// Cluster commands.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers and the API versions each serves.
    Info,
}

/// Runs a cluster command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: ClusterCommand) -> Result<(), ClientError> {
    match cmd {
        ClusterCommand::Info => info(cluster, out),
    }
}

fn info(cluster: &mut Cluster, out: &Output) -> Result<(), ClientError> {
    let md = cluster.metadata(Some(&[]))?;
    let cluster_id = md.cluster_id.as_ref().map(|c| c.to_string());
    let controller = md.controller_id.0;
    let (rows, brokers) = api_versions_of(cluster, &md)?;
    if out.json {
        let answer = json!({
            "cluster_id": cluster_id, "controller_id": controller, "brokers": brokers,
        });
        println!("{answer}");
        return Ok(());
    }
    let id = cluster_id.as_deref().unwrap_or("(none)");
    println!(
        "cluster {id}, controller {controller}, {} broker(s)",
        md.brokers.len()
    );
    print!("{}", render_table(&API_VERSIONS_HEADERS, &rows));
    Ok(())
}
