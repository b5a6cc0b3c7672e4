//! Kafka framing: size-prefixed frames, the request header, response frames.
//!
//! Every Kafka request and response is a frame: a 4-byte big-endian size,
//! then that many bytes. A request frame starts with the request header
//! (`api_key i16, api_version i16, correlation_id i32`, then from header v1
//! a nullable `client_id`, and from v2 tagged fields); the body follows.
//!
//! Decisions:
//! - [`FrameDecoder`] does no I/O: the connection loop reads into a
//!   `BytesMut` and asks for whole frames, which come out as `Bytes` sharing
//!   the read buffer (no copy). It does not reserve room for a frame whose
//!   size prefix has arrived: the 4 bytes are the client's claim, and memory
//!   for it is the connection loop's decision (it may hold a budget).
//! - A frame larger than `socket.request.max.bytes` (default
//!   [`REQUEST_BYTES_MAX_DEFAULT`]) or with a negative size is an error after
//!   which the connection is closed, as Kafka does: the stream cannot be
//!   resynchronised.
//! - [`parse_request_header`] reads the three fixed fields with plain reads
//!   before anything else, so an unknown API key or a version the codec does
//!   not know still yields a correlation id to answer with (ApiVersions
//!   negotiation depends on it). Only a known key and version are decoded
//!   further with the `kafka-protocol` crate's `RequestHeader`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Default `socket.request.max.bytes`: the largest request frame accepted (100 MiB).
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// Bytes of the size prefix in front of every frame.
pub const FRAME_SIZE_PREFIX_BYTES: usize = 4;
/// Bytes of the fixed part of every request header (key, version, correlation id).
pub const REQUEST_HEADER_FIXED_BYTES: usize = 8;
/// Largest frame the protocol can express (the size is an i32).
pub const FRAME_BYTES_MAX: usize = i32::MAX as usize;

const _: () = assert!(REQUEST_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX);

/// Why a frame could not be read or written.
#[derive(thiserror::Error, Debug)]
pub enum FrameError {
    /// The size prefix exceeds the configured maximum; close the connection.
    #[error("request frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge {
        /// Size claimed by the prefix.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The size prefix is negative; close the connection.
    #[error("request frame has a negative size prefix")]
    NegativeSize,
    /// The frame is too short for the fixed request header fields.
    #[error("request frame of {frame_bytes} bytes is too short for a request header")]
    HeaderTruncated {
        /// Length of the frame.
        frame_bytes: usize,
    },
    /// The variable part of a known request header did not decode.
    #[error("request header (api key {api_key}, version {api_version}, correlation id {correlation_id}) did not decode: {source}")]
    InvalidHeader {
        /// Raw API key.
        api_key: i16,
        /// Requested API version.
        api_version: i16,
        /// Correlation id, read before the failure.
        correlation_id: i32,
        /// What the decoder reported.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A response header or body did not encode.
    #[error("response (correlation id {correlation_id}, version {api_version}) did not encode: {source}")]
    Encode {
        /// Correlation id of the response.
        correlation_id: i32,
        /// Version the body was encoded at.
        api_version: i16,
        /// What the encoder reported.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A response larger than a frame can express.
    #[error("response of {size} bytes does not fit a Kafka frame")]
    ResponseTooLarge {
        /// Encoded size of header and body.
        size: usize,
    },
}

impl FrameError {
    /// Whether the connection must be closed (the protocol gives no way to
    /// answer): true for everything on the request side.
    pub fn closes_connection(&self) -> bool {
        !matches!(
            self,
            FrameError::Encode { .. } | FrameError::ResponseTooLarge { .. }
        )
    }
}

/// Splits whole frames off a connection's read buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    frame_bytes_max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(REQUEST_BYTES_MAX_DEFAULT)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames larger than `frame_bytes_max` (without the prefix).
    pub fn new(frame_bytes_max: usize) -> Self {
        FrameDecoder {
            frame_bytes_max: frame_bytes_max.min(FRAME_BYTES_MAX),
        }
    }

    /// The largest frame accepted, in bytes, excluding the size prefix.
    pub fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Takes the next whole frame (without its size prefix) off the front of
    /// `buf`: `Ok(None)` if more bytes are needed, leaving `buf` untouched.
    ///
    /// After an `Err` the stream is unusable: close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(frame_bytes) = self.peek_frame_bytes(buf)? else {
            return Ok(None);
        };
        if buf.len() - FRAME_SIZE_PREFIX_BYTES < frame_bytes {
            return Ok(None);
        }
        buf.advance(FRAME_SIZE_PREFIX_BYTES);
        Ok(Some(buf.split_to(frame_bytes).freeze()))
    }

    /// Size of the frame at the front of `buf`, once its prefix is there and
    /// checked: lets the reader size its next read.
    pub fn peek_frame_bytes(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..FRAME_SIZE_PREFIX_BYTES) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let Ok(size) = usize::try_from(size) else {
            return Err(FrameError::NegativeSize);
        };
        if size > self.frame_bytes_max {
            return Err(FrameError::TooLarge {
                size,
                max: self.frame_bytes_max,
            });
        }
        Ok(Some(size))
    }
}

/// The request header as far as it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedHeader {
    /// API key as sent.
    pub api_key_raw: i16,
    /// API version as sent.
    pub api_version: i16,
    /// Correlation id, to be echoed in the response.
    pub correlation_id: i32,
    /// Client id (header v1+), if the full header was decoded.
    pub client_id: Option<StrBytes>,
    /// The API, if the `kafka-protocol` crate knows the key.
    pub api_key: Option<ApiKey>,
    /// Header version decoded, `Some` only when the key is known and the
    /// version valid for it; then the frame is positioned at the body.
    /// `None`: the frame is positioned after the 8 fixed bytes and the body
    /// cannot be decoded; answer UNSUPPORTED_VERSION (or, for ApiVersions,
    /// a v0 answer listing the supported ranges).
    pub header_version: Option<i16>,
}

impl ParsedHeader {
    /// Whether the body can be decoded (known key, version valid for it).
    pub fn body_decodable(&self) -> bool {
        self.header_version.is_some()
    }

    /// The response header version for this request: the API's own for a
    /// decodable request, else 0 (ApiVersions always answers with header v0,
    /// and an error answer to an unknown version uses v0 as Kafka does).
    pub fn response_header_version(&self) -> i16 {
        match (self.api_key, self.header_version) {
            (Some(key), Some(_)) => key.response_header_version(self.api_version),
            _ => 0,
        }
    }
}

/// Reads the request header off the front of `frame`.
///
/// Reads `api_key`, `api_version` and `correlation_id` first with plain
/// reads; then, only if the API key is known to `kafka_protocol::ApiKey` and
/// the version is within its valid range, decodes the full `RequestHeader`
/// (version from `ApiKey::request_header_version`), leaving `frame`
/// positioned at the body. Otherwise `frame` is left after the fixed 8 bytes
/// and [`ParsedHeader::header_version`] is `None`.
pub fn parse_request_header(frame: &mut Bytes) -> Result<ParsedHeader, FrameError> {
    if frame.len() < REQUEST_HEADER_FIXED_BYTES {
        return Err(FrameError::HeaderTruncated {
            frame_bytes: frame.len(),
        });
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(api_key_raw).ok();
    let mut parsed = ParsedHeader {
        api_key_raw,
        api_version,
        correlation_id,
        client_id: None,
        api_key,
        header_version: None,
    };
    let Some(key) = api_key.filter(|key| version_is_valid(*key, api_version)) else {
        frame.advance(REQUEST_HEADER_FIXED_BYTES);
        return Ok(parsed);
    };
    let header_version = key.request_header_version(api_version);
    let header = RequestHeader::decode(frame, header_version).map_err(|error| {
        FrameError::InvalidHeader {
            api_key: api_key_raw,
            api_version,
            correlation_id,
            source: error.into(),
        }
    })?;
    debug_assert_eq!(header.correlation_id, correlation_id);
    parsed.client_id = header.client_id;
    parsed.header_version = Some(header_version);
    Ok(parsed)
}

fn version_is_valid(key: ApiKey, version: i16) -> bool {
    let range = key.valid_versions();
    (range.min <= version && version <= range.max) || super::legacy::is_legacy(key, version)
}

/// Encodes a whole response frame: size prefix, response header
/// (`header_version` 0: correlation id; 1: plus empty tagged fields), and
/// `body` at `version`.
pub fn encode_response(
    correlation_id: i32,
    header_version: i16,
    body: &impl Encodable,
    version: i16,
) -> Result<Bytes, FrameError> {
    let encode_error = |error: anyhow::Error| FrameError::Encode {
        correlation_id,
        api_version: version,
        source: error.into(),
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_bytes = header.compute_size(header_version).map_err(encode_error)?;
    let body_bytes = body.compute_size(version).map_err(encode_error)?;
    let frame_bytes = header_bytes + body_bytes;
    if frame_bytes > FRAME_BYTES_MAX {
        return Err(FrameError::ResponseTooLarge { size: frame_bytes });
    }
    let mut buf = BytesMut::with_capacity(FRAME_SIZE_PREFIX_BYTES + frame_bytes);
    buf.put_i32(frame_bytes as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(encode_error)?;
    body.encode(&mut buf, version).map_err(encode_error)?;
    // compute_size and encode come from the same schema: a mismatch is a bug.
    assert_eq!(
        buf.len(),
        FRAME_SIZE_PREFIX_BYTES + frame_bytes,
        "response size computed and encoded differ"
    );
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    };
    use kafka_protocol::protocol::StrBytes;

    fn frame_of(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn request_bytes(
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &impl Encodable,
    ) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test-client")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn frame_decoder_partial_size_prefix() {
        let mut decoder = FrameDecoder::default();
        let wire = frame_of(b"hello");
        let mut buf = BytesMut::from(&wire[..2]);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 2, "nothing consumed");
        buf.extend_from_slice(&wire[2..]);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn frame_decoder_partial_body() {
        let mut decoder = FrameDecoder::default();
        let wire = frame_of(&[7u8; 100]);
        let mut buf = BytesMut::new();
        for chunk in wire.chunks(9) {
            assert!(buf.is_empty() || decoder.decode(&mut buf).unwrap().is_none());
            buf.extend_from_slice(chunk);
        }
        assert_eq!(decoder.peek_frame_bytes(&buf).unwrap(), Some(100));
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &[7u8; 100][..]);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn frame_decoder_several_frames_in_one_read() {
        let mut decoder = FrameDecoder::default();
        let mut wire = frame_of(b"one");
        wire.extend(frame_of(b""));
        wire.extend(frame_of(b"three"));
        wire.extend(&frame_of(b"partial")[..6]);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &b"one"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &b""[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &b"three"[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 6);
    }

    #[test]
    fn frame_decoder_too_large() {
        let mut decoder = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&1025i32.to_be_bytes()[..]);
        match decoder.decode(&mut buf) {
            Err(
                e @ FrameError::TooLarge {
                    size: 1025,
                    max: 1024,
                },
            ) => assert!(e.closes_connection()),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let mut buf = BytesMut::from(&1024i32.to_be_bytes()[..]);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            FrameDecoder::default().decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn frame_decoder_negative_size() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::NegativeSize)
        ));
        let mut buf = BytesMut::from(&i32::MIN.to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(FrameError::NegativeSize)
        ));
    }

    #[test]
    fn request_header_v1_metadata_v4() {
        let body = MetadataRequest::default().with_allow_auto_topic_creation(true);
        let mut frame = request_bytes(ApiKey::Metadata, 4, 17, &body);
        let parsed = parse_request_header(&mut frame).unwrap();
        assert_eq!(parsed.api_key, Some(ApiKey::Metadata));
        assert_eq!(parsed.api_key_raw, 3);
        assert_eq!(parsed.api_version, 4);
        assert_eq!(parsed.correlation_id, 17);
        assert_eq!(parsed.header_version, Some(1));
        assert_eq!(parsed.client_id.as_deref(), Some("test-client"));
        assert_eq!(parsed.response_header_version(), 0);
        let decoded = MetadataRequest::decode(&mut frame, 4).unwrap();
        assert_eq!(decoded, body);
        assert!(frame.is_empty());
    }

    #[test]
    fn request_header_v2_flexible() {
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("corestream-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let mut frame = request_bytes(ApiKey::ApiVersions, 3, -5, &body);
        let parsed = parse_request_header(&mut frame).unwrap();
        assert_eq!(parsed.header_version, Some(2));
        assert_eq!(parsed.correlation_id, -5);
        assert_eq!(parsed.client_id.as_deref(), Some("test-client"));
        assert!(parsed.body_decodable());
        let decoded = ApiVersionsRequest::decode(&mut frame, 3).unwrap();
        assert_eq!(decoded, body);
        assert!(frame.is_empty());
    }

    #[test]
    fn request_header_unknown_api_key_keeps_correlation_id() {
        let mut raw = BytesMut::new();
        raw.put_i16(12_345);
        raw.put_i16(0);
        raw.put_i32(99);
        raw.put_slice(b"whatever");
        let mut frame = raw.freeze();
        let parsed = parse_request_header(&mut frame).unwrap();
        assert_eq!(parsed.api_key, None);
        assert_eq!(parsed.api_key_raw, 12_345);
        assert_eq!(parsed.correlation_id, 99);
        assert!(!parsed.body_decodable());
        assert_eq!(frame, &b"whatever"[..]);
    }

    #[test]
    fn request_header_unsupported_version_keeps_correlation_id() {
        let mut raw = BytesMut::new();
        raw.put_i16(ApiKey::ApiVersions as i16);
        raw.put_i16(99);
        raw.put_i32(7);
        raw.put_slice(&[0xff; 5]); // a future header format we cannot read
        let mut frame = raw.freeze();
        let parsed = parse_request_header(&mut frame).unwrap();
        assert_eq!(parsed.api_key, Some(ApiKey::ApiVersions));
        assert_eq!(parsed.api_version, 99);
        assert_eq!(parsed.correlation_id, 7);
        assert_eq!(parsed.header_version, None);
        assert_eq!(parsed.response_header_version(), 0);
    }

    #[test]
    fn request_header_truncated() {
        let mut frame = Bytes::from_static(&[0, 3, 0, 4, 0, 0, 0]);
        assert!(matches!(
            parse_request_header(&mut frame),
            Err(FrameError::HeaderTruncated { frame_bytes: 7 })
        ));
        // Known key and version, client id length running past the end.
        let mut frame = Bytes::from_static(&[0, 3, 0, 4, 0, 0, 0, 9, 0, 50, b'a']);
        match parse_request_header(&mut frame) {
            Err(FrameError::InvalidHeader {
                correlation_id: 9,
                api_key: 3,
                ..
            }) => {}
            other => panic!("expected InvalidHeader, got {other:?}"),
        }
    }

    #[test]
    fn encode_response_header_v0() {
        let body = ApiVersionsResponse::default().with_error_code(35);
        let frame = encode_response(0x0102_0304, 0, &body, 0).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(&frame[4..8], &[1, 2, 3, 4]);
        let mut rest = frame.slice(8..);
        assert_eq!(ApiVersionsResponse::decode(&mut rest, 0).unwrap(), body);
        assert!(rest.is_empty());
    }

    #[test]
    fn encode_response_header_v1_flexible() {
        let body = MetadataResponse::default().with_throttle_time_ms(5);
        let version = 12;
        assert_eq!(ApiKey::Metadata.response_header_version(version), 1);
        let frame = encode_response(42, 1, &body, version).unwrap();
        let mut payload = frame.slice(4..);
        assert_eq!(
            payload.len(),
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize
        );
        let header = ResponseHeader::decode(&mut payload, 1).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(&frame[8..9], &[0], "empty tagged fields");
        assert_eq!(
            MetadataResponse::decode(&mut payload, version).unwrap(),
            body
        );
        assert!(payload.is_empty());
    }
}
