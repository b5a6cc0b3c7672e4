//! Request path: framing, header, then `RequestKind::decode` for whatever
//! API key and version the header names (every key/version the codec knows).
//! Runs with `BrokerAllocator` installed, as the broker does, so lying array
//! counts must come back as errors, not aborts.
#![no_main]

use bytes::{Bytes, BytesMut};
use corestream_fuzz::alloc::BrokerAllocator;
use corestream_fuzz::protocol::frame::{parse_request_header, FrameDecoder};
use corestream_fuzz::protocol::legacy;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: BrokerAllocator = BrokerAllocator;

/// Frames larger than this are refused, as `socket.request.max.bytes` would.
const FUZZ_FRAME_BYTES_MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // The input as a connection's byte stream, possibly several frames.
    let mut stream = BytesMut::from(data);
    let mut decoder = FrameDecoder::new(FUZZ_FRAME_BYTES_MAX);
    while let Ok(Some(frame)) = decoder.decode(&mut stream) {
        decode_request(frame);
    }
    // The input as one frame body, so mutations need not keep the prefix right.
    decode_request(Bytes::copy_from_slice(data));
});

fn decode_request(mut frame: Bytes) {
    let frame_len = frame.len();
    let Ok(header) = parse_request_header(&mut frame) else {
        return;
    };
    assert!(frame.len() <= frame_len);
    let Some(api_key) = header.api_key.filter(|_| header.body_decodable()) else {
        return;
    };
    if legacy::is_legacy(api_key, header.api_version) {
        decode_legacy(api_key, &mut frame, header.api_version);
        return;
    }
    let _ = RequestKind::decode(api_key, &mut frame, header.api_version);
}

/// The versions the crate does not carry, as `handlers::legacy` decodes them.
fn decode_legacy(api_key: ApiKey, body: &mut Bytes, version: i16) {
    match api_key {
        ApiKey::ListOffsets => {
            if let Ok(request) = legacy::list_offsets::ListOffsetsRequestV0::decode(body, version) {
                let _ = request.to_current();
            }
        }
        ApiKey::OffsetCommit => {
            if let Ok(request) =
                legacy::offset_commit::OffsetCommitRequestV0V1::decode(body, version)
            {
                let _ = request.to_current();
            }
        }
        ApiKey::OffsetFetch => {
            let _ = legacy::offset_fetch::OffsetFetchRequestV0::decode(body, version);
        }
        ApiKey::CreateTopics => {
            let _ = legacy::create_topics::CreateTopicsRequestV0V1::decode(body, version);
        }
        ApiKey::DeleteTopics => {
            let _ = legacy::delete_topics::DeleteTopicsRequestV0::decode(body, version);
        }
        ApiKey::DescribeConfigs => {
            let _ = legacy::describe_configs::DescribeConfigsRequestV0::decode(body, version);
        }
        _ => {}
    }
}
