//! `--initial-user NAME`: the first SASL user of a fresh data directory
//! (SCRAM-SHA-512, Kafka's 4096 iterations). Its password comes from
//! `CORESTREAM_INITIAL_USER_PASSWORD` or the file named by
//! `--initial-user-password-file` (trailing newline removed), never from
//! the command line. The credential is salted on the main thread before
//! the shards start; shard 0 adds it through the metadata owner once its
//! snapshot is loaded, and only if no user exists yet, so a restart with
//! the same flags changes nothing.

use std::rc::Rc;

use tracing::info;

use super::scram::{ScramCredential, ScramMechanism, SCRAM_ITERATIONS_DEFAULT};
use crate::config::{Config, INITIAL_USER_PASSWORD_ENV};
use crate::shard::StartError;
use crate::shard::{MetaChange, Shard};

/// The initial user's name and salted credential.
pub struct InitialUser {
    name: String,
    credential: ScramCredential,
}

/// Reads the password and salts it; `None` without `--initial-user`.
pub fn credential(config: &Config) -> Result<Option<InitialUser>, StartError> {
    let Some(name) = config.security.initial_user.clone() else {
        return Ok(None);
    };
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
    let credential = ScramCredential::new(
        ScramMechanism::Sha512,
        password.as_bytes(),
        SCRAM_ITERATIONS_DEFAULT,
    )
    .map_err(|e| error(e.to_string()))?;
    Ok(Some(InitialUser { name, credential }))
}

/// Adds the user unless one exists (on shard 0, before READY).
pub async fn add(shard: &Rc<Shard>, user: InitialUser) -> Result<(), String> {
    if !shard.snapshot().users.is_empty() {
        return Ok(());
    }
    let name = user.name.clone();
    let (code, message) = shard
        .change_metadata(MetaChange::AlterScramCredentials {
            upsertions: vec![(user.name, ScramMechanism::Sha512, user.credential)],
            deletions: Vec::new(),
            only_if_no_users: true,
        })
        .await;
    if code != 0 {
        return Err(format!(
            "initial user {name} not stored (error {code}): {}",
            message.unwrap_or_default()
        ));
    }
    info!("initial user {name} added (SCRAM-SHA-512)");
    Ok(())
}
