//! Cluster metadata: topics, their partitions and the shard that owns each.
//!
//! Every shard holds the current [`Snapshot`] behind an `Arc` and reads it
//! without waiting. Changes (create/delete topics, add partitions) are made by
//! one metadata owner, shard 0, which persists the new state to
//! `<data_dir>/meta/topics.json` (write to a temporary file, fsync, rename,
//! fsync the directory) and only then broadcasts the new snapshot to every
//! shard. A shard applies a snapshot by opening the partitions it now owns and
//! removing the ones that are gone, and acknowledges; the change is answered
//! to the client after every shard acknowledged, so a topic that CreateTopics
//! reported is ready to take produce requests on every shard.
//!
//! Topic configs (`retention.ms`, `cleanup.policy`, ...) are part of the
//! snapshot: [`topic_config`] has the keys, defaults, broker synonyms and
//! validation; a change goes through the metadata owner like any other.

pub mod cluster_view;
pub mod internal_topics;
mod snapshot;
mod store;
pub mod topic_config;
mod topic_name;

pub use cluster_view::{
    BrokerEndpoint, BrokerInfo, ClusterView, PartitionLocation, PartitionState, Placement,
    NO_LEADER, REMOTE_SHARD,
};
pub use internal_topics::{is_internal_topic, INTERNAL_TOPICS};
pub use snapshot::{PartitionId, ResolvedConfig, Snapshot, TopicMeta, SINGLE_NODE_LEADER_EPOCH};
pub use store::{
    ensure_data_dir, load, new_cluster_id, save, save_blocking, write_bytes_atomically,
    write_json_atomically, MetadataError, PersistedState, META_DIR_NAME,
};
pub use topic_config::{LogDefaults, TopicConfig};
pub use topic_name::{validate_topic_name, TOPIC_NAME_LEN_MAX};
