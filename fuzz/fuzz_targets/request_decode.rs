//! Request path: framing, header, then `RequestKind::decode` for whatever
//! API key and version the header names (every key/version the codec knows).
//! Runs with `BrokerAllocator` installed, as the broker does, so lying array
//! counts must come back as errors, not aborts.
#![no_main]

use bytes::{Bytes, BytesMut};
use corestream_fuzz::alloc::BrokerAllocator;
use corestream_fuzz::protocol::frame::{parse_request_header, FrameDecoder};
use kafka_protocol::messages::RequestKind;
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
    let _ = RequestKind::decode(api_key, &mut frame, header.api_version);
}
