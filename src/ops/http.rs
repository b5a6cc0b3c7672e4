//! The admin port's minimal HTTP/1.1: one request per connection, read
//! with bounds, answered with Content-Length, then the connection closes.
//!
//! Why by hand: the admin port serves a handful of routes to Prometheus,
//! curl, scripts and the console on one shard's executor; an HTTP crate
//! would bring its own runtime assumptions for no gain. Every bound is a
//! named constant: the head ([`HTTP_HEAD_BYTES_MAX`]), the body
//! ([`HTTP_BODY_BYTES_MAX`], only with a Content-Length; chunked bodies are
//! refused) and the time to send both ([`HTTP_READ_TIMEOUT`]).

use std::borrow::Cow;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

/// Largest request head read, in bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Largest request body (the console's JSON for POST/PUT/DELETE), in bytes.
/// A produced message's value travels in it, so it bounds those too.
pub const HTTP_BODY_BYTES_MAX: usize = 256 * 1024;
/// Time a client has to send its request head and body.
pub const HTTP_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Headers on every answer, for the web console's sake (harmless to
/// Prometheus and curl): no MIME sniffing; no framing (a page of another
/// site cannot overlay the console's buttons); scripts, styles and fetches
/// from this origin only, so a string that slipped past the page's HTML
/// escaping still could not run inline script; no Referer leaves the page.
pub const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: DENY\r\n\
    Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n\
    Referrer-Policy: no-referrer\r\n";
/// Bytes read from the socket at a time.
const HTTP_READ_CHUNK_BYTES: usize = 4096;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Method, e.g. "GET".
    pub method: String,
    /// Path, percent-escapes still in place, without the query.
    pub path: String,
    /// Query pairs, decoded.
    pub query: Vec<(String, String)>,
    /// Header lines, names lower-cased, values trimmed, in order (bounded
    /// by [`HTTP_HEAD_BYTES_MAX`]).
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty without Content-Length).
    pub body: Vec<u8>,
}

impl Request {
    /// The first query value named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header named `name` (give it lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Status line code and reason, e.g. "200 OK".
    pub status: &'static str,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Cow<'static, [u8]>,
}

impl Response {
    /// A plain-text answer.
    pub fn text(status: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Cow::Owned(body.into().into_bytes()),
        }
    }

    /// A 200 JSON answer.
    pub fn json(value: serde_json::Value) -> Response {
        Response::json_status("200 OK", value)
    }

    /// A JSON answer with this status.
    pub fn json_status(status: &'static str, value: serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: Cow::Owned((value.to_string() + "\n").into_bytes()),
        }
    }

    /// A JSON error: `{"error": message}`.
    pub fn error(status: &'static str, message: impl Into<String>) -> Response {
        Response::json_status(status, serde_json::json!({ "error": message.into() }))
    }

    /// The whole HTTP/1.1 response, with [`SECURITY_HEADERS`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{SECURITY_HEADERS}Connection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Why a request could not be read; each maps to a 4xx answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed before a whole head arrived.
    #[error("connection closed")]
    Closed,
    /// The head is over [`HTTP_HEAD_BYTES_MAX`].
    #[error("request head over {HTTP_HEAD_BYTES_MAX} bytes")]
    HeadTooLarge,
    /// The body is over [`HTTP_BODY_BYTES_MAX`].
    #[error("request body over {HTTP_BODY_BYTES_MAX} bytes")]
    BodyTooLarge,
    /// The request line or a header does not parse.
    #[error("bad request: {0}")]
    Bad(&'static str),
    /// The socket failed (or timed out).
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// The answer to send, if any.
    pub fn response(&self) -> Option<Response> {
        match self {
            ReadError::Closed | ReadError::Io(_) => None,
            ReadError::HeadTooLarge => Some(Response::error(
                "431 Request Header Fields Too Large",
                self.to_string(),
            )),
            ReadError::BodyTooLarge => {
                Some(Response::error("413 Payload Too Large", self.to_string()))
            }
            ReadError::Bad(_) => Some(Response::error("400 Bad Request", self.to_string())),
        }
    }
}

/// Reads one request (head, then a Content-Length body) within the bounds.
pub async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    stream
        .set_read_timeout(Some(HTTP_READ_TIMEOUT))
        .map_err(|e| ReadError::Io(std::io::Error::other(e.to_string())))?;
    let mut buf = Vec::with_capacity(HTTP_READ_CHUNK_BYTES);
    let mut chunk = [0u8; HTTP_READ_CHUNK_BYTES];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() >= HTTP_HEAD_BYTES_MAX {
            return Err(ReadError::HeadTooLarge);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut request = parse_head(&buf[..head_end])?;
    let body_bytes = content_length(&buf[..head_end])?;
    if body_bytes > HTTP_BODY_BYTES_MAX {
        return Err(ReadError::BodyTooLarge);
    }
    let mut body = buf.split_off(head_end);
    while body.len() < body_bytes {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(body_bytes);
    request.body = body;
    Ok(request)
}

/// Writes `response` and closes the stream.
pub async fn write_response(stream: &mut TcpStream, response: &Response) -> std::io::Result<()> {
    stream.write_all(&response.encode()).await?;
    stream.close().await
}

fn header_lines(head: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.trim_end_matches('\r').split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
}

fn content_length(head: &[u8]) -> Result<usize, ReadError> {
    let mut length = 0;
    for (name, value) in header_lines(head) {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Bad(
                "Transfer-Encoding is not served; send Content-Length",
            ));
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| ReadError::Bad("Content-Length is not a number"))?;
        }
    }
    Ok(length)
}

/// Parses the request line and the headers the admin port uses.
pub fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let (method, target) = parse_request_line(head).ok_or(ReadError::Bad("request line"))?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect();
    let headers = header_lines(head)
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
        .collect();
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body: Vec::new(),
    })
}

/// Method and target (with its query) of an HTTP request head.
pub fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method, target))
}

/// Decodes %XX escapes of a path segment (group ids may hold any byte).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_line_parsing() {
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics?x=1"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe\r\n\r\n"), None);
    }

    #[test]
    fn http_head_parsing() {
        let head = b"POST /v1/topics?name=a%20b&x HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 12\r\n\r\n";
        let r = parse_head(head).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/topics");
        assert_eq!(r.param("name"), Some("a b"));
        assert_eq!(r.param("x"), Some(""));
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        assert_eq!(content_length(head).unwrap(), 12);
        assert!(content_length(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(content_length(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn http_response_encoding() {
        let text = String::from_utf8(Response::text("200 OK", "ok\n").encode()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\nok\n"));
    }

    #[test]
    fn http_percent_decoding() {
        assert_eq!(percent_decode("my%20group%2F1"), "my group/1");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
