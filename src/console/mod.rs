//! The web console: `/ui/` on the admin port and the JSON endpoints under
//! `/v1/` it is built on (docs/CONSOLE.md lists them; scripts use them too).
//!
//! Decisions:
//! - Served by the admin port (`ops::admin`) on shard 0, so there is
//!   nothing else to install and no extra thread. `admin_ui = false` turns
//!   every route here off; the monitoring routes stay.
//! - Every action goes through the broker's own Kafka handlers
//!   ([`kafka::call`] encodes a kafka-protocol request and hands it to
//!   `handlers::handle_frame`), so creating a topic, reading messages
//!   (the fetch path, with a byte bound), resetting offsets (the group
//!   coordinator's OffsetCommit) behave exactly as for a Kafka client.
//!   Only read-only figures the Kafka protocol lacks (bytes on disk,
//!   per-shard counters) come from the shards' metric reports.
//! - The assets are plain HTML/CSS/JavaScript with no build step, embedded
//!   with `include_str!` ([`assets`]), so the console works offline.
//! - Safety in a browser ([`guard`]): reads are `GET`, every change is a
//!   `POST` with a custom header (the CSRF defence) from the console's own
//!   origin; on a loopback listener the `Host` must be loopback (DNS
//!   rebinding); changes naming an internal topic are refused (403). The
//!   page escapes every broker-supplied string before it reaches the DOM,
//!   and the responses carry a Content-Security-Policy (`ops::http`).
//! - Access control is two layers. [`admin_token_check`], run before
//!   every console API route and the admin port's own routes (not the
//!   health and readiness probes, not the static assets), asks for a
//!   bearer token when `admin_token_file` is set: who may use the port.
//!   With `--authorizer acl`, [`access`] then decides what the console may
//!   do: it acts as `admin_ui_principal` and every route and every Kafka
//!   request it sends is checked by the broker's own authorizer, so the
//!   pages show only what that principal may see (403 naming the missing
//!   operation otherwise).

mod access;
mod assets;
mod groups;
pub mod guard;
pub mod kafka;
mod messages;
mod overview;
mod records;
mod reset;
mod topics;

use std::rc::Rc;

use crate::ops::http::{percent_decode, Request, Response};
use crate::shard::Shard;

/// Why a console request failed; each maps to an HTTP status and a JSON
/// `{"error": ...}` body.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed (bad JSON, missing or invalid field).
    #[error("{0}")]
    BadRequest(String),
    /// No such topic, partition or group.
    #[error("{0}")]
    NotFound(String),
    /// The admin token hook refused the request.
    #[error("{0}")]
    Unauthorized(String),
    /// A guard refused the request (cross-site, foreign Host, internal topic).
    #[error("{0}")]
    Forbidden(String),
    /// The ACL authorizer refused the console's principal an operation
    /// (`access`).
    #[error(
        "{principal} may not {operation} {resource_type} {resource:?} \
         (ACL authorizer; the console acts as admin_ui_principal)"
    )]
    Denied {
        /// The console's principal.
        principal: String,
        /// Kafka's name of the missing operation, e.g. "READ".
        operation: &'static str,
        /// Kafka's name of the resource type, e.g. "TOPIC".
        resource_type: &'static str,
        /// The resource's name.
        resource: String,
    },
    /// The method is not served on a console path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {name} (error code {code})")]
    Kafka {
        /// The code.
        code: i16,
        /// Its Kafka name.
        name: String,
        /// What was being done.
        context: String,
    },
    /// Encoding or decoding an internal request failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Kafka error codes that mean "not found" to an HTTP client.
const KAFKA_NOT_FOUND_CODES: &[i16] = &[3, 69, 100];
/// Kafka error codes that mean "conflict" (already exists, group not empty).
const KAFKA_CONFLICT_CODES: &[i16] = &[36, 68];
/// Kafka error codes that mean "try again" (coordinator loading or moving).
const KAFKA_UNAVAILABLE_CODES: &[i16] = &[14, 15, 16];
/// Kafka error codes that mean "refused by the authorizer": TOPIC_,
/// GROUP_, CLUSTER_ and TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
const KAFKA_FORBIDDEN_CODES: &[i16] = &[29, 30, 31, 53];

impl ConsoleError {
    fn status(&self) -> &'static str {
        match self {
            ConsoleError::BadRequest(_) => "400 Bad Request",
            ConsoleError::NotFound(_) => "404 Not Found",
            ConsoleError::Unauthorized(_) => "401 Unauthorized",
            ConsoleError::Forbidden(_) | ConsoleError::Denied { .. } => "403 Forbidden",
            ConsoleError::MethodNotAllowed(_) => "405 Method Not Allowed",
            ConsoleError::Kafka { code, .. } if KAFKA_NOT_FOUND_CODES.contains(code) => {
                "404 Not Found"
            }
            ConsoleError::Kafka { code, .. } if KAFKA_CONFLICT_CODES.contains(code) => {
                "409 Conflict"
            }
            ConsoleError::Kafka { code, .. } if KAFKA_UNAVAILABLE_CODES.contains(code) => {
                "503 Service Unavailable"
            }
            ConsoleError::Kafka { code, .. } if KAFKA_FORBIDDEN_CODES.contains(code) => {
                "403 Forbidden"
            }
            ConsoleError::Kafka { .. } => "400 Bad Request",
            ConsoleError::Internal(_) => "500 Internal Server Error",
        }
    }

    /// The JSON error answer.
    pub fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.to_string() });
        match &self {
            ConsoleError::Kafka { code, name, .. } => {
                body["kafka_error_code"] = (*code).into();
                body["kafka_error"] = name.as_str().into();
            }
            ConsoleError::Denied {
                principal,
                operation,
                resource_type,
                resource,
            } => {
                body["principal"] = principal.as_str().into();
                body["missing_operation"] = (*operation).into();
                body["resource_type"] = (*resource_type).into();
                body["resource"] = resource.as_str().into();
            }
            _ => {}
        }
        Response::json_status(self.status(), body)
    }
}

/// What a console endpoint returns.
pub type ConsoleResult = Result<serde_json::Value, ConsoleError>;

/// The admin token check every console API route and every monitoring
/// route but the probes pass (`ops::admin`): with `admin_token_file` set,
/// the request must carry `Authorization: Bearer <token>`; without it, the
/// port is guarded by listening on loopback (the default). The console's
/// static assets need no token, so the page can load and ask for it.
pub fn admin_token_check(shard: &Shard, request: &Request) -> Result<(), ConsoleError> {
    let Some(token) = &shard.config.security.admin_token else {
        return Ok(());
    };
    let presented = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if token.matches(p) => Ok(()),
        _ => Err(ConsoleError::Unauthorized(
            "this admin port requires Authorization: Bearer <token> (admin_token_file)".into(),
        )),
    }
}

/// Parses a JSON request body into `T`.
pub fn json_body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ConsoleError> {
    serde_json::from_slice(&request.body)
        .map_err(|e| ConsoleError::BadRequest(format!("request body: {e}")))
}

/// Answers a console route, or `None` when the path is not the console's
/// (the admin port then tries its own routes).
pub async fn route(shard: &Rc<Shard>, request: &Request) -> Option<Response> {
    let host_check = || guard::check_host(request, shard.config.ops.admin_listen);
    if let Some(asset) = assets::lookup(&request.path) {
        if let Err(e) = host_check() {
            return Some(e.into_response());
        }
        return Some(match request.method.as_str() {
            "GET" => asset,
            _ => Response::error("405 Method Not Allowed", "GET only"),
        });
    }
    let segments: Vec<String> = request
        .path
        .strip_prefix("/v1/")?
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if !is_console_path(&segments, request) {
        return None;
    }
    let checks = host_check()
        .and_then(|()| admin_token_check(shard, request))
        .and_then(|()| guard::check_write(request))
        .and_then(|()| match access::need(&request.method, &segments) {
            Some(need) => access::require(shard, need),
            None => Ok(()),
        });
    if let Err(e) = checks {
        return Some(e.into_response());
    }
    let result = dispatch(shard, request, &segments).await;
    Some(match result {
        Ok(value) => Response::json(value),
        Err(e) => e.into_response(),
    })
}

/// Whether the console owns this `/v1/` path (the admin port keeps
/// `/v1/health`, `/v1/ready`, `/v1/groups` without details and
/// `/v1/groups/{g}/lag`).
fn is_console_path(segments: &[&str], request: &Request) -> bool {
    match segments {
        ["overview"] | ["topics", ..] => true,
        ["groups"] => request.method != "GET" || request.param("details").is_some(),
        ["groups", _, "lag"] => request.method != "GET",
        ["groups", _, ..] => true,
        _ => false,
    }
}

async fn dispatch(shard: &Rc<Shard>, request: &Request, segments: &[&str]) -> ConsoleResult {
    let method = request.method.as_str();
    match (method, segments) {
        ("GET", ["overview"]) => overview::overview(shard).await,
        ("GET", ["topics"]) => topics::list(shard).await,
        ("POST", ["topics"]) => topics::create(shard, &json_body(request)?).await,
        ("GET", ["topics", topic]) => topics::describe(shard, topic).await,
        ("POST", ["topics", topic, "delete"]) => topics::delete(shard, topic).await,
        ("POST", ["topics", topic, "partitions"]) => {
            topics::add_partitions(shard, topic, &json_body(request)?).await
        }
        ("GET", ["topics", topic, "configs"]) => topics::configs(shard, topic).await,
        ("POST", ["topics", topic, "configs"]) => {
            topics::alter_configs(shard, topic, &json_body(request)?).await
        }
        ("POST", ["topics", topic, "empty"]) => topics::empty(shard, topic).await,
        ("GET", ["topics", topic, "messages"]) => messages::browse(shard, topic, request).await,
        ("POST", ["topics", topic, "messages"]) => {
            messages::produce(shard, topic, &json_body(request)?).await
        }
        ("GET", ["groups"]) => groups::list(shard).await,
        ("GET", ["groups", group]) => groups::describe(shard, group).await,
        ("POST", ["groups", group, "delete"]) => groups::delete(shard, group).await,
        ("POST", ["groups", group, "reset"]) => {
            reset::reset(shard, group, &json_body(request)?).await
        }
        _ => Err(ConsoleError::NotFound(format!(
            "no console endpoint {method} {}",
            request.path
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, query: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Request::default()
        }
    }

    #[test]
    fn console_path_ownership() {
        let get = req("GET", &[]);
        assert!(is_console_path(&["overview"], &get));
        assert!(is_console_path(&["topics", "a", "messages"], &get));
        assert!(!is_console_path(&["groups"], &get));
        assert!(is_console_path(
            &["groups"],
            &req("GET", &[("details", "true")])
        ));
        assert!(!is_console_path(&["groups", "g", "lag"], &get));
        assert!(is_console_path(&["groups", "g"], &get));
        assert!(!is_console_path(&["health"], &get));
    }

    #[test]
    fn console_error_statuses() {
        let e = ConsoleError::Kafka {
            code: 36,
            name: "x".into(),
            context: "c".into(),
        };
        assert_eq!(e.status(), "409 Conflict");
        assert_eq!(
            ConsoleError::BadRequest("x".into()).status(),
            "400 Bad Request"
        );
        let r = ConsoleError::NotFound("nope".into()).into_response();
        assert_eq!(r.status, "404 Not Found");
        let refused = ConsoleError::Kafka {
            code: 29,
            name: "TOPIC_AUTHORIZATION_FAILED".into(),
            context: "c".into(),
        };
        assert_eq!(refused.status(), "403 Forbidden");
        let denied = ConsoleError::Denied {
            principal: "User:console".into(),
            operation: "READ",
            resource_type: "TOPIC",
            resource: "b".into(),
        };
        assert_eq!(denied.status(), "403 Forbidden");
        assert!(denied
            .to_string()
            .contains("User:console may not READ TOPIC \"b\""));
    }
}
