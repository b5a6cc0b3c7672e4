//! A request whose array claims 2^31 elements must fail to decode, not abort
//! the process, once [`BrokerAllocator`] is the global allocator.
//!
//! Without it, `kafka-protocol`'s `Vec::with_capacity(count)` asks glibc for
//! hundreds of GB, the kernel's overcommit heuristic refuses, and Rust aborts
//! (run this file with the `#[global_allocator]` line removed to see it).

use bytes::{BufMut, Bytes, BytesMut};
use corestream::alloc::{BrokerAllocator, HUGE_ALLOC_BYTES};
use corestream::protocol::frame::parse_request_header;
use kafka_protocol::messages::{ApiKey, MetadataRequest, ProduceRequest};
use kafka_protocol::protocol::Decodable;

#[global_allocator]
static ALLOCATOR: BrokerAllocator = BrokerAllocator;

#[test]
fn metadata_v0_topics_claiming_i32_max_is_an_error() {
    let mut body = BytesMut::new();
    body.put_i32(i32::MAX); // topics: i32::MAX entries follow (they do not)
    body.put_slice(&[0, 3, b'a']); // a first topic name, cut short
    let claimed = i32::MAX as usize
        * std::mem::size_of::<kafka_protocol::messages::metadata_request::MetadataRequestTopic>();
    assert!(
        claimed >= HUGE_ALLOC_BYTES,
        "the test must hit the huge path"
    );
    let result = MetadataRequest::decode(&mut body.freeze(), 0);
    assert!(result.is_err(), "decode of a lying array must fail");
}

#[test]
fn whole_frame_with_lying_array_is_an_error() {
    // A 20-byte Metadata v1 request: header with null client id, topics i32::MAX.
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(1);
    frame.put_i32(77);
    frame.put_i16(-1); // client_id: null
    frame.put_i32(i32::MAX);
    let mut frame: Bytes = frame.freeze();
    let header = parse_request_header(&mut frame).unwrap();
    assert_eq!(header.correlation_id, 77);
    assert!(MetadataRequest::decode(&mut frame, 1).is_err());
}

#[test]
fn nested_lying_arrays_are_errors_repeatedly() {
    // Produce v3: transactional_id null, acks, timeout, topics i32::MAX.
    for _ in 0..1_000 {
        let mut body = BytesMut::new();
        body.put_i16(-1);
        body.put_i16(1);
        body.put_i32(1000);
        body.put_i32(i32::MAX);
        body.put_i16(1);
        body.put_u8(b't');
        body.put_i32(i32::MAX); // the first topic's partitions lie too
        assert!(ProduceRequest::decode(&mut body.freeze(), 3).is_err());
    }
}
