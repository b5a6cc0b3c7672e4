//! What the console lets through, checked before an endpoint runs.
//!
//! The console changes data (creates and deletes topics, deletes records,
//! produces, moves committed offsets), and a browser will send requests to
//! `127.0.0.1:9644` on behalf of any page the operator has open. Three
//! rules keep other pages out:
//! - **Every change is a `POST`** carrying the [`CSRF_HEADER`] header
//!   (any non-empty value; the console's `api()` sends `1`). A page of
//!   another origin cannot set a custom header without a CORS preflight,
//!   and the admin port answers no preflight (`OPTIONS` is 405, and no
//!   response carries `Access-Control-Allow-*`), so a forged form post or
//!   `fetch` from elsewhere arrives without it and gets 403. `GET` never
//!   changes data. Other methods (`PUT`, `DELETE`, ...) are 405: one rule
//!   is easier to audit than a table of methods.
//! - **Same origin**: when the browser says where a change comes from
//!   (`Origin`, `Sec-Fetch-Site`), it must be this port's own origin.
//!   This is a second, independent check on the header rule.
//! - **DNS rebinding**: a page of `evil.example` whose name re-resolves to
//!   127.0.0.1 *is* same-origin to the browser. While the admin port
//!   listens on loopback, the `Host` a request names must be loopback too
//!   (`localhost`, `127.x.y.z`, `[::1]`, any port, so an SSH tunnel works);
//!   a rebound name is refused, for reads as well as changes. An operator
//!   who binds the port elsewhere has chosen who may reach it; the admin
//!   token hook (`admin_token_check`) is the guard there.
//!
//! Internal topics (`__consumer_offsets`, `__transaction_state`) hold the
//! coordinators' state: the console refuses every change that names one
//! ([`refuse_internal_topic`], 403) before a Kafka request is built, even
//! where the broker would allow a client the same change.

use std::net::{IpAddr, SocketAddr};

use super::ConsoleError;
use crate::metadata::internal_topics::{admin_refusal, is_internal_topic};
use crate::ops::http::Request;

/// The header a state-changing console request must carry (lower-case,
/// as `Request::header` looks it up).
pub const CSRF_HEADER: &str = "x-corestream-console";

/// Methods that only read.
fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// The host part of a `Host` header value (`[::1]:9644` -> `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The DNS-rebinding rule: on a loopback listener, the request's `Host`
/// must name loopback. A request without `Host` is not from a browser
/// (browsers always send it) and passes.
pub(crate) fn check_host(
    request: &Request,
    listen: Option<SocketAddr>,
) -> Result<(), ConsoleError> {
    let loopback_listener = listen.is_none_or(|a| a.ip().is_loopback());
    match request.header("host") {
        Some(host) if loopback_listener && !is_loopback_host(host) => {
            Err(ConsoleError::Forbidden(format!(
                "Host {host:?} is not loopback: the admin port listens on loopback \
             (open the console as http://127.0.0.1:PORT/ui/ or http://localhost:PORT/ui/)"
            )))
        }
        _ => Ok(()),
    }
}

/// The CSRF rules for a request that may change data: `POST` only, with
/// [`CSRF_HEADER`], from this origin when the browser names one.
pub(super) fn check_write(request: &Request) -> Result<(), ConsoleError> {
    let method = request.method.as_str();
    if is_read(method) {
        return Ok(());
    }
    if method != "POST" {
        return Err(ConsoleError::MethodNotAllowed(format!(
            "{method} is not served: console reads are GET and every change is a POST"
        )));
    }
    if request.header(CSRF_HEADER).is_none_or(str::is_empty) {
        return Err(ConsoleError::Forbidden(format!(
            "a console change needs the {CSRF_HEADER} header (cross-site request defence)"
        )));
    }
    if let Some(site) = request.header("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(ConsoleError::Forbidden(format!(
                "a console change must come from the console's own origin (Sec-Fetch-Site: {site})"
            )));
        }
    }
    if let Some(origin) = request.header("origin") {
        let own = request.header("host").map(|h| format!("http://{h}"));
        if own.as_deref() != Some(origin) {
            return Err(ConsoleError::Forbidden(format!(
                "a console change must come from the console's own origin, not {origin:?}"
            )));
        }
    }
    Ok(())
}

/// Refuses a change to an internal topic.
pub(super) fn refuse_internal_topic(operation: &str, topic: &str) -> Result<(), ConsoleError> {
    if is_internal_topic(topic) {
        return Err(ConsoleError::Forbidden(admin_refusal(operation, topic)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Request::default()
        }
    }

    #[test]
    fn guard_writes_need_post_header_and_own_origin() {
        assert!(check_write(&req("GET", &[])).is_ok());
        let e = check_write(&req("DELETE", &[(CSRF_HEADER, "1")])).unwrap_err();
        assert!(matches!(e, ConsoleError::MethodNotAllowed(_)));
        assert!(matches!(
            check_write(&req("POST", &[])),
            Err(ConsoleError::Forbidden(_))
        ));
        let host = ("host", "127.0.0.1:9644");
        assert!(check_write(&req("POST", &[(CSRF_HEADER, "1"), host])).is_ok());
        let own = ("origin", "http://127.0.0.1:9644");
        assert!(check_write(&req("POST", &[(CSRF_HEADER, "1"), host, own])).is_ok());
        let other = ("origin", "http://evil.example");
        assert!(check_write(&req("POST", &[(CSRF_HEADER, "1"), host, other])).is_err());
        let cross = ("sec-fetch-site", "cross-site");
        assert!(check_write(&req("POST", &[(CSRF_HEADER, "1"), host, cross])).is_err());
    }

    #[test]
    fn guard_host_must_be_loopback_on_a_loopback_listener() {
        let lo: Option<SocketAddr> = "127.0.0.1:9644".parse().ok();
        let any: Option<SocketAddr> = "0.0.0.0:9644".parse().ok();
        for host in [
            "127.0.0.1:9644",
            "localhost:8080",
            "[::1]:9644",
            "LOCALHOST",
        ] {
            assert!(
                check_host(&req("GET", &[("host", host)]), lo).is_ok(),
                "{host}"
            );
        }
        for host in [
            "evil.example:9644",
            "10.0.0.1:9644",
            "localhost.evil.example",
        ] {
            assert!(
                check_host(&req("GET", &[("host", host)]), lo).is_err(),
                "{host}"
            );
        }
        assert!(check_host(&req("GET", &[("host", "broker1:9644")]), any).is_ok());
        assert!(check_host(&req("GET", &[]), lo).is_ok());
    }

    #[test]
    fn guard_refuses_internal_topics() {
        assert!(refuse_internal_topic("produce to", "__consumer_offsets").is_err());
        assert!(refuse_internal_topic("produce to", "orders").is_ok());
    }
}
