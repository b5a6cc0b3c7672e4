"""Bad input over the wire, sent with the raw client.

Invariant 5: bad input gets a Kafka error code or a clean close, never a
panic, never a corrupted log. After every case the `survivor` fixture checks
that the broker process is alive, that a fresh normal client still round
trips, and that the records stored before the attack read back unchanged.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

import clients
import kafka_raw
from kafka_raw import ConnectionClosed, Reader, Writer

SEED_TOPIC = "precious"
SEED_PARTITIONS = 2
close_wait_s_max = 10.0
# socket.request.max.bytes, the broker's default (100 MiB).
REQUEST_BYTES_MAX = 100 * 2**20


class Survivor:
    def __init__(self, broker):
        self.broker = broker
        clients.create_topic(broker.bootstrap, SEED_TOPIC, SEED_PARTITIONS)
        recs = [(f"k{i}".encode(), f"precious-{i}".encode() * 3, i % SEED_PARTITIONS) for i in range(500)]
        clients.produce_all(broker.bootstrap, SEED_TOPIC, recs)
        self.before = self.read()
        assert len(self.before) == 500
        self.rounds = 0

    def read(self):
        recs = clients.consume_all(self.broker.bootstrap, SEED_TOPIC, SEED_PARTITIONS, expect=500)
        return sorted((r.partition, r.offset, r.key, r.value) for r in recs)

    def check(self):
        self.broker.assert_alive()
        # ApiVersions on a fresh raw connection
        assert kafka_raw.api_versions_ok(self.broker.host, self.broker.port, timeout_s=10)
        # a normal client still round-trips
        self.rounds += 1
        topic = f"after-attack-{self.rounds}"
        clients.produce_all(self.broker.bootstrap, topic, [(b"k", b"alive")])
        assert [r.value for r in clients.consume_all(self.broker.bootstrap, topic, 1, expect=1)] == [b"alive"]
        # stored records unchanged
        assert self.read() == self.before
        self.broker.assert_alive()


@pytest.fixture
def survivor(broker):
    s = Survivor(broker)
    yield s
    s.check()


def closed_or_answered(conn: kafka_raw.RawConn, correlation_id: int) -> str:
    """Wait for the broker's reaction to a request it should refuse: 'closed'
    or 'answered' (a response frame with our correlation id). Hanging is a
    failure: the client would wait forever."""
    conn.sock.settimeout(close_wait_s_max)
    try:
        frame = conn.recv_frame()
    except ConnectionClosed:
        return "closed"
    except socket.timeout:
        pytest.fail(f"broker neither answered nor closed within {close_wait_s_max}s")
    (cid,) = struct.unpack(">i", frame[:4])
    assert cid == correlation_id, f"answer carries correlation id {cid}, sent {correlation_id}"
    return "answered"


# ---------------------------------------------------------------- framing


def test_bad_input_frame_over_limit(broker, survivor):
    """A size prefix over socket.request.max.bytes (100 MiB): closed without
    the broker reading (or allocating) the body."""
    with broker.raw() as c:
        c.send_raw(struct.pack(">i", 100 * 1024 * 1024 + 1) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
        assert c.wait_closed(close_wait_s_max), "connection left open after an oversized frame header"
    with broker.raw() as c:
        c.send_raw(struct.pack(">i", 0x7FFFFFFF))
        assert c.wait_closed(close_wait_s_max)
    with broker.raw() as c:  # actually stream 101 MiB: refused early, not buffered
        size = 101 * 1024 * 1024
        _, head = c.request_bytes(kafka_raw.PRODUCE, 3, b"")
        chunk = b"\x00" * (1024 * 1024)
        sent = 0
        try:
            c.send_raw(struct.pack(">i", size) + head)
            while sent < size:
                c.send_raw(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.wait_closed(close_wait_s_max), "connection left open after a 101 MiB request"
    with broker.raw() as c:
        c.send_raw(struct.pack(">i", -1))  # negative size
        assert c.wait_closed(close_wait_s_max)


def test_bad_input_frame_too_small_for_header(broker, survivor):
    for size in (0, 1, 3, 7):
        with broker.raw() as c:
            c.send_raw(struct.pack(">i", size) + b"\x00" * size)
            assert closed_or_answered(c, -999999) == "closed"


def test_bad_input_truncated_frame_then_close(broker, survivor):
    for n in range(10):
        with broker.raw() as c:
            _, frame = c.request_bytes(kafka_raw.API_VERSIONS, 0, b"")
            data = struct.pack(">i", len(frame) + 100) + frame + b"\x00" * n
            c.send_raw(data)
    with broker.raw() as c:  # half a produce, then close
        batch = kafka_raw.record_batch_v2([(b"k", b"v" * 10000)])
        body = Writer().string(None).int16(-1).int32(1000).int32(1).string(SEED_TOPIC).int32(1).int32(0)
        body.bytes_(batch)
        _, frame = c.request_bytes(kafka_raw.PRODUCE, 3, body.bytes())
        c.send_raw(struct.pack(">i", len(frame)) + frame[: len(frame) // 2])
        time.sleep(0.2)


def test_bad_input_random_garbage(broker, survivor):
    """1 MiB of random bytes over 16 connections: each is closed, except
    where the first 4 bytes announce a frame within the size limit that is
    longer than what was sent: then the broker rightly waits for the rest."""
    rng = random.Random(20240501)
    closed = 0
    for i in range(16):
        data = rng.randbytes(64 * 1024)
        (size,) = struct.unpack(">i", data[:4])
        waits_for_rest = len(data) - 4 < size <= REQUEST_BYTES_MAX
        with broker.raw() as c:
            try:
                c.send_raw(data)
            except (BrokenPipeError, ConnectionResetError):
                closed += 1
                continue  # closed by the broker mid-send
            if waits_for_rest:
                assert not c.wait_closed(0.5), f"connection {i}: closed inside a {size}-byte frame"
            else:
                assert c.wait_closed(close_wait_s_max), f"connection {i} (frame size {size}) left open"
                closed += 1
        broker.assert_alive()
    assert closed >= 8, f"only {closed} of 16 garbage connections were closed"


def test_bad_input_garbage_bodies_with_valid_headers(broker, survivor):
    """Well-formed frames and headers for implemented read-only APIs with
    random bodies: every one gets an answer or a clean close. (Produce is
    left out: a body that decodes to acks=0 rightly gets no answer; see
    test_bad_input_mutated_batches.)"""
    rng = random.Random(7)
    with broker.raw() as c:
        versions = c.versions()
    keys = [k for k in (1, 2, 3, 18, 60) if k in versions]
    for i in range(300):
        key = rng.choice(keys)
        lo, hi = versions[key]
        ver = rng.randint(lo, hi)
        body = rng.randbytes(rng.choice([0, 1, 5, 17, 64, 300, 4096]))
        with broker.raw(timeout_s=close_wait_s_max) as c:
            cid, frame = c.request_bytes(key, ver, body, flexible_header=rng.random() < 0.5)
            try:
                c.send_frame(frame)
            except (BrokenPipeError, ConnectionResetError):
                continue
            closed_or_answered(c, cid)
        if i % 50 == 0:
            broker.assert_alive()


def test_bad_input_many_pipelined_requests(broker, survivor):
    """Several requests in flight on one connection: answers in request order."""
    with broker.raw() as c:
        c.versions()
        cids = []
        for i in range(200):
            cid, frame = c.request_bytes(kafka_raw.API_VERSIONS, 0, b"")
            cids.append(cid)
            c.send_frame(frame)
        got = [struct.unpack(">i", c.recv_frame()[:4])[0] for _ in cids]
    assert got == cids


# ---------------------------------------------------------------- versions and keys


def test_bad_input_unknown_api_key(broker, survivor):
    for key in (9999, 32767, -1, 1000):
        with broker.raw() as c:
            cid = c.send_request(key, 0, b"\x00" * 16)
            closed_or_answered(c, cid)


def test_bad_input_unsupported_api_versions_version(broker, survivor):
    """KIP-511: an ApiVersions request of a version the broker does not know
    gets a v0-format answer with UNSUPPORTED_VERSION and the supported ranges,
    so the client can retry with a version both sides know."""
    with broker.raw() as c:
        lo, hi = c.versions()[kafka_raw.API_VERSIONS]
    for ver in (hi + 1, 127):
        with broker.raw() as c:
            # what librdkafka sends: flexible header and a v3+-style body
            body = Writer().uvarint(len("x") + 1).raw(b"x").uvarint(2).raw(b"1").uvarint(0).bytes()
            cid = c.send_request(kafka_raw.API_VERSIONS, ver, body, flexible_header=True)
            payload = c.recv_response(cid)  # ApiVersions answers always use header v0
            resp = kafka_raw.decode_api_versions_v0(payload)
            assert resp.error_code == kafka_raw.UNSUPPORTED_VERSION, resp
            assert resp.api_ranges.get(kafka_raw.API_VERSIONS) == (lo, hi), resp.api_ranges
            for key in (0, 1, 2, 3, 19, 20, 37, 60):
                assert key in resp.api_ranges, f"api {key} missing from the ranges: {resp.api_ranges}"
            # the connection stays usable for the retry
            assert c.api_versions_v0().error_code == kafka_raw.NONE


def test_bad_input_unsupported_version_other_api(broker, survivor):
    """Metadata and Produce at a version above the advertised maximum: an
    answer (with an error) or a close, and the broker stays up."""
    with broker.raw() as c:
        versions = c.versions()
    for key in (kafka_raw.METADATA, kafka_raw.PRODUCE, kafka_raw.FETCH):
        with broker.raw() as c:
            cid = c.send_request(key, versions[key][1] + 1, b"\x00" * 32)
            closed_or_answered(c, cid)


def test_api_versions_all_advertised_versions_answer(broker):
    """Every ApiVersions version the broker advertises answers without error,
    and every implemented API is advertised."""
    with broker.raw() as c:
        versions = c.versions()
    assert set(versions) >= {0, 1, 2, 3, 18, 19, 20, 37, 60}, versions
    lo, hi = versions[kafka_raw.API_VERSIONS]
    assert lo == 0 and hi >= 3
    for ver in range(lo, hi + 1):
        with broker.raw() as c:
            flexible = ver >= 3
            body = b""
            if flexible:
                body = Writer().uvarint(2).raw(b"t").uvarint(2).raw(b"1").uvarint(0).bytes()
            cid = c.send_request(kafka_raw.API_VERSIONS, ver, body, flexible_header=flexible)
            r = Reader(c.recv_response(cid))
            assert r.int16() == kafka_raw.NONE, f"ApiVersions v{ver} answered with an error"


# ---------------------------------------------------------------- produce payloads


def test_bad_input_bad_crc(broker, survivor):
    with broker.raw() as c:
        resp = c.produce(SEED_TOPIC, 0, kafka_raw.record_batch_v2([(b"k", b"evil")], corrupt_crc=True))
        assert resp["error_code"] == kafka_raw.CORRUPT_MESSAGE, resp
        # a flipped payload byte with the old CRC is caught too
        good = bytearray(kafka_raw.record_batch_v2([(b"k", b"evil-payload")]))
        good[-5] ^= 0xFF
        resp = c.produce(SEED_TOPIC, 1, bytes(good))
        assert resp["error_code"] == kafka_raw.CORRUPT_MESSAGE, resp
        # the same connection still produces fine afterwards
        resp = c.produce("bad-crc-neighbour", 0, kafka_raw.record_batch_v2([(b"k", b"good")]))
        assert resp["error_code"] == kafka_raw.NONE, resp
        assert resp["base_offset"] == 0


def test_bad_input_batch_length_lies(broker, survivor):
    """batchLength larger/smaller than the bytes sent: refused, nothing stored."""
    with broker.raw() as c:
        for delta in (+1000, -10, +1):
            b = bytearray(kafka_raw.record_batch_v2([(b"k", b"liar")]))
            (blen,) = struct.unpack_from(">i", b, 8)
            struct.pack_into(">i", b, 8, blen + delta)
            resp = c.produce(SEED_TOPIC, 0, bytes(b))
            assert resp["error_code"] != kafka_raw.NONE, f"batchLength {delta:+d} accepted: {resp}"
        resp = c.produce(SEED_TOPIC, 0, b"\x00" * 30)  # shorter than a batch header
        assert resp["error_code"] != kafka_raw.NONE, resp


def test_bad_input_mutated_batches(broker, survivor):
    """300 valid batches with one random byte changed: each is refused with
    an error code or stored; whatever was stored reads back through a
    CRC-checking consumer (nothing torn or corrupt is served)."""
    rng = random.Random(11)
    topic = "mutations"
    stored = []
    with broker.raw() as c:
        for i in range(300):
            value = f"mutant-{i}".encode()
            b = bytearray(kafka_raw.record_batch_v2([(b"k", value), (None, value * 2)]))
            pos = rng.randrange(len(b))
            b[pos] ^= rng.randrange(1, 256)
            resp = c.produce(topic, 0, bytes(b))
            if resp["error_code"] == kafka_raw.NONE:
                stored.append((pos, value))
            elif resp["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION:
                pytest.fail("auto-create of the scratch topic failed")
        # the last one is valid: the topic exists and the log still appends
        resp = c.produce(topic, 0, kafka_raw.record_batch_v2([(b"k", b"last")]))
        assert resp["error_code"] == kafka_raw.NONE, resp
    # only mutations of the fields the broker rewrites (baseOffset,
    # partitionLeaderEpoch: bytes 0-7 and 12-15) may be accepted
    assert all(pos < 8 or 12 <= pos < 16 for pos, _ in stored), [p for p, _ in stored]
    recs = clients.consume_all(broker.bootstrap, topic, 1, expect=2 * len(stored) + 1)
    clients.assert_dense(recs)
    assert [r.value for r in recs] == [x for _, v in stored for x in (v, v * 2)] + [b"last"]


@pytest.mark.parametrize("magic", [0, 1])
def test_bad_input_legacy_magic(broker, survivor, magic):
    """Magic v0/v1 message sets are refused with an error code (Kafka:
    UNSUPPORTED_FOR_MESSAGE_FORMAT / INVALID_RECORD / CORRUPT_MESSAGE)."""
    with broker.raw() as c:
        resp = c.produce(SEED_TOPIC, 0, kafka_raw.legacy_message_set(magic, b"k", b"old"))
        assert resp["error_code"] in (
            kafka_raw.CORRUPT_MESSAGE,
            kafka_raw.INVALID_REQUEST,
            kafka_raw.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            kafka_raw.INVALID_RECORD,
        ), resp


def test_bad_input_produce_unknown_partition(broker, survivor):
    with broker.raw() as c:
        for p in (SEED_PARTITIONS, 99, -1, 2**31 - 1):
            resp = c.produce(SEED_TOPIC, p, kafka_raw.record_batch_v2([(b"k", b"nowhere")]))
            assert resp["error_code"] == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION, (p, resp)


def test_bad_input_produce_acks_zero_bad_crc(broker, survivor):
    """acks=0 gets no response at all, even for a bad batch; the connection
    stays usable (or is closed) and nothing is stored."""
    with broker.raw() as c:
        body = (
            Writer().string(None).int16(0).int32(1000).int32(1).string(SEED_TOPIC).int32(1).int32(0)
            .bytes_(kafka_raw.record_batch_v2([(b"k", b"zero")], corrupt_crc=True)).bytes()
        )
        c.send_request(kafka_raw.PRODUCE, c.pick_version(kafka_raw.PRODUCE, 3, 8), body)
        try:
            resp = c.api_versions_v0()
        except ConnectionClosed:
            return
        assert resp.error_code == kafka_raw.NONE


# ---------------------------------------------------------------- topic names


@pytest.mark.parametrize(
    "name",
    [
        "a" * 250,
        "a" * 1000,
        "",
        ".",
        "..",
        "has space",
        "slash/inside",
        "star*",
        "emoji-\u00e9",
        "../escape",
        "nul\x00byte",
    ],
    ids=["250chars", "1000chars", "empty", "dot", "dotdot", "space", "slash", "star", "non-ascii",
         "path-escape", "nul"],
)
def test_bad_input_invalid_topic_name_create_topics(broker, survivor, name):
    with broker.raw() as c:
        (res,) = c.create_topics([(name, 1, 1)])
    assert res["error_code"] == kafka_raw.INVALID_TOPIC_EXCEPTION, res
    with broker.raw() as c:
        md = c.metadata(None)
    assert name not in {t["name"] for t in md["topics"]}
    # nothing escaped the data dir
    assert not (broker.data_dir.parent / "escape-0").exists()


def test_topic_name_249_chars_is_valid(broker):
    name = "b" * 249
    with broker.raw() as c:
        (res,) = c.create_topics([(name, 1, 1)])
    assert res["error_code"] == kafka_raw.NONE, res
    clients.produce_all(broker.bootstrap, name, [(None, b"long name ok")])
    assert [r.value for r in clients.consume_all(broker.bootstrap, name, 1, expect=1)] == [b"long name ok"]


def test_bad_input_invalid_topic_name_produce_autocreate(broker, survivor):
    """Auto-create must apply the same name rules as CreateTopics."""
    with broker.raw() as c:
        resp = c.produce("bad name!", 0, kafka_raw.record_batch_v2([(b"k", b"v")]))
        assert resp["error_code"] in (kafka_raw.INVALID_TOPIC_EXCEPTION, kafka_raw.UNKNOWN_TOPIC_OR_PARTITION)
        md = c.metadata(None)
    assert "bad name!" not in {t["name"] for t in md["topics"]}
