//! Record-batch codecs (attributes bits 0-2: 1 gzip, 2 snappy, 3 lz4,
//! 4 zstd), for the two places the broker must read inside a compressed
//! batch: the cleaner (keys, to keep the latest record per key) and the
//! "compacted topics need keys" produce rule. Produce and fetch never call
//! this: batches are stored and served as the client compressed them.
//!
//! Framing is Kafka's, as the Java client and librdkafka write it:
//! - gzip: a gzip member (RFC 1952); `flate2`.
//! - snappy: Java clients write xerial's block framing (the 16-byte
//!   `\x82SNAPPY\0` header, then big-endian length-prefixed raw blocks);
//!   librdkafka writes one raw snappy block for v2 batches. Both are read;
//!   a rewrite uses the framing the batch came in ([`Codec::SnappyXerial`]
//!   or [`Codec::SnappyRaw`]), so it reads back in whatever client wrote it.
//! - lz4: the LZ4 frame format with independent 64 KiB blocks and no
//!   content checksum (what Kafka's `KafkaLZ4BlockOutputStream` and
//!   librdkafka write; Kafka's reader cannot follow linked blocks).
//! - zstd: a zstd frame.
//!
//! Decompression is bounded: a batch that would inflate past the caller's
//! limit is refused with [`CodecError::TooLarge`] before more than the
//! limit plus one read is held (a zip bomb costs at most that). Every
//! failure is an error value, never a panic: the input comes from clients.

use std::io::{Read, Write};

/// xerial snappy-java stream header: magic, version 1, compatible 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial block written (snappy-java's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// Granularity of bounded streaming reads, in bytes.
const READ_STEP_BYTES: usize = 64 * 1024;

/// A batch codec, with snappy's framing told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Attribute value 1.
    Gzip,
    /// Attribute value 2, xerial block framing (Java clients).
    SnappyXerial,
    /// Attribute value 2, one raw snappy block (librdkafka).
    SnappyRaw,
    /// Attribute value 3, LZ4 frame.
    Lz4,
    /// Attribute value 4.
    Zstd,
}

/// Why a compressed body could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The attributes name a codec Kafka does not define (5-7).
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// Decompressed size over the limit.
    #[error("decompressed records exceed {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// Malformed compressed data.
    #[error("{codec:?} data is corrupt: {reason}")]
    Corrupt {
        /// The codec tried.
        codec: Codec,
        /// The decoder's message.
        reason: String,
    },
}

impl Codec {
    /// The codec of a compressed body with attribute codec `id` (1-4),
    /// looking at the body to tell snappy's framings apart. `None` for 0.
    pub fn detect(id: u8, body: &[u8]) -> Result<Option<Codec>, CodecError> {
        Ok(Some(match id {
            0 => return Ok(None),
            1 => Codec::Gzip,
            2 if body.starts_with(&XERIAL_HEADER[..8]) => Codec::SnappyXerial,
            2 => Codec::SnappyRaw,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            other => return Err(CodecError::UnknownCodec(other)),
        }))
    }

    fn corrupt(self, reason: impl ToString) -> CodecError {
        CodecError::Corrupt {
            codec: self,
            reason: reason.to_string(),
        }
    }

    /// Decompresses `body`, refusing to produce more than `limit` bytes.
    pub fn decompress(self, body: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        match self {
            Codec::Gzip => read_bounded(self, flate2::read::GzDecoder::new(body), limit),
            Codec::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::new(body).map_err(|e| self.corrupt(e))?;
                read_bounded(self, decoder, limit)
            }
            Codec::Lz4 => {
                let decoder = lz4::Decoder::new(body).map_err(|e| self.corrupt(e))?;
                read_bounded(self, decoder, limit)
            }
            Codec::SnappyRaw => {
                let mut out = Vec::new();
                snappy_block(self, body, limit, &mut out)?;
                Ok(out)
            }
            Codec::SnappyXerial => {
                let mut rest = body.get(XERIAL_HEADER.len()..).unwrap_or_default();
                let mut out = Vec::new();
                while !rest.is_empty() {
                    let (len, tail) = rest
                        .split_first_chunk::<4>()
                        .ok_or_else(|| self.corrupt("truncated block length"))?;
                    let len = u32::from_be_bytes(*len) as usize;
                    let block = tail
                        .get(..len)
                        .ok_or_else(|| self.corrupt("truncated block"))?;
                    snappy_block(self, block, limit, &mut out)?;
                    rest = &tail[len..];
                }
                Ok(out)
            }
        }
    }

    /// Compresses `data` in this codec's Kafka framing.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, CodecError> {
        let io = |e: std::io::Error| self.corrupt(e);
        match self {
            Codec::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(data).map_err(io)?;
                enc.finish().map_err(io)
            }
            Codec::Zstd => zstd::bulk::compress(data, zstd::DEFAULT_COMPRESSION_LEVEL).map_err(io),
            Codec::Lz4 => {
                let mut enc = lz4::EncoderBuilder::new()
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Independent)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(Vec::new())
                    .map_err(io)?;
                enc.write_all(data).map_err(io)?;
                let (out, done) = enc.finish();
                done.map_err(io)?;
                Ok(out)
            }
            Codec::SnappyRaw => snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(|e| self.corrupt(e)),
            Codec::SnappyXerial => {
                let mut out = XERIAL_HEADER.to_vec();
                let mut encoder = snap::raw::Encoder::new();
                for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
                    let block = encoder.compress_vec(chunk).map_err(|e| self.corrupt(e))?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                Ok(out)
            }
        }
    }
}

/// Appends one raw snappy block to `out`, checking its declared length
/// against the limit before allocating.
fn snappy_block(
    codec: Codec,
    block: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let len = snap::raw::decompress_len(block).map_err(|e| codec.corrupt(e))?;
    if out.len().saturating_add(len) > limit {
        return Err(CodecError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| codec.corrupt(e))?;
    out.truncate(start + written);
    Ok(())
}

/// Reads `reader` to its end, failing once more than `limit` bytes came.
fn read_bounded(codec: Codec, reader: impl Read, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut bounded = reader.take(limit as u64 + 1);
    loop {
        let start = out.len();
        out.resize(start + READ_STEP_BYTES, 0);
        let n = bounded
            .read(&mut out[start..])
            .map_err(|e| codec.corrupt(e))?;
        out.truncate(start + n);
        if out.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        if n == 0 {
            return Ok(out);
        }
    }
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
