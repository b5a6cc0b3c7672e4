//! Primitive fields of the non-flexible protocol (big-endian integers,
//! int16-prefixed strings, int32-prefixed arrays), for the hand-written
//! legacy bodies. The crate's own encoders are private to it.
//!
//! Decoding never trusts a length: a string or array longer than the bytes
//! left is an error before anything is allocated.

use anyhow::{bail, Result};
use bytes::{BufMut, BytesMut};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::StrBytes;

fn need<B: ByteBuf>(buf: &B, bytes: usize) -> Result<()> {
    if buf.remaining() < bytes {
        bail!("need {bytes} bytes, {} left", buf.remaining());
    }
    Ok(())
}

pub(super) fn i8_<B: ByteBuf>(buf: &mut B) -> Result<i8> {
    need(buf, 1)?;
    Ok(buf.get_i8())
}

pub(super) fn bool_<B: ByteBuf>(buf: &mut B) -> Result<bool> {
    Ok(i8_(buf)? != 0)
}

pub(super) fn i16_<B: ByteBuf>(buf: &mut B) -> Result<i16> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

pub(super) fn i32_<B: ByteBuf>(buf: &mut B) -> Result<i32> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

pub(super) fn i64_<B: ByteBuf>(buf: &mut B) -> Result<i64> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

/// NULLABLE_STRING: int16 length, -1 for null.
pub(super) fn nullable_string<B: ByteBuf>(buf: &mut B) -> Result<Option<StrBytes>> {
    let len = i16_(buf)?;
    if len == -1 {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(len) else {
        bail!("string length {len}");
    };
    need(buf, len)?;
    Ok(Some(StrBytes::from_utf8(buf.get_bytes(len))?))
}

/// STRING: as NULLABLE_STRING, null refused.
pub(super) fn string<B: ByteBuf>(buf: &mut B) -> Result<StrBytes> {
    match nullable_string(buf)? {
        Some(s) => Ok(s),
        None => bail!("null string where the schema has none"),
    }
}

/// ARRAY with a nullable length; `item_bytes_min` bounds the count by the
/// bytes left.
pub(super) fn nullable_array<B: ByteBuf, T>(
    buf: &mut B,
    item_bytes_min: usize,
    mut item: impl FnMut(&mut B) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    let count = i32_(buf)?;
    if count == -1 {
        return Ok(None);
    }
    let Ok(count) = usize::try_from(count) else {
        bail!("array length {count}");
    };
    if count.saturating_mul(item_bytes_min.max(1)) > buf.remaining() {
        bail!("array of {count} items in {} bytes", buf.remaining());
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(item(buf)?);
    }
    Ok(Some(items))
}

/// ARRAY, null refused.
pub(super) fn array<B: ByteBuf, T>(
    buf: &mut B,
    item_bytes_min: usize,
    item: impl FnMut(&mut B) -> Result<T>,
) -> Result<Vec<T>> {
    match nullable_array(buf, item_bytes_min, item)? {
        Some(items) => Ok(items),
        None => bail!("null array where the schema has none"),
    }
}

pub(super) fn put_nullable_string<B: BufMut>(buf: &mut B, value: Option<&str>) -> Result<()> {
    let Some(value) = value else {
        buf.put_i16(-1);
        return Ok(());
    };
    let Ok(len) = i16::try_from(value.len()) else {
        bail!("string of {} bytes is too long to encode", value.len());
    };
    buf.put_i16(len);
    buf.put_slice(value.as_bytes());
    Ok(())
}

pub(super) fn put_string<B: BufMut>(buf: &mut B, value: &str) -> Result<()> {
    put_nullable_string(buf, Some(value))
}

/// The int32 count of an array (or -1 for null).
pub(super) fn put_count<B: BufMut>(buf: &mut B, count: Option<usize>) -> Result<()> {
    let Some(count) = count else {
        buf.put_i32(-1);
        return Ok(());
    };
    let Ok(count) = i32::try_from(count) else {
        bail!("array of {count} items is too long to encode");
    };
    buf.put_i32(count);
    Ok(())
}

/// Refuses a version outside `range`.
pub(super) fn check_version(
    what: &str,
    range: &std::ops::RangeInclusive<i16>,
    version: i16,
) -> Result<()> {
    if !range.contains(&version) {
        bail!("{what} v{version} is not coded here (only {range:?})");
    }
    Ok(())
}

/// `compute_size` for the legacy bodies: they are not on a hot path, so the
/// size is that of an encoding.
pub(super) fn encoded_size(encode: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<usize> {
    let mut buf = BytesMut::new();
    encode(&mut buf)?;
    Ok(buf.len())
}

/// Implements the crate's `Encodable`/`Decodable` for a legacy type from
/// its `write`/`read` methods.
macro_rules! legacy_codec {
    ($type:ty, $what:literal, $versions:expr) => {
        impl kafka_protocol::protocol::Encodable for $type {
            fn encode<B: kafka_protocol::protocol::buf::ByteBufMut>(
                &self,
                buf: &mut B,
                version: i16,
            ) -> anyhow::Result<()> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                self.write(buf, version)
            }
            fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                $crate::protocol::legacy::wire::encoded_size(|buf| self.write(buf, version))
            }
        }
        impl kafka_protocol::protocol::Decodable for $type {
            fn decode<B: kafka_protocol::protocol::buf::ByteBuf>(
                buf: &mut B,
                version: i16,
            ) -> anyhow::Result<Self> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                Self::read(buf, version)
            }
        }
    };
}
pub(super) use legacy_codec;

/// Implements `Encodable`/`Decodable` for a newtype over a crate message
/// whose bytes at the legacy versions are those of crate version `$as`.
macro_rules! same_layout_as {
    ($type:ident, $inner:ty, $what:literal, $versions:expr, $as:expr) => {
        impl kafka_protocol::protocol::Encodable for $type {
            fn encode<B: kafka_protocol::protocol::buf::ByteBufMut>(
                &self,
                buf: &mut B,
                version: i16,
            ) -> anyhow::Result<()> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                self.0.encode(buf, $as)
            }
            fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                self.0.compute_size($as)
            }
        }
        impl kafka_protocol::protocol::Decodable for $type {
            fn decode<B: kafka_protocol::protocol::buf::ByteBuf>(
                buf: &mut B,
                version: i16,
            ) -> anyhow::Result<Self> {
                $crate::protocol::legacy::wire::check_version($what, &$versions, version)?;
                Ok($type(<$inner>::decode(buf, $as)?))
            }
        }
    };
}
pub(super) use same_layout_as;
