//! Cluster settings: the controller quorum and broker sessions.
//!
//! A node is in a cluster when `controller_quorum_voters` is set (Kafka's
//! `controller.quorum.voters`, `id@host:port,...`); without it the node is
//! the single-node broker it always was, metadata in `meta/`. A node whose
//! `node_id` is among the voters runs a controller on shard 0 and listens
//! for the quorum on `controller_listen` (default: its own voter address).

use std::net::SocketAddr;

use super::file::FileConfig;
use super::flags::Flags;
use super::*;

/// Kafka's broker.session.timeout.ms default: a broker without a heartbeat
/// this long is fenced and loses its leaderships.
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 9_000;
/// Below this a broker on a busy machine is fenced between two heartbeats.
pub const BROKER_SESSION_TIMEOUT_MS_MIN: u64 = 2_000;
/// Kafka's replica.lag.time.max.ms default: a follower that has not caught
/// up with the leader's log end for this long leaves the ISR.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: u64 = 30_000;
/// Below this a follower on a busy machine leaves the ISR between fetches.
pub const REPLICA_LAG_TIME_MAX_MS_MIN: u64 = 1_000;
/// Kafka's default.replication.factor default.
pub const DEFAULT_REPLICATION_FACTOR_DEFAULT: i16 = 1;
/// Kafka's auto.leader.rebalance.enable default.
pub const AUTO_LEADER_REBALANCE_ENABLE_DEFAULT: bool = true;
/// Kafka's leader.imbalance.check.interval.seconds default.
pub const LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT: u64 = 300;
/// Shortest imbalance check interval accepted, s (tests use it; a shorter
/// one would move leaderships back while a restarted broker catches up).
pub const LEADER_IMBALANCE_CHECK_INTERVAL_S_MIN: u64 = 1;
/// Kafka's leader.imbalance.per.broker.percentage default: the share of
/// a broker's preferred partitions that may be led elsewhere before the
/// automatic rebalance moves them back, percent.
pub const LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT: u32 = 10;
/// The largest share accepted, percent (100: never rebalance by itself,
/// since no broker can have more than all of them led elsewhere).
pub const LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_MAX: u32 = 100;
/// Voters a quorum may name; Raft quorums are small by design.
pub const CONTROLLER_VOTERS_MAX: usize = 9;

/// One voter of the controller quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// Its node id.
    pub id: i32,
    /// Its controller listener, HOST:PORT.
    pub addr: String,
}

/// Cluster settings; `voters` empty means a single node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The controller quorum.
    pub voters: Vec<Voter>,
    /// Where this node's controller listens, when it is a voter.
    pub controller_listen: Option<SocketAddr>,
    /// broker.session.timeout.ms
    pub broker_session_timeout_ms: u64,
    /// replica.lag.time.max.ms
    pub replica_lag_time_max_ms: u64,
    /// default.replication.factor: replicas of a topic created without
    /// one (CreateTopics -1, auto-creation).
    pub default_replication_factor: i16,
    /// auto.leader.rebalance.enable
    pub auto_leader_rebalance_enable: bool,
    /// leader.imbalance.check.interval.seconds
    pub leader_imbalance_check_interval_s: u64,
    /// leader.imbalance.per.broker.percentage, 0..=100.
    pub leader_imbalance_per_broker_percentage: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            voters: Vec::new(),
            controller_listen: None,
            broker_session_timeout_ms: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            replica_lag_time_max_ms: REPLICA_LAG_TIME_MAX_MS_DEFAULT,
            default_replication_factor: DEFAULT_REPLICATION_FACTOR_DEFAULT,
            auto_leader_rebalance_enable: AUTO_LEADER_REBALANCE_ENABLE_DEFAULT,
            leader_imbalance_check_interval_s: LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT,
            leader_imbalance_per_broker_percentage: LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT,
        }
    }
}

impl ClusterConfig {
    /// Whether this node is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.voters.is_empty()
    }

    /// Flags over file over defaults, validated against `node_id`.
    pub(super) fn resolve(
        flags: &Flags,
        file: &FileConfig,
        node_id: i32,
    ) -> Result<ClusterConfig, ConfigError> {
        let voters = match flags
            .controller_quorum_voters
            .as_ref()
            .or(file.controller_quorum_voters.as_ref())
        {
            Some(text) => parse_voters(text)?,
            None => Vec::new(),
        };
        let broker_session_timeout_ms = flags
            .broker_session_timeout_ms
            .or(file.broker_session_timeout_ms)
            .unwrap_or(BROKER_SESSION_TIMEOUT_MS_DEFAULT);
        if broker_session_timeout_ms < BROKER_SESSION_TIMEOUT_MS_MIN {
            return Err(invalid(
                "broker-session-timeout-ms",
                format!("{broker_session_timeout_ms} is below {BROKER_SESSION_TIMEOUT_MS_MIN}"),
            ));
        }
        let replica_lag_time_max_ms = flags
            .replica_lag_time_max_ms
            .or(file.replica_lag_time_max_ms)
            .unwrap_or(REPLICA_LAG_TIME_MAX_MS_DEFAULT);
        if replica_lag_time_max_ms < REPLICA_LAG_TIME_MAX_MS_MIN {
            return Err(invalid(
                "replica-lag-time-max-ms",
                format!("{replica_lag_time_max_ms} is below {REPLICA_LAG_TIME_MAX_MS_MIN}"),
            ));
        }
        let default_replication_factor = flags
            .default_replication_factor
            .or(file.default_replication_factor)
            .unwrap_or(DEFAULT_REPLICATION_FACTOR_DEFAULT);
        if default_replication_factor < 1 {
            return Err(invalid(
                "default-replication-factor",
                format!("{default_replication_factor} is below 1"),
            ));
        }
        let auto_leader_rebalance_enable = flags
            .auto_leader_rebalance_enable
            .or(file.auto_leader_rebalance_enable)
            .unwrap_or(AUTO_LEADER_REBALANCE_ENABLE_DEFAULT);
        let leader_imbalance_check_interval_s = flags
            .leader_imbalance_check_interval_seconds
            .or(file.leader_imbalance_check_interval_seconds)
            .unwrap_or(LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT);
        if leader_imbalance_check_interval_s < LEADER_IMBALANCE_CHECK_INTERVAL_S_MIN {
            return Err(invalid(
                "leader-imbalance-check-interval-seconds",
                format!(
                    "{leader_imbalance_check_interval_s} is below {LEADER_IMBALANCE_CHECK_INTERVAL_S_MIN}"
                ),
            ));
        }
        let leader_imbalance_per_broker_percentage = flags
            .leader_imbalance_per_broker_percentage
            .or(file.leader_imbalance_per_broker_percentage)
            .unwrap_or(LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT);
        if leader_imbalance_per_broker_percentage > LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_MAX {
            return Err(invalid(
                "leader-imbalance-per-broker-percentage",
                format!(
                    "{leader_imbalance_per_broker_percentage} is above {LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_MAX}"
                ),
            ));
        }
        let listen_text = flags
            .controller_listen
            .clone()
            .or_else(|| file.controller_listen.clone());
        let own = voters.iter().find(|v| v.id == node_id);
        let controller_listen = match (listen_text, own) {
            (Some(text), _) if voters.is_empty() => {
                return Err(invalid(
                    "controller-listen",
                    format!("{text} given without controller-quorum-voters"),
                ))
            }
            (Some(text), _) => Some(parse_addr("controller-listen", &text)?),
            (None, Some(voter)) => Some(parse_addr("controller-quorum-voters", &voter.addr)?),
            (None, None) => None,
        };
        Ok(ClusterConfig {
            voters,
            controller_listen,
            broker_session_timeout_ms,
            replica_lag_time_max_ms,
            default_replication_factor,
            auto_leader_rebalance_enable,
            leader_imbalance_check_interval_s,
            leader_imbalance_per_broker_percentage,
        })
    }

    /// This node's voter entry, when it is one.
    pub fn own_voter(&self, node_id: i32) -> Option<&Voter> {
        self.voters.iter().find(|v| v.id == node_id)
    }
}

/// `id@host:port,...`: ids unique and not negative, addresses HOST:PORT.
fn parse_voters(text: &str) -> Result<Vec<Voter>, ConfigError> {
    let bad = |message: String| invalid("controller-quorum-voters", message);
    let mut voters: Vec<Voter> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| bad(format!("{entry:?} is not id@host:port")))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| bad(format!("{id:?} in {entry:?} is not a node id")))?;
        if id < 0 {
            return Err(bad(format!("node id {id} is negative")));
        }
        split_host_port("controller-quorum-voters", addr.trim())?;
        if voters.iter().any(|v| v.id == id) {
            return Err(bad(format!("node id {id} is listed twice")));
        }
        voters.push(Voter {
            id,
            addr: addr.trim().to_string(),
        });
    }
    if voters.len() > CONTROLLER_VOTERS_MAX {
        return Err(bad(format!(
            "{} voters; at most {CONTROLLER_VOTERS_MAX}",
            voters.len()
        )));
    }
    if voters.is_empty() && !text.trim().is_empty() {
        return Err(bad(format!("{text:?} names no voter")));
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_and_reject_bad_entries() {
        let v = parse_voters("1@127.0.0.1:9093, 2@localhost:9094").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            Voter {
                id: 2,
                addr: "localhost:9094".into()
            }
        );
        for bad in ["1@h:1,1@h:2", "x@h:1", "1h:1", "-1@h:1", "1@h", ","] {
            assert!(parse_voters(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn leader_imbalance_per_broker_percentage_defaults_to_10_and_accepts_0_to_100() {
        let resolve = |percent: Option<u32>| {
            let flags = Flags {
                leader_imbalance_per_broker_percentage: percent,
                ..Flags::default()
            };
            ClusterConfig::resolve(&flags, &FileConfig::default(), 0)
        };
        assert_eq!(
            resolve(None)
                .unwrap()
                .leader_imbalance_per_broker_percentage,
            LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT
        );
        for ok in [0, 25, 100] {
            assert_eq!(
                resolve(Some(ok))
                    .unwrap()
                    .leader_imbalance_per_broker_percentage,
                ok
            );
        }
        let err = resolve(Some(101)).unwrap_err().to_string();
        assert!(
            err.contains("leader-imbalance-per-broker-percentage") && err.contains("101"),
            "{err}"
        );
    }

    #[test]
    fn controller_listen_defaults_to_own_voter_address() {
        let flags = Flags {
            controller_quorum_voters: Some("1@127.0.0.1:19093,2@127.0.0.1:19094".into()),
            ..Flags::default()
        };
        let c = ClusterConfig::resolve(&flags, &FileConfig::default(), 2).unwrap();
        assert_eq!(
            c.controller_listen,
            Some("127.0.0.1:19094".parse().unwrap())
        );
        assert_eq!(
            c.broker_session_timeout_ms,
            BROKER_SESSION_TIMEOUT_MS_DEFAULT
        );
        let broker_only = ClusterConfig::resolve(&flags, &FileConfig::default(), 3).unwrap();
        assert!(broker_only.enabled() && broker_only.controller_listen.is_none());
        let single = ClusterConfig::resolve(&Flags::default(), &FileConfig::default(), 0).unwrap();
        assert!(!single.enabled());
    }
}
