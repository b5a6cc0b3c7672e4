//! Persistence of the metadata snapshot: `<data_dir>/meta/topics.json`.
//!
//! JSON because an operator can read it and it is tiny; it changes only on
//! topic creation, deletion, config, user, ACL and client quota changes (topic overrides are stored
//! per topic as `configs`, Kafka names to text; dynamic broker configs
//! under `broker_configs`, so they share the one durable write). It is written whole
//! (temporary file, fsync, rename, fsync of the directory) so a crash leaves
//! the old or the new version, never a mix. Loading checks every topic
//! config value, so a hand-edited bad one stops start-up naming it. Saving runs on glommio's blocking thread pool so the
//! shard thread never blocks on it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::internal_topics::{check_internal_config, is_internal_topic};
use super::snapshot::{Snapshot, TopicMeta};
use super::topic_config::{validate_topic_value, DynamicBrokerConfigs, LogDefaults, TopicConfig};

/// The metadata directory below the data directory.
pub const META_DIR_NAME: &str = "meta";
/// The topics file in it.
pub(crate) const TOPICS_FILE_NAME: &str = "topics.json";

/// A metadata file that cannot be read or written.
#[derive(thiserror::Error, Debug)]
pub enum MetadataError {
    /// I/O on a metadata file failed.
    #[error("metadata {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists but is not valid.
    #[error("metadata file {path} is not valid: {message}")]
    Invalid {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The on-disk form.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct PersistedState {
    /// Kafka cluster id.
    pub cluster_id: String,
    /// Snapshot version at the time of writing.
    pub version: u64,
    /// Topics.
    pub topics: Vec<PersistedTopic>,
    /// Dynamic broker configs (absent in files written before them).
    #[serde(default, skip_serializing_if = "PersistedBrokerConfigs::is_empty")]
    pub broker_configs: PersistedBrokerConfigs,
    /// SASL users (absent in files written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<PersistedUser>,
    /// ACLs (absent in files written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<crate::security::acl::AclBinding>,
    /// Client quotas (absent in files written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_quotas: Vec<crate::quota::PersistedQuota>,
}

/// One SASL user on disk: SCRAM credentials by mechanism name (salted and
/// iterated; never a clear password).
#[derive(Serialize, Deserialize, Debug)]
pub struct PersistedUser {
    /// User name.
    pub name: String,
    /// Credential per mechanism (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub scram: BTreeMap<String, crate::security::scram::ScramCredential>,
}

/// Dynamic broker configs on disk: broker key to validated text.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct PersistedBrokerConfigs {
    /// This broker's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker: BTreeMap<String, String>,
    /// The cluster-wide default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_default: BTreeMap<String, String>,
}

impl PersistedBrokerConfigs {
    fn is_empty(&self) -> bool {
        self.broker.is_empty() && self.cluster_default.is_empty()
    }
}

/// One topic on disk.
#[derive(Serialize, Deserialize, Debug)]
pub struct PersistedTopic {
    /// Name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Owner shard per partition.
    pub partition_shards: Vec<u16>,
    /// Topic config overrides (absent in files written before configs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, String>,
}

fn topics_path(data_dir: &Path) -> PathBuf {
    data_dir.join(META_DIR_NAME).join(TOPICS_FILE_NAME)
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> MetadataError + 'a {
    move |source| MetadataError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the snapshot at start-up (before any shard runs, so plain blocking
/// I/O is fine here). A fresh data directory gets a new cluster id. Owner
/// shards beyond the current shard count (the broker was restarted with fewer
/// `--shards`) are folded onto the existing shards.
pub fn load(data_dir: &Path, shards: usize) -> Result<Snapshot, MetadataError> {
    let path = topics_path(data_dir);
    let state: PersistedState = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MetadataError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new data directory: the cluster id is made and written now,
            // so it stays the same across restarts even before any topic.
            let fresh = PersistedState {
                cluster_id: new_cluster_id(),
                version: 0,
                topics: vec![],
                broker_configs: PersistedBrokerConfigs::default(),
                users: Vec::new(),
                acls: Vec::new(),
                client_quotas: Vec::new(),
            };
            write_atomically(&data_dir.join(META_DIR_NAME), &fresh)?;
            fresh
        }
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut snapshot = Snapshot {
        version: state.version,
        cluster_id: state.cluster_id,
        broker_configs: DynamicBrokerConfigs {
            broker: state.broker_configs.broker,
            cluster_default: state.broker_configs.cluster_default,
        },
        users: Arc::new(users_from_disk(&path, state.users)?),
        acls: Arc::new(crate::security::acl::AclIndex::new(state.acls)),
        client_quotas: Arc::new(
            crate::quota::ClientQuotas::from_persisted(&state.client_quotas).map_err(
                |message| MetadataError::Invalid {
                    path: path.clone(),
                    message,
                },
            )?,
        ),
        ..Default::default()
    };
    for t in state.topics {
        let configs = checked_configs(&path, &t.name, &t.configs)?;
        let name: Arc<str> = t.name.into();
        let partition_shards = t
            .partition_shards
            .iter()
            .map(|s| (*s as usize % shards.max(1)) as u16)
            .collect();
        snapshot.topic_ids.insert(t.id, name.clone());
        snapshot.topics.insert(
            name.clone(),
            Arc::new(TopicMeta::new(name, t.id, partition_shards, configs)),
        );
    }
    Ok(snapshot)
}

/// The config overrides of topic `topic` as read from `path`, each value
/// checked (and normalised) as AlterConfigs would: a hand-edited bad value
/// stops start-up with the file, topic, key and value named, instead of
/// aborting later where the value is parsed (`TopicConfig::resolve`). An
/// internal topic must also keep the config its coordinator relies on.
fn checked_configs(
    path: &Path,
    topic: &str,
    configs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, MetadataError> {
    let invalid = |message: String| MetadataError::Invalid {
        path: path.to_path_buf(),
        message: format!("topic {topic}: {message}"),
    };
    let mut checked = BTreeMap::new();
    for (key, value) in configs {
        let value = validate_topic_value(key, value).map_err(|e| invalid(e.message))?;
        checked.insert(key.clone(), value);
    }
    if is_internal_topic(topic) {
        let resolved = TopicConfig::resolve(&LogDefaults::default(), &checked);
        check_internal_config(topic, &resolved).map_err(invalid)?;
    }
    Ok(checked)
}

/// The users as read from `path`; an unknown mechanism stops start-up.
fn users_from_disk(
    path: &Path,
    users: Vec<PersistedUser>,
) -> Result<crate::security::ScramUsers, MetadataError> {
    use crate::security::scram::ScramMechanism;
    let mut out = crate::security::ScramUsers::new();
    for user in users {
        let mut by_mechanism = BTreeMap::new();
        for (name, credential) in user.scram {
            let mechanism =
                ScramMechanism::from_name(&name).ok_or_else(|| MetadataError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("user {}: unknown SCRAM mechanism {name}", user.name),
                })?;
            by_mechanism.insert(mechanism, credential);
        }
        out.insert(user.name, by_mechanism);
    }
    Ok(out)
}

/// Kafka cluster ids are 22-character base64 of 16 random bytes.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// Writes the snapshot durably, off the shard thread.
pub async fn save(data_dir: &Path, snapshot: &Snapshot) -> Result<(), MetadataError> {
    let state = persisted(snapshot);
    let dir = data_dir.join(META_DIR_NAME);
    glommio::executor()
        .spawn_blocking(move || write_atomically(&dir, &state))
        .await
}

/// Writes the snapshot durably on the calling thread: start-up only
/// (`--initial-user`, before the shards run).
pub fn save_blocking(data_dir: &Path, snapshot: &Snapshot) -> Result<(), MetadataError> {
    write_atomically(&data_dir.join(META_DIR_NAME), &persisted(snapshot))
}

fn persisted(snapshot: &Snapshot) -> PersistedState {
    PersistedState {
        cluster_id: snapshot.cluster_id.clone(),
        version: snapshot.version,
        topics: snapshot
            .topics
            .values()
            .map(|t| PersistedTopic {
                name: t.name.to_string(),
                id: t.id,
                partition_shards: t.partition_shards.clone(),
                configs: t.configs.clone(),
            })
            .collect(),
        broker_configs: PersistedBrokerConfigs {
            broker: snapshot.broker_configs.broker.clone(),
            cluster_default: snapshot.broker_configs.cluster_default.clone(),
        },
        users: snapshot
            .users
            .iter()
            .map(|(name, scram)| PersistedUser {
                name: name.clone(),
                scram: scram
                    .iter()
                    .map(|(m, c)| (m.name().to_string(), c.clone()))
                    .collect(),
            })
            .collect(),
        acls: snapshot.acls.bindings().cloned().collect(),
        client_quotas: snapshot.client_quotas.to_persisted(),
    }
}

fn write_atomically(dir: &Path, state: &PersistedState) -> Result<(), MetadataError> {
    write_json_atomically(dir, TOPICS_FILE_NAME, state)
}

/// Writes `value` as JSON to `dir/file_name` so that a crash leaves the old
/// or the new content, never a mix: temporary file, fsync, rename, fsync of
/// the directory. Blocking: call it at start-up or on the blocking pool.
pub fn write_json_atomically(
    dir: &Path,
    file_name: &str,
    value: &impl Serialize,
) -> Result<(), MetadataError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| MetadataError::Invalid {
        path: dir.join(file_name),
        message: e.to_string(),
    })?;
    write_bytes_atomically(dir, file_name, &bytes)
}

/// Replaces `dir/file_name` with `bytes` atomically and durably (write a
/// temporary file, fsync, rename, fsync the directory).
pub fn write_bytes_atomically(
    dir: &Path,
    file_name: &str,
    bytes: &[u8],
) -> Result<(), MetadataError> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let path = dir.join(file_name);
    let tmp = dir.join(format!("{file_name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))?;
    Ok(())
}

/// Ensures the data directory exists (start-up only).
pub fn ensure_data_dir(data_dir: &Path) -> Result<(), MetadataError> {
    std::fs::create_dir_all(data_dir.join(META_DIR_NAME))
        .map_err(io_err("create directory", data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_store_roundtrip_and_shard_fold() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(dir.path(), 2).unwrap();
        assert_eq!(s.cluster_id.len(), 22);
        assert_eq!(
            load(dir.path(), 2).unwrap().cluster_id,
            s.cluster_id,
            "cluster id must persist before any topic"
        );
        let s = s.with_topic(TopicMeta::new(
            "t".into(),
            Uuid::new_v4(),
            vec![0, 1, 2],
            BTreeMap::new(),
        ));
        write_atomically(
            &dir.path().join(META_DIR_NAME),
            &PersistedState {
                cluster_id: s.cluster_id.clone(),
                version: s.version,
                topics: vec![PersistedTopic {
                    name: "t".into(),
                    id: s.topic("t").unwrap().id,
                    partition_shards: vec![0, 1, 2],
                    configs: [("retention.ms".to_string(), "1000".to_string())].into(),
                }],
                broker_configs: PersistedBrokerConfigs {
                    broker: [("log.retention.ms".to_string(), "5000".to_string())].into(),
                    cluster_default: BTreeMap::new(),
                },
                users: Vec::new(),
                acls: Vec::new(),
                client_quotas: Vec::new(),
            },
        )
        .unwrap();
        let back = load(dir.path(), 2).unwrap();
        assert_eq!(back.cluster_id, s.cluster_id);
        assert_eq!(back.topic("t").unwrap().partition_shards, vec![0, 1, 0]);
        assert_eq!(back.topic("t").unwrap().configs["retention.ms"], "1000");
        assert_eq!(back.broker_configs.broker["log.retention.ms"], "5000");
        assert!(back.broker_configs.cluster_default.is_empty());
    }

    #[test]
    fn metadata_store_client_quotas_persist_and_are_checked_at_load() {
        use crate::quota::{ClientQuotas, EntityName, QuotaEntity, QuotaType};
        let dir = tempfile::tempdir().unwrap();
        let s = load(dir.path(), 1).unwrap();
        let mut quotas = ClientQuotas::default();
        let entity = QuotaEntity {
            user: Some(EntityName::Name("alice".into())),
            client_id: Some(EntityName::Default),
        };
        quotas.set(&entity, QuotaType::Fetch, Some(2048.0));
        save_blocking(dir.path(), &s.with_client_quotas(quotas.clone())).unwrap();
        assert_eq!(*load(dir.path(), 1).unwrap().client_quotas, quotas);
        let text = std::fs::read_to_string(topics_path(dir.path())).unwrap();
        std::fs::write(
            topics_path(dir.path()),
            text.replace("consumer_byte_rate", "no_such_quota"),
        )
        .unwrap();
        let message = load(dir.path(), 1).unwrap_err().to_string();
        assert!(
            message.contains("users/alice/clients/<default>"),
            "{message}"
        );
    }

    #[test]
    fn metadata_store_corrupt_file_is_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(META_DIR_NAME)).unwrap();
        std::fs::write(topics_path(dir.path()), b"{not json").unwrap();
        assert!(matches!(
            load(dir.path(), 1),
            Err(MetadataError::Invalid { .. })
        ));
    }

    fn write_one_topic(dir: &Path, name: &str, configs: &[(&str, &str)]) {
        let state = PersistedState {
            cluster_id: "c".into(),
            version: 1,
            broker_configs: Default::default(),
            topics: vec![PersistedTopic {
                name: name.into(),
                id: Uuid::new_v4(),
                partition_shards: vec![0],
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }],
            users: Vec::new(),
            acls: Vec::new(),
            client_quotas: Vec::new(),
        };
        write_atomically(&dir.join(META_DIR_NAME), &state).unwrap();
    }

    #[test]
    fn metadata_store_bad_config_value_is_error_naming_topic_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        write_one_topic(dir.path(), "orders", &[("retention.ms", "soon")]);
        let message = load(dir.path(), 1).unwrap_err().to_string();
        for part in ["topics.json", "orders", "retention.ms", "soon"] {
            assert!(message.contains(part), "{part:?} missing in: {message}");
        }
        write_one_topic(dir.path(), "orders", &[("no.such.key", "1")]);
        assert!(load(dir.path(), 1).is_err());
    }

    #[test]
    fn metadata_store_config_values_are_normalised() {
        let dir = tempfile::tempdir().unwrap();
        write_one_topic(dir.path(), "t", &[("retention.ms", " 1000 ")]);
        let back = load(dir.path(), 1).unwrap();
        assert_eq!(back.topic("t").unwrap().configs["retention.ms"], "1000");
    }

    #[test]
    fn metadata_store_internal_topic_must_stay_compacted() {
        let dir = tempfile::tempdir().unwrap();
        write_one_topic(
            dir.path(),
            "__consumer_offsets",
            &[("cleanup.policy", "delete")],
        );
        assert!(load(dir.path(), 1).is_err());
        write_one_topic(
            dir.path(),
            "__consumer_offsets",
            &[("cleanup.policy", "compact")],
        );
        assert!(load(dir.path(), 1).is_ok());
    }
}
