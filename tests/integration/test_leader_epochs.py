"""Leader epochs on the real broker: OffsetForLeaderEpoch v2-4, the
CurrentLeaderEpoch checks (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH) of
OffsetForLeaderEpoch, ListOffsets and Fetch, Fetch v12's DivergingEpoch,
batches stamped with the partition's epoch (0 on a single node), and
librdkafka consumers that validate their position with
OffsetForLeaderEpoch (KIP-320) still consuming normally."""

from __future__ import annotations

import struct

import clients
import kafka_raw
from clients import create_topic, produce_all
from kafka_raw import Reader, Writer

OFFSET_FOR_LEADER_EPOCH = 23
OFFSET_OUT_OF_RANGE = 1
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
RECORDS = 10


def seeded(broker, topic: str) -> None:
    create_topic(broker.bootstrap, topic, 1)
    produce_all(broker.bootstrap, topic, [(b"k", f"v{i}".encode(), 0) for i in range(RECORDS)])


def offset_for_leader_epoch(broker, version: int, topic: str, partition: int, current: int, epoch: int):
    """One-partition OffsetForLeaderEpoch (flexible from v4), hand encoded:
    (error_code, leader_epoch, end_offset)."""
    flexible = version >= 4
    w = Writer()
    if version >= 3:
        w.int32(-1)  # replica_id: a consumer
    count = (lambda n: w.uvarint(n + 1)) if flexible else (lambda n: w.int32(n))
    count(1)
    if flexible:
        w.uvarint(len(topic) + 1).raw(topic.encode())
    else:
        w.string(topic)
    count(1)
    w.int32(partition).int32(current).int32(epoch)
    if flexible:
        w.uvarint(0).uvarint(0).uvarint(0)  # partition, topic, request tags
    with broker.raw() as conn:
        cid = conn.send_request(OFFSET_FOR_LEADER_EPOCH, version, w.bytes(), flexible_header=flexible)
        r = Reader(conn.recv_response(cid, flexible_header=flexible))
    r.int32()  # throttle_time_ms (v2+)
    r.uvarint() if flexible else r.int32()
    r._take(r.uvarint() - 1) if flexible else r.string()
    r.uvarint() if flexible else r.int32()
    error = r.int16()
    assert r.int32() == partition
    return error, r.int32(), r.int64()


def test_api_versions_advertises_offset_for_leader_epoch_v2_to_v4(broker):
    with broker.raw() as conn:
        assert conn.versions()[OFFSET_FOR_LEADER_EPOCH] == (2, 4)


def test_offset_for_leader_epoch_v2_v3_v4_answers(broker):
    topic = "ofle-versions"
    seeded(broker, topic)
    for v in (2, 3, 4):
        # The latest epoch (0 on a single node) ends at the log end.
        assert offset_for_leader_epoch(broker, v, topic, 0, -1, 0) == (0, 0, RECORDS), v
        assert offset_for_leader_epoch(broker, v, topic, 0, 0, 0) == (0, 0, RECORDS), v
        # An epoch above every known one: unknown.
        assert offset_for_leader_epoch(broker, v, topic, 0, -1, 7) == (0, -1, -1), v
        got = offset_for_leader_epoch(broker, v, topic, 5, -1, 0)
        assert got == (kafka_raw.UNKNOWN_TOPIC_OR_PARTITION, -1, -1), v
        got = offset_for_leader_epoch(broker, v, "ofle-no-such-topic", 0, -1, 0)
        assert got == (kafka_raw.UNKNOWN_TOPIC_OR_PARTITION, -1, -1), v


def test_offset_for_leader_epoch_current_epoch_fenced_and_unknown(broker):
    topic = "ofle-current"
    seeded(broker, topic)
    for v in (2, 4):
        assert offset_for_leader_epoch(broker, v, topic, 0, 1, 0) == (UNKNOWN_LEADER_EPOCH, -1, -1)
        assert offset_for_leader_epoch(broker, v, topic, 0, -2, 0) == (FENCED_LEADER_EPOCH, -1, -1)


def test_offset_for_leader_epoch_empty_partition_is_unknown(broker):
    topic = "ofle-empty"
    create_topic(broker.bootstrap, topic, 1)
    assert offset_for_leader_epoch(broker, 4, topic, 0, 0, 0) == (0, -1, -1)


def test_produced_batches_carry_the_leader_epoch(broker):
    """The broker stamps partitionLeaderEpoch (header bytes 12..16) of
    every batch it appends: 0 on a single node; clients send -1."""
    topic = "epoch-stamped"
    seeded(broker, topic)
    with broker.raw() as conn:
        d = fetch(conn, 11, topic, 0, current=-1)
    records = d["records"]
    pos, epochs = 0, []
    while pos + 61 <= len(records):
        (length,) = struct.unpack_from(">i", records, pos + 8)
        (epoch,) = struct.unpack_from(">i", records, pos + 12)
        epochs.append(epoch)
        pos += 12 + length
    assert epochs and set(epochs) == {0}, epochs


def list_offsets_v4(broker, topic: str, current: int) -> tuple[int, int, int]:
    w = Writer().int32(-1).int8(0).int32(1).string(topic).int32(1)
    w.int32(0).int32(current).int64(-1)  # partition, current_leader_epoch, latest
    with broker.raw() as conn:
        r = Reader(conn.roundtrip(kafka_raw.LIST_OFFSETS, 4, w.bytes()))
    r.int32()
    r.int32()
    r.string()
    r.int32()
    assert r.int32() == 0
    error = r.int16()
    r.int64()  # timestamp
    offset = r.int64()
    return error, offset, r.int32()


def test_list_offsets_v4_current_leader_epoch(broker):
    topic = "lo-epoch"
    seeded(broker, topic)
    assert list_offsets_v4(broker, topic, 0) == (0, RECORDS, 0)
    assert list_offsets_v4(broker, topic, -1) == (0, RECORDS, 0)
    assert list_offsets_v4(broker, topic, 3)[0] == UNKNOWN_LEADER_EPOCH
    assert list_offsets_v4(broker, topic, -5)[0] == FENCED_LEADER_EPOCH


def fetch(conn, version: int, topic: str, offset: int, current: int, last_fetched: int = -1) -> dict:
    """One-partition Fetch v11 (classic) or v12 (flexible) of partition 0:
    {error_code, high_watermark, records, diverging}."""
    flexible = version >= 12
    w = Writer().int32(-1).int32(0).int32(1).int32(1 << 20)
    w.int8(0).int32(0).int32(-1)  # isolation, session id, epoch -1: sessionless
    count = (lambda n: w.uvarint(n + 1)) if flexible else (lambda n: w.int32(n))
    text = (lambda s: w.uvarint(len(s) + 1).raw(s.encode())) if flexible else (lambda s: w.string(s))
    count(1)
    text(topic)
    count(1)
    w.int32(0).int32(current).int64(offset)
    if flexible:
        w.int32(last_fetched)
    w.int64(-1).int32(1 << 20)
    if flexible:
        w.uvarint(0).uvarint(0)  # partition tags, topic tags
    count(0)  # forgotten topics
    text("")  # rack id
    if flexible:
        w.uvarint(0)
    cid = conn.send_request(kafka_raw.FETCH, version, w.bytes(), flexible_header=flexible)
    r = Reader(conn.recv_response(cid, flexible_header=flexible))
    r.int32()
    assert r.int16() == 0
    r.int32()
    n = r.uvarint() - 1 if flexible else r.int32()
    assert n == 1
    r._take(r.uvarint() - 1) if flexible else r.string()
    n = r.uvarint() - 1 if flexible else r.int32()
    assert n == 1
    assert r.int32() == 0
    d = {"error_code": r.int16(), "high_watermark": r.int64(), "diverging": None}
    r.int64()
    r.int64()
    if flexible:
        aborted = r.uvarint()
        assert aborted == 0, "null aborted transactions"
        r.int32()
        size = r.uvarint() - 1
        d["records"] = r._take(size) if size > 0 else b""
        for _ in range(r.uvarint()):
            tag, size = r.uvarint(), r.uvarint()
            field = Reader(r._take(size))
            if tag == 0:
                d["diverging"] = (field.int32(), field.int64())
    else:
        r.int32()
        r.int32()
        d["records"] = r.bytes_() or b""
    return d


def test_fetch_v11_current_leader_epoch(broker):
    topic = "fetch-epoch"
    seeded(broker, topic)
    with broker.raw() as conn:
        assert fetch(conn, 11, topic, 0, current=0)["error_code"] == 0
        assert fetch(conn, 11, topic, 0, current=1)["error_code"] == UNKNOWN_LEADER_EPOCH
        assert fetch(conn, 11, topic, 0, current=-3)["error_code"] == FENCED_LEADER_EPOCH


def test_fetch_v12_diverging_epoch(broker):
    topic = "fetch-diverging"
    seeded(broker, topic)
    with broker.raw() as conn:
        d = fetch(conn, 12, topic, 5, current=0, last_fetched=0)
        assert (d["error_code"], d["diverging"]) == (0, None) and d["records"], d
        d = fetch(conn, 12, topic, RECORDS, current=0, last_fetched=0)
        assert (d["error_code"], d["diverging"]) == (0, None), d
        # The fetcher claims epoch 0 data past where epoch 0 ends here.
        d = fetch(conn, 12, topic, RECORDS + 2, current=0, last_fetched=0)
        assert (d["error_code"], d["diverging"], d["records"]) == (0, (0, RECORDS), b""), d
        # An epoch this log never had: OFFSET_OUT_OF_RANGE, as Kafka.
        d = fetch(conn, 12, topic, 3, current=0, last_fetched=4)
        assert d["error_code"] == OFFSET_OUT_OF_RANGE, d


def test_librdkafka_group_consumer_resumes_after_commit(broker):
    """librdkafka commits offsets with the leader epoch of the last record
    and, on the next assignment, validates them with OffsetForLeaderEpoch
    (KIP-320): the second consumer resumes exactly where the first stopped."""
    topic = "epoch-resume"
    create_topic(broker.bootstrap, topic, 2)
    produce_all(broker.bootstrap, topic, [(b"k", f"a{i}".encode(), i % 2) for i in range(40)])
    group = "epoch-resume-group"
    first = clients.consumer(broker.bootstrap, **{"group.id": group, "enable.partition.eof": False, "enable.auto.offset.store": True})
    got = []
    try:
        first.subscribe([topic])
        while len(got) < 40:
            for m in first.consume(num_messages=100, timeout=1.0):
                assert m.error() is None, m.error()
                if hasattr(m, "leader_epoch"):
                    assert m.leader_epoch() == 0, m.leader_epoch()
                got.append(m)
        first.commit(asynchronous=False)
    finally:
        first.close()
    produce_all(broker.bootstrap, topic, [(b"k", f"b{i}".encode(), i % 2) for i in range(20)])
    second = clients.consumer(broker.bootstrap, **{"group.id": group, "enable.partition.eof": False, "enable.auto.offset.store": True})
    rest = []
    try:
        second.subscribe([topic])
        import time

        deadline = time.monotonic() + 60
        while len(rest) < 20 and time.monotonic() < deadline:
            for m in second.consume(num_messages=100, timeout=1.0):
                assert m.error() is None, m.error()
                rest.append(m.value())
    finally:
        second.close()
    assert sorted(rest) == sorted(f"b{i}".encode() for i in range(20))
