//! The little of Kafka's consumer protocol (the bytes consumers put in
//! JoinGroup metadata) the broker reads: the subscribed topics, for
//! OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC check. Assignments and user data
//! are passed through untouched so every client assignor works.
//!
//! ConsumerProtocolSubscription, every version: int16 version, then an
//! int32-counted array of int16-length topic names (never flexible).

use std::collections::HashSet;

/// Topics named in a subscription; empty if it does not parse.
pub fn subscription_topics(metadata: &[u8]) -> HashSet<String> {
    parse(metadata).unwrap_or_default()
}

fn parse(mut buf: &[u8]) -> Option<HashSet<String>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (buf.get(..n)?, buf.get(n..)?);
        buf = rest;
        Some(head)
    };
    let _version = take(2)?;
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut topics = HashSet::new();
    for _ in 0..count.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = take(usize::try_from(len).ok()?)?;
        topics.insert(String::from_utf8_lossy(name).into_owned());
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_topics_parse_and_garbage_is_empty() {
        let mut b = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        b.extend_from_slice(&[0, 0, 0, 0]); // user data
        let topics = subscription_topics(&b);
        assert_eq!(topics, ["a", "bc"].iter().map(|s| s.to_string()).collect());
        assert!(subscription_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty());
        assert!(subscription_topics(&[]).is_empty());
    }
}
