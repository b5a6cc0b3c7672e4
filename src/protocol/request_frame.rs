//! A request as a client frames it: the size prefix, Kafka's request
//! header and a `kafka-protocol` body. One home for every client in the
//! project: the admin CLI, the load generator's pipelined connections and
//! the broker's own connections to other brokers (replica fetches).

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request, StrBytes};

/// Replaces `frame`'s contents with `request` at `version` under
/// `correlation_id` and `client_id`, size prefix included. The error is
/// the encoder's (a field the version cannot carry).
pub fn put_request<R: Request>(
    frame: &mut BytesMut,
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
) -> Result<(), String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    frame.clear();
    frame.put_i32(0);
    header
        .encode(frame, <R as HeaderVersion>::header_version(version))
        .and_then(|_| request.encode(frame, version))
        .map_err(|e| format!("encoding v{version}: {e}"))?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;

    #[test]
    fn put_request_api_versions_v3_frame_has_its_size_and_header() {
        let mut frame = BytesMut::from(&b"stale"[..]);
        put_request(&mut frame, &ApiVersionsRequest::default(), 3, 42, "t").expect("encodes");
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(size as usize, frame.len() - 4, "the prefix counts the rest");
        assert_eq!(&frame[4..6], &18i16.to_be_bytes(), "api key ApiVersions");
        assert_eq!(&frame[6..8], &3i16.to_be_bytes(), "api version");
        assert_eq!(&frame[8..12], &42i32.to_be_bytes(), "correlation id");
    }
}
