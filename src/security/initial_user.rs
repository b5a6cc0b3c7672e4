//! `--initial-user NAME`: the first SASL user of a fresh data directory
//! (SCRAM-SHA-512, Kafka's 4096 iterations). Its password comes from
//! `CORESTREAM_INITIAL_USER_PASSWORD` or the file named by
//! `--initial-user-password-file` (trailing newline removed), never from
//! the command line. It is added on the main thread to the metadata just
//! loaded, and written to disk, before any shard starts: so no listener
//! can accept a client before the user exists. Only when no user exists
//! yet: a restart with the same flags changes nothing.
//!
//! In a cluster the users are the controller quorum's, not the data dir's:
//! the active controller adds the initial user given to it
//! (`Controller::run_duties`) when the cluster has no user yet, as one
//! replicated `SetUsers`; every broker then has it. A broker that is not a
//! voter ignores `--initial-user` (logged). Until the user exists, SASL
//! logins (a client's or another broker's) fail and are retried.

use tracing::info;

use super::scram::{ScramCredential, ScramMechanism, SCRAM_ITERATIONS_DEFAULT};
use crate::config::{Config, INITIAL_USER_PASSWORD_ENV};
use crate::metadata::Snapshot;
use crate::shard::StartError;

/// Adds the initial user to `loaded` (and persists it) when
/// `--initial-user` is given and no user exists yet.
pub fn add(config: &Config, loaded: &mut Snapshot) -> Result<(), StartError> {
    let Some(name) = config.security.initial_user.clone() else {
        return Ok(());
    };
    if !loaded.users.is_empty() {
        return Ok(());
    }
    let credential = credential(config, &name)?;
    let mut users = (*loaded.users).clone();
    users
        .entry(name.clone())
        .or_default()
        .insert(ScramMechanism::Sha512, credential);
    *loaded = loaded.with_users(users);
    crate::metadata::save_blocking(&config.data_dir, loaded)
        .map_err(|e| StartError::InitialUser(format!("{name} not stored: {e}")))?;
    info!("initial user {name} added (SCRAM-SHA-512)");
    Ok(())
}

/// In a cluster: checks that the initial user's password can be read, so
/// a missing one fails the start as on a single node.
pub fn check_for_cluster(config: &Config) -> Result<(), StartError> {
    let Some(name) = &config.security.initial_user else {
        return Ok(());
    };
    if config.cluster.own_voter(config.node_id).is_none() {
        tracing::warn!(
            "--initial-user {name} ignored: in a cluster the controllers add the initial user"
        );
        return Ok(());
    }
    credential(config, name).map(|_| ())
}

/// The initial user and its SCRAM-SHA-512 credential, for the controller.
pub fn for_cluster(config: &Config) -> Result<Option<(String, ScramCredential)>, StartError> {
    match &config.security.initial_user {
        Some(name) => Ok(Some((name.clone(), credential(config, name)?))),
        None => Ok(None),
    }
}

/// Reads the password and salts it.
fn credential(config: &Config, name: &str) -> Result<ScramCredential, StartError> {
    let error = |m: String| StartError::InitialUser(m);
    if name.is_empty() {
        return Err(error("the user name is empty".into()));
    }
    let password = match &config.security.initial_user_password_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        None => std::env::var(INITIAL_USER_PASSWORD_ENV).map_err(|_| {
            error(format!(
                "{name}: no password (set {INITIAL_USER_PASSWORD_ENV} or --initial-user-password-file)"
            ))
        })?,
    };
    if password.is_empty() {
        return Err(error(format!("{name}: the password is empty")));
    }
    ScramCredential::new(
        ScramMechanism::Sha512,
        password.as_bytes(),
        SCRAM_ITERATIONS_DEFAULT,
    )
    .map_err(|e| error(e.to_string()))
}
