//! Which node, of which cluster, a data directory belongs to
//! (`<data_dir>/meta/node.json`, Kafka's `meta.properties`).
//!
//! Written when a node first starts in a cluster (node id) and when it
//! first learns the cluster's id. A later start with another `--node-id`
//! is refused before anything opens, and a node that finds the quorum
//! names another cluster stops: either would mix two nodes' or two
//! clusters' data. A single-node data dir has no such file, so it may
//! join a cluster (the upgrade path); one that was in a cluster keeps
//! refusing other node ids even when started without voters.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metadata::{write_json_atomically, META_DIR_NAME};

/// The identity file, in the metadata directory.
pub const NODE_FILE_NAME: &str = "node.json";
/// Exit status when the data dir belongs to another node or cluster
/// (sysexits' EX_CONFIG: systemd should not restart into the same error).
pub const EXIT_IDENTITY_MISMATCH: i32 = 78;

/// What `node.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The node id the data dir was created with.
    pub node_id: i32,
    /// The cluster it joined, once known.
    pub cluster_id: Option<String>,
}

/// The data dir belongs to another node or cluster, or its file is bad.
#[derive(thiserror::Error, Debug)]
pub enum IdentityError {
    /// Started with another node id.
    #[error(
        "data directory {dir} belongs to node {stored} (meta/{NODE_FILE_NAME}), \
         not to --node-id {wanted}: use the data dir of node {wanted}, or {stored} as node id"
    )]
    OtherNode {
        /// The data dir.
        dir: PathBuf,
        /// The id it has.
        stored: i32,
        /// The id asked for.
        wanted: i32,
    },
    /// The quorum is another cluster.
    #[error(
        "data directory {dir} belongs to cluster {stored} (meta/{NODE_FILE_NAME}), but the \
         controller quorum is cluster {found}: check --controller-quorum-voters"
    )]
    OtherCluster {
        /// The data dir.
        dir: PathBuf,
        /// The cluster it belongs to.
        stored: String,
        /// The quorum's cluster.
        found: String,
    },
    /// The file cannot be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(META_DIR_NAME).join(NODE_FILE_NAME)
}

/// The stored identity, `None` when the data dir never was in a cluster.
pub fn load(data_dir: &Path) -> Result<Option<NodeIdentity>, IdentityError> {
    let path = file_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| IdentityError::File {
                path,
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IdentityError::File {
            path,
            message: e.to_string(),
        }),
    }
}

/// At start-up: refuses another node id; in a cluster (`write`), records
/// the node id on first start. Returns the stored identity.
pub fn check_node(
    data_dir: &Path,
    node_id: i32,
    write: bool,
) -> Result<NodeIdentity, IdentityError> {
    let stored = load(data_dir)?;
    if let Some(stored) = &stored {
        if stored.node_id != node_id {
            return Err(IdentityError::OtherNode {
                dir: data_dir.to_path_buf(),
                stored: stored.node_id,
                wanted: node_id,
            });
        }
        return Ok(stored.clone());
    }
    let fresh = NodeIdentity {
        node_id,
        cluster_id: None,
    };
    if write {
        save(data_dir, &fresh)?;
    }
    Ok(fresh)
}

/// Checks the quorum's `cluster_id` against the stored one, recording it
/// when none is stored; blocking file I/O (run off the shard thread).
pub fn adopt_cluster_id(
    data_dir: &Path,
    identity: &NodeIdentity,
    cluster_id: &str,
) -> Result<Option<NodeIdentity>, IdentityError> {
    match &identity.cluster_id {
        Some(stored) if stored == cluster_id => Ok(None),
        Some(stored) => Err(IdentityError::OtherCluster {
            dir: data_dir.to_path_buf(),
            stored: stored.clone(),
            found: cluster_id.to_string(),
        }),
        None => {
            let adopted = NodeIdentity {
                node_id: identity.node_id,
                cluster_id: Some(cluster_id.to_string()),
            };
            save(data_dir, &adopted)?;
            Ok(Some(adopted))
        }
    }
}

fn save(data_dir: &Path, identity: &NodeIdentity) -> Result<(), IdentityError> {
    write_json_atomically(&data_dir.join(META_DIR_NAME), NODE_FILE_NAME, identity).map_err(|e| {
        IdentityError::File {
            path: file_path(data_dir),
            message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_refuses_another_node_id_and_another_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(META_DIR_NAME)).expect("meta dir");
        assert_eq!(load(dir.path()).expect("load"), None);
        let fresh = check_node(dir.path(), 2, true).expect("first start");
        assert!(matches!(
            check_node(dir.path(), 3, true),
            Err(IdentityError::OtherNode {
                stored: 2,
                wanted: 3,
                ..
            })
        ));
        let adopted = adopt_cluster_id(dir.path(), &fresh, "abc")
            .expect("adopt")
            .expect("recorded");
        let again = check_node(dir.path(), 2, false).expect("restart");
        assert_eq!(again, adopted);
        assert_eq!(
            adopt_cluster_id(dir.path(), &again, "abc").expect("same"),
            None
        );
        let err = adopt_cluster_id(dir.path(), &again, "xyz").expect_err("other cluster");
        assert!(err.to_string().contains("belongs to cluster abc"), "{err}");
    }
}
