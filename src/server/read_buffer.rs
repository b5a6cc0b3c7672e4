//! How big a connection's read buffer is, and how much each read asks for.
//!
//! A connection reads straight into the buffer its frames are split from
//! (`BytesMut::split_to`), so a request body is never copied between
//! buffers on its way to the handler. The buffer's size follows what the
//! connection is doing:
//! - **Idle** (nothing buffered, nothing waiting on the socket): the
//!   buffer is at most [`READ_IDLE_BYTES`]; a larger one left behind by an
//!   earlier big read is let go when a read finds the connection idle
//!   ([`shrink_when_idle`]; the frames split from it keep their own part
//!   alive until handled). With a 64 KiB buffer per connection, 10,000 idle
//!   connections held 640 MiB. A busy connection whose last read ended on
//!   a frame boundary keeps its buffer and reads into it at once.
//! - **A frame whose size prefix is in**: room for the rest of the frame
//!   plus one read chunk is reserved once, so however many reads the body
//!   takes it lands in place, without the buffer growing (and copying
//!   itself) step by step. The only copy is of the bytes already buffered
//!   when that reservation moves them, at most one read's worth. The frame's
//!   size was reserved from the connection's and the shard's request
//!   budgets before its body is read, so this memory is accounted for.
//! - **A partial size prefix**: one read chunk.
//!
//! Reads past the end of the frame being read (up to one chunk) pick up
//! pipelined requests in the same system call.

use bytes::BytesMut;

/// What a read asks for when the next frame's size is not known yet and
/// bytes are buffered, and at least what it asks for inside a frame, in
/// bytes: also the most a read takes past the end of the frame being read.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Largest single read, in bytes (a big frame arrives in several).
pub(crate) const READ_BYTES_MAX: usize = 1024 * 1024;
/// Read asked of the socket when the buffer is empty (between requests, and
/// on an idle connection), in bytes: an idle connection holds this much
/// buffer, not [`READ_CHUNK_BYTES`] (68 KiB of RSS per idle connection
/// before, measured with 5,000 of them). A frame bigger than this costs one
/// more read when it starts on an empty buffer.
pub(crate) const READ_IDLE_BYTES: usize = 4 * 1024;

const _: () = assert!(READ_IDLE_BYTES <= READ_CHUNK_BYTES);
const _: () = assert!(READ_CHUNK_BYTES <= READ_BYTES_MAX);

/// Makes room in `buf` for the next read and returns how many bytes that
/// read should ask for; the caller extends `buf` by that much, reads into
/// the new part and truncates to what arrived. `frame_total_bytes` is the
/// size prefix plus body of the frame at the front of `buf`, once its
/// prefix is in (the frame is not complete yet, or it would have been
/// split off). After this call `buf` has capacity for the returned length
/// without reallocating.
pub(crate) fn prepare_read(buf: &mut BytesMut, frame_total_bytes: Option<usize>) -> usize {
    match frame_total_bytes {
        None if buf.is_empty() => {
            if buf.capacity() > READ_IDLE_BYTES {
                return buf.capacity().min(READ_BYTES_MAX);
            }
            buf.reserve(READ_IDLE_BYTES);
            READ_IDLE_BYTES
        }
        None => {
            buf.reserve(READ_CHUNK_BYTES);
            READ_CHUNK_BYTES
        }
        Some(total) => {
            let missing = total.saturating_sub(buf.len());
            // A no-op after the frame's first read here: capacity minus
            // length stays at least what is missing plus one chunk.
            buf.reserve(missing + READ_CHUNK_BYTES);
            missing.clamp(READ_CHUNK_BYTES, READ_BYTES_MAX)
        }
    }
}

/// For an empty buffer whose read found nothing waiting: lets go of a
/// buffer bigger than [`READ_IDLE_BYTES`] and returns what the read that
/// waits should ask for.
pub(crate) fn shrink_when_idle(buf: &mut BytesMut) -> usize {
    debug_assert!(buf.is_empty());
    if buf.capacity() > READ_IDLE_BYTES {
        *buf = BytesMut::new();
    }
    buf.reserve(READ_IDLE_BYTES);
    READ_IDLE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{FrameDecoder, FRAME_SIZE_PREFIX_BYTES};

    const FRAME_BYTES_MAX: usize = 100 << 20;

    /// One read of `asked` bytes, of which the socket had `arrived`.
    fn read(buf: &mut BytesMut, asked: usize, source: &mut &[u8]) {
        let old_len = buf.len();
        buf.resize(old_len + asked, 0);
        let arrived = asked.min(source.len());
        buf[old_len..old_len + arrived].copy_from_slice(&source[..arrived]);
        *source = &source[arrived..];
        buf.truncate(old_len + arrived);
    }

    fn frame(body_bytes: usize, fill: u8) -> Vec<u8> {
        let mut f = (body_bytes as i32).to_be_bytes().to_vec();
        f.resize(FRAME_SIZE_PREFIX_BYTES + body_bytes, fill);
        f
    }

    /// Reads from `wire` as the connection does until one frame is whole;
    /// returns the frame and how many times the buffer moved.
    fn read_one_frame(buf: &mut BytesMut, wire: &mut &[u8]) -> (bytes::Bytes, usize) {
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut moves = 0;
        let mut at = None;
        loop {
            let total = decoder
                .peek_frame_bytes(buf)
                .unwrap()
                .map(|b| FRAME_SIZE_PREFIX_BYTES + b);
            if total.is_some_and(|t| buf.len() >= t) {
                return (decoder.decode(buf).unwrap().unwrap(), moves);
            }
            let want = prepare_read(buf, total);
            assert!(buf.capacity() - buf.len() >= want, "room for the read");
            if total.is_some() {
                moves += usize::from(at.is_some_and(|p| p != buf.as_ptr()));
                at = Some(buf.as_ptr());
            }
            read(buf, want, wire);
        }
    }

    #[test]
    fn idle_connection_holds_a_small_buffer() {
        let mut buf = BytesMut::new();
        assert_eq!(prepare_read(&mut buf, None), READ_IDLE_BYTES);
        assert!(buf.capacity() <= READ_IDLE_BYTES + 64, "{}", buf.capacity());
        assert_eq!(shrink_when_idle(&mut buf), READ_IDLE_BYTES);
        assert!(buf.capacity() <= READ_IDLE_BYTES + 64, "{}", buf.capacity());
    }

    #[test]
    fn large_frame_is_read_in_place_then_the_buffer_shrinks() {
        let body = 3 * READ_BYTES_MAX + 12_345;
        let sent = frame(body, 7);
        let mut wire = &sent[..];
        let mut buf = BytesMut::new();
        let (got, moves) = read_one_frame(&mut buf, &mut wire);
        assert_eq!(got.len(), body);
        assert!(got.iter().all(|&b| b == 7));
        assert_eq!(moves, 0, "the buffer moved while the body was read");
        assert!(buf.is_empty());
        // Busy: the room left reads the next request without reallocating.
        let room = buf.capacity();
        assert!(room > READ_IDLE_BYTES);
        assert_eq!(prepare_read(&mut buf, None), room.min(READ_BYTES_MAX));
        assert_eq!(buf.capacity(), room);
        // Idle: back to a small buffer.
        assert_eq!(shrink_when_idle(&mut buf), READ_IDLE_BYTES);
        assert!(buf.capacity() <= READ_IDLE_BYTES + 64, "{}", buf.capacity());
        // The frame split off keeps its bytes after the buffer let go.
        assert!(got.iter().all(|&b| b == 7));
    }

    #[test]
    fn large_frame_arriving_in_small_segments_is_read_in_place() {
        let body = READ_BYTES_MAX + 1;
        let sent = frame(body, 3);
        let mut buf = BytesMut::new();
        let decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut at = None;
        for segment in sent.chunks(1448) {
            let total = decoder
                .peek_frame_bytes(&buf)
                .unwrap()
                .map(|b| FRAME_SIZE_PREFIX_BYTES + b);
            let want = prepare_read(&mut buf, total);
            if total.is_some() {
                assert!(at.is_none_or(|p| p == buf.as_ptr()), "buffer moved");
                at = Some(buf.as_ptr());
            }
            let mut wire = segment;
            read(&mut buf, want, &mut wire);
        }
        let got = FrameDecoder::new(FRAME_BYTES_MAX)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), body);
    }

    #[test]
    fn pipelined_requests_after_a_frame_come_in_its_last_read() {
        // Its last read asks for a whole chunk, more than the frame lacks.
        let mut sent = frame(30_000, 1);
        sent.extend(frame(10, 2));
        sent.extend(frame(10, 3));
        let mut wire = &sent[..];
        let mut buf = BytesMut::new();
        let (first, _) = read_one_frame(&mut buf, &mut wire);
        assert_eq!(first.len(), 30_000);
        assert!(wire.is_empty());
        let (second, _) = read_one_frame(&mut buf, &mut wire);
        let (third, _) = read_one_frame(&mut buf, &mut wire);
        assert_eq!((&second[..], &third[..]), (&[2u8; 10][..], &[3u8; 10][..]));
    }

    #[test]
    fn partial_size_prefix_reads_a_chunk() {
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(prepare_read(&mut buf, None), READ_CHUNK_BYTES);
        assert_eq!(&buf[..], &[0, 0]);
    }
}
