//! The active controller's elections (`cluster::election` decides them):
//! unclean elections of offline partitions whose topic allows them, the
//! automatic preferred-leader rebalance, and ElectLeaders from clients.
//! Each is written under the proposal lock, like every other change, so
//! it is decided on the state the previous change left.

use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::controller::Controller;
use super::election::{elect_leader, offline_unclean_elections, rebalance_elections, ElectionType};
use super::metrics::{CLEAN_LEADER_ELECTIONS, UNCLEAN_LEADER_ELECTIONS};
use super::raft::types::ClusterCommand;
use super::rpc::{BrokerResponse, ElectionResult};
use super::state::ClusterState;
use crate::metadata::topic_config::DynamicBrokerConfigs;
use crate::metadata::TopicConfig;

impl Controller {
    /// Gives every offline partition whose topic allows it an out-of-sync
    /// leader (`unclean.leader.election.enable`).
    pub(super) async fn elect_unclean(&self) {
        let _serial = self.proposals.lock().await;
        let commands = self.state_machine.read(|state| {
            let defaults = self.static_defaults.with_dynamic(&DynamicBrokerConfigs {
                broker: state.broker_configs.broker.clone(),
                cluster_default: state.broker_configs.cluster_default.clone(),
            });
            offline_unclean_elections(state, |name| {
                state.topics.get(name).is_some_and(|t| {
                    TopicConfig::resolve(&defaults, &t.configs).unclean_leader_election_enable
                })
            })
        });
        for command in commands {
            self.write_election(command).await;
        }
    }

    /// Moves leaderships back to preferred replicas (auto.leader.rebalance).
    pub(super) async fn rebalance(&self) {
        let _serial = self.proposals.lock().await;
        let percent = self.rebalance.map_or(0, |r| r.imbalance_percent);
        let commands = self
            .state_machine
            .read(|state| rebalance_elections(state, percent));
        for command in commands {
            self.write_election(command).await;
        }
    }

    /// ElectLeaders: `partitions` `None` means every partition.
    pub(super) async fn elect_leaders(
        &self,
        kind: i8,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    ) -> BrokerResponse {
        let _serial = self.proposals.lock().await;
        let Some(kind) = ElectionType::from_code(kind) else {
            return BrokerResponse::Failed {
                message: format!("unknown election type {kind}"),
            };
        };
        let wanted = partitions.unwrap_or_else(|| self.state_machine.read(all_partitions));
        let mut results = Vec::new();
        for (topic, indexes) in wanted {
            for partition in indexes {
                let decided = self
                    .state_machine
                    .read(|state| elect_leader(state, kind, &topic, partition));
                let code = match decided {
                    Ok(command) => match self.write_election(command).await {
                        true => 0,
                        // The partition moved meanwhile: ask again.
                        false => ResponseError::LeaderNotAvailable.code(),
                    },
                    Err(e) => e.code(),
                };
                results.push(ElectionResult {
                    topic: topic.clone(),
                    partition,
                    code,
                });
            }
        }
        BrokerResponse::LeadersElected { results }
    }

    /// Writes one election, logging (and counting) what it does; whether
    /// it was applied.
    async fn write_election(&self, command: ClusterCommand) -> bool {
        let ClusterCommand::ElectLeader {
            topic,
            partition,
            leader,
            unclean,
            ..
        } = &command
        else {
            return false;
        };
        let (topic, partition, leader, unclean) = (topic.clone(), *partition, *leader, *unclean);
        let lost = self.state_machine.read(|state| {
            let p = state.partition(&topic, partition)?;
            Some(p.isr.clone())
        });
        match self.write(command).await {
            Ok((_, 0)) => false,
            Ok((_, leader_epoch)) if unclean => {
                UNCLEAN_LEADER_ELECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(%topic, partition, leader, leader_epoch, old_isr = ?lost.unwrap_or_default(),
                    "unclean leader election: an out-of-sync replica leads; records only the old ISR held may be lost");
                true
            }
            Ok((_, leader_epoch)) => {
                CLEAN_LEADER_ELECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(%topic, partition, leader, leader_epoch, "leader elected");
                true
            }
            Err(e) => {
                warn!(%topic, partition, leader, "election not written: {e}");
                false
            }
        }
    }
}

/// Every partition of every topic.
fn all_partitions(state: &ClusterState) -> Vec<(String, Vec<i32>)> {
    state
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (0..t.partitions.len() as i32).collect()))
        .collect()
}
