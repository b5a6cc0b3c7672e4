//! `corestream users list | set NAME --mechanism M --password-file F |
//! delete NAME`: SASL/SCRAM users through DescribeUserScramCredentials and
//! AlterUserScramCredentials, so it works against Kafka too (the
//! equivalent of `kafka-configs.sh --entity-type users`). The password is
//! read from a file (trailing newline removed), never from the command
//! line; the client salts it (4096 iterations by default) and sends only
//! the salted password, as Kafka's admin client does.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Subcommand;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::{render_table, Output};
use crate::security::scram::{
    random_bytes, salt_password, ScramMechanism, SCRAM_ITERATIONS_DEFAULT, SCRAM_SALT_BYTES,
};

/// Highest DescribeUserScramCredentials / AlterUserScramCredentials version.
const SCRAM_ADMIN_VERSION_MAX: i16 = 0;

/// User commands.
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Every user with its SCRAM mechanisms and iterations.
    List,
    /// Create a user or change its password for one mechanism.
    Set {
        /// User name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// File holding the password.
        #[arg(long)]
        password_file: PathBuf,
        /// PBKDF2 iterations (4096..=16384).
        #[arg(long, default_value_t = SCRAM_ITERATIONS_DEFAULT)]
        iterations: u32,
    },
    /// Delete a user (every mechanism, or only `--mechanism`).
    Delete {
        /// User name.
        name: String,
        /// Only this mechanism.
        #[arg(long)]
        mechanism: Option<String>,
    },
}

/// Runs a users command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: UsersCommand) -> Result<(), ClientError> {
    match cmd {
        UsersCommand::List => list(cluster, out),
        UsersCommand::Set {
            name,
            mechanism,
            password_file,
            iterations,
        } => set(cluster, &name, &mechanism, &password_file, iterations),
        UsersCommand::Delete { name, mechanism } => delete(cluster, &name, mechanism.as_deref()),
    }
}

fn mechanism(name: &str) -> Result<ScramMechanism, ClientError> {
    ScramMechanism::from_name(name).ok_or_else(|| {
        ClientError::Usage(format!(
            "unknown mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512"
        ))
    })
}

/// (user, mechanism, iterations) of every user, or of `names`.
fn describe(
    cluster: &mut Cluster,
    names: Option<&[&str]>,
) -> Result<Vec<(String, ScramMechanism, i32)>, ClientError> {
    let users = names.map(|n| {
        n.iter()
            .map(|u| UserName::default().with_name(StrBytes::from_string(u.to_string())))
            .collect()
    });
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let answer = cluster.bootstrap.send(&request, SCRAM_ADMIN_VERSION_MAX)?;
    check(answer.error_code, || "describing users".into())?;
    let mut rows = Vec::new();
    for result in answer.results {
        check(result.error_code, || {
            format!("describing user {}", result.user.as_str())
        })?;
        for info in result.credential_infos {
            if let Some(m) = ScramMechanism::from_kafka_type(info.mechanism) {
                rows.push((result.user.to_string(), m, info.iterations));
            }
        }
    }
    Ok(rows)
}

fn list(cluster: &mut Cluster, out: &Output) -> Result<(), ClientError> {
    let rows = describe(cluster, None)?;
    if out.json {
        let users: Vec<_> = rows
            .iter()
            .map(|(u, m, i)| json!({"user": u, "mechanism": m.name(), "iterations": i}))
            .collect();
        println!("{}", json!({ "users": users }));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(u, m, i)| vec![u, m.name().to_string(), i.to_string()])
        .collect();
    print!(
        "{}",
        render_table(&["USER", "MECHANISM", "ITERATIONS"], &table)
    );
    Ok(())
}

fn set(
    cluster: &mut Cluster,
    name: &str,
    mechanism_name: &str,
    password_file: &std::path::Path,
    iterations: u32,
) -> Result<(), ClientError> {
    let m = mechanism(mechanism_name)?;
    let password = std::fs::read_to_string(password_file)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", password_file.display())))?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(ClientError::Usage("the password file is empty".into()));
    }
    let mut salt = vec![0u8; SCRAM_SALT_BYTES];
    random_bytes(&mut salt).map_err(|e| ClientError::Usage(e.to_string()))?;
    let salted = salt_password(m, password.as_bytes(), &salt, iterations)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_mechanism(m.kafka_type())
        .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
    alter(cluster, request, name)?;
    println!("user {name}: {} set", m.name());
    Ok(())
}

fn delete(cluster: &mut Cluster, name: &str, only: Option<&str>) -> Result<(), ClientError> {
    let mechanisms = match only {
        Some(m) => vec![mechanism(m)?],
        None => describe(cluster, Some(&[name]))?
            .into_iter()
            .map(|(_, m, _)| m)
            .collect(),
    };
    let deletions = mechanisms
        .iter()
        .map(|m| {
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(name.to_string()))
                .with_mechanism(m.kafka_type())
        })
        .collect();
    let request = AlterUserScramCredentialsRequest::default().with_deletions(deletions);
    alter(cluster, request, name)?;
    println!("user {name}: deleted");
    Ok(())
}

fn alter(
    cluster: &mut Cluster,
    request: AlterUserScramCredentialsRequest,
    name: &str,
) -> Result<(), ClientError> {
    let answer = cluster.bootstrap.send(&request, SCRAM_ADMIN_VERSION_MAX)?;
    for result in answer.results {
        let message = result.error_message.as_ref().map(|m| m.to_string());
        check(result.error_code, || {
            format!("altering user {name}: {}", message.unwrap_or_default())
        })?;
    }
    Ok(())
}
