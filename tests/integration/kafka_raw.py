"""A tiny hand-rolled Kafka wire client, for tests that must send exactly the
bytes they choose (bad input, unsupported versions, corrupt batches).

Everything is encoded by hand from the Kafka protocol spec so that the tests do
not depend on a client library's idea of what is valid. Only the non-flexible
(pre-KIP-482) versions of Metadata, Produce and CreateTopics are encoded; the
helpers pick the highest such version the broker advertises.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

import crc32c as _crc32c

# API keys (Kafka protocol).
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
CREATE_PARTITIONS = 37
DESCRIBE_CLUSTER = 60

# Error codes (Kafka protocol).
NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REQUEST = 42
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
INVALID_RECORD = 87

response_wait_s_default = 15.0


def crc32c(data: bytes) -> int:
    return _crc32c.crc32c(data)


# ---------------------------------------------------------------- encoding


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def int8(self, v: int) -> "Writer":
        self.buf += struct.pack(">b", v)
        return self

    def int16(self, v: int) -> "Writer":
        self.buf += struct.pack(">h", v)
        return self

    def int32(self, v: int) -> "Writer":
        self.buf += struct.pack(">i", v)
        return self

    def uint32(self, v: int) -> "Writer":
        self.buf += struct.pack(">I", v)
        return self

    def int64(self, v: int) -> "Writer":
        self.buf += struct.pack(">q", v)
        return self

    def boolean(self, v: bool) -> "Writer":
        return self.int8(1 if v else 0)

    def string(self, s: str | None) -> "Writer":
        """STRING / NULLABLE_STRING: int16 length, -1 for null."""
        if s is None:
            return self.int16(-1)
        b = s.encode()
        self.int16(len(b))
        self.buf += b
        return self

    def bytes_(self, b: bytes | None) -> "Writer":
        """BYTES / NULLABLE_BYTES / RECORDS: int32 length, -1 for null."""
        if b is None:
            return self.int32(-1)
        self.int32(len(b))
        self.buf += b
        return self

    def uvarint(self, v: int) -> "Writer":
        while True:
            byte = v & 0x7F
            v >>= 7
            if v:
                self.buf.append(byte | 0x80)
            else:
                self.buf.append(byte)
                return self

    def varint(self, v: int) -> "Writer":
        """Zig-zag signed varint/varlong (record fields)."""
        return self.uvarint((v << 1) ^ (v >> 63))

    def raw(self, b: bytes) -> "Writer":
        self.buf += b
        return self

    def bytes(self) -> bytes:  # noqa: A003 - mirrors bytes()
        return bytes(self.buf)


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"short read: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}"
            )
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def int8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def int16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def int32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def int64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def boolean(self) -> bool:
        return self.int8() != 0

    def string(self) -> str | None:
        n = self.int16()
        return None if n < 0 else self._take(n).decode()

    def bytes_(self) -> bytes | None:
        n = self.int32()
        return None if n < 0 else self._take(n)

    def array(self, item) -> list | None:
        n = self.int32()
        return None if n < 0 else [item(self) for _ in range(n)]

    def uvarint(self) -> int:
        shift = 0
        out = 0
        while True:
            b = self._take(1)[0]
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def remaining(self) -> int:
        return len(self.data) - self.pos


# ---------------------------------------------------------------- batches


def record_batch_v2(
    records: list[tuple[bytes | None, bytes | None]],
    base_timestamp_ms: int | None = None,
    corrupt_crc: bool = False,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
) -> bytes:
    """A RecordBatch v2 (magic 2), uncompressed; no producer id unless given.

    baseOffset is 0; the broker assigns real offsets.
    """
    ts = int(time.time() * 1000) if base_timestamp_ms is None else base_timestamp_ms
    recs = Writer()
    for i, (k, v) in enumerate(records):
        body = Writer().int8(0).varint(0).varint(i)  # attributes, tsDelta, offsetDelta
        if k is None:
            body.varint(-1)
        else:
            body.varint(len(k)).raw(k)
        if v is None:
            body.varint(-1)
        else:
            body.varint(len(v)).raw(v)
        body.uvarint(0)  # header count (varint 0 == uvarint 0)
        b = body.bytes()
        recs.varint(len(b)).raw(b)
    after_crc = (
        Writer()
        .int16(0x10 if transactional else 0)  # attributes: transactional bit, no compression, CreateTime
        .int32(len(records) - 1)  # lastOffsetDelta
        .int64(ts)  # baseTimestamp
        .int64(ts)  # maxTimestamp
        .int64(producer_id)
        .int16(producer_epoch)
        .int32(base_sequence)
        .int32(len(records))
        .raw(recs.bytes())
        .bytes()
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # batchLength counts from partitionLeaderEpoch to the end.
    batch_length = 4 + 1 + 4 + len(after_crc)
    return (
        Writer()
        .int64(0)
        .int32(batch_length)
        .int32(-1)  # partitionLeaderEpoch
        .int8(2)  # magic
        .uint32(crc)
        .raw(after_crc)
        .bytes()
    )


def legacy_message_set(magic: int, key: bytes | None, value: bytes | None) -> bytes:
    """A one-message legacy message set, magic 0 or 1 (CRC is CRC-32/IEEE)."""
    import zlib

    assert magic in (0, 1)
    body = Writer().int8(magic).int8(0)
    if magic == 1:
        body.int64(int(time.time() * 1000))
    body.bytes_(key).bytes_(value)
    b = body.bytes()
    msg = Writer().uint32(zlib.crc32(b) & 0xFFFFFFFF).raw(b).bytes()
    return Writer().int64(0).int32(len(msg)).raw(msg).bytes()


# ---------------------------------------------------------------- connection


class ConnectionClosed(Exception):
    """The broker closed the connection (EOF or reset)."""


@dataclass
class ApiVersionsResponse:
    error_code: int
    api_ranges: dict[int, tuple[int, int]] = field(default_factory=dict)


def decode_api_versions_v0(payload: bytes) -> ApiVersionsResponse:
    r = Reader(payload)
    err = r.int16()
    ranges = {}
    for key, lo, hi in r.array(lambda r: (r.int16(), r.int16(), r.int16())) or []:
        ranges[key] = (lo, hi)
    return ApiVersionsResponse(err, ranges)


class RawConn:
    """One TCP connection speaking size-prefixed Kafka frames."""

    def __init__(self, host: str, port: int, timeout_s: float = response_wait_s_default):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_correlation_id = 1
        self.client_id = "corestream-raw-test"
        self._versions: dict[int, tuple[int, int]] | None = None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- framing

    def send_frame(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed(f"EOF after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 4 or n > 256 * 1024 * 1024:
            raise ValueError(f"bad response frame size {n}")
        return self._recv_exact(n)

    def wait_closed(self, timeout_s: float) -> bool:
        """True if the peer closes the connection within timeout_s (data read
        meanwhile is discarded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False

    # -- requests

    def request_bytes(
        self,
        api_key: int,
        api_version: int,
        body: bytes,
        flexible_header: bool = False,
        correlation_id: int | None = None,
    ) -> tuple[int, bytes]:
        if correlation_id is None:
            correlation_id = self.next_correlation_id
            self.next_correlation_id += 1
        h = Writer().int16(api_key).int16(api_version).int32(correlation_id).string(self.client_id)
        if flexible_header:
            h.uvarint(0)  # empty tagged fields
        return correlation_id, h.bytes() + body

    def send_request(self, api_key: int, api_version: int, body: bytes, flexible_header: bool = False) -> int:
        cid, frame = self.request_bytes(api_key, api_version, body, flexible_header)
        self.send_frame(frame)
        return cid

    def recv_response(self, correlation_id: int, flexible_header: bool = False) -> bytes:
        frame = self.recv_frame()
        r = Reader(frame)
        got = r.int32()
        if got != correlation_id:
            raise AssertionError(f"correlation id {got}, expected {correlation_id}")
        if flexible_header:
            ntags = r.uvarint()
            for _ in range(ntags):
                r.uvarint()
                r._take(r.uvarint())
        return frame[r.pos :]

    def roundtrip(self, api_key: int, api_version: int, body: bytes) -> bytes:
        cid = self.send_request(api_key, api_version, body)
        return self.recv_response(cid)

    # -- ApiVersions

    def api_versions_v0(self) -> ApiVersionsResponse:
        resp = decode_api_versions_v0(self.roundtrip(API_VERSIONS, 0, b""))
        if resp.error_code == NONE:
            self._versions = resp.api_ranges
        return resp

    def versions(self) -> dict[int, tuple[int, int]]:
        if self._versions is None:
            resp = self.api_versions_v0()
            assert resp.error_code == NONE, f"ApiVersions v0 error {resp.error_code}"
        return self._versions  # type: ignore[return-value]

    def pick_version(self, api_key: int, lo: int, hi: int) -> int:
        """Highest version in [lo, hi] the broker advertises for api_key."""
        vs = self.versions()
        assert api_key in vs, f"broker does not advertise api key {api_key}: {vs}"
        blo, bhi = vs[api_key]
        v = min(hi, bhi)
        assert v >= max(lo, blo), (
            f"no common non-flexible version for api {api_key}: broker {blo}..{bhi}, helper {lo}..{hi}"
        )
        return v

    # -- Metadata (v1..v8, non-flexible)

    def metadata(self, topics: list[str] | None, allow_auto_create: bool = False) -> dict:
        v = self.pick_version(METADATA, 1, 8)
        w = Writer()
        if topics is None:
            w.int32(-1)
        else:
            w.int32(len(topics))
            for t in topics:
                w.string(t)
        if v >= 4:
            w.boolean(allow_auto_create)
        if v >= 8:
            w.boolean(False).boolean(False)
        r = Reader(self.roundtrip(METADATA, v, w.bytes()))
        out: dict = {"version": v}
        if v >= 3:
            out["throttle_time_ms"] = r.int32()

        def broker(r: Reader) -> dict:
            return {"node_id": r.int32(), "host": r.string(), "port": r.int32(), "rack": r.string()}

        out["brokers"] = r.array(broker)
        if v >= 2:
            out["cluster_id"] = r.string()
        out["controller_id"] = r.int32()

        def partition(r: Reader) -> dict:
            p = {"error_code": r.int16(), "partition": r.int32(), "leader": r.int32()}
            if v >= 7:
                p["leader_epoch"] = r.int32()
            p["replicas"] = r.array(Reader.int32)
            p["isr"] = r.array(Reader.int32)
            if v >= 5:
                p["offline_replicas"] = r.array(Reader.int32)
            return p

        def topic(r: Reader) -> dict:
            t = {"error_code": r.int16(), "name": r.string(), "is_internal": r.boolean()}
            t["partitions"] = r.array(partition)
            if v >= 8:
                t["authorized_operations"] = r.int32()
            return t

        out["topics"] = r.array(topic)
        if v >= 8:
            out["cluster_authorized_operations"] = r.int32()
        return out

    # -- Produce (v3..v8, non-flexible)

    def produce(
        self,
        topic: str,
        partition: int,
        records: bytes,
        acks: int = -1,
        timeout_ms: int = 10_000,
        transactional_id: str | None = None,
    ) -> dict:
        """Produce one records blob to one partition; returns that partition's
        response (error_code, base_offset, ...)."""
        v = self.pick_version(PRODUCE, 3, 8)
        body = (
            Writer()
            .string(transactional_id)
            .int16(acks)
            .int32(timeout_ms)
            .int32(1)
            .string(topic)
            .int32(1)
            .int32(partition)
            .bytes_(records)
            .bytes()
        )
        r = Reader(self.roundtrip(PRODUCE, v, body))

        def part(r: Reader) -> dict:
            p = {"partition": r.int32(), "error_code": r.int16(), "base_offset": r.int64()}
            p["log_append_time_ms"] = r.int64()  # v2+
            if v >= 5:
                p["log_start_offset"] = r.int64()
            if v >= 8:
                p["record_errors"] = r.array(lambda r: (r.int32(), r.string()))
                p["error_message"] = r.string()
            return p

        topics = r.array(lambda r: (r.string(), r.array(part)))
        assert topics and len(topics) == 1, f"unexpected produce response topics {topics}"
        name, parts = topics[0]
        assert name == topic, f"produce response names {name!r}, sent {topic!r}"
        assert parts and len(parts) == 1, f"unexpected produce response partitions {parts}"
        out = parts[0]
        out["version"] = v
        return out

    # -- CreateTopics (v2..v4, non-flexible)

    def create_topics(
        self, topics: list[tuple[str, int, int]], timeout_ms: int = 10_000, validate_only: bool = False
    ) -> list[dict]:
        """topics: (name, num_partitions, replication_factor). Returns
        [{name, error_code, error_message}] in response order."""
        v = self.pick_version(CREATE_TOPICS, 2, 4)
        w = Writer().int32(len(topics))
        for name, parts, rf in topics:
            w.string(name).int32(parts).int16(rf).int32(0).int32(0)  # no assignments, no configs
        w.int32(timeout_ms).boolean(validate_only)
        r = Reader(self.roundtrip(CREATE_TOPICS, v, w.bytes()))
        r.int32()  # throttle_time_ms
        return r.array(lambda r: {"name": r.string(), "error_code": r.int16(), "error_message": r.string()})


def api_versions_ok(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """One ApiVersions v0 round trip on a fresh connection; used for readiness."""
    try:
        with RawConn(host, port, timeout_s=timeout_s) as c:
            resp = c.api_versions_v0()
            return resp.error_code == NONE and API_VERSIONS in resp.api_ranges
    except (OSError, ConnectionClosed, ValueError, AssertionError):
        return False
