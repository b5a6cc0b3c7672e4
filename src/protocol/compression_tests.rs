//! Codec tests: round trips, the decompression bound, hostile input, and
//! batches as librdkafka 2.16 writes them (`testdata/librdkafka_*.bin`,
//! captured from confluent-kafka by `scripts/capture_codec_fixtures.py`:
//! records k0=v0, k1=null, k2="v2"x50 in one batch).

use super::*;
use crate::protocol::batch::{check_crc, BatchHeader, BATCH_HEADER_LEN};
use crate::protocol::records::records_in;

const ALL: [Codec; 5] = [
    Codec::Gzip,
    Codec::SnappyXerial,
    Codec::SnappyRaw,
    Codec::Lz4,
    Codec::Zstd,
];

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
}

#[test]
fn compression_round_trip_every_codec() {
    for codec in ALL {
        for len in [0, 1, 100, 70_000, 300_000] {
            let data = sample(len);
            let packed = codec.compress(&data).unwrap();
            let id = match codec {
                Codec::Gzip => 1,
                Codec::SnappyXerial | Codec::SnappyRaw => 2,
                Codec::Lz4 => 3,
                Codec::Zstd => 4,
            };
            if len > 0 {
                assert_eq!(Codec::detect(id, &packed).unwrap(), Some(codec));
            }
            assert_eq!(
                codec.decompress(&packed, len).unwrap(),
                data,
                "{codec:?} {len}"
            );
        }
    }
}

#[test]
fn compression_decompress_is_bounded() {
    let zeros = vec![0u8; 1 << 20];
    for codec in ALL {
        let packed = codec.compress(&zeros).unwrap();
        let err = codec.decompress(&packed, (1 << 20) - 1).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { .. }),
            "{codec:?}: {err}"
        );
    }
}

#[test]
fn compression_garbage_is_an_error_not_a_panic() {
    let data = sample(5_000);
    for codec in ALL {
        let packed = codec.compress(&data).unwrap();
        for cut in [0, 1, 5, 17, packed.len() / 2, packed.len() - 1] {
            let _ = codec.decompress(&packed[..cut], 1 << 20);
        }
        let mut flipped = packed.clone();
        for i in (0..flipped.len()).step_by(3) {
            flipped[i] ^= 0x5a;
        }
        let _ = codec.decompress(&flipped, 1 << 20);
    }
    assert!(matches!(
        Codec::detect(5, b""),
        Err(CodecError::UnknownCodec(5))
    ));
    // A raw snappy block claiming 4 GiB is refused before allocating.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(Codec::SnappyRaw.decompress(&claim, 1 << 20).is_err());
}

/// Reads a librdkafka batch, checks its three records, and re-encodes
/// them with the same codec into a batch that reads back the same.
fn check_librdkafka(name: &str, batch: &[u8], want: Codec) {
    check_crc(batch).unwrap();
    let header = BatchHeader::parse(batch).unwrap();
    let body = &batch[BATCH_HEADER_LEN..header.total_len()];
    let codec = Codec::detect(header.compression(), body).unwrap().unwrap();
    assert_eq!(codec, want, "{name}");
    let plain = codec.decompress(body, 1 << 20).unwrap();
    let recs = records_in(header, &plain).unwrap();
    let keys: Vec<_> = recs.iter().map(|r| r.key.unwrap()).collect();
    assert_eq!(keys, [&b"k0"[..], b"k1", b"k2"], "{name}");
    assert_eq!(recs[0].value, Some(&b"v0"[..]));
    assert_eq!(recs[1].value, None);
    assert_eq!(recs[2].value.unwrap(), "v2".repeat(50).as_bytes());
    assert_eq!(recs[2].timestamp, 1_700_000_000_000);
    let again = codec.compress(&plain).unwrap();
    assert_eq!(codec.decompress(&again, 1 << 20).unwrap(), plain, "{name}");
}

#[test]
fn compression_reads_librdkafka_batches() {
    let fixtures: [(&str, &[u8], Codec); 4] = [
        (
            "gzip",
            include_bytes!("testdata/librdkafka_gzip.bin"),
            Codec::Gzip,
        ),
        (
            "snappy",
            include_bytes!("testdata/librdkafka_snappy.bin"),
            Codec::SnappyRaw,
        ),
        (
            "lz4",
            include_bytes!("testdata/librdkafka_lz4.bin"),
            Codec::Lz4,
        ),
        (
            "zstd",
            include_bytes!("testdata/librdkafka_zstd.bin"),
            Codec::Zstd,
        ),
    ];
    for (name, batch, codec) in fixtures {
        check_librdkafka(name, batch, codec);
    }
}
