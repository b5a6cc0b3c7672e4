//! Rendering fetched records for the message browser: key, value and
//! headers decoded as UTF-8 text, pretty JSON or hex, and the text filters.
//! Pure functions over bytes, tested below.

use bytes::Bytes;
use kafka_protocol::records::Record;
use serde_json::{json, Value};

use super::ConsoleError;

/// Bytes of a key or value shown at most; longer ones are cut (and
/// flagged `truncated`), so one huge record cannot make a huge page.
pub(super) const SHOWN_BYTES_MAX: usize = 64 * 1024;

/// How the browser shows key, value and header bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decode {
    /// UTF-8 text (invalid sequences replaced).
    Utf8,
    /// Pretty-printed JSON when the bytes parse as JSON, text otherwise.
    Json,
    /// Lower-case hex.
    Hex,
}

impl Decode {
    /// Parses the `decode` query parameter (default UTF-8).
    pub(super) fn parse(text: Option<&str>) -> Result<Decode, ConsoleError> {
        match text.unwrap_or("utf8") {
            "utf8" | "text" => Ok(Decode::Utf8),
            "json" => Ok(Decode::Json),
            "hex" => Ok(Decode::Hex),
            other => Err(ConsoleError::BadRequest(format!(
                "decode {other:?}: expected utf8, json or hex"
            ))),
        }
    }
}

/// Text filters: a record is kept when every given filter's text occurs
/// (case-insensitively) in the key, the value, or a header name or value.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    /// Text the key must contain.
    pub(super) key: Option<String>,
    /// Text the value must contain.
    pub(super) value: Option<String>,
    /// Text a header (name or value) must contain.
    pub(super) header: Option<String>,
}

fn contains(bytes: Option<&Bytes>, needle: &str) -> bool {
    bytes.is_some_and(|b| {
        String::from_utf8_lossy(b)
            .to_lowercase()
            .contains(&needle.to_lowercase())
    })
}

impl Filters {
    /// Whether `record` passes.
    pub(super) fn keep(&self, record: &Record) -> bool {
        let key = self
            .key
            .as_deref()
            .is_none_or(|k| contains(record.key.as_ref(), k));
        let value = self
            .value
            .as_deref()
            .is_none_or(|v| contains(record.value.as_ref(), v));
        let header = self.header.as_deref().is_none_or(|h| {
            let lower = h.to_lowercase();
            record.headers.iter().any(|(name, value)| {
                name.as_str().to_lowercase().contains(&lower) || contains(value.as_ref(), h)
            })
        });
        key && value && header
    }

    /// True when no filter is set.
    pub(super) fn is_empty(&self) -> bool {
        self.key.is_none() && self.value.is_none() && self.header.is_none()
    }
}

/// `bytes` rendered as `decode` says: `null` for a null key or value.
pub(super) fn render(bytes: Option<&Bytes>, decode: Decode) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES_MAX)];
    match decode {
        Decode::Hex => Value::String(shown.iter().map(|b| format!("{b:02x}")).collect()),
        Decode::Utf8 => Value::String(String::from_utf8_lossy(shown).into_owned()),
        Decode::Json => match std::str::from_utf8(shown) {
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                Value::String(pretty_json(text))
            }
            _ => Value::String(String::from_utf8_lossy(shown).into_owned()),
        },
    }
}

/// Re-indents valid JSON `text` (two spaces, `": "`), keeping its keys in
/// the producer's order and its numbers as written: parsing into a
/// `serde_json::Value` would sort object keys and reformat numbers, and
/// the browser must show what was produced.
fn pretty_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|&n| n == '}' || n == ']') {
                    out.extend(chars.next());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// One record as the browser shows it.
pub(super) fn record_json(partition: i32, record: &Record, decode: Decode) -> Value {
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|(name, value)| json!({ "key": name.as_str(), "value": render(value.as_ref(), decode) }))
        .collect();
    let is_json = record
        .value
        .as_ref()
        .is_some_and(|v| serde_json::from_slice::<Value>(v).is_ok());
    json!({
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": render(record.key.as_ref(), decode),
        "value": render(record.value.as_ref(), decode),
        "headers": headers,
        "key_bytes": record.key.as_ref().map_or(0, |k| k.len()),
        "value_bytes": record.value.as_ref().map_or(0, |v| v.len()),
        "value_is_json": is_json,
        "truncated": record.value.as_ref().is_some_and(|v| v.len() > SHOWN_BYTES_MAX)
            || record.key.as_ref().is_some_and(|k| k.len() > SHOWN_BYTES_MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str, header: (&str, &str)) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 7,
            sequence: -1,
            timestamp: 1000,
            key: Some(Bytes::from(key.to_string())),
            value: Some(Bytes::from(value.to_string())),
            headers: [(
                kafka_protocol::protocol::StrBytes::from_string(header.0.into()),
                Some(Bytes::from(header.1.to_string())),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn records_render_each_decoding() {
        let b = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(render(Some(&b), Decode::Utf8), json!("{\"a\":1}"));
        assert_eq!(render(Some(&b), Decode::Json), json!("{\n  \"a\": 1\n}"));
        let nested = Bytes::from_static(b" {\"z\": [1, {}, []], \"a\" :\"x,\\\"{\",\"n\":1.50} ");
        assert_eq!(
            render(Some(&nested), Decode::Json),
            json!("{\n  \"z\": [\n    1,\n    {},\n    []\n  ],\n  \"a\": \"x,\\\"{\",\n  \"n\": 1.50\n}")
        );
        assert_eq!(
            render(Some(&Bytes::from_static(b"\x00\xff")), Decode::Hex),
            json!("00ff")
        );
        assert_eq!(render(None, Decode::Utf8), Value::Null);
        assert!(Decode::parse(Some("xml")).is_err());
    }

    #[test]
    fn records_filters_match_text() {
        let r = record("user-1", "{\"v\":42}", ("trace", "abc"));
        let f = |k: Option<&str>, v: Option<&str>, h: Option<&str>| Filters {
            key: k.map(Into::into),
            value: v.map(Into::into),
            header: h.map(Into::into),
        };
        assert!(f(Some("USER"), None, None).keep(&r));
        assert!(f(None, Some("42"), Some("trace")).keep(&r));
        assert!(f(None, None, Some("ABC")).keep(&r));
        assert!(!f(Some("user-2"), None, None).keep(&r));
        let row = record_json(0, &r, Decode::Utf8);
        assert_eq!(row["headers"][0]["key"], "trace");
        assert_eq!(row["value_is_json"], true);
    }
}
